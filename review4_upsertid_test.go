package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// review4Workspace makes an embedded-engine workspace with project p and
// one committed document {_id: 1} in c, and returns a runner of argon
// processes in it (kill: ARGON_TEST_KILL_AT for that process).
func review4Workspace(t *testing.T, p string) func(kill string, args ...string) (string, string, int) {
	t.Helper()
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only")
	}
	dir := t.TempDir()
	env := append(os.Environ(), "ARGON_AUTHOR=tester", "HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"ARGON_URI=", "ARGON_PROJECT=", "NO_COLOR=1")
	run := func(kill string, args ...string) (string, string, int) {
		t.Helper()
		c := exec.Command("argon", args...)
		c.Dir, c.Env = dir, append(append([]string(nil), env...), "ARGON_TEST_KILL_AT="+kill)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		_ = c.Run()
		return out.String(), errOut.String(), c.ProcessState.ExitCode()
	}
	for _, args := range [][]string{{"init", p}, {"insert", "c", `{"_id": 1}`}} {
		if out, errOut, code := run("", args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s%s", args, code, out, errOut)
		}
	}
	return run
}

// An upsert whose new _id argon chooses (workdb.upsertID) announces that
// _id in its lease before it sends the upsert; a writer killed after the
// upsert and before its commit is repaired at the announced key. When the
// server inserts the document under another _id than the one chosen, the
// document it inserted is in no lease and no void: the next holder
// repairs the chosen key, which holds nothing, and the failed write's
// document stays in the working database as if an application had
// written it (argon status lists it; argon commit would record it).
//
// Shapes where the engine does not take argon's choice (measured on the
// embedded engine, FerretDB v1):
//   - {$rename: {a: "_id"}}: the rename is applied after argon's
//     $setOnInsert {_id: ObjectId}; namesID looks at keys only, and the
//     value "_id" names the field;
//   - a filter {_id: 5} (32-bit) with a replacement {_id: 5.0}, or an
//     update {$set: {_id: 5.0}} / {$setOnInsert: {_id: 5 as 64-bit}}:
//     upsertID trusts the filter's _id (byID) without looking at the
//     change, and the engine stores the change's _id (another key).
//
// (Found by review; fixed: upsertID leaves the _id to the server, and the
// write widens, when the change names _id, a $rename's target included,
// or a replacement's _id is not the filter's byte for byte.)
func TestReview4KilledUpsertUnderAnotherIDIsRepaired(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"rename to _id", []string{"update", "c", `{"a": 7}`, `{"$rename": {"a": "_id"}}`, "--upsert"}},
		{"replace by _id with a double _id", []string{"replace", "c", `{"_id": 5}`, `{"_id": 5.0, "x": 1}`, "--upsert"}},
		{"update by _id setting a double _id", []string{"update", "c", `{"_id": 5}`, `{"$set": {"_id": 5.0, "x": 1}}`, "--upsert"}},
		{"update by _id, $setOnInsert a 64-bit _id", []string{"update", "c", `{"_id": 5}`, `{"$setOnInsert": {"_id": {"$numberLong": "5"}}, "$set": {"x": 1}}`, "--upsert"}},
		// The control: an _id argon chooses and the engine keeps.
		{"control: $set", []string{"update", "c", `{"a": 7}`, `{"$set": {"b": 1}}`, "--upsert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := review4Workspace(t, "ups4")
			// The upsert itself succeeds when left to finish (on a
			// copy of the branch).
			if out, errOut, code := run("", "branch", "create", "probe"); code != 0 {
				t.Fatalf("branch: %d %s%s", code, out, errOut)
			}
			if out, errOut, code := run("", append(tc.args, "--branch", "probe")...); code != 0 {
				t.Fatalf("argon %v on a branch: exit %d: %s%s", tc.args, code, out, errOut)
			} else {
				t.Logf("left to finish: %s", strings.TrimSpace(out))
			}
			_, errOut, code := run("before-commit", tc.args...)
			if code == 0 {
				t.Fatalf("argon %v was not killed: %s", tc.args, errOut)
			}
			out, errOut, code := run("", "find", "c")
			if code != 0 {
				t.Fatalf("find: exit %d: %s", code, errOut)
			}
			t.Logf("find after the kill: %s(%s)", out, strings.TrimSpace(errOut))
			if strings.TrimSpace(out) != `{"_id":1}` {
				t.Errorf("c after the killed upsert was taken over: %q, want the committed {\"_id\":1} alone", out)
			}
			st, _, _ := run("", "status", "-s")
			if lines := strings.Split(strings.TrimSpace(st), "\n"); len(lines) > 1 {
				t.Errorf("status after the takeover: %q, want no changes (the killed write's document shows as an application's)", st)
			}
		})
	}
}

// The embedded engine (FerretDB v1) lets an update or a replacement give a
// document's _id another numeric type of equal value ({_id: 5} becomes
// {_id: 5.0} by a replacement, a $set, a $rename, an $inc of 0.0). argon
// touched the key it matched (the 32-bit 5) and reads the document back
// by that key: it has "vanished", and the write fails. Its repair then
// finds no document under the key's bytes (the read by value returns the
// 5.0 one, keyed otherwise), leaves the 5.0 document, and inserts the
// committed {_id: 5} beside it, which the _id index refuses. Every later
// command repairs again and fails the same way, argon restore and fsck
// --repair included: the branch is unusable. (Not from this change; the
// same keys-by-bytes against matches-by-value gap as the upsert above.)
// (Found by review; fixed: a change that would give a matched document
// another _id is refused before anything changes, refuseIDChange.)
func TestReview4ChangingAnIDsTypeKeepsTheBranchUsable(t *testing.T) {
	for _, change := range [][]string{
		{"replace", "c", `{"_id": 5}`, `{"_id": 5.0, "x": 1}`},
		{"update", "c", `{"_id": 5}`, `{"$set": {"_id": 5.0}}`},
	} {
		t.Run(change[0], func(t *testing.T) {
			run := review4Workspace(t, "idt4")
			if _, errOut, code := run("", "insert", "c", `{"_id": 5, "n": 1}`); code != 0 {
				t.Fatal(errOut)
			}
			_, errOut, code := run("", change...)
			t.Logf("argon %v: exit %d: %s", change, code, strings.TrimSpace(errOut))
			for _, args := range [][]string{{"find", "c"}, {"restore"}, {"fsck", "--repair"}} {
				if out, errOut, code := run("", args...); code != 0 {
					t.Errorf("argon %v after it: exit %d: %s%s", args, code, out, strings.TrimSpace(errOut))
				}
			}
		})
	}
}
