// An application that knows nothing of argon: it connects to the URI it is
// given with the official MongoDB Node.js driver and changes documents.
// Used by testdata/script/node_app.txtar.
'use strict';
const { MongoClient } = require('mongodb');

async function main() {
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  try {
    const users = client.db().collection('users');
    await users.insertOne({ _id: 10, name: 'Node', langs: ['js'] });
    await users.updateOne({ _id: 1 }, { $set: { email: 'ada@example.com' }, $inc: { logins: 1 } });
    await users.deleteOne({ _id: 2 });
    await users.insertMany([{ _id: 11, name: 'Batch' }, { _id: 12, name: 'Batch' }]);
    await users.updateMany({ name: 'Batch' }, { $set: { batch: true } });
    const docs = await users.find({}).sort({ _id: 1 }).toArray();
    console.log(JSON.stringify(docs));
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  console.error('app error:', err.message);
  process.exit(1);
});
