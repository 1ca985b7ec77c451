// Compares two databases document by document, as BSON bytes, and their
// indexes (key, name, unique), with the official Node.js driver. Prints
// one line per collection, then "identical", or each difference and
// exits 1. Used by testdata/script/import_export.txtar.
//
//   node compare.js URI DB_A DB_B
'use strict';
const { MongoClient, BSON } = require('mongodb');

async function main() {
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  let differ = false;
  const note = (msg) => { differ = true; console.log(msg); };
  try {
    const a = client.db(process.argv[3]);
    const b = client.db(process.argv[4]);
    const names = async (db) => (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();
    const na = await names(a);
    const nb = await names(b);
    if (JSON.stringify(na) !== JSON.stringify(nb)) note(`collections differ: ${na} / ${nb}`);
    for (const name of na) {
      const raw = { raw: true, sort: { _id: 1 } };
      const da = await a.collection(name).find({}, raw).toArray();
      const db2 = await b.collection(name).find({}, raw).toArray();
      if (da.length !== db2.length) note(`${name}: ${da.length} documents / ${db2.length}`);
      for (let i = 0; i < Math.min(da.length, db2.length); i++) {
        if (!Buffer.from(da[i]).equals(Buffer.from(db2[i]))) {
          note(`${name}: document ${i + 1} differs: ${BSON.EJSON.stringify(BSON.deserialize(da[i]))} / ${BSON.EJSON.stringify(BSON.deserialize(db2[i]))}`);
        }
      }
      const idx = async (db) => (await db.collection(name).indexes())
        .map((x) => JSON.stringify({ key: x.key, name: x.name, unique: !!x.unique }))
        .sort();
      const ia = await idx(a);
      const ib = await idx(b);
      if (JSON.stringify(ia) !== JSON.stringify(ib)) note(`${name}: indexes differ: ${ia} / ${ib}`);
      console.log(`${name}: ${da.length} documents, ${ia.length} indexes`);
    }
    if (!differ) console.log('identical');
  } finally {
    await client.close();
  }
  process.exit(differ ? 1 : 0);
}

main().catch((err) => { console.error(err); process.exit(1); });
