package commit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// putsOf are the puts that bring a branch holding nothing of ids to
// holding them (documents {_id: id} of c).
func putsOf(ids ...string) []workdb.Put {
	var out []workdb.Put
	for _, id := range ids {
		d := d1(id)
		out = append(out, workdb.Put{Coll: "c", ID: d.Lookup("_id"), Doc: d})
	}
	return out
}

// moveSetup makes main with a1 and feat forked from it with f1 and f2, and
// returns feat and main's head LSN.
func moveSetup(t *testing.T, r *wal.Repo, main *wal.Branch) (*wal.Branch, int64) {
	t.Helper()
	ctx := context.Background()
	p := New()
	if _, err := p.Open(r, main).Insert(ctx, "c", []bson.Raw{d1("a1")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	feat, err := r.CreateBranch(ctx, "p", "feat", main, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(r, feat).Insert(ctx, "c", []bson.Raw{d1("f1"), d1("f2")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	head, err := r.Head(ctx, main.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	return feat, head.LSN
}

func fsckProblems(t *testing.T, r *wal.Repo, repair bool) []string {
	t.Helper()
	out, _ := fsckReport(t, r, repair)
	return out
}

// fsckReport runs fsck and returns its problems and notes.
func fsckReport(t *testing.T, r *wal.Repo, repair bool) (problems, notes []string) {
	t.Helper()
	p := New()
	rep, err := p.Fsck(context.Background(), r, "p", func(b *wal.Branch) *workdb.Branch { return p.Open(r, b) }, repair)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range rep.Problems {
		problems = append(problems, pr.What)
	}
	return problems, rep.Notes
}

// A fast-forward moves the branch onto a fork of the source's state and
// closes its old timeline with a moved slot: the branch holds the
// source's documents without a commit of its own, the source is
// untouched, and a writer that opened the branch before the move and
// writes after it follows the move, so its acknowledged write is on the
// branch and never on the closed timeline. A move that stopped before
// repointing the branch is finished by the next command on it, and fsck
// reports and repairs it.
func TestFastForwardMovesTheBranch(t *testing.T) {
	_, r, main := waltest.Project(t)
	ctx := context.Background()
	p := New()
	feat, base := moveSetup(t, r, main)
	old := main.Timeline
	stale := p.Open(r, main) // opened before the move
	root, err := r.ForkTimeline(ctx, "p", feat, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(r, main).MovePuts(ctx, putsOf("f1", "f2"), root, base, "fast-forward to feat", wal.CommitInfo{Message: "ff"}); err != nil {
		t.Fatal(err)
	}
	nb, err := r.Branch(ctx, "p", "main")
	if err != nil || nb.Timeline != root.TL {
		t.Fatalf("main names %v (%v), want the new timeline %s", nb, err, root.TL)
	}
	moved, err := r.HeadSlot(ctx, old, nil)
	if err != nil || moved.Kind != wal.SlotMoved || moved.To != root.TL || moved.LSN != base {
		t.Fatalf("old timeline's head: %+v, %v; want a moved slot to %s at LSN %d", moved, err, root.TL, base)
	}
	if got := ids(t, p.Open(r, nb)); strings.Join(got, ",") != "a1,f1,f2" {
		t.Fatalf("main holds %v after the fast-forward", got)
	}
	// No commit of its own: main's history is feat's.
	log, err := r.Log(ctx, nb.Timeline, root.LSN, 0)
	if err != nil || len(log) != 2 || log[0].TL != feat.Timeline || log[1].TL != old {
		t.Fatalf("main's log after the move: %+v, %v", log, err)
	}

	// The stale writer follows the move.
	if _, err := stale.Insert(ctx, "c", []bson.Raw{d1("x")}, wal.CommitInfo{}); err != nil {
		t.Fatalf("write through a handle opened before the move: %v", err)
	}
	if after, err := r.ReadSlot(ctx, old, moved.N+1); err != nil || after != nil {
		t.Fatalf("slot after the moved slot: %+v, %v", after, err)
	}
	if got := ids(t, p.Open(r, nb)); strings.Join(got, ",") != "a1,f1,f2,x" {
		t.Fatalf("main holds %v, want the stale writer's x too", got)
	}
	if got := ids(t, p.Open(r, feat)); strings.Join(got, ",") != "a1,f1,f2" {
		t.Fatalf("feat holds %v, want it untouched", got)
	}
	if pr := fsckProblems(t, r, false); len(pr) != 0 {
		t.Fatalf("fsck after the move: %v", pr)
	}

	// The process stopped between the moved slot and repointing: the
	// binding still names the old timeline (and its fork point).
	ot, err := r.Timeline(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.DB.Collection("branches").UpdateOne(ctx, bson.D{{Key: "_id", Value: nb.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "timeline", Value: old},
			{Key: "fork", Value: wal.Fork{Parent: ot.Parent, Base: ot.Base, ParentSlot: ot.ParentSlot}}}}}); err != nil {
		t.Fatal(err)
	}
	pr, notes := fsckReport(t, r, false)
	if len(pr) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "which a fast-forward closed and moved to "+root.TL) {
		t.Fatalf("fsck of a binding left on the closed timeline: problems %v, notes %v", pr, notes)
	}
	back, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, p.Open(r, back)); strings.Join(got, ",") != "a1,f1,f2,x" {
		t.Fatalf("a read through the old binding: %v", got)
	}
	if nb, _ := r.Branch(ctx, "p", "main"); nb.Timeline != root.TL {
		t.Fatalf("the read did not repoint main: it names %s", nb.Timeline)
	}
	if _, err := r.DB.Collection("branches").UpdateOne(ctx, bson.D{{Key: "_id", Value: nb.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "timeline", Value: old},
			{Key: "fork", Value: wal.Fork{Parent: ot.Parent, Base: ot.Base, ParentSlot: ot.ParentSlot}}}}}); err != nil {
		t.Fatal(err)
	}
	if pr := fsckProblems(t, r, true); len(pr) != 0 {
		t.Fatalf("fsck --repair found %v", pr)
	}
	if pr, notes := fsckReport(t, r, false); len(pr) != 0 || len(notes) != 0 {
		t.Fatalf("fsck after --repair: problems %v, notes %v", pr, notes)
	}
	if nb, _ := r.Branch(ctx, "p", "main"); nb.Timeline != root.TL {
		t.Fatalf("fsck --repair did not repoint main: it names %s", nb.Timeline)
	}
	// Each repoint was recorded.
	recs, err := r.Reflog(ctx, "p", "main")
	if err != nil || len(recs) < 3 || recs[0].Action != "fast-forward (completed by fsck --repair)" ||
		recs[1].Action != "fast-forward (completed by a later command)" || recs[2].Action != "fast-forward to feat" {
		t.Fatalf("reflog of main: %+v, %v", recs, err)
	}
}

// A branch whose head moved after the fast-forward was planned is not
// moved: MovedOnError, nothing written, the old timeline still open.
func TestFastForwardRefusesAMovedHead(t *testing.T) {
	_, r, main := waltest.Project(t)
	ctx := context.Background()
	p := New()
	feat, base := moveSetup(t, r, main)
	if _, err := p.Open(r, main).Insert(ctx, "c", []bson.Raw{d1("late")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	root, err := r.ForkTimeline(ctx, "p", feat, -1)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Open(r, main).MovePuts(ctx, putsOf("f1", "f2"), root, base, "fast-forward to feat", wal.CommitInfo{})
	var mo *wal.MovedOnError
	if !errors.As(err, &mo) {
		t.Fatalf("move of a branch that moved on: %v", err)
	}
	if got := ids(t, p.Open(r, main)); strings.Join(got, ",") != "a1,late" {
		t.Fatalf("main holds %v", got)
	}
	if nb, _ := r.Branch(ctx, "p", "main"); nb.Timeline != main.Timeline {
		t.Fatal("main was repointed")
	}
	if _, err := p.Open(r, main).Insert(ctx, "c", []bson.Raw{d1("after")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if pr := fsckProblems(t, r, false); len(pr) != 0 {
		t.Fatalf("fsck: %v", pr)
	}
}

// Writers racing a fast-forward, started while it holds the branch: they
// wait for it, find the old timeline closed and follow the move, and every
// write that was acknowledged is on the branch afterwards, with the
// source's documents.
func TestFastForwardRacingWriters(t *testing.T) {
	_, r, main := waltest.Project(t)
	ctx := context.Background()
	p := New()
	feat, base := moveSetup(t, r, main)
	root, err := r.ForkTimeline(ctx, "p", feat, -1)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 5
	var wg sync.WaitGroup
	acked := make(chan string, writers*each)
	start := make(chan struct{})
	for i := 0; i < writers; i++ {
		w := p.Open(r, main) // bound to the old timeline
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			for j := 0; j < each; j++ {
				id := fmt.Sprintf("w%d-%d", i, j)
				if _, err := w.Insert(ctx, "c", []bson.Raw{d1(id)}, wal.CommitInfo{}); err == nil {
					acked <- id
				} else {
					t.Logf("%s: %v", id, err)
				}
			}
		}(i)
	}
	// The writers start once the move holds the branch: they wait for it,
	// find the moved slot, and follow.
	var once sync.Once
	Hook = func(pt string) {
		if pt == "applied" {
			once.Do(func() { close(start) })
		}
	}
	defer func() { Hook = nil }()
	moveErr := p.Open(r, main).MovePuts(ctx, putsOf("f1", "f2"), root, base, "fast-forward to feat", wal.CommitInfo{})
	wg.Wait()
	close(acked)
	t.Logf("move: %v", moveErr)
	nb, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, id := range ids(t, p.Open(r, nb)) {
		have[id] = true
	}
	n := 0
	for id := range acked {
		n++
		if !have[id] {
			t.Errorf("acknowledged write %s is not on main", id)
		}
	}
	if moveErr == nil && (!have["f1"] || nb.Timeline != root.TL) {
		t.Errorf("the move succeeded but main (timeline %s) lacks feat's documents: %v", nb.Timeline, have)
	}
	if moveErr != nil {
		t.Errorf("move failed with %v", moveErr)
	}
	if len(have) != n+1+2*btoi(moveErr == nil) {
		t.Errorf("main holds %d documents for %d acknowledged writes (move: %v)", len(have), n, moveErr)
	}
	if pr := fsckProblems(t, r, false); len(pr) != 0 {
		t.Fatalf("fsck: %v", pr)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
