package workdb

import "context"

type progressKey struct{}

// ProgressFunc is told, during a long step, what it is (the same text for
// the whole step) and how many documents it has handled so far; n < 0
// says the step is over.
type ProgressFunc func(what string, n int)

// WithProgress returns ctx carrying fn: rebuilding a working database,
// materialising a past state and scanning a database for changes report
// their running counts to it.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// stepProgress counts the documents of one step for the ProgressFunc in
// ctx, if any.
type stepProgress struct {
	fn   ProgressFunc
	what string
	n    int
}

func progressFor(ctx context.Context, what string) *stepProgress {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return &stepProgress{fn: fn, what: what}
}

func (p *stepProgress) add(n int) {
	p.n += n
	if p.fn != nil {
		p.fn(p.what, p.n)
	}
}

func (p *stepProgress) done() {
	if p.fn != nil {
		p.fn(p.what, -1)
	}
}
