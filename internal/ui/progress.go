package ui

import (
	"fmt"
	"time"
)

// Progress is a one-line running count on standard error, redrawn in
// place. It shows only when standard error is a terminal and the command
// was not run with --quiet: piped output and logs never hold it.
type Progress struct {
	s     *IOStreams
	label string
	on    bool
	last  time.Time
	shown bool
}

// Progress starts a progress line that reads "LABEL: N UNIT".
func (s *IOStreams) Progress(label string) *Progress {
	return &Progress{s: s, label: label, on: s.stderrTTY && !s.Quiet}
}

// Update shows the count n (with its unit, like "documents"), at most ten
// times a second.
func (p *Progress) Update(n int, unit string) {
	if p == nil || !p.on {
		return
	}
	if now := time.Now(); p.shown && now.Sub(p.last) < 100*time.Millisecond {
		return
	} else {
		p.last = now
	}
	p.shown = true
	fmt.Fprintf(p.s.ErrOut, "\r\x1b[K%s: %d %s", p.label, n, unit)
}

// Done erases the line.
func (p *Progress) Done() {
	if p == nil || !p.on || !p.shown {
		return
	}
	fmt.Fprint(p.s.ErrOut, "\r\x1b[K")
	p.shown = false
}
