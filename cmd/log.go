package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/merge"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
)

type logOptions struct {
	f       *Factory
	limit   int
	oneline bool
	graph   bool
	branch  string
	entries bool
	ref     string
}

func newLogCmd(f *Factory) *cobra.Command {
	o := &logOptions{f: f}
	cmd := &cobra.Command{
		Use:   "log [REF]",
		Short: "Show the commits of a branch, newest first",
		Long: `Show the commits reachable from a branch's head (or from REF: a branch, a
tag, BRANCH@LSN, BRANCH~N; argon help refs), newest first: the LSN range
each commit wrote, its time, author and message, and how many documents it
put or deleted per collection. Below a branch's fork point the log goes on
into the parent's history; those commits are marked "inherited" and name
the branch they were made on (a branch's own commits from before a reset
are not inherited).

With --entries, list the log entries themselves, newest first: one per
document written (put) or deleted (del), or index created or dropped, with
its LSN. Piped: "lsn<TAB>op<TAB>collection<TAB>key" lines.`,
		Example: `  argon log
  argon log -n 5 --oneline
  argon log --branch feature-x --json
  argon log main~3 --oneline
  argon log v1.0
  argon log --entries -n 20
  argon log --graph`,
		Args: rangeArgs(0, 1, "an optional ref (argon help refs)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.limit < 0 {
				return usageErrorf("-n must not be negative")
			}
			if o.entries && o.graph {
				return usageErrorf("--graph draws commits; --entries lists entries: give one")
			}
			if len(args) == 1 {
				if o.branch != "" {
					return usageErrorf("give a ref or --branch, not both")
				}
				o.ref = args[0]
			}
			return runLog(cmd.Context(), o)
		},
	}
	cmd.Flags().IntVarP(&o.limit, "max-count", "n", 0, "show at most this many commits (0: all)")
	cmd.Flags().BoolVar(&o.oneline, "oneline", false, "one line per commit")
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to show (default: the current branch)")
	cmd.Flags().BoolVar(&o.entries, "entries", false, "list log entries (one per document change) instead of commits")
	cmd.Flags().BoolVar(&o.graph, "graph", false, "draw merges: one line per commit, a merge's merged commits beside it")
	return cmd
}

// logEntry is the JSON shape of one commit in `argon log`.
type logEntry struct {
	LSNFrom     int64           `json:"lsn_from"`
	LSNTo       int64           `json:"lsn_to"`
	Time        time.Time       `json:"time"`
	Author      string          `json:"author"`
	Message     string          `json:"message"`
	Branch      string          `json:"branch"`
	Inherited   bool            `json:"inherited"`
	Timeline    string          `json:"-"`
	Collections []wal.CollStats `json:"collections"`
	// MergeOf names the state a merge commit merged (TIMELINE@LSN).
	MergeOf string `json:"merge_of,omitempty"`
}

func runLog(ctx context.Context, o *logOptions) error {
	f := o.f
	branch, err := f.branchOrCurrent(o.branch)
	if err != nil {
		return err
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	// From the branch's head (read with the slots on the way, which the
	// walk then reads no more), or from the point the ref names.
	var (
		b    *wal.Branch
		head *wal.Slot
		path map[int64]*wal.Slot
		at   int64
	)
	if o.ref != "" {
		p, err := f.resolvePoint(ctx, r, project, branch, o.ref)
		if err != nil {
			return err
		}
		b, branch, at = p.Branch, p.Branch.Name, p.LSN
		// BRANCH~N below a commit that changed nothing: from the slot
		// below it (nil otherwise: from the head).
		if head, err = slotOf(ctx, r, p); err != nil {
			return err
		}
		if p.Tag != nil || p.Branch.Name == p.Branch.Timeline {
			// A tag, or a timeline by its id (a deleted branch's, as the
			// reflog prints it): the name of the branch on that timeline
			// now, or its last one.
			if branch, err = r.TimelineName(ctx, project, p.Branch.Timeline); err != nil {
				return err
			}
			switch {
			case branch != "":
			case p.Tag != nil:
				branch = p.Tag.Branch
			default:
				branch = "timeline:" + p.Branch.Timeline
			}
		}
	} else {
		if b, err = r.Branch(ctx, project, branch); err != nil {
			return suggestBranch(ctx, r, project, err)
		}
		if head, path, err = r.HeadPath(ctx, b.Timeline); err != nil {
			return err
		}
		at = head.LSN
	}
	f.page()
	if o.entries {
		return printEntries(ctx, f, r, b.Timeline, at, o.limit)
	}
	if o.graph {
		if f.JSON {
			return usageErrorf("--graph draws text; use --json without it")
		}
		return printGraph(ctx, f, r, project, branch, b.Timeline, at, o.limit)
	}
	items, err := r.LogFrom(ctx, b.Timeline, head, path, at, o.limit)
	if err != nil {
		return err
	}
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return err
	}
	need := []string{}
	for _, it := range items {
		if it.TL != b.Timeline {
			need = append(need, it.TL)
		}
	}
	names, err := r.NamesOf(ctx, project, bs, need)
	if err != nil {
		return err
	}
	names[b.Timeline] = branch
	entries := make([]logEntry, len(items))
	for i, it := range items {
		name := names[it.TL]
		if name == "" {
			name = "timeline:" + it.TL
		}
		stats := it.Stats
		if stats == nil {
			stats = []wal.CollStats{}
		}
		entries[i] = logEntry{LSNFrom: it.From, LSNTo: it.To, Time: it.Time, Author: it.Author,
			Message: it.Message, Branch: name, Inherited: it.Inherited && name != branch, Timeline: it.TL, Collections: stats, MergeOf: it.MergeOf}
	}
	if f.JSON {
		return f.IO.PrintJSON(entries)
	}
	st := f.IO.Styles()
	out := f.IO.Out
	for i, e := range entries {
		rng := lsnRange(e.LSNFrom, e.LSNTo)
		label := e.Branch
		if e.Inherited {
			label += ", inherited"
		}
		if o.oneline {
			fmt.Fprintf(out, "%s (%s) %s\n", st.LSN.Render(rng), ui.Clean(label, false), ui.Clean(firstLine(e.Message), false))
			continue
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		printCommitHeader(f, rng, label, e.MergeOf, e.Author, e.Time, e.Message, names)
		if len(e.Collections) > 0 {
			fmt.Fprintln(out)
			for _, c := range e.Collections {
				line := fmt.Sprintf("    %s: %d put, %d deleted", c.Coll, c.Puts, c.Dels)
				if c.Indexes > 0 {
					// Index creations and drops, which --json counts as
					// "indexes" (a new-user run missed them here).
					line += ", " + plural(int64(c.Indexes), "index change")
				}
				fmt.Fprintln(out, line)
			}
		}
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// formatTime is RFC3339 when piped; on a terminal it adds how long ago.
func (f *Factory) formatTime(t time.Time) string {
	abs := t.UTC().Format(time.RFC3339)
	if !f.IO.IsStdoutTTY() {
		return abs
	}
	return abs + " (" + ago(time.Since(t)) + ")"
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// entryInfo is the JSON shape of one log entry.
type entryInfo struct {
	LSN        int64           `json:"lsn"`
	Op         string          `json:"op"`
	Collection string          `json:"collection"`
	Key        json.RawMessage `json:"key"`
	Time       time.Time       `json:"time"`
}

func printEntries(ctx context.Context, f *Factory, r *wal.Repo, tl string, head int64, limit int) error {
	out := []entryInfo{}
	err := r.EntriesBack(ctx, tl, head, func(e *wal.Entry) bool {
		out = append(out, entryInfo{LSN: e.LSN, Op: e.Op, Collection: e.Coll, Key: nil, Time: e.Time})
		k, err := ejson.FormatValue(wal.KeyValue(e.KeyBytes), f.JSON)
		if err == nil {
			out[len(out)-1].Key = k
		}
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return err
	}
	if f.JSON {
		return f.IO.PrintJSON(out)
	}
	t := f.IO.NewTable("LSN", "OP", "COLLECTION", "KEY")
	for _, e := range out {
		t.Row(fmt.Sprint(e.LSN), e.Op, e.Collection, string(e.Key))
	}
	return t.Render()
}

// printGraph draws the branch's log with its merges, like git log --graph
// --oneline: each merge commit is followed by the commits it brought in
// (the merged state's log down to where it meets this branch's history),
// on a second line of descent.
func printGraph(ctx context.Context, f *Factory, r *wal.Repo, project, branch, tl string, head int64, limit int) error {
	names, err := r.BranchNames(ctx, project)
	if err != nil {
		return err
	}
	names[tl] = branch
	st := f.IO.Styles()
	// label is a commit's line; own: one of the branch's own line, whose
	// commits of another branch's history are marked as in argon log.
	label := func(it wal.LogItem, own bool) string {
		name := names[it.TL]
		if name == "" {
			name = "timeline:" + it.TL
		}
		if own && it.Inherited && name != branch {
			name += ", inherited"
		}
		return fmt.Sprintf("%s (%s) %s", st.LSN.Render(lsnRange(it.From, it.To)), ui.Clean(name, false), ui.Clean(firstLine(it.Message), false))
	}
	out := f.IO.Out
	var items []wal.LogItem
	if err := r.WalkLog(ctx, tl, head, func(it wal.LogItem) bool {
		items = append(items, it)
		return limit <= 0 || len(items) < limit
	}); err != nil {
		return err
	}
	// join is the LSN at or below which the open side line rejoins this
	// one (-1: none open). Commits of this line above it, made while the
	// side line was apart, are drawn beside it, as git does.
	join := int64(-1)
	closeSide := func() {
		if join >= 0 {
			fmt.Fprintln(out, "|/")
			join = -1
		}
	}
	// -n counts every commit drawn, those of merged lines too.
	drawn := 0
	full := func() bool { return limit > 0 && drawn >= limit }
	for _, it := range items {
		if full() {
			break
		}
		if join >= 0 && it.To <= join {
			closeSide()
		}
		src, ok := merge.ParseMergeOf(it.MergeOf)
		drawn++
		if !ok {
			if join >= 0 {
				fmt.Fprintf(out, "* | %s\n", label(it, true))
			} else {
				fmt.Fprintf(out, "* %s\n", label(it, true))
			}
			continue
		}
		closeSide()
		fmt.Fprintf(out, "*   %s\n", label(it, true))
		if full() {
			break
		}
		fmt.Fprintln(out, "|\\")
		// The merged side: its commits above the merge's base (where it
		// meets this line, or what an earlier merge brought in).
		meet, err := graphMeet(ctx, r, tl, it, src)
		if err != nil {
			return err
		}
		if err := r.WalkLog(ctx, src.TL, src.LSN, func(s wal.LogItem) bool {
			if s.To <= meet || full() {
				return false
			}
			drawn++
			fmt.Fprintf(out, "| * %s\n", label(s, false))
			return true
		}); err != nil {
			return err
		}
		join = meet
	}
	closeSide()
	return nil
}

// graphMeet returns the LSN of src's line down to which merge commit it
// brought src's commits in: the merge base of the state before it. A merge
// that changed nothing has the LSN of the state before it, so merge.Base
// at that LSN would find the merge itself; for it the earlier merge of the
// same line is looked up by walking past it, else the fork point is used.
func graphMeet(ctx context.Context, r *wal.Repo, tl string, it wal.LogItem, src diff.Point) (int64, error) {
	if it.From <= it.To {
		ours := diff.Point{TL: tl, LSN: it.From - 1}
		base, err := merge.Base(ctx, r, ours, src)
		if err != nil {
			return 0, err
		}
		// The walk compares LSNs along src's line, where they form one
		// sequence. A base on this line's side (src merged this line
		// before, and this line never merged src) is not on it: src's
		// own commits down to the shared history were never drawn here.
		on, err := onPath(ctx, r, base, src)
		if err != nil || on {
			return base.LSN, err
		}
		return diff.Common(ctx, r, ours, src)
	}
	meet, err := diff.Common(ctx, r, diff.Point{TL: tl, LSN: it.To}, src)
	if err != nil {
		return 0, err
	}
	passed := false
	err = r.WalkLog(ctx, tl, it.To, func(s wal.LogItem) bool {
		if !passed {
			passed = s.TL == it.TL && s.N == it.N
			return true
		}
		if s.To <= meet {
			return false
		}
		if p, ok := merge.ParseMergeOf(s.MergeOf); ok && p.TL == src.TL {
			meet = max(meet, p.LSN)
			return false
		}
		return true
	})
	return meet, err
}

// onPath reports whether state p lies on the history of state of: on one
// of the timeline ranges its ancestry path is made of.
func onPath(ctx context.Context, r *wal.Repo, p, of diff.Point) (bool, error) {
	segs, err := r.Segments(ctx, of.TL, 0, of.LSN)
	if err != nil {
		return false, err
	}
	for _, sg := range segs {
		if sg.TL == p.TL && p.LSN > sg.From && p.LSN <= sg.To {
			return true, nil
		}
	}
	return p.LSN == 0, nil
}

// printCommitHeader prints a commit as git log does: its LSNs and branch,
// what it merged, author, date and the indented message.
func printCommitHeader(f *Factory, rng, label, mergeOf, author string, at time.Time, message string, names map[string]string) {
	out, st := f.IO.Out, f.IO.Styles()
	fmt.Fprintf(out, "%s (%s)\n", st.LSN.Render("commit "+rng), ui.Clean(label, false))
	if mergeOf != "" {
		merged := mergeOf
		if p, ok := merge.ParseMergeOf(mergeOf); ok && names[p.TL] != "" {
			merged = fmt.Sprintf("%s@%d (timeline %s)", names[p.TL], p.LSN, p.TL)
		}
		fmt.Fprintf(out, "Merge:  %s\n", merged)
	}
	fmt.Fprintf(out, "Author: %s\n", ui.Clean(author, false))
	fmt.Fprintf(out, "Date:   %s\n", f.formatTime(at))
	fmt.Fprintln(out)
	for _, l := range strings.Split(ui.Clean(message, true), "\n") {
		if l == "" {
			fmt.Fprintln(out)
			continue
		}
		fmt.Fprintf(out, "    %s\n", l)
	}
}

// lsnRange renders a commit's LSNs; a merge that changed nothing has none
// and shows the head it left.
func lsnRange(from, to int64) string {
	if from > to {
		return fmt.Sprintf("%d (empty)", to)
	}
	return fmt.Sprintf("%d..%d", from, to)
}
