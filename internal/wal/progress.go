package wal

import "context"

type progressKey struct{}

// ProgressFunc is told, during a long step, what it is (the same text for
// the whole step) and how many documents it has handled so far; n < 0
// says the step is over.
type ProgressFunc func(what string, n int)

// WithProgress returns ctx carrying fn: the long steps of argon's work
// (rebuilding a working database, materialising a past state, scanning a
// database for changes, checking the log) report their running counts to
// it.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// Step counts the documents of one long step for the ProgressFunc in its
// context, if any.
type Step struct {
	fn   ProgressFunc
	what string
	// N is the count so far.
	N int
}

// StepOf starts the step what for the ProgressFunc in ctx.
func StepOf(ctx context.Context, what string) *Step {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return &Step{fn: fn, what: what}
}

// Add counts n more documents, and reports the count.
func (p *Step) Add(n int) {
	p.N += n
	if p.fn != nil {
		p.fn(p.what, p.N)
	}
}

// Done ends the step.
func (p *Step) Done() {
	if p.fn != nil {
		p.fn(p.what, -1)
	}
}
