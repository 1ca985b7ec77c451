// Package waltest sets up the log for tests of the packages built on it.
package waltest

import (
	"context"
	"testing"

	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/wal"
)

// Project starts a deployment for t (enginetest.Start), makes project "p"
// in it, and returns the deployment, the repo and the project's main
// branch.
func Project(t *testing.T) (*enginetest.Server, *wal.Repo, *wal.Branch) {
	t.Helper()
	srv := enginetest.Start(t)
	r := wal.Open(srv.Client, srv.DB)
	ctx := context.Background()
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	_, main, err := r.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	return srv, r, main
}
