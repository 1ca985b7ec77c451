package workdb_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// A fold reads the entries that large commits spilled with one query per
// timeline of the ancestry, whatever the number of commits (a query per
// commit scans the entries collection once per commit on the embedded
// engine), and returns exactly the state at the LSN, also at an LSN inside
// a commit and across a fork.
func TestFoldReadsSpilledEntriesOncePerTimeline(t *testing.T) {
	srv, r, main := waltest.Project(t)
	ctx := context.Background()
	insert := func(b *wal.Branch, prefix string, commits int) {
		w := commit.New().Open(r, b)
		w.ScanReads = srv.Embedded || srv.FerretDB
		for c := 0; c < commits; c++ {
			docs := make([]bson.Raw, 100) // over the inline limit: spilled
			for i := range docs {
				docs[i], _ = bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("%s%d-%02d", prefix, c, i)}})
			}
			if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "m"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	queries := 0
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "find" && e.Command.Lookup("find").StringValue() == "entries" {
			mu.Lock()
			queries++
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	counted := wal.Open(client, srv.DB)
	fold := func(tl string, lsn int64) (int, int) {
		mu.Lock()
		queries = 0
		mu.Unlock()
		st, err := counted.Fold(ctx, tl, lsn, "")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return len(st.Docs("c")), queries
	}

	insert(main, "a", 3)
	if n, q := fold(main.Timeline, 300); n != 300 || q != 1 {
		t.Errorf("fold of 3 commits: %d documents with %d queries of entries, want 300 with 1", n, q)
	}
	insert(main, "b", 12)
	if n, q := fold(main.Timeline, 1500); n != 1500 || q != 1 {
		t.Errorf("fold of 15 commits: %d documents with %d queries of entries, want 1500 with 1", n, q)
	}
	// Inside a commit: its first 50 entries only.
	if n, _ := fold(main.Timeline, 1250); n != 1250 {
		t.Errorf("fold at LSN 1250: %d documents, want 1250", n)
	}
	// The newest entry of many keys at an LSN is the same whether the
	// server is asked for the keys ($in) or the history is read once
	// (Scans, for more than 256 keys).
	var keys [][]byte
	for c := 0; c < 12; c++ {
		for i := 0; i < 30; i++ {
			id, _ := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("b%d-%02d", c, i)}})
			keys = append(keys, wal.KeyOf(bson.Raw(id).Lookup("_id")))
		}
	}
	byIn, _, err := r.LatestAtOrBelow(ctx, main.Timeline, 1250, "c", keys, false)
	if err != nil {
		t.Fatal(err)
	}
	scanning := *r
	scanning.Scans = true
	byScan, _, err := scanning.LatestAtOrBelow(ctx, main.Timeline, 1250, "c", keys, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(byIn) != 300 || len(byScan) != len(byIn) {
		t.Errorf("latest entries of %d keys at LSN 1250: %d by $in, %d by one read of the history; want 300 (commits b10 and b11 are above it)", len(keys), len(byIn), len(byScan))
	}
	for k, e := range byIn {
		if s := byScan[k]; s == nil || s.LSN != e.LSN || !bytes.Equal(s.Doc, e.Doc) {
			t.Errorf("key %x: by $in LSN %d, by one read %v", k, e.LSN, s)
		}
	}
	side, err := r.CreateBranch(ctx, "p", "side", main, 1000)
	if err != nil {
		t.Fatal(err)
	}
	insert(side, "s", 4)
	n, q := fold(side.Timeline, 1400)
	if n != 1400 || q != 2 {
		t.Errorf("fold of a fork: %d documents with %d queries of entries, want 1400 with 2 (one per timeline)", n, q)
	}
	// Listing entries newest first (log --entries) over many spilled
	// commits reads each timeline's spilled entries at most twice, and
	// lists exactly what the fold replays, in reverse.
	var forward []string
	if err := r.EachEntry(ctx, side.Timeline, 0, 1400, "", func(e *wal.Entry) error {
		forward = append(forward, fmt.Sprintf("%d %x", e.LSN, e.KeyBytes))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	queries = 0
	mu.Unlock()
	counted.Scans = true
	var back []string
	if err := counted.EntriesBack(ctx, side.Timeline, 1400, func(e *wal.Entry) bool {
		back = append(back, fmt.Sprintf("%d %x", e.LSN, e.KeyBytes))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(back)
	if len(back) != 1400 || !slices.Equal(back, forward) {
		t.Errorf("entries newest first: %d, not the %d of the fold in reverse", len(back), len(forward))
	}
	if q := queries; q != 4 {
		t.Errorf("entries newest first over 14 spilled commits on two timelines: %d queries of entries, want 4", q)
	}
	st, err := r.Fold(ctx, side.Timeline, 1400, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range st.Docs("c") {
		id := d.Lookup("_id").StringValue()
		var c, i int
		if _, err := fmt.Sscanf(id, "b%d-%d", &c, &i); err == nil && c >= 7 {
			// Commits b7 and later (LSN 1001 on) were made on main after
			// the fork.
			t.Errorf("the fork holds %s, committed on main after the fork", id)
		}
	}
}
