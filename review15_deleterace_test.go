package main

import (
	"context"
	"testing"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/ui"
)

// DEFECT. `argon branch delete` does not fence out a write in progress on
// the branch. wal.Repo.DeleteBranch reads the head, consumes the binding,
// removes the name and records "delete" in the reflog with that head as
// OLD; a writer that took its lease before (here: `argon insert --branch g`
// stopped at commit.Hook "before-commit", its slot not yet inserted) then
// commits on the timeline and is acknowledged: exit 0, "inserted 1 into c
// on g: LSN 3..3, head 3". The delete printed "Deleted branch g (was at
// LSN 2)", the reflog records g@2, and `g@{0}` (the documented way back
// to a deleted branch: `argon branch create back --from 'gone@{0}'`)
// is the state without the acknowledged document. Only TIMELINE@3 reaches
// it, and nothing prints that LSN; `argon fsck` reports 0 problems. The
// race is made deterministic by the commit hook: the delete (--force, as
// README's CI recipe runs it) runs while the writer waits, and the writer
// goes on once the delete has recorded its reflog (its dropDatabase, sent
// last, waits for the writer's hold at argon serve).
func TestReview15DeleteRacesAWriteThatIsAcknowledged(t *testing.T) {
	dir, run := r15Workspace(t, "r15d")
	must := mustRun(t, run)
	must("init", "r15d")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	serveWorkspace(t, dir)

	var del *background
	commit.Hook = func(point string) {
		if point != "before-commit" || del != nil {
			return
		}
		del = startUntil(dir, "dropDatabase", "branch", "delete", "g", "--yes", "--force")
	}
	defer func() { commit.Hook = nil }()
	io, _, _, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"insert", "c", `{"_id": 3}`, "--branch", "g"})
	commit.Hook = nil
	if del == nil {
		t.Fatal("the insert never reached before-commit")
	}
	delCode, delOut, delErr := del.wait()
	if delCode != 0 {
		t.Fatalf("branch delete g: exit %d, %q, %q", delCode, delOut, delErr)
	}
	if code != 0 {
		// Refusing the write of a branch deleted under it is a right
		// answer (the delete closes the timeline with a void slot, which
		// takes the writer's commit slot): then nothing of it is seen.
		if code != 4 || errOut.String() != "argon: error: the write to branch \"g\" was not committed: the branch was deleted meanwhile\n" {
			t.Fatalf("insert refused: exit %d, %q", code, errOut.String())
		}
		if delOut != "Deleted branch g (was at LSN 2)\n" {
			t.Errorf("branch delete g printed %q", delOut)
		}
		if code, out, errOut := run("count", "c", "--at", "g@{0}"); code != 0 || out != "2\n" {
			t.Errorf("count c --at 'g@{0}': exit %d, %q, %q; want 2", code, out, errOut)
		}
		return
	}
	if errOut.String() != "inserted 1 into c on g: LSN 3..3, head 3\n" {
		t.Fatalf("insert: exit 0, stderr %q", errOut.String())
	}
	// The insert was acknowledged: the deleted branch's recorded head must
	// hold it.
	if delOut != "Deleted branch g (was at LSN 3)\n" {
		t.Errorf("branch delete g printed %q; want \"Deleted branch g (was at LSN 3)\\n\": the insert acknowledged LSN 3 on g", delOut)
	}
	if code, out, errOut := run("count", "c", "--at", "g@{0}"); code != 0 || out != "3\n" {
		t.Errorf("count c --at 'g@{0}': exit %d, %q, %q; want 3 (documents 1, 2 and the acknowledged 3)", code, out, errOut)
	}
}
