package wal

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

// A project records the log format of the argon that created it; a
// project of a newer format is refused, naming both formats.
func TestProjectFormat(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	r := Open(srv.Client, srv.DB)
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.CreateProject(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	p, err := r.Project(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != Format {
		t.Fatalf("new project has format %d, want %d", p.Format, Format)
	}
	if _, err := r.DB.Collection(collProjects).UpdateOne(ctx, bson.D{{Key: "_id", Value: "p"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "format", Value: Format + 1}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Project(ctx, "p")
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("project of a newer format: %v, want a FormatError", err)
	}
	want := `project "p" was written by a newer argon (log format 4; this argon reads up to format 3): upgrade argon`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}
