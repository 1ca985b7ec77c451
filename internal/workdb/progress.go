package workdb

import (
	"context"

	"github.com/argon-db/argon/internal/wal"
)

// ProgressFunc is wal.ProgressFunc: told, during a long step, what it is
// and how many documents it has handled so far; n < 0 ends the step.
type ProgressFunc = wal.ProgressFunc

// WithProgress returns ctx carrying fn (wal.WithProgress): rebuilding a
// working database, materialising a past state, scanning a database for
// changes, and the log's own long steps report their running counts to it.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return wal.WithProgress(ctx, fn)
}

// progressFor starts the step what for the ProgressFunc in ctx, if any.
func progressFor(ctx context.Context, what string) *wal.Step { return wal.StepOf(ctx, what) }
