package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	commitpkg "github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Benchmarks compare argon with a native baseline measured in the same run
// on the same server: the plain driver doing the same thing on a plain
// collection holding the same documents. Each reports both costs and their
// ratio. Run: go test -run '^$' -bench . -benchtime 20x .

type benchEnv struct {
	srv   *enginetest.Server
	repo  *wal.Repo
	main  *wal.Branch
	plain string // database of the native baseline
	// scratch is the CLI's scratch engine on the embedded engine (nil on
	// a server).
	scratch *store.Scratch
}

func newBenchEnv(b *testing.B, docs int) *benchEnv {
	b.Helper()
	ctx := context.Background()
	srv := enginetest.Start(b)
	r := wal.Open(srv.Client, srv.DB)
	r.Scans = srv.Embedded || srv.FerretDB // as the CLI sets it
	r.FerretDB = srv.Embedded || srv.FerretDB
	r.Exclusive = srv.Embedded // the engine runs in this process only
	if err := r.EnsureSchema(ctx); err != nil {
		b.Fatal(err)
	}
	_, main, err := r.CreateProject(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{srv: srv, repo: r, main: main, plain: srv.DB + "_plain"}
	if srv.Embedded {
		e.scratch = &store.Scratch{}
		b.Cleanup(e.scratch.Close)
	}
	w := e.work(main)
	plain := srv.Client.Database(e.plain).Collection("users")
	const batch = 5000
	for start := 0; start < docs; start += batch {
		var raws []bson.Raw
		var anys []any
		for i := start; i < min(start+batch, docs); i++ {
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: fmt.Sprintf("user%d", i)}, {Key: "age", Value: int32(i % 90)}})
			raws = append(raws, raw)
			anys = append(anys, raw)
		}
		if _, err := w.Insert(ctx, "users", raws, wal.CommitInfo{Message: "load"}); err != nil {
			b.Fatal(err)
		}
		if _, err := plain.InsertMany(ctx, anys); err != nil {
			b.Fatal(err)
		}
	}
	// As argon's commands do on the embedded engine (store.IndexIDs),
	// the log, the working database and the baseline's collection get
	// the index the engine's lookups by _id use.
	if srv.DataDir != "" {
		for _, db := range []string{srv.DB, w.DB.Name(), e.plain} {
			if err := store.IndexIDsIn(srv.DataDir, db); err != nil {
				b.Fatal(err)
			}
		}
	}
	return e
}

func (e *benchEnv) work(br *wal.Branch) *workdb.Branch {
	w := commitpkg.New().Open(e.repo, br)
	w.ScanReads = e.srv.Embedded || e.srv.FerretDB // as the CLI sets it
	w.Scratch = e.scratch
	if e.srv.DataDir != "" {
		// As the CLI on the embedded engine, whose working database is
		// known clean while nothing but argon wrote to it (its files'
		// fingerprint; here nothing else writes): writes skip the check
		// that what they change is committed. On a server, as the CLI
		// there, they make it.
		w.Files = benchCleanFiles{}
	}
	return w
}

// benchCleanFiles reports every working database clean, as store.DBFiles
// does for the CLI on the embedded engine while only argon writes to it.
type benchCleanFiles struct{}

func (benchCleanFiles) Fingerprint(string) (string, error) { return "clean", nil }
func (benchCleanFiles) Clean(string) string                { return "clean" }
func (benchCleanFiles) SetClean(string, string) error      { return nil }
func (benchCleanFiles) KeepClean(string) error             { return nil }
func (benchCleanFiles) Building(string)                    {}
func (benchCleanFiles) Built(string) error                 { return nil }
func (benchCleanFiles) HoldWrites(context.Context, string, time.Duration) (func(), error) {
	return func() {}, nil
}

// pair times argon and the baseline alternately, b.N times each, and
// reports both and the ratio.
func pair(b *testing.B, argon, native func() error) {
	b.Helper()
	pairPrep(b, nil, argon, native)
}

// pairPrep is pair with prep (when not nil) run before each iteration,
// untimed.
func pairPrep(b *testing.B, prep func(), argon, native func() error) {
	b.Helper()
	var ta, tn time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if prep != nil {
			prep()
		}
		t0 := time.Now()
		if err := native(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := argon(); err != nil {
			b.Fatal(err)
		}
		ta += time.Since(t1)
		tn += t1.Sub(t0)
	}
	b.StopTimer()
	b.ReportMetric(float64(ta.Microseconds())/float64(b.N), "argon-µs/op")
	b.ReportMetric(float64(tn.Microseconds())/float64(b.N), "native-µs/op")
	b.ReportMetric(float64(ta)/float64(tn), "ratio")
}

// argon find at a branch head (head and marker checks, then the server's
// find on the working database) vs the driver's find on a plain collection.
func BenchmarkFind(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newBenchEnv(b, n)
			ctx := context.Background()
			w := e.work(e.main)
			filter, _ := bson.Marshal(bson.D{{Key: "age", Value: int32(42)}})
			plain := e.srv.Client.Database(e.plain).Collection("users")
			want := 0
			pair(b, func() error {
				docs, err := w.Find(ctx, "users", workdb.Query{Filter: filter})
				if err == nil && want != 0 && len(docs) != want {
					err = fmt.Errorf("argon found %d, driver %d", len(docs), want)
				}
				return err
			}, func() (err error) {
				want, err = nativeFind(ctx, plain, filter)
				return err
			})
		})
	}
}

// argon status when it must read the working database (no clean record:
// an application wrote, or nothing recorded it yet) against one native
// scan of the same documents (issue 10: at most 1.2x). The branch is
// clean, so status reads every document once and folds nothing.
func BenchmarkStatusScan(b *testing.B) {
	n := 20000
	if testing.Short() {
		n = 1000
	}
	e := newBenchEnv(b, n)
	ctx := context.Background()
	w := e.work(e.main)
	w.Files = nil // no clean record: status reads every document
	plain := e.srv.Client.Database(e.plain).Collection("users")
	pair(b, func() error {
		changes, _, err := w.Changes(ctx)
		if err == nil && len(changes) != 0 {
			err = fmt.Errorf("status of a clean branch found %d changes", len(changes))
		}
		return err
	}, func() error {
		got, err := nativeFind(ctx, plain, emptyFilter)
		if err == nil && got != n {
			err = fmt.Errorf("the native scan read %d documents, want %d", got, n)
		}
		return err
	})
}

// nativeFind is the baseline of a find: the driver's find of filter on
// coll, all documents read; it returns how many.
func nativeFind(ctx context.Context, coll *mongo.Collection, filter bson.Raw) (int, error) {
	cur, err := coll.Find(ctx, filter)
	if err != nil {
		return 0, err
	}
	var out []bson.Raw
	err = cur.All(ctx, &out)
	return len(out), err
}

// argon insert of one document (claim, working database, read-back, log
// entry, commit) vs the driver's insertOne.
func BenchmarkInsertOne(b *testing.B) {
	e := newBenchEnv(b, 1000)
	ctx := context.Background()
	w := e.work(e.main)
	plain := e.srv.Client.Database(e.plain).Collection("users")
	i := 1_000_000
	pair(b, func() error {
		i++
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: "x"}})
		_, err := w.Insert(ctx, "users", []bson.Raw{raw}, wal.CommitInfo{Message: "bench"})
		return err
	}, func() error {
		_, err := plain.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(i + 1)}, {Key: "name", Value: "x"}})
		return err
	})
}

// Branch creation costs the same whatever the data size: compare it at
// 1,000 and 100,000 documents. The baseline is the driver's insertOne of
// one small document into a metadata-sized collection.
func BenchmarkBranchCreate(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("loads 100,000 documents")
			}
			e := newBenchEnv(b, n)
			ctx := context.Background()
			meta := e.srv.Client.Database(e.plain).Collection("meta")
			// The baseline's collection exists before the timing, as the
			// log's collections do: the first insert into a new
			// collection creates it, which cost the engine about 2 ms and
			// made a run of 3 iterations read 3.5x where 30 read 7x.
			if _, err := meta.InsertOne(ctx, bson.D{{Key: "_id", Value: "warm"}}); err != nil {
				b.Fatal(err)
			}
			i := 0
			pair(b, func() error {
				i++
				_, err := e.repo.CreateBranch(ctx, "bench", fmt.Sprintf("b%d", i), e.main, -1)
				return err
			}, func() error {
				_, err := meta.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("m%d", i)}})
				return err
			})
		})
	}
}

// The cost of a whole argon process for a metadata command, against the
// same binary printing its version (process start, no engine, no I/O).
func BenchmarkCLIStatus(b *testing.B) {
	run := cli(b.TempDir())
	if err := run("init", "bench"); err != nil {
		b.Fatal(err)
	}
	pair(b, func() error { return run("status") }, func() error { return run("version") })
}

// cli returns a runner of whole argon processes in workspace dir, with
// the variables of env added to the environment.
func cli(dir string, env ...string) func(args ...string) error {
	env = append(append(os.Environ(), "ARGON_AUTHOR=bench"), env...)
	return func(args ...string) error {
		c := exec.Command("argon", args...)
		c.Dir, c.Env = dir, env
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("argon %v: %v: %s", args, err, out)
		}
		return nil
	}
}

// Commands that must not grow with the number of branches: a whole
// argon process (branch list, status, log -n 20) in a workspace with 100
// branches vs the same in one with a single branch, on the same machine
// in the same run. The ratio is the growth (issue 10: list <= 2, status
// and log <= 1.5).
func BenchmarkBranches(b *testing.B) {
	many := 100
	if testing.Short() {
		many = 10
	}
	workspace := func(branches int) func(args ...string) error {
		run := cli(b.TempDir())
		if err := run("init", "bench"); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if err := run("insert", "c", fmt.Sprintf(`{"_id": %d}`, i)); err != nil {
				b.Fatal(err)
			}
		}
		for i := 1; i < branches; i++ {
			if err := run("branch", "create", fmt.Sprintf("b%03d", i)); err != nil {
				b.Fatal(err)
			}
		}
		return run
	}
	one, lots := workspace(1), workspace(many)
	for _, cmd := range [][]string{{"branch"}, {"status"}, {"log", "-n", "20"}} {
		b.Run(strings.Join(cmd, "-"), func(b *testing.B) {
			pair(b, func() error { return lots(cmd...) }, func() error { return one(cmd...) })
			b.ReportMetric(float64(many), "branches")
		})
	}
}

// Metadata commands on a warm shared workspace engine (ARGON_ENGINE=shared,
// started by the first command and kept for the run), each a whole argon
// process, vs a native process that connects to the same engine and pings
// it (internal/tools/mongoping). Issue 10: within 2x.
func BenchmarkSharedEngine(b *testing.B) {
	dir := b.TempDir()
	run := cli(dir, "ARGON_ENGINE=shared", "ARGON_ENGINE_IDLE=10m")
	if err := run("init", "bench"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if si := store.ReadServeInfo(filepath.Join(dir, ".argon")); si != nil {
			if p, err := os.FindProcess(si.PID); err == nil {
				_ = p.Signal(os.Interrupt)
			}
		}
	})
	for i := 0; i < 20; i++ {
		if err := run("insert", "c", fmt.Sprintf(`{"_id": %d}`, i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := 1; i < 10; i++ {
		if err := run("branch", "create", fmt.Sprintf("b%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	si := store.ReadServeInfo(filepath.Join(dir, ".argon"))
	if si == nil {
		b.Fatal("no workspace engine")
	}
	ping := filepath.Join(b.TempDir(), "mongoping")
	if out, err := exec.Command("go", "build", "-o", ping, "./internal/tools/mongoping").CombinedOutput(); err != nil {
		b.Fatalf("build mongoping: %v: %s", err, out)
	}
	native := func() error {
		if out, err := exec.Command(ping, si.URI).CombinedOutput(); err != nil {
			return fmt.Errorf("mongoping: %v: %s", err, out)
		}
		return nil
	}
	for _, cmd := range [][]string{{"status"}, {"branch"}, {"log", "-n", "20"}} {
		b.Run(strings.Join(cmd, "-"), func(b *testing.B) {
			pair(b, func() error { return run(cmd...) }, native)
		})
	}
}

// argon import (one commit through the protocol) of N new documents into a
// new collection vs the driver's insertMany of the same documents into a
// new collection, which is what mongoimport does.
func BenchmarkImport(b *testing.B) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	e := newBenchEnv(b, 0)
	ctx := context.Background()
	w := e.work(e.main)
	docs := make([]bson.Raw, n)
	for i := range docs {
		docs[i], _ = bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: fmt.Sprintf("user%d", i)}, {Key: "age", Value: int32(i % 90)}})
	}
	round := 0
	pair(b, func() error {
		coll := fmt.Sprintf("imp%d", round)
		sent := false
		_, err := w.Import(ctx, func() (*workdb.ImportBatch, error) {
			if sent {
				return nil, nil
			}
			sent = true
			return &workdb.ImportBatch{Coll: coll, Docs: docs}, nil
		}, workdb.ImportInsert, wal.CommitInfo{Message: "bench"}, nil)
		round++
		return err
	}, func() error {
		anys := make([]any, len(docs))
		for i := range docs {
			anys[i] = docs[i]
		}
		c := e.srv.Client.Database(e.plain).Collection(fmt.Sprintf("imp%d", round))
		for start := 0; start < len(anys); start += 1000 {
			if _, err := c.InsertMany(ctx, anys[start:min(start+1000, len(anys))]); err != nil {
				return err
			}
		}
		return nil
	})
	b.ReportMetric(float64(n), "docs")
}

// argon update --many of every document of a collection (one commit) vs
// the driver's updateMany of the same documents on a plain collection.
// On FerretDB the engine's own updateMany rewrites each document with a
// scan of the collection; argon evaluates the update in a scratch
// database a batch at a time and writes back by batch (internal/workdb
// bulk.go), so its cost grows linearly where the baseline's grows with
// the square.
func BenchmarkUpdateMany(b *testing.B) {
	sizes := []int{500, 2000}
	if testing.Short() {
		sizes = []int{200}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newBenchEnv(b, n)
			ctx := context.Background()
			w := e.work(e.main)
			update, _ := bson.Marshal(bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: int32(1)}}}})
			plain := e.srv.Client.Database(e.plain).Collection("users")
			pair(b, func() error {
				res, err := w.Modify(ctx, "users", workdb.Modification{Filter: emptyFilter, Update: update, Many: true}, workdb.Limits{}, wal.CommitInfo{Message: "bench"})
				if err == nil && res.Modified != n {
					err = fmt.Errorf("argon modified %d documents, want %d", res.Modified, n)
				}
				return err
			}, func() error {
				res, err := plain.UpdateMany(ctx, emptyFilter, update)
				if err == nil && res.ModifiedCount != int64(n) {
					err = fmt.Errorf("the driver modified %d documents, want %d", res.ModifiedCount, n)
				}
				return err
			})
		})
	}
}

var emptyFilter, _ = bson.Marshal(bson.D{})

// The log's cost in bytes: BSON bytes argon's metadata database gains per
// logged document (the commit slot, and the spilled entries of a large
// commit) against the BSON bytes of the post-images themselves, for a
// one-document update (its entry inline in the slot) and for updates of
// 100 and 1,000 documents (entries spilled in chunks). Bytes are the BSON
// of the stored documents as the driver reads them back, not the engine's
// files. Also timed against the driver's update.
func BenchmarkWALBytes(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newBenchEnv(b, 1000)
			ctx := context.Background()
			w := e.work(e.main)
			plain := e.srv.Client.Database(e.plain).Collection("users")
			filter, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: int32(n)}}}})
			var walBytes, docBytes int
			i := 0
			pair(b, func() error {
				i++
				update, _ := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: fmt.Sprintf("renamed %d", i)}}}})
				res, err := w.Modify(ctx, "users", workdb.Modification{Filter: filter, Update: update, Many: true}, workdb.Limits{}, wal.CommitInfo{Message: "bench"})
				if err != nil {
					return err
				}
				if res.Modified != n {
					return fmt.Errorf("argon modified %d documents, want %d", res.Modified, n)
				}
				return nil
			}, func() error {
				update, _ := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: fmt.Sprintf("renamed %d", i)}}}})
				_, err := plain.UpdateMany(ctx, filter, update)
				return err
			})
			// The bytes of the b.N commits just made, read after the timing.
			h, err := e.repo.Head(ctx, w.TL)
			if err != nil {
				b.Fatal(err)
			}
			leaseBytes := 0
			leases := e.srv.Client.Database(e.srv.DB).Collection("leases")
			for k := int64(0); k < int64(b.N); k++ {
				wb, db, err := commitBytes(ctx, e, w.TL, h.Slot.N-k)
				if err != nil {
					b.Fatal(err)
				}
				walBytes, docBytes = walBytes+wb, docBytes+db
				// The writer's lease record, which stays (ARCHITECTURE,
				// "Liveness, not safety"): not part of the log, but
				// bytes every write leaves in the metadata database.
				l, err := leases.FindOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%s:%012d", w.TL, h.Slot.N-k)}}).Raw()
				if err != nil {
					b.Fatal(err)
				}
				leaseBytes += len(l)
			}
			b.ReportMetric(float64(walBytes)/float64(b.N*n), "wal-B/doc")
			b.ReportMetric(float64(docBytes)/float64(b.N*n), "doc-B/doc")
			b.ReportMetric(float64(walBytes)/float64(docBytes), "wal-ratio")
			b.ReportMetric(float64(leaseBytes)/float64(b.N*n), "lease-B/doc")
			b.ReportMetric(float64(walBytes+leaseBytes)/float64(docBytes), "with-lease-ratio")
		})
	}
}

// commitBytes returns the BSON bytes of commit slot n of timeline tl in
// the log (the slot, its spilled entries and their key records) and of
// the post-images it logged.
func commitBytes(ctx context.Context, e *benchEnv, tl string, n int64) (walB, docB int, err error) {
	s, err := e.repo.ReadSlotEntries(ctx, tl, n)
	if err != nil {
		return 0, 0, err
	}
	meta := e.srv.Client.Database(e.srv.DB)
	slot, err := meta.Collection("slots").FindOne(ctx, bson.D{{Key: "_id", Value: s.ID}}).Raw()
	if err != nil {
		return 0, 0, err
	}
	walB = len(slot)
	for _, se := range s.Entries {
		docB += len(se.Doc)
	}
	if s.Spilled {
		// The chunks, and on an engine that scans their key records.
		for _, coll := range []string{"entries", "chunk_keys"} {
			cur, err := meta.Collection(coll).Find(ctx, bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: s.Token}})
			if err != nil {
				return 0, 0, err
			}
			for cur.Next(ctx) {
				walB += len(cur.Current)
			}
			if err := cur.Err(); err != nil {
				return 0, 0, err
			}
		}
		if err := e.repo.EachEntry(ctx, tl, s.Base, s.LSN, "", func(en *wal.Entry) error {
			docB += len(en.Doc)
			return nil
		}); err != nil {
			return 0, 0, err
		}
	}
	return walB, docB, nil
}

// A write costs the same however many writes came before it: an update
// by a filter other than _id (it announces its key in its lease) on a
// project with 10 or 500 earlier one-document commits, against the
// driver's updateOne of the same filter on a plain collection of the same
// documents (the last ones: the driver's updateOne stops at the first
// match). Every write leaves a lease record; updates of the lease that
// read them all made the later writes slower (BENCHMARKS, "Lease
// updates").
func BenchmarkWriteAfterHistory(b *testing.B) {
	for _, hist := range []int{10, 500} {
		b.Run(fmt.Sprintf("history=%d", hist), func(b *testing.B) {
			if testing.Short() {
				hist /= 10
			}
			e := newBenchEnv(b, 1000)
			ctx := context.Background()
			w := e.work(e.main)
			for i := 0; i < hist; i++ {
				raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
				if _, err := w.Insert(ctx, "other", []bson.Raw{raw}, wal.CommitInfo{Message: "history"}); err != nil {
					b.Fatal(err)
				}
			}
			plain := e.srv.Client.Database(e.plain).Collection("users")
			i := 0
			pair(b, func() error {
				filter, _ := bson.Marshal(bson.D{{Key: "name", Value: fmt.Sprintf("user%d", 999-i)}})
				update, _ := bson.Marshal(bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				res, err := w.Modify(ctx, "users", workdb.Modification{Filter: filter, Update: update}, workdb.Limits{}, wal.CommitInfo{Message: "bench"})
				if err == nil && res.Modified != 1 {
					err = fmt.Errorf("argon modified %d documents, want 1", res.Modified)
				}
				return err
			}, func() error {
				i++
				_, err := plain.UpdateOne(ctx, bson.D{{Key: "name", Value: fmt.Sprintf("user%d", 999-i)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				return err
			})
			b.ReportMetric(float64(hist), "history")
		})
	}
}

// The first read of a collection at a past state never read before: 20,000
// documents of users among a history of 20,000 or 200,000 entries (the
// rest in another collection), against the driver's find of the same
// filter on a plain collection of the same documents.
//
//   - first-read: nothing is materialised yet (every cached view is dropped
//     before each read, untimed): the read folds the collection from the
//     nearest image and materialises it.
//   - near-image: an image was taken at the head (argon snapshot) and a
//     read near it has materialised the image's view; each read is at an
//     LSN one commit further, each commit adding one document to users, so
//     the read lays the changed documents over the image's view
//     (workdb/overlay.go).
func BenchmarkTimeTravel(b *testing.B) {
	for _, hist := range []int{20000, 200000} {
		b.Run(fmt.Sprintf("history=%d", hist), func(b *testing.B) {
			state := 20000
			if testing.Short() {
				state, hist = 500, hist/40
			}
			e := newBenchEnv(b, 0)
			ctx := context.Background()
			w := e.work(e.main)
			plain := e.srv.Client.Database(e.plain).Collection("users")
			load := func(coll string, first, n int, native bool, age int32) {
				for start := first; start < first+n; start += 5000 {
					var raws []bson.Raw
					var anys []any
					for i := start; i < min(start+5000, first+n); i++ {
						a := int32(i % 90)
						if age >= 0 {
							a = age
						}
						raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: fmt.Sprintf("user%d", i)}, {Key: "age", Value: a}})
						raws = append(raws, raw)
						anys = append(anys, raw)
					}
					if _, err := w.Insert(ctx, coll, raws, wal.CommitInfo{Message: "load"}); err != nil {
						b.Fatal(err)
					}
					if native {
						if _, err := plain.InsertMany(ctx, anys); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			load("other", 0, hist-state, false, -1)
			load("users", 0, state, true, -1)
			filter, _ := bson.Marshal(bson.D{{Key: "age", Value: int32(0)}})
			// reads times b.N reads of users at the b.N LSNs that commit
			// (a commit of one document each) makes, from the first,
			// each after prep (untimed).
			reads := func(b *testing.B, commit func(i int), prep func(), overHead bool) {
				h, err := e.repo.Head(ctx, w.TL)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < b.N; i++ {
					commit(i)
				}
				at := h.LSN
				want := 0
				pairPrep(b, prep, func() error {
					at++
					v := workdb.OpenCollViews(e.repo, w.TL, at)
					if overHead {
						v.OverHead(w)
					}
					docs, err := v.Find(ctx, "users", workdb.Query{Filter: filter})
					if err == nil && len(docs) != want {
						err = fmt.Errorf("argon found %d at LSN %d, driver %d", len(docs), at, want)
					}
					return err
				}, func() (err error) {
					want, err = nativeFind(ctx, plain, filter)
					return err
				})
			}
			next := hist
			firstReads := func(b *testing.B, overHead bool) {
				reads(b, func(int) {
					load("other", next, 1, false, -1)
					next++
				}, func() {
					if _, err := workdb.DropViews(ctx, e.repo); err != nil {
						b.Fatal(err)
					}
				}, overHead)
			}
			// A first read that materialises the state (no view or image
			// near it, or a working database not known clean).
			b.Run("first-read", func(b *testing.B) { firstReads(b, false) })
			// The same read as the CLI makes it on the embedded engine,
			// laid over the branch's working database (known clean: only
			// argon wrote there), a few commits below its head.
			b.Run("first-read-over-head", func(b *testing.B) { firstReads(b, true) })
			b.Run("near-image", func(b *testing.B) {
				h, err := e.repo.Head(ctx, w.TL)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.repo.TakeImage(ctx, "bench", w.TL, h.LSN); err != nil {
					b.Fatal(err)
				}
				if _, err := workdb.OpenCollViews(e.repo, w.TL, h.LSN).Find(ctx, "users", workdb.Query{Filter: filter}); err != nil {
					b.Fatal(err)
				}
				// Documents the filter does not match, in both.
				reads(b, func(int) {
					load("users", next, 1, true, 1)
					next++
				}, nil, false)
			})
		})
	}
}
