// Fills a database the way an application would, with the official
// Node.js driver: mixed BSON types, nested documents and arrays, and
// indexes. Used by testdata/script/import_export.txtar as the database
// argon imports.
//
//   node seed.js URI DB
'use strict';
const { MongoClient, ObjectId, Long, Double, Int32, Binary, Timestamp, BSONRegExp } = require('mongodb');

async function main() {
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  try {
    const db = client.db(process.argv[3]);
    await db.collection('users').insertMany([
      { _id: 1, name: 'Ada', email: 'ada@example.com', born: new Date('1815-12-10T00:00:00Z'), logins: new Long(12), score: new Double(9.5) },
      { _id: 2, name: 'Bob', email: 'bob@example.com', address: { city: 'Paris', geo: { lat: 48.85, lng: 2.35 } }, tags: ['a', 'b', { nested: [1, 2, { deep: [3] }] }] },
      { _id: 'c3', name: 'Cy', email: 'cy@example.com', active: true, manager: null, small: new Int32(7), big: Long.fromString('9007199254740993') },
    ]);
    await db.collection('users').createIndex({ email: 1 }, { unique: true, name: 'email_unique' });
    await db.collection('users').createIndex({ name: 1, born: -1 });
    await db.collection('events').insertMany([
      { _id: new ObjectId('650000000000000000000001'), kind: 'login', at: new Date('2026-01-01T10:00:00.123Z'), payload: new Binary(Buffer.from('hello')), ts: new Timestamp({ t: 1700000000, i: 1 }) },
      { _id: new ObjectId('650000000000000000000002'), kind: 'search', pattern: new BSONRegExp('^ab+c$', 'i'), empty: {}, list: [] },
    ]);
    await db.collection('events').createIndex({ kind: 1 });
    console.log('seeded');
  } finally {
    await client.close();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
