package wal

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// keyedLog is a history of spilled commits whose chunks have key records:
// main puts keys 0-2499 (three chunks), f forks inside the second chunk
// and puts 100-109 and deletes 1500-1504, main then puts 2000-2009 (not
// f's), and a writer on f that never committed wrote chunks and key
// records for keys 7 and 1200 at LSNs f's commits use. unkeyed: the
// slots do not name their key records.
func keyedLog(t *testing.T, unkeyed bool) (*chainLog, string) {
	t.Helper()
	l := newChainLog(t)
	l.unkeyed = unkeyed
	var es []Entry
	for i := 0; i < 2500; i++ {
		es = append(es, l.entry(l.main, int64(i+1), "c", OpPut, "m1", i))
	}
	l.commit(l.main, "m1", es)
	ctx := context.Background()
	main, err := l.r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.r.CreateBranch(ctx, "p", "f", main, 1700)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := l.r.Head(ctx, f.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	l.heads[f.Timeline] = &[2]int64{fh.Slot.N, 1700}
	scans := l.r.Scans
	l.r.Scans = true
	if _, err := l.r.SpillEntries(ctx, "p", []Entry{l.entry(f.Timeline, 1701, "c", OpPut, "lost", 7), l.entry(f.Timeline, 1702, "c", OpDel, "lost", 1200)}); err != nil {
		t.Fatal(err)
	}
	l.r.Scans = scans
	es = nil
	for i := 100; i < 110; i++ {
		es = append(es, l.entry(f.Timeline, int64(1701+len(es)), "c", OpPut, "f1", i))
	}
	for i := 1500; i < 1505; i++ {
		es = append(es, l.entry(f.Timeline, int64(1701+len(es)), "c", OpDel, "f1", i))
	}
	l.commit(f.Timeline, "f1", es)
	es = nil
	for i := 2000; i < 2010; i++ {
		es = append(es, l.entry(l.main, int64(2501+len(es)), "c", OpPut, "m2", i))
	}
	l.commit(l.main, "m2", es)
	return l, f.Timeline
}

// monitored opens l's project through a client whose commands are
// recorded: each command's collection and filter.
func monitored(t *testing.T, l *chainLog) (*Repo, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if coll, ok := e.Command.Lookup("find").StringValueOK(); ok {
			mu.Lock()
			seen = append(seen, coll+" "+e.Command.Lookup("filter").String())
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(l.uri).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	mr := Open(client, l.r.DB.Name())
	mr.Scans = true
	return mr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
}

// latestLines is LatestAtOrBelow's answer for keys, one line a key.
func latestLines(t *testing.T, r *Repo, tl string, at int64, keys []int) string {
	t.Helper()
	var kbs [][]byte
	for _, k := range keys {
		id, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(k)}})
		kbs = append(kbs, KeyOf(bson.Raw(id).Lookup("_id")))
	}
	got, _, err := r.LatestAtOrBelow(context.Background(), tl, at, "c", kbs, false)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for k, e := range got {
		lines = append(lines, fmt.Sprintf("%x %s@%d %s %s", k, e.TL[len(e.TL)-4:], e.LSN, e.Op, e.Token))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// On an engine that scans, a lookup of a few keys in spilled commits
// reads the key records of the commits in range, then only the chunks
// that hold a wanted key, each by _id: never a query of the entries
// collection, which there reads every chunk whole. Its answers are those
// of the server that does not scan, forks, deletes and a writer that
// never committed included.
func TestLatestReadsChunksByTheirKeyRecords(t *testing.T) {
	l, f := keyedLog(t, false)
	mr, finds := monitored(t, l)
	cases := []struct {
		tl   string
		at   int64
		keys []int
	}{
		{f, 1715, []int{7, 1200}},         // main's, under the lost writer's records
		{f, 1715, []int{100, 1502, 2005}}, // f's put and delete; 2005 is main's after the fork
		{f, 1700, []int{100, 1699, 1701}}, // at the fork, inside the second chunk
		{l.main, 2510, []int{5, 1800, 2009, 2499}},
		{l.main, 2500, []int{2009}}, // not yet
		{l.main, 0, []int{5}},       // before any commit
	}
	for _, c := range cases {
		l.r.Scans = false
		want := latestLines(t, l.r, c.tl, c.at, c.keys)
		finds()
		got := latestLines(t, mr, c.tl, c.at, c.keys)
		if got != want {
			t.Errorf("%s@%d %v: by key records\n%s\nwant\n%s", c.tl[len(c.tl)-4:], c.at, c.keys, got, want)
		}
		for _, q := range finds() {
			if strings.HasPrefix(q, collEntries+" ") && !strings.HasPrefix(q, collEntries+` {"_id": "`) {
				t.Errorf("%s@%d %v: a query of the entries collection: %s", c.tl[len(c.tl)-4:], c.at, c.keys, q)
			}
		}
	}
	// Without key records (slots of an older argon), the same answers
	// from one query of the entries collection.
	ul, uf := keyedLog(t, true)
	umr, ufinds := monitored(t, ul)
	ul.r.Scans = false
	want := latestLines(t, ul.r, uf, 1715, []int{7, 100, 1502})
	ufinds()
	if got := latestLines(t, umr, uf, 1715, []int{7, 100, 1502}); got != want {
		t.Errorf("unkeyed: got\n%s\nwant\n%s", got, want)
	}
	scanned := false
	for _, q := range ufinds() {
		scanned = scanned || (strings.HasPrefix(q, collEntries+" ") && !strings.HasPrefix(q, collEntries+` {"_id": "`))
	}
	if !scanned {
		t.Error("unkeyed: no query of the entries collection")
	}
}

// A key record the engine does not show (here deleted) makes the lookup
// read the entries collection, with the same answer; fsck names it.
func TestLatestWithoutAKeyRecordReadsTheEntries(t *testing.T) {
	l, f := keyedLog(t, false)
	ctx := context.Background()
	l.r.Scans = false
	want := latestLines(t, l.r, f, 1715, []int{5, 1200, 2300})
	// The record of main's second chunk (LSNs 1001-2000), which holds 1200.
	var d chunkKeyDoc
	if err := l.r.DB.Collection(collChunkKeys).FindOneAndDelete(ctx, bson.D{{Key: "lsn", Value: int64(1001)}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	mr, finds := monitored(t, l)
	if got := latestLines(t, mr, f, 1715, []int{5, 1200, 2300}); got != want {
		t.Errorf("with a key record missing: got\n%s\nwant\n%s", got, want)
	}
	scanned := false
	for _, q := range finds() {
		scanned = scanned || (strings.HasPrefix(q, collEntries+" ") && !strings.HasPrefix(q, collEntries+` {"_id": "`))
	}
	if !scanned {
		t.Error("with a key record missing: the entries collection was not read")
	}
	_, problems, err := l.r.Check(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.What)
	}
	wantProblems := []string{
		"log chunk " + d.ID + " has no key record, or one that names other LSNs",
		"the commit of token m1 names 3 key records of its log chunks; there are 2",
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(wantProblems, "\n") {
		t.Errorf("fsck found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantProblems, "\n"))
	}
}

// fsck finds nothing wrong with a log whose chunks have key records, and
// names a record that lacks a key; a writer's own cleanup removes its
// records with its chunks.
func TestChunkKeyRecordsCheckAndCleanup(t *testing.T) {
	l, f := keyedLog(t, false)
	ctx := context.Background()
	if _, problems, err := l.r.Check(ctx, "p"); err != nil || len(problems) != 0 {
		t.Fatalf("fsck: %v %v", problems, err)
	}
	count := func(token string) int64 {
		n, err := l.r.DB.Collection(collChunkKeys).CountDocuments(ctx, bson.D{{Key: "tl", Value: f}, {Key: "token", Value: token}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count("lost") != 1 {
		t.Fatalf("the lost writer has %d key records, want 1", count("lost"))
	}
	if err := l.r.DeleteOwnEntries(ctx, f, "lost"); err != nil {
		t.Fatal(err)
	}
	if n := count("lost"); n != 0 {
		t.Errorf("after DeleteOwnEntries: %d key records", n)
	}
	if n := count("f1"); n != 1 {
		t.Errorf("f1's key records: %d, want 1", n)
	}
	// A record that lacks a key of its chunk: fsck names the first.
	var d chunkKeyDoc
	if err := l.r.DB.Collection(collChunkKeys).FindOne(ctx, bson.D{{Key: "tl", Value: f}, {Key: "token", Value: "f1"}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if _, err := l.r.DB.Collection(collChunkKeys).UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "kh", Value: bson.Binary{Data: d.KH[4:]}}}}}); err != nil {
		t.Fatal(err)
	}
	_, problems, err := l.r.Check(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if want := "the key record of log chunk " + d.ID + " lacks the key of LSN 1701"; len(problems) != 1 || problems[0].What != want {
		t.Errorf("fsck found %v, want %q", problems, want)
	}
}

// A key record keeps 32 bits of each key's hash: two keys may share them.
// Such a key costs a read of the other's chunk, never a wrong answer:
// entries are matched by their key bytes.
func TestKeyRecordsShortHashCollision(t *testing.T) {
	// Two string _ids whose hashes agree in their low 32 bits, found by
	// trying (about one pair in 2^32 pairs; 200,000 keys make about four).
	key := func(s string) []byte {
		id, _ := bson.Marshal(bson.D{{Key: "_id", Value: s}})
		return KeyOf(bson.Raw(id).Lookup("_id"))
	}
	seen := map[uint32]string{}
	var a, b string
	for i := 0; i < 400000 && a == ""; i++ {
		s := fmt.Sprintf("k%d", i)
		h := shortHash(keyHash(key(s)))
		if o, ok := seen[h]; ok && keyHash(key(o)) != keyHash(key(s)) {
			a, b = o, s
		}
		seen[h] = s
	}
	if a == "" {
		t.Fatal("no two keys of 400,000 share 32 bits of their hash")
	}
	l := newChainLog(t)
	put := func(tl string, lsn int64, token, id string) Entry {
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: lsn}})
		return Entry{TL: tl, LSN: lsn, Op: OpPut, Coll: "c", Token: token, KeyBytes: key(id), Doc: doc}
	}
	// a in one spilled commit, b in a later one: two chunks, each of
	// whose records holds the other's short hash.
	var es []Entry
	for i := 0; i < 70; i++ {
		es = append(es, put(l.main, int64(i+1), "t1", fmt.Sprintf("x%d", i)))
	}
	es[10] = put(l.main, 11, "t1", a)
	l.commit(l.main, "t1", es)
	es = nil
	for i := 0; i < 70; i++ {
		es = append(es, put(l.main, int64(71+i), "t2", fmt.Sprintf("y%d", i)))
	}
	es[20] = put(l.main, 91, "t2", b)
	l.commit(l.main, "t2", es)
	mr, finds := monitored(t, l)
	got, _, err := mr.LatestAtOrBelow(context.Background(), l.main, 140, "c", [][]byte{key(a)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if e := got[string(key(a))]; len(got) != 1 || e == nil || e.LSN != 11 {
		t.Errorf("lookup of %s: %v, want its entry at LSN 11 alone", a, got)
	}
	var byID int
	for _, q := range finds() {
		if strings.HasPrefix(q, collEntries+` {"_id": "`) {
			byID++
		} else if strings.HasPrefix(q, collEntries+" ") {
			t.Errorf("a query of the entries collection: %s", q)
		}
	}
	if byID != 2 {
		t.Errorf("read %d chunks by _id, want 2 (the key's, and the one whose record shares its short hash)", byID)
	}
}

// On an engine that scans, chunks are written without their key hashes
// (format 3): their key records select them. A log that mixes them with
// chunks of format 2 (kh, no key records: an older argon's) gives the
// same answers through the entries collection (the old commit has no key
// records, so the lookup cannot use them) on an engine that scans and on
// one that does not; the first spill raises a format-2 project to 3.
// (review37_format3_test.go compares every path with a fold.)
func TestChunksWithoutHashesBesideOlderChunks(t *testing.T) {
	l := newChainLog(t)
	ctx := context.Background()
	if _, err := l.r.DB.Collection(collProjects).UpdateOne(ctx, bson.D{{Key: "_id", Value: "p"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "format", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	// An older argon's commit: chunks with kh, no key records.
	var es []Entry
	for i := 0; i < 1500; i++ {
		es = append(es, l.entry(l.main, int64(i+1), "c", OpPut, "old", i))
	}
	old := &Slot{TL: l.main, N: 1, Kind: SlotCommit, Base: 0, LSN: 1500, Token: "old", Spilled: true, Stats: Stats(es)}
	for _, c := range chunkEntriesOf(es) {
		if _, err := l.r.DB.Collection(collEntries).InsertOne(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.r.InsertSlot(ctx, old); err != nil {
		t.Fatal(err)
	}
	l.heads[l.main] = &[2]int64{1, 1500}
	// This argon's, on an engine that scans.
	es = nil
	for i := 1000; i < 2200; i++ {
		es = append(es, l.entry(l.main, int64(1501+len(es)), "c", OpPut, "new", i))
	}
	l.commit(l.main, "new", es)
	var p Project
	if err := l.r.DB.Collection(collProjects).FindOne(ctx, bson.D{{Key: "_id", Value: "p"}}).Decode(&p); err != nil || p.Format != Format {
		t.Fatalf("after a spill the project is %+v (%v), want format %d", p, err, Format)
	}
	withKH, err := l.r.DB.Collection(collEntries).CountDocuments(ctx, bson.D{{Key: "kh", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	withoutKHN, err := l.r.DB.Collection(collEntries).CountDocuments(ctx, withoutKH)
	if err != nil {
		t.Fatal(err)
	}
	if withKH != 2 || withoutKHN != 2 {
		t.Fatalf("%d chunks with kh and %d without, want 2 and 2", withKH, withoutKHN)
	}
	keys := []int{5, 1200, 1499, 2100, 3000}
	l.r.Scans = false
	byServer := latestLines(t, l.r, l.main, 2700, keys)
	mr, _ := monitored(t, l)
	if got := latestLines(t, mr, l.main, 2700, keys); got != byServer {
		t.Errorf("through the entries collection (the old commit has no key records):\n%s\nwant\n%s", got, byServer)
	}
	if got := latestLines(t, mr, l.main, 2700, []int{1200, 2100}); got != latestLines(t, l.r, l.main, 2700, []int{1200, 2100}) {
		t.Errorf("keys of the new commit alone: %s", got)
	}
	// 5 is the old commit's alone; 1200 and 1499 both, the new one's
	// counts; 2100 the new one's alone; 3000 nobody's.
	var got []string
	for _, line := range strings.Split(byServer, "\n") {
		f := strings.Fields(line)
		got = append(got, f[1][strings.Index(f[1], "@"):]+" "+f[3])
	}
	sort.Strings(got)
	if g, w := strings.Join(got, " "), "@1701 new @2000 new @2601 new @6 old"; g != w {
		t.Errorf("found %s, want %s:\n%s", g, w, byServer)
	}
	if _, problems, err := l.r.Check(ctx, "p"); err != nil || len(problems) != 0 {
		t.Errorf("fsck: %v %v", problems, err)
	}
}
