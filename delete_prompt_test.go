package main

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// answerAfter is a user at a terminal who answers "y", and an
// application that writes while the question waits (before the answer).
type answerAfter struct {
	write func()
	done  bool
}

func (a *answerAfter) Read(p []byte) (int, error) {
	if !a.done {
		a.done = true
		a.write()
	}
	return copy(p, "y\n"), nil
}

// branch delete asks on a terminal, and an application may write to the
// branch's working database (through argon serve) while the question
// waits: the delete looks for uncommitted changes again after the
// answer, and refuses instead of dropping that write.
func TestDeleteLooksAgainAfterTheQuestion(t *testing.T) {
	dir, uri, run := r15ServedWorkspace(t, "delprompt")
	for _, args := range [][]string{{"branch", "create", "g"}, {"checkout", "g"}, {"checkout", "main"}} {
		if code, _, errOut := run(dir, args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
	code, out, _ := run(dir, "status", "--branch", "g", "--json")
	if code != 0 || !strings.Contains(out, `"database":"`) {
		t.Fatalf("status of g: exit %d, %s", code, out)
	}
	db := out[strings.Index(out, `"database":"`)+len(`"database":"`):]
	db = db[:strings.Index(db, `"`)]
	ctx := context.Background()
	app, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Disconnect(ctx) }()
	in := &answerAfter{write: func() {
		if _, err := app.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
			t.Error(err)
		}
	}}
	io, stdout, errOut := ui.TestTerminal(in)
	code = cmd.Run(ctx, &cmd.Factory{IO: io, Dir: dir}, []string{"branch", "delete", "g"})
	if !in.done {
		t.Fatal("branch delete asked nothing")
	}
	want := "Delete branch g (head LSN 1)? [y/N] argon: error: cannot delete branch g: it has uncommitted changes in its working database (1 added, 0 modified, 0 deleted)\nargon: hint: record them with `argon commit --branch g -m MESSAGE`, or discard them with --force\n"
	if code != 1 || stdout.String() != "" || errOut.String() != want {
		t.Fatalf("branch delete g, answered after an application's write: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, errOut, want)
	}
	if code, out, errOut := run(dir, "find", "c", `{"_id": "app"}`, "--branch", "g"); code != 0 || out != "{\"_id\":\"app\"}\n" {
		t.Fatalf("the application's document on g: exit %d, %q, %q", code, out, errOut)
	}
}
