package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/ui"
)

// DEFECT. `argon branch delete` does not close the timeline a fast-forward
// moved the branch to. A fast-forward (`argon merge main --into g`) commits
// by inserting a moved slot on g's old timeline (commit.Protocol.Move: "that
// unique insert is the move"), then repoints g's record to the new
// timeline. A delete that runs in between (here: the merge stopped at
// commit.Hook "after-commit", which Move fires right after the moved slot)
// reads g on its old timeline; wal.closeTimeline finds the moved slot at
// the head and returns it without closing anything (`h.Kind == SlotMoved`),
// never following the slot's To; the record is deleted and the reflog
// records the OLD timeline at the pre-merge head. The merge then goes on
// and is acknowledged, exit 0, "Fast-forward: moved g to main: LSN 2..2,
// head 2"; the delete printed "Deleted branch g (was at LSN 1)", and
// `g@{0}` (the documented way back to a deleted branch) is the state
// without the acknowledged merge: `count c --at g@{0}` is 1, not 2. The new
// timeline is left open, unnamed and unclosed, so a writer following the
// moved slot still commits on it after the delete. Same class as
// review15_deleterace_test.go, by the fast-forward path the fix did not
// cover. Deterministic: the delete runs while the merge waits in the hook,
// and the merge goes on once the delete has recorded its reflog (its
// dropDatabase, sent last, waits for the merge's hold at argon serve).
func TestReview16DeleteDuringFastForwardRecordsTheOldState(t *testing.T) {
	dir, run := r15Workspace(t, "r16f")
	must := mustRun(t, run)
	must("init", "r16f")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`)
	serveWorkspace(t, dir)

	var del *background
	commit.Hook = func(point string) {
		if point != "after-commit" || del != nil {
			return
		}
		del = startUntil(dir, "dropDatabase", "branch", "delete", "g", "--yes", "--force")
	}
	defer func() { commit.Hook = nil }()
	io, _, out, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"merge", "main", "--into", "g"})
	commit.Hook = nil
	if del == nil {
		t.Fatal("the merge never reached after-commit")
	}
	delCode, delOut, delErr := del.wait()
	if delCode != 0 {
		t.Fatalf("branch delete g: exit %d, %q, %q", delCode, delOut, delErr)
	}
	if code != 0 {
		// Refusing the fast-forward of a branch deleted under it is a
		// right answer; then the delete's position is the old one.
		if delOut != "Deleted branch g (was at LSN 1)\n" {
			t.Errorf("merge refused (exit %d, %q); branch delete g printed %q", code, errOut.String(), delOut)
		}
		return
	}
	t.Logf("merge: stdout %q, stderr %q; delete: %q, %q", out.String(), errOut.String(), delOut, delErr)
	if !strings.Contains(out.String()+errOut.String(), "Fast-forward: moved g to main: LSN 2..2, head 2") {
		t.Fatalf("merge: exit 0, stdout %q, stderr %q", out.String(), errOut.String())
	}
	// The fast-forward was acknowledged: the deleted branch's recorded
	// position must hold it.
	if delOut != "Deleted branch g (was at LSN 2)\n" {
		t.Errorf("branch delete g printed %q; want \"Deleted branch g (was at LSN 2)\\n\": the merge acknowledged g at main's LSN 2", delOut)
	}
	if code, out, errOut := run("count", "c", "--at", "g@{0}"); code != 0 || out != "2\n" {
		t.Errorf("count c --at 'g@{0}': exit %d, %q, %q; want 2 (documents 1 and 2, which the acknowledged fast-forward gave g)", code, out, errOut)
	}
}

// DEFECT. A rename that loses a race with `argon branch delete` keeps the
// delete from closing the timeline, so a write acknowledged after the
// delete still commits on it. wal.RenameBranch inserts the new name's
// record first, then consumes the old binding; wal.closeTimeline leaves a
// timeline open when another branch record names it ("a rename a crash
// cut short"). When the delete runs between the rename's two steps, it
// wins the binding, counts the rename's new record, and leaves the
// timeline open; the rename then loses and removes its record. No name is
// left on the timeline and it is not closed: an insert that held g's
// lease before the delete (stopped at commit.Hook "before-commit") then
// commits and is acknowledged, exit 0, "inserted 1 into c on g: LSN 3..3,
// head 3", while the delete printed "Deleted branch g (was at LSN 2)" and
// `g@{0}` lacks the acknowledged document: the defect of
// review15_deleterace_test.go, back through the rename path.
// Deterministic: the rename is held in its consume (its insert into
// branchmoves, by a command monitor) while the delete runs to its
// dropDatabase (which waits for the writer's hold at argon serve).
func TestReview16RenameLosingToDeleteLeavesTheTimelineOpen(t *testing.T) {
	dir, run := r15Workspace(t, "r16r")
	must := mustRun(t, run)
	must("init", "r16r")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	serveWorkspace(t, dir)

	fired := false
	var del *background
	var renCode int
	var renOut, renErr string
	commit.Hook = func(point string) {
		if point != "before-commit" || fired {
			return
		}
		fired = true
		// The rename, held just before it consumes g's binding (its new
		// name h already inserted).
		consuming, release, renamed := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var once sync.Once
		go func() {
			defer close(renamed)
			mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
				if c, _ := e.Command.Lookup("insert").StringValueOK(); e.CommandName == "insert" && c == "branchmoves" {
					once.Do(func() { close(consuming) })
					<-release
				}
			}}
			io, _, o, eo := ui.Test()
			renCode = cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon},
				[]string{"branch", "rename", "g", "h"})
			renOut, renErr = o.String(), eo.String()
			once.Do(func() { close(consuming) })
		}()
		<-consuming
		// The delete, to its dropDatabase.
		del = startUntil(dir, "dropDatabase", "branch", "delete", "g", "--yes", "--force")
		close(release)
		<-renamed
	}
	defer func() { commit.Hook = nil }()
	io, _, _, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"insert", "c", `{"_id": 3}`, "--branch", "g"})
	commit.Hook = nil
	if !fired {
		t.Fatal("the insert never reached before-commit")
	}
	t.Logf("rename: exit %d, %q, %q", renCode, renOut, renErr)
	if renCode == 0 {
		t.Fatalf("the rename won (%q); the race did not happen as arranged", renOut)
	}
	delCode, delOut, delErr := del.wait() // its drop waited for the insert's hold
	if delCode != 0 {
		t.Fatalf("branch delete g: exit %d, %q, %q", delCode, delOut, delErr)
	}
	if code != 0 {
		// Refused: the delete closed the timeline, as it should.
		if code != 4 || errOut.String() != "argon: error: the write to branch \"g\" was not committed: the branch was deleted meanwhile\n" {
			t.Fatalf("insert refused: exit %d, %q", code, errOut.String())
		}
		return
	}
	t.Errorf("insert on g acknowledged after the delete: exit 0, %q; the delete printed %q", errOut.String(), delOut)
	if code, out, errOut := run("count", "c", "--at", "g@{0}"); code != 0 || out != "3\n" {
		t.Errorf("count c --at 'g@{0}': exit %d, %q, %q; want 3 (documents 1, 2 and the acknowledged 3)", code, out, errOut)
	}
	if code, out, _ := run("fsck"); code != 0 || !strings.Contains(out, " 0 problems") {
		t.Logf("fsck: exit %d, %q", code, out)
	}
}
