package wal

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func rawDoc(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entryAdder returns a function that appends an entry to *in as the next
// LSN of one writer.
func entryAdder(t *testing.T, in *[]Entry) func(Entry, error) {
	return func(e Entry, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		e.TL, e.LSN, e.Token = "tl1", int64(len(*in)+1), "tok"
		*in = append(*in, e)
	}
}

// Chunks give back exactly the entries they were cut from: every
// operation, a key that is not its document's _id bytes, nested keys, and
// cuts at a change of collection, at chunkEntries entries and past
// chunkBytes.
func TestChunksHoldTheirEntries(t *testing.T) {
	var in []Entry
	add := entryAdder(t, &in)
	add(PutEntry("a", rawDoc(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "x"}})))
	add(PutEntry("a", rawDoc(t, bson.D{{Key: "_id", Value: bson.D{{Key: "b", Value: 1}, {Key: "a", Value: 2}}}})))
	// A put whose key bytes differ from its document's _id (int64 7 kept
	// under the key of int32 7): the record carries the key.
	odd, _ := PutEntry("a", rawDoc(t, bson.D{{Key: "_id", Value: int64(7)}}))
	odd.KeyBytes = KeyOf(rawDoc(t, bson.D{{Key: "k", Value: int32(7)}}).Lookup("k"))
	add(odd, nil)
	add(DelEntry("a", rawDoc(t, bson.D{{Key: "k", Value: "gone"}}).Lookup("k")), nil)
	add(IndexEntry("a", rawDoc(t, bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "name", Value: "v_1"}})))
	add(DropIndexEntry("a", "v_1"), nil)
	for i := 0; i < 2500; i++ {
		add(PutEntry("b", rawDoc(t, bson.D{{Key: "_id", Value: fmt.Sprintf("k%04d", i)}})))
	}
	big := strings.Repeat("x", chunkBytes/3)
	for i := 0; i < 4; i++ {
		add(PutEntry("c", rawDoc(t, bson.D{{Key: "_id", Value: i}, {Key: "s", Value: big}})))
	}

	chunks := chunkEntriesOf(in)
	var spans []string
	for _, c := range chunks {
		spans = append(spans, fmt.Sprintf("%s:%d-%d", c.Coll, c.LSN, c.Last))
	}
	want := "a:1-6 b:7-1006 b:1007-2006 b:2007-2506 c:2507-2508 c:2509-2510"
	if got := strings.Join(spans, " "); got != want {
		t.Fatalf("chunks %s, want %s", got, want)
	}
	var out []Entry
	for _, c := range chunks {
		// Through BSON, as a reader gets it.
		raw, err := bson.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var se storedEntry
		if err := bson.Unmarshal(raw, &se); err != nil {
			t.Fatal(err)
		}
		if err := se.expand(func(e *Entry) error {
			out = append(out, *e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(out) != len(in) {
		t.Fatalf("%d entries back, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.TL != b.TL || a.LSN != b.LSN || a.Op != b.Op || a.Coll != b.Coll || a.Token != b.Token ||
			!bytes.Equal(a.KeyBytes, b.KeyBytes) || !bytes.Equal(a.Doc, b.Doc) {
			t.Fatalf("entry %d: got %+v, want %+v", i, b, a)
		}
	}
	// One hash per distinct key.
	if n := len(chunks[1].KH); n != 1000 {
		t.Errorf("a chunk of 1000 keys holds %d hashes", n)
	}
}

// A chunk that does not hold the entries it names is an error, never a
// shorter state.
func TestMalformedChunks(t *testing.T) {
	var in []Entry
	for i := 1; i <= 3; i++ {
		e, _ := PutEntry("a", rawDoc(t, bson.D{{Key: "_id", Value: i}}))
		e.TL, e.LSN, e.Token = "tl1", int64(i), "tok"
		in = append(in, e)
	}
	c := chunkEntriesOf(in)[0]
	cases := map[string]storedEntry{
		"names more LSNs than it holds": {TL: c.TL, LSN: 1, Last: 4, Data: c.Data},
		"truncated":                     {TL: c.TL, LSN: 1, Last: 3, Data: c.Data[:len(c.Data)-2]},
		"unknown operation":             {TL: c.TL, LSN: 1, Last: 1, Data: []byte{9, 0}},
	}
	for name, se := range cases {
		if err := se.expand(func(*Entry) error { return nil }); err == nil || !strings.Contains(err.Error(), "malformed log chunk at LSN 1 of timeline tl1") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A chunk fits in one document (MongoDB: 16 MiB, plus 16 KiB for its own
// fields) whatever the documents: a record that would take a chunk past
// chunkBytes starts a new one. Found by a review: three documents of 1.2
// MiB and one of 13 MiB made one chunk of 17.3 MiB.
func TestChunksFitADocument(t *testing.T) {
	var in []Entry
	add := entryAdder(t, &in)
	// 3 documents of 1.2 MiB (3.6 MiB < chunkBytes), then one of 13 MiB:
	// each is a valid MongoDB document, and format 1 stored them.
	mid := strings.Repeat("x", 1200<<10)
	for i := 0; i < 3; i++ {
		add(PutEntry("c", rawDoc(t, bson.D{{Key: "_id", Value: i}, {Key: "s", Value: mid}})))
	}
	add(PutEntry("c", rawDoc(t, bson.D{{Key: "_id", Value: 99}, {Key: "s", Value: strings.Repeat("y", 13<<20)}})))
	const maxDoc = 16<<20 + 16<<10
	for _, c := range chunkEntriesOf(in) {
		raw, err := bson.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > maxDoc {
			t.Errorf("chunk %d-%d is %d bytes, over the %d-byte document limit", c.LSN, c.Last, len(raw), maxDoc)
		}
	}
}

// A document within about 200 bytes of 16 MiB gets a chunk of its own
// that the chunk's fields take past MongoDB's limit for one document,
// which an insert there refuses (review40). The log refuses it on every
// engine, naming the document and the largest size that fits; one a
// little smaller is written.
func TestALogRecordOverMongoDBsLimitIsRefused(t *testing.T) {
	doc := func(n int) bson.Raw {
		d := rawDoc(t, bson.D{{Key: "_id", Value: "big"}, {Key: "s", Value: ""}})
		return rawDoc(t, bson.D{{Key: "_id", Value: "big"}, {Key: "s", Value: strings.Repeat("x", n-len(d))}})
	}
	for _, tc := range []struct {
		size int
		fits bool
	}{{maxStored, false}, {maxStored - 100, false}, {maxStored - 300, true}} {
		var in []Entry
		add := entryAdder(t, &in)
		d := doc(tc.size)
		if len(d) != tc.size {
			t.Fatalf("built a document of %d bytes, want %d", len(d), tc.size)
		}
		add(PutEntry("big", d))
		c := chunkEntriesOf(in)[0]
		err := fitsADocument(c, in)
		raw, _ := bson.Marshal(c)
		if tc.fits {
			if err != nil || len(raw) > maxStored {
				t.Errorf("a document of %d bytes (chunk %d bytes): %v, want it logged", tc.size, len(raw), err)
			}
			continue
		}
		var le *LogRecordError
		if !errors.As(err, &le) {
			t.Fatalf("a document of %d bytes (chunk %d bytes): %v, want a LogRecordError", tc.size, len(raw), err)
		}
		if le.Size != tc.size || le.Max != maxStored-(len(raw)-tc.size) || le.Coll != "big" {
			t.Errorf("the error says size %d, max %d, collection %s; want %d, %d, big", le.Size, le.Max, le.Coll, tc.size, maxStored-(len(raw)-tc.size))
		}
		var at []Entry
		entryAdder(t, &at)(PutEntry("big", doc(le.Max)))
		if err := fitsADocument(chunkEntriesOf(at)[0], at); err != nil {
			t.Errorf("a document of the size the error names (%d bytes): %v", le.Max, err)
		}
	}
}
