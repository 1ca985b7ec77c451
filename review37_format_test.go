package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
)

// DEFECT. Log format 3 (d01b74e) rests on "an argon refuses a project of
// a newer format" (ARCHITECTURE, projects; wal.Format): a format-2 argon
// must refuse a project raised to 3, or it selects chunks by kh alone and
// misses the chunks that have none. But only commands that call
// Factory.project check the format (wal.Repo.Project). Every command that
// resolves its branch through Factory.branchOf / openBranch (insert,
// update, delete, status, import, index, reset; find likewise) reads
// the branch alone and looks the project up only when the branch is not
// found, so it never sees the format. The code is the same in the format-2
// argon (git show f23d3e7:cmd/factory.go, branchOf), so an argon of
// format 2 runs writes, and their repairs (LatestAtOrBelow, whose
// entries-collection query it narrows by kh alone), on a format-3 log.
// Here the project is raised to Format+1 and this argon, standing in for
// the older one, is asked to work on it: each command must refuse.
func TestReview37CommandsRefuseANewerFormat(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("needs the in-test engine")
	}
	srv := enginetest.Start(t)
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": srv.URI, "ARGON_DB": srv.DB, "ARGON_PROJECT": "r37fmt", "ARGON_BRANCH": "",
		"ARGON_COMMIT_DATE": "", "ARGON_SNAPSHOT_EVERY": "", "ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir, "NO_COLOR": "1"} {
		t.Setenv(k, v)
	}
	run := func(dir string, args ...string) (int, string, string) {
		io, _, out, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, out.String(), errOut.String()
	}
	for _, args := range [][]string{{"init", "r37fmt"}, {"insert", "c", `{"_id": 1}`}} {
		if code, _, errOut := run(dir, args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
	ctx := context.Background()
	res, err := srv.Client.Database(srv.DB).Collection("projects").UpdateOne(ctx, bson.D{{Key: "_id", Value: "r37fmt"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "format", Value: wal.Format + 1}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("raise the format: %v %v", res, err)
	}
	want := fmt.Sprintf("argon: error: project \"r37fmt\" was written by a newer argon (log format %d; this argon reads up to format %d): upgrade argon\n", wal.Format+1, wal.Format)
	slots := func() int64 {
		n, err := srv.Client.Database(srv.DB).Collection("slots").CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := slots()
	// log goes through Factory.project, and refuses.
	if code, out, errOut := run(dir, "log"); code != 1 || out != "" || errOut != want {
		t.Fatalf("argon log: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	for _, args := range [][]string{
		{"status"},
		{"find", "c", "{}"},
		{"insert", "c", `{"_id": 2}`},
		{"delete", "c", `{"_id": 1}`},
	} {
		code, out, errOut := run(dir, args...)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("argon %s on a project of log format %d: exit %d, stdout %q, stderr %q; want exit 1 and %q",
				strings.Join(args, " "), wal.Format+1, code, out, errOut, want)
		}
	}
	if after := slots(); after != before {
		t.Errorf("the log has %d slots after the refused commands, %d before: something was written", after, before)
	}
}
