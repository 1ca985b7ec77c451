package main

// Review 31 (issue 7, black-box check of "working databases that never
// lose or leak an application's work"). Each test names its finding.
// Findings 3 (a failed or killed insert of more than 5,000 documents
// rebuilds the collection and loses the application's uncommitted changes
// in it) and 4 (an application's write through argon serve between branch
// delete's check and its drop is dropped with the database) are open:
// their tests, which fail, are described in the twenty-second session's
// note on issue 7, not kept here.

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// review31Project is a project on a fresh server (no argon serve in front)
// with {_id: 1, email: "a@x"} committed in c; it returns the workspace,
// an application's client and the working database of main.
func review31Project(t *testing.T, p string) (string, *mongo.Client, string) {
	t.Helper()
	return projectOnServer(t, p, `{"_id": 1, "email": "a@x"}`)
}

// Finding 1 (review31): a CLI write is evaluated on the working database
// with an application's uncommitted index change in it. The application
// dropped the committed unique index email_1 and did not commit; `argon
// insert` of a second document with the same email goes through and
// commits, so the committed head holds a unique index and two documents
// that violate it. Every later build of that state fails with the
// engine's UNIQUE constraint error: `argon find --at main`, `argon
// restore --yes` (exit 1, forever), and a branch created from it gets a
// working database without the index that shows a phantom uncommitted
// "deleted index email_1". `argon fsck` reports 0 problems. Issue 7: a
// CLI write never commits (or depends on) someone else's uncommitted
// change; refuse naming it.
func TestReview31CLIWriteOverAnApplicationsDroppedUniqueIndex(t *testing.T) {
	dir, app, db := review31Project(t, "r31uniq")
	must := mustRun(t, func(args ...string) (int, string, string) { return review5Argon(dir, args...) })
	must("index", "create", "c", `{"email": 1}`, "--unique", "--name", "email_1")
	if err := app.Database(db).Collection("c").Indexes().DropOne(context.Background(), "email_1"); err != nil {
		t.Fatalf("application's dropIndex: %v", err)
	}
	code, _, errOut := review5Argon(dir, "insert", "c", `{"_id": 2, "email": "a@x"}`)
	t.Logf("insert of a duplicate email over the application's uncommitted dropIndex: exit %d %s", code, errOut)
	if code == 0 {
		// The write went through: the committed state must still be one
		// MongoDB can hold.
		if c, _, e := review5Argon(dir, "find", "c", "--at", "main"); c != 0 {
			t.Errorf("find --at main after the insert: exit %d: %s", c, e)
		}
	}
	if c, _, e := review5Argon(dir, "restore", "--yes"); c != 0 {
		t.Errorf("restore --yes: exit %d: %s (the committed head cannot be built)", c, e)
	}
}

// Finding 2 (review31): `argon index drop` of an index an application
// created and did not commit drops it from the working database and
// commits a "dropindex" of an index that was never committed; `argon
// index create` of an index the application dropped and did not commit
// re-creates it and commits an "index" entry identical to the committed
// one. Either way the application's uncommitted index change is gone
// without being asked and `status` says "none". (`argon index create` of
// the same name as the application's new index is refused, naming it.)
// Issue 7: a CLI write touching an application's uncommitted change is
// refused with a message naming it.
func TestReview31IndexCommandsOverAnApplicationsUncommittedIndexes(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  func(ctx context.Context, c *mongo.Collection) error
		args []string
	}{
		{
			name: "drop of an uncommitted index",
			app: func(ctx context.Context, c *mongo.Collection) error {
				_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "q", Value: 1}}})
				return err
			},
			args: []string{"index", "drop", "c", "q_1"},
		},
		{
			name: "re-create of an uncommitted drop",
			app: func(ctx context.Context, c *mongo.Collection) error {
				return c.Indexes().DropOne(ctx, "email_1")
			},
			args: []string{"index", "create", "c", `{"email": 1}`, "--name", "email_1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, app, db := review31Project(t, "r31idx")
			must := mustRun(t, func(args ...string) (int, string, string) { return review5Argon(dir, args...) })
			must("index", "create", "c", `{"email": 1}`, "--name", "email_1")
			if err := tc.app(context.Background(), app.Database(db).Collection("c")); err != nil {
				t.Fatalf("application's index change: %v", err)
			}
			before := must("status")
			if !strings.Contains(before, "1 index change") {
				t.Fatalf("status does not show the application's index change:\n%s", before)
			}
			code, out, errOut := review5Argon(dir, tc.args...)
			after := must("status")
			if code == 0 || !strings.Contains(after, "1 index change") {
				t.Errorf("argon %v over the application's uncommitted index change: exit %d (%s%s); status after:\n%s",
					tc.args, code, out, errOut, after)
			}
		})
	}
}
