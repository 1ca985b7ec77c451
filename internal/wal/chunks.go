package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Spilled entries (log format 2) are stored in chunks: one document of the
// entries collection holds up to chunkEntries consecutive entries of one
// commit and one collection, packed into one binary field. Format 1 stored
// one document per entry, with its own _id, timeline, LSN, operation,
// collection, key and token: about 200 bytes on top of every post-image,
// 6x the BSON of a small document (BenchmarkWALBytes), and on the embedded
// engine, where every query of the collection reads all of its rows, a
// row per entry to read. A chunk keeps the fields queries select on
// (timeline, first LSN, collection, token) once, and for each entry a
// record of a few bytes and the post-image:
//
//	op byte (opCodes), then
//	  put, index:         uvarint length, document (the key is its _id,
//	                      or the index specification's name)
//	  del, dropindex:     uvarint length, key bytes
//	  op|keyed (any op):  uvarint length, key bytes, uvarint length,
//	                      document (a put whose key is not its _id's bytes)
//
// kh holds a 64-bit hash of each key, so that a server can select the
// chunks that hold some keys (LatestAtOrBelow) without reading the rest.
// On an engine that scans (format 3) a chunk has none: its key record
// (collChunkKeys) selects it, and a query of the entries collection asks
// for the chunks without kh as well (withoutKH).
//
// Readers ask for a range of LSNs (lo, hi] from lsn > lo-chunkEntries: a
// chunk that starts below lo may reach into the range, and no chunk holds
// more than chunkEntries entries. Format-1 entries match the same queries
// (their lsn is their LSN) and decode to themselves.
type entryChunk struct {
	ID    string  `bson:"_id"`
	TL    string  `bson:"tl"`
	LSN   int64   `bson:"lsn"`
	Last  int64   `bson:"last"`
	Coll  string  `bson:"coll"`
	Token string  `bson:"token"`
	KH    []int64 `bson:"kh,omitempty"`
	Data  []byte  `bson:"data"`
}

// withoutKH selects the chunks that carry no key hashes (format 3, written
// on an engine that scans), which a query for some keys' hashes must read
// too: their entries are then matched by their key bytes.
var withoutKH = bson.D{{Key: "kh", Value: bson.D{{Key: "$exists", Value: false}}}, {Key: "data", Value: bson.D{{Key: "$exists", Value: true}}}}

const (
	// chunkEntries is the most entries a chunk holds. Readers rely on it:
	// it is part of the format.
	chunkEntries = 1000
	// chunkBytes is the most record bytes a chunk holds, unless its one
	// record is larger (a document of up to 16 MiB gets a chunk of its
	// own).
	chunkBytes = 4 << 20
	// keyedOp marks a record that carries its key before its document.
	keyedOp = 0x80
)

var opCodes = map[string]byte{OpPut: 1, OpDel: 2, OpIndex: 3, OpDropIndex: 4}

var opNames = map[byte]string{1: OpPut, 2: OpDel, 3: OpIndex, 4: OpDropIndex}

// keyHash is the hash of key bytes kept in a chunk's kh.
func keyHash(kb []byte) int64 {
	h := fnv.New64a()
	_, _ = h.Write(kb)
	return int64(h.Sum64())
}

// impliedKey is the key an entry's document names: its _id, or for an
// index, the specification's name.
func impliedKey(op string, doc bson.Raw) []byte {
	field := "_id"
	if op == OpIndex {
		field = "name"
	}
	v, err := doc.LookupErr(field)
	if err != nil {
		return nil
	}
	return KeyOf(v)
}

// chunkEntriesOf cuts entries (consecutive LSNs of one writer) into
// chunks: a new one at every change of collection, every chunkEntries
// entries and past chunkBytes.
func chunkEntriesOf(entries []Entry) []*entryChunk {
	var out []*entryChunk
	var c *entryChunk
	seen := map[int64]bool{}
	for i := range entries {
		e := &entries[i]
		var rec []byte
		op := opCodes[e.Op]
		switch {
		case e.Op == OpDel || e.Op == OpDropIndex:
			rec = appendField([]byte{op}, e.KeyBytes)
		case bytes.Equal(impliedKey(e.Op, e.Doc), e.KeyBytes):
			rec = appendField([]byte{op}, e.Doc)
		default:
			rec = appendField(appendField([]byte{op | keyedOp}, e.KeyBytes), e.Doc)
		}
		// A record that would take a chunk past chunkBytes starts a new
		// one: a chunk never holds more than one document past it, and
		// one document of the largest size fits a chunk of its own.
		if c == nil || e.Coll != c.Coll || c.Last-c.LSN+1 >= chunkEntries || len(c.Data)+len(rec) > chunkBytes || e.LSN != c.Last+1 {
			c = &entryChunk{ID: entryID(e.TL, e.LSN, e.Token), TL: e.TL, LSN: e.LSN, Last: e.LSN - 1, Coll: e.Coll, Token: e.Token}
			out = append(out, c)
			clear(seen)
		}
		c.Last = e.LSN
		if h := keyHash(e.KeyBytes); !seen[h] {
			seen[h] = true
			c.KH = append(c.KH, h)
		}
		c.Data = append(c.Data, rec...)
	}
	return out
}

func appendField(b, f []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// storedEntry is a document of the entries collection: a chunk, or an
// entry of format 1.
type storedEntry struct {
	ID    string `bson:"_id"`
	TL    string `bson:"tl"`
	LSN   int64  `bson:"lsn"`
	Coll  string `bson:"coll"`
	Token string `bson:"token"`
	// Format 1.
	Op       string `bson:"op"`
	KeyBytes []byte `bson:"kb"`
	Doc      []byte `bson:"doc"`
	// Chunks.
	Last int64  `bson:"last"`
	Data []byte `bson:"data"`
}

// expand calls fn for each entry a stored document holds, in LSN order.
func (se *storedEntry) expand(fn func(*Entry) error) error {
	if se.Last == 0 {
		e := Entry{TL: se.TL, LSN: se.LSN, Op: se.Op, Coll: se.Coll, KeyBytes: se.KeyBytes, Doc: se.Doc, Token: se.Token}
		return fn(&e)
	}
	bad := func(what string) error {
		return fmt.Errorf("malformed log chunk at LSN %d of timeline %s: %s", se.LSN, se.TL, what)
	}
	data := se.Data
	field := func() ([]byte, error) {
		n, w := binary.Uvarint(data)
		if w <= 0 || uint64(len(data)-w) < n {
			return nil, errors.New("truncated record")
		}
		b := data[w : w+int(n)]
		data = data[w+int(n):]
		return b, nil
	}
	lsn := se.LSN
	for ; len(data) > 0; lsn++ {
		code := data[0]
		data = data[1:]
		op, ok := opNames[code&^keyedOp]
		if !ok {
			return bad(fmt.Sprintf("unknown operation %d", code))
		}
		e := Entry{TL: se.TL, LSN: lsn, Op: op, Coll: se.Coll, Token: se.Token}
		f, err := field()
		if err != nil {
			return bad(err.Error())
		}
		switch {
		case code&keyedOp != 0:
			e.KeyBytes = f
			if e.Doc, err = field(); err != nil {
				return bad(err.Error())
			}
		case op == OpDel || op == OpDropIndex:
			e.KeyBytes = f
		default:
			e.Doc = f
			if e.KeyBytes = impliedKey(op, f); e.KeyBytes == nil {
				return bad(fmt.Sprintf("entry %d names no key", lsn))
			}
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if lsn != se.Last+1 {
		return bad(fmt.Sprintf("holds LSNs %d..%d, names %d..%d", se.LSN, lsn-1, se.LSN, se.Last))
	}
	return nil
}

// collChunkKeys holds, on an engine that Scans, a small record of each
// chunk's key hashes: {_id: the chunk's _id, tl, lsn, last, coll, token,
// kh}, kh the low 32 bits of the chunk's key hashes (keyHash), packed 4
// bytes each (little-endian) into one binary value. Why: on FerretDB
// every query of the entries collection reads and decodes every chunk
// whole (about 9 ms for a chunk of 1,000 documents of 300 bytes; an array
// of 1,000 hashes alone costs 2.4 ms to decode), so a lookup of a few
// keys (LatestAtOrBelow) read the whole log: 0.9 s for a 100,000-document
// commit. These records are read in about 0.3 ms each, and only the
// chunks that hold a wanted key are then read, each by its _id. A record
// only selects chunks to read (the entries are matched by their key
// bytes), so 32 bits are enough: a key matches another of a chunk of
// 1,000 by chance once in about 4 million chunks, and costs a read when
// it does; 64 bits added 4 bytes an entry to the log for nothing. A commit
// slot whose chunks all have one says how many (Slot.Keyed); a reader
// that finds another number (a record the engine does not show, a log
// written by an older argon) reads the entries collection as before.
const collChunkKeys = "chunk_keys"

// chunkKeyDoc is a document of collChunkKeys.
type chunkKeyDoc struct {
	ID    string `bson:"_id"`
	TL    string `bson:"tl"`
	LSN   int64  `bson:"lsn"`
	Last  int64  `bson:"last"`
	Coll  string `bson:"coll"`
	Token string `bson:"token"`
	KH    []byte `bson:"kh"`
}

// shortHash is the part of a key hash a key record keeps.
func shortHash(h int64) uint32 { return uint32(h) }

// keyDocOf is the key record of chunk c.
func keyDocOf(c *entryChunk) *chunkKeyDoc {
	kh := make([]byte, 0, 4*len(c.KH))
	for _, h := range c.KH {
		kh = binary.LittleEndian.AppendUint32(kh, shortHash(h))
	}
	return &chunkKeyDoc{ID: c.ID, TL: c.TL, LSN: c.LSN, Last: c.Last, Coll: c.Coll, Token: c.Token, KH: kh}
}

// holds reports whether the record lists one of hashes (shortHash's).
func (d *chunkKeyDoc) holds(hashes map[uint32]bool) bool {
	for i := 0; i+4 <= len(d.KH); i += 4 {
		if hashes[binary.LittleEndian.Uint32(d.KH[i:])] {
			return true
		}
	}
	return false
}
