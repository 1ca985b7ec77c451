// An application sending values the embedded engine cannot store or
// compare (it would close the connection on them), and a transaction,
// through argon serve: each request gets an error reply, and the same
// client goes on working.
// Used by testdata/script/serve_types.txtar.
'use strict';
const { MongoClient, Decimal128, MinKey, MaxKey, Code, Double, BSONSymbol } = require('mongodb');

async function main() {
  // One connection, so that "goes on working" means the same connection.
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 10000, maxPoolSize: 1 });
  await client.connect();
  try {
    const c = client.db().collection('things');
    const values = {
      decimal: Decimal128.fromString('1.5'),
      minkey: new MinKey(),
      maxkey: new MaxKey(),
      code: new Code('f()'),
      codewithscope: new Code('f()', { a: 1 }),
      symbol: new BSONSymbol('s'),
      nan: new Double(NaN),
    };
    let i = 0;
    for (const [name, v] of Object.entries(values)) {
      i++;
      const tries = {
        insertOne: () => c.insertOne({ _id: i, v }),
        insertMany: () => c.insertMany([{ _id: 100 + i }, { _id: 200 + i, nested: [{ v }] }]),
        find: () => c.find({ v: { $gt: v } }).toArray(),
        updateOne: () => c.updateOne({ _id: 1 }, { $set: { v } }),
      };
      for (const [op, f] of Object.entries(tries)) {
        try {
          await f();
          console.log(`${name} ${op}: accepted`);
        } catch (err) {
          console.log(`${name} ${op}: ${err.codeName} ${err.code}: ${err.message}`);
        }
      }
    }
    // What the engine lacks is said in words: transactions (answered by
    // argon serve), $lookup and change streams (by the engine).
    const session = client.startSession();
    try {
      session.startTransaction();
      await c.insertOne({ _id: 'txn' }, { session });
      await session.commitTransaction();
      console.log('transaction: accepted');
    } catch (err) {
      console.log(`transaction: ${err.codeName} ${err.code}: ${err.message}`);
    } finally {
      await session.endSession();
    }
    try {
      await c.aggregate([{ $lookup: { from: 'other', localField: 'a', foreignField: 'b', as: 'j' } }]).toArray();
      console.log('$lookup: accepted');
    } catch (err) {
      console.log(`$lookup: ${err.codeName} ${err.code}: ${err.message}`);
    }
    // Update operators the engine takes and then evaluates otherwise
    // than MongoDB, silently: refused with a reason instead.
    const ops = {
      'pull condition': () => c.updateOne({ _id: 'after' }, { $pull: { a: { $gte: 2 } } }),
      'pull by _id': () => c.updateMany({}, { $pull: { items: { _id: 7 } } }),
      'push sort': () => c.findOneAndUpdate({ _id: 'after' }, { $push: { a: { $each: [1], $sort: 1 } } }),
      'push slice': () => c.bulkWrite([{ updateOne: { filter: { _id: 'after' }, update: { $push: { a: { $each: [1], $slice: 2 } } } } }]),
    };
    for (const [name, f] of Object.entries(ops)) {
      try {
        await f();
        console.log(`${name}: accepted`);
      } catch (err) {
        console.log(`${name}: ${err.codeName} ${err.code}: ${err.message}`);
      }
    }
    // The same client still works.
    await c.insertOne({ _id: 'after', ok: true });
    console.log(JSON.stringify(await c.find({}).sort({ _id: 1 }).toArray()));
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  console.error('app error:', err.message);
  process.exit(1);
});
