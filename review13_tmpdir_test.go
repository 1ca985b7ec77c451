package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The scratch engine lives in the system's temporary directory, named to
// FerretDB as an SQLite URI ("file:" + folder + "/?_pragma=..."), with
// the folder's path unescaped. A TMPDIR whose path holds '%', '?' or '#'
// (legal in any file name) then fails every update --many that matches
// more than one document on the embedded engine ("start the scratch
// engine: ... failed to parse SQLite URI"), although the workspace and
// its engine are elsewhere and work; before the scratch engine the same
// update ran in the workspace's engine. The update changes nothing, so
// the branch stays consistent.
func TestReview13UpdateManyWithAnUnusualTMPDIR(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine's scratch engine")
	}
	dir, run := statusWorkspace(t, "td")
	run("insert", "c", `{"_id": 2, "n": 2}`)
	for _, name := range []string{"50%off", "what?", "issue#7"} {
		t.Run(name, func(t *testing.T) {
			tmp := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp)
			code, out, errOut := r13Run(t, dir, "update", "c", `{}`, `{"$inc": {"n": 1}}`, "--many")
			if code != 0 {
				t.Errorf("update --many with TMPDIR %q: exit %d: %s%s", tmp, code, out, errOut)
			}
			if _, out := run("status", "-s"); strings.Count(out, "\n") != 1 {
				t.Errorf("status -s: %q", out)
			}
		})
	}
}
