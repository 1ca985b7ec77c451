// An application that manages its own schema with the official MongoDB
// Node.js driver: "reset" drops its database and seeds it again with an
// index; "tweak" adds an index and a document. Used by
// testdata/script/node_reseed.txtar.
'use strict';
const { MongoClient } = require('mongodb');

async function main() {
  const [uri, mode] = process.argv.slice(2);
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  try {
    const db = client.db();
    if (mode === 'reset') {
      await db.dropDatabase();
      const users = db.collection('users');
      await users.insertMany([{ _id: 100, name: 'Seed A' }, { _id: 101, name: 'Seed B' }, { _id: 102, name: 'Seed C' }]);
      await users.createIndex({ name: 1 }, { name: 'by_name', unique: true });
    } else if (mode === 'tweak') {
      const users = db.collection('users');
      await users.createIndex({ tags: 1 }, { name: 'by_tags' });
      await users.insertOne({ _id: 103, name: 'Late', tags: ['x'] });
    } else {
      throw new Error('mode must be reset or tweak');
    }
    const names = (await db.collection('users').indexes()).map((i) => i.name).sort();
    console.log(JSON.stringify(names));
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  console.error('app error:', err.message);
  process.exit(1);
});
