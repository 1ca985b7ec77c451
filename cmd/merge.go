package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/merge"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type mergeOptions struct {
	f                     *Factory
	source, into, message string
	ours, theirs, dryRun  bool
	canonical             bool
	noFF                  bool
}

func newMergeCmd(f *Factory) *cobra.Command {
	o := &mergeOptions{f: f}
	cmd := &cobra.Command{
		Use:   "merge SOURCE [--into TARGET]",
		Short: "Merge a branch (or any ref) into the current branch, three-way",
		Long: `Merge SOURCE (a branch or ref: BRANCH, BRANCH@LSN, BRANCH~N, ...) into the
current branch, or into --into TARGET, three-way against their merge base:
the state they forked from, or the state of SOURCE merged last time (so a
second merge brings only what changed since).

Per document: changed on one side only, it is taken from that side;
changed on both, it is merged field by field (by dotted path; arrays and
other values as whole values, type included); a field changed differently
on both sides, a document deleted on one side and changed on the other,
or added on both with different content is a conflict. Index definitions
merge the same way, whole. A merge with conflicts writes nothing, lists
each conflict (collection, _id, path, base / ours / theirs) and exits 3;
--ours or --theirs settles every conflict one way. A clean merge is one
commit on the target recording what it merged. When the target's head is
part of SOURCE's history (it has not moved since SOURCE forked from it, or
since it forked from SOURCE), the merge is a fast-forward, as in git: the
target moves to SOURCE's state without a commit of its own, its log is
SOURCE's from then on, and the reflog records the move (--no-ff makes a
merge commit instead). A merge into a branch whose working
database has uncommitted changes is refused, like checkout. A merged
document that breaks one of the target's unique indexes is a conflict
too (--dry-run finds it by reading the target's documents with the merged
keys; a real merge, by the server refusing the write): reported with the
document and the index, exit 3, nothing written.`,
		Example: `  argon merge feature-x
  argon merge feature-x --into main -m "bring feature-x in"
  argon merge feature-x --dry-run
  argon merge feature-x --theirs`,
		Args: exactArgs(1, "one source branch or ref"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.source = args[0]
			if o.ours && o.theirs {
				return usageErrorf("--ours and --theirs cannot be used together")
			}
			return runMerge(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.into, "into", "", "branch to merge into (default: the current branch)")
	cmd.Flags().StringVarP(&o.message, "message", "m", "", "commit message (default: \"merge SOURCE into TARGET\")")
	cmd.Flags().BoolVar(&o.ours, "ours", false, "settle every conflict with the target's value")
	cmd.Flags().BoolVar(&o.theirs, "theirs", false, "settle every conflict with the source's value")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show what the merge would do, write nothing")
	cmd.Flags().BoolVar(&o.noFF, "no-ff", false, "make a merge commit even when the target could fast-forward")
	cmd.Flags().BoolVar(&o.canonical, "canonical", false, "print conflicting values as canonical Extended JSON (exact types)")
	return cmd
}

type conflictJSON struct {
	Collection string          `json:"collection"`
	ID         json.RawMessage `json:"_id,omitempty"`
	Index      string          `json:"index,omitempty"`
	Path       string          `json:"path"`
	Base       json.RawMessage `json:"base,omitempty"`
	Ours       json.RawMessage `json:"ours,omitempty"`
	Theirs     json.RawMessage `json:"theirs,omitempty"`
	// Unique names the unique indexes a merged document breaks (a conflict
	// found by the server when the merge is written; no base/ours/theirs).
	Unique []string `json:"unique,omitempty"`
}

// ConflictError reports a merge that stopped on conflicts.
type ConflictError struct {
	Source, Target string
	N              int
	Detail         string // the server's refusal, for a unique-index conflict
	Revert         bool   // a revert of commit Source on branch Target
}

func (e *ConflictError) Error() string {
	what := fmt.Sprintf("merging %s into %s", e.Source, e.Target)
	if e.Revert {
		what = fmt.Sprintf("reverting %s on %s", e.Source, e.Target)
	}
	if e.Detail != "" {
		return fmt.Sprintf("%s: %s; nothing was written", what, e.Detail)
	}
	return fmt.Sprintf("%s: %s; nothing was written", what, plural(int64(e.N), "conflict"))
}

func runMerge(ctx context.Context, o *mergeOptions) error {
	f := o.f
	target, err := f.branchOrCurrent(o.into)
	if err != nil {
		return err
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	tb, err := r.Branch(ctx, project, target)
	if err != nil {
		return suggestBranch(ctx, r, project, err)
	}
	// The source's HEAD is the current branch, as in git, not the target.
	cur, err := f.CurrentBranch()
	if err != nil {
		cur = target
	}
	theirs, err := f.resolveRef(ctx, r, project, cur, o.source)
	if err != nil {
		return err
	}
	head, err := r.Head(ctx, tb.Timeline)
	if err != nil {
		return err
	}
	if theirs.TL == tb.Timeline {
		// As git's merge of an ancestor or of the branch itself, and as
		// argon's of a branch whose commits the target has (a new-user run
		// found the three answered differently): nothing to do, exit 0.
		if f.JSON {
			return f.IO.PrintJSON(map[string]any{"source": o.source, "branch": target,
				"merge_base": map[string]any{"timeline": theirs.TL, "lsn": theirs.LSN},
				"kind":       "up-to-date", "changed": 0, "conflicts": []any{}, "head": head.LSN, "lsn_from": nil, "lsn_to": nil})
		}
		if theirs.LSN == head.LSN {
			fmt.Fprintf(f.IO.Out, "Already up to date: %s is %s's head\n", o.source, target)
			return nil
		}
		fmt.Fprintf(f.IO.Out, "Already up to date: %s is a past state of %s, already in its history\n", o.source, target)
		return nil
	}
	ours := diff.Point{TL: tb.Timeline, LSN: head.LSN}
	res := merge.Settle(o.ours, o.theirs)
	plan, err := merge.Merge(ctx, r, ours, theirs, res)
	if err != nil {
		return err
	}
	conflicts, err := conflictsJSON(plan.Conflicts, o.canonical)
	if err != nil {
		return err
	}
	// A fast-forward moves the branch when its head is part of the
	// source's own history (git's pointer move); a target that has not
	// moved since a base recorded by an earlier merge gets a merge commit.
	ff := false
	if plan.FastForward && !o.noFF && len(plan.Conflicts) == 0 {
		if ff, err = r.Descends(ctx, theirs.TL, theirs.LSN, tb.Timeline, head.LSN); err != nil {
			return err
		}
	}
	kind := "merge"
	if ff {
		kind = "fast-forward"
	}
	report := map[string]any{"source": o.source, "branch": target, "merge_base": map[string]any{"timeline": plan.Base.TL, "lsn": plan.Base.LSN},
		"kind": kind, "changed": len(plan.Changes), "conflicts": conflicts, "head": head.LSN,
		"lsn_from": nil, "lsn_to": nil}
	if plan.UpToDate {
		report["kind"] = "up-to-date"
		if f.JSON {
			return f.IO.PrintJSON(report)
		}
		fmt.Fprintf(f.IO.Out, "Already up to date: %s has nothing %s does not\n", o.source, target)
		return nil
	}
	// Like checkout, a merge never mixes with applications' uncommitted
	// work; a dry run says so too, since the merge would be refused.
	// Before the conflicts: a script that settles them and merges again
	// would meet this refusal only then (review39: exit 3, then 1).
	if _, ci, err := uncommitted(ctx, f, r, tb); err != nil {
		return err
	} else if ci != nil {
		return uncommittedError(f, "cannot merge into "+target, target, ci, "`argon restore`")
	}
	if len(plan.Conflicts) > 0 && res == merge.Refuse {
		if o.dryRun {
			// --dry-run lists every conflict at once: also a unique index
			// the changes without conflicts would break (else it shows
			// only once the field conflicts are settled).
			if c, err := dryRunUnique(ctx, f, r, tb, plan.Changes); err != nil {
				return err
			} else if c != nil {
				conflicts = append(conflicts, *c)
				report["conflicts"] = conflicts
			}
		}
		if f.JSON {
			if err := f.IO.PrintJSON(report); err != nil {
				return err
			}
		} else {
			printConflicts(f, conflicts)
		}
		return withHint(&ConflictError{Source: o.source, Target: target, N: len(conflicts)},
			"settle them all with --ours or --theirs, or change the documents on either branch and merge again")
	}
	puts := make([]workdb.Put, len(plan.Changes))
	for i, c := range plan.Changes {
		puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
	}
	w, err := f.workingDB(ctx, r, tb)
	if err != nil {
		return err
	}
	if o.dryRun {
		// What writing would find: a unique index the merged documents
		// break.
		dke, err := w.CheckUnique(ctx, puts)
		if err != nil {
			return err
		}
		if dke != nil {
			return uniqueConflict(f, o, target, report, dke, puts)
		}
		if f.JSON {
			return f.IO.PrintJSON(report)
		}
		printConflicts(f, conflicts)
		changes := fmt.Sprintf("%d documents or indexes to change", len(plan.Changes))
		if len(plan.Changes) == 1 {
			changes = "1 document or index to change"
		}
		fmt.Fprintf(f.IO.Out, "would %s %s into %s: %s, %s settled\n", kind, o.source, target, changes, plural(int64(len(plan.Conflicts)), "conflict"))
		return nil
	}
	msg := o.message
	if msg == "" {
		msg = fmt.Sprintf("merge %s into %s", o.source, target)
	}
	if ff {
		return fastForward(ctx, o, w, r, project, target, head.LSN, theirs, puts, msg, report)
	}
	cm, newHead, err := w.ApplyPuts(ctx, puts, head.LSN, wal.CommitInfo{Message: msg, Author: f.Author, MergeOf: merge.MergeOf(theirs)})
	if err != nil {
		var dke *workdb.DuplicateKeyError
		if errors.As(err, &dke) {
			// Nothing is written: the failed write was repaired from the log.
			return uniqueConflict(f, o, target, report, dke, puts)
		}
		return uncommittedHint(err, o.into, target)
	}
	if cm == nil {
		newHead = head.LSN
	}
	report["head"] = newHead
	if cm != nil {
		report["lsn_from"], report["lsn_to"] = cm.From, cm.To
	}
	if f.JSON {
		return f.IO.PrintJSON(report)
	}
	what := "Merged"
	if kind == "fast-forward" {
		what = "Fast-forward: merged"
	}
	if cm == nil || cm.From > cm.To {
		fmt.Fprintf(f.IO.Out, "%s %s into %s: no document changed (the merge is recorded), head %d\n", what, o.source, target, newHead)
		return nil
	}
	fmt.Fprintf(f.IO.Out, "%s %s into %s: LSN %d..%d, head %d\n", what, o.source, target, cm.From, cm.To, newHead)
	return nil
}

// conflictsJSON describes conflicts cs, their values in relaxed Extended
// JSON, or canonical when canonical is set. A conflict whose values
// differ only in type (1, 1.0 and the 64-bit 1 are all 1 relaxed) shows
// its values canonical anyway: relaxed, it would read as no difference
// (review40). An absent value (a field or document not there) is left
// out, never shown as null, which is a value of its own.
func conflictsJSON(cs []merge.Conflict, canonical bool) ([]conflictJSON, error) {
	out := []conflictJSON{}
	for _, c := range cs {
		vals := []bson.RawValue{c.Base, c.Ours, c.Theirs}
		exact := canonical || relaxedAlike(vals)
		v := func(x bson.RawValue) (json.RawMessage, error) {
			if x.Type == 0 {
				return nil, nil
			}
			return ejson.FormatValue(x, exact)
		}
		j := conflictJSON{Collection: c.Coll, Path: c.Path}
		var err error
		if c.Index {
			j.Index = c.ID.StringValue()
		} else if j.ID, err = ejson.FormatValue(c.ID, canonical); err != nil {
			return nil, err
		}
		if j.Base, err = v(c.Base); err != nil {
			return nil, err
		}
		if j.Ours, err = v(c.Ours); err != nil {
			return nil, err
		}
		if j.Theirs, err = v(c.Theirs); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// relaxedAlike reports whether two of vals that differ (in type or
// bytes) print alike in relaxed Extended JSON.
func relaxedAlike(vals []bson.RawValue) bool {
	for i := range vals {
		for j := i + 1; j < len(vals); j++ {
			a, b := vals[i], vals[j]
			if a.Type == 0 || b.Type == 0 || (a.Type == b.Type && bytes.Equal(a.Value, b.Value)) {
				continue
			}
			x, errA := ejson.FormatValue(a, false)
			y, errB := ejson.FormatValue(b, false)
			if errA == nil && errB == nil && bytes.Equal(x, y) {
				return true
			}
		}
	}
	return false
}

func printConflicts(f *Factory, cs []conflictJSON) {
	for _, c := range cs {
		what := string(c.ID)
		if c.Index != "" {
			what = "index " + c.Index
		}
		path := c.Path
		if path == "" {
			path = "(whole)"
		}
		if c.Unique != nil {
			theirs := ""
			if len(c.Theirs) > 0 { // none when the index itself is new
				theirs = "\ttheirs=" + string(c.Theirs)
			}
			fmt.Fprintf(f.IO.Out, "conflict\t%s\t%s\tunique index %s%s\n", c.Collection, what, strings.Join(c.Unique, ", "), theirs)
			continue
		}
		fmt.Fprintf(f.IO.Out, "conflict\t%s\t%s\t%s\tbase=%s\tours=%s\ttheirs=%s\n", c.Collection, what, path, shown(c.Base), shown(c.Ours), shown(c.Theirs))
	}
}

// shown is a conflict's value as printed: "(none)" when absent.
func shown(v json.RawMessage) string {
	if v == nil {
		return "(none)"
	}
	return string(v)
}

// uniqueConflict reports a merged document that breaks a unique index of
// the target as a conflict (exit 3), in text or JSON.
func uniqueConflict(f *Factory, o *mergeOptions, target string, report map[string]any, dke *workdb.DuplicateKeyError, puts []workdb.Put) error {
	return reportUnique(f, report, dke, puts, &ConflictError{Source: o.source, Target: target, N: 1},
		"change or delete the document on either branch so that the unique index holds, and merge again")
}

// reportUnique prints the unique index conflict dke and returns ce with
// the server's refusal as its detail.
func reportUnique(f *Factory, report map[string]any, dke *workdb.DuplicateKeyError, puts []workdb.Put, ce *ConflictError, hint string) error {
	c, err := uniqueConflictJSON(dke, puts)
	if err != nil {
		return err
	}
	report["conflicts"] = []conflictJSON{c}
	if f.JSON {
		if err := f.IO.PrintJSON(report); err != nil {
			return err
		}
	} else {
		printConflicts(f, []conflictJSON{c})
	}
	ce.Detail = dke.Msg
	return withHint(ce, hint)
}

// uniqueConflictJSON describes a unique index that the puts break.
func uniqueConflictJSON(dke *workdb.DuplicateKeyError, puts []workdb.Put) (conflictJSON, error) {
	var err error
	c := conflictJSON{Collection: dke.Coll, Path: "(unique index)", Unique: dke.Indexes}
	if len(c.Unique) == 0 {
		// No other unique index: the _id's, which every collection
		// has (two _ids the engine takes for one, such as binary data of
		// subtypes 0 and 0x80 with the same bytes; review40 saw an empty
		// name here).
		c.Unique = []string{"_id_"}
	}
	if dke.ID.Type != 0 {
		if c.ID, err = ejson.FormatValue(dke.ID, false); err != nil {
			return c, err
		}
		for _, p := range puts {
			if !p.Index && p.Coll == dke.Coll && p.ID.Equal(dke.ID) && p.Doc != nil {
				if c.Theirs, err = ejson.FormatValue(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: p.Doc}, false); err != nil {
					return c, err
				}
			}
		}
	}
	return c, nil
}

// dryRunUnique is the unique index conflict the changes of a merge would
// meet in target's working database, or nil.
func dryRunUnique(ctx context.Context, f *Factory, r *wal.Repo, target *wal.Branch, changes []merge.Apply) (*conflictJSON, error) {
	w, err := f.workingDB(ctx, r, target)
	if err != nil {
		return nil, err
	}
	puts := make([]workdb.Put, len(changes))
	for i, c := range changes {
		puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
	}
	dke, err := w.CheckUnique(ctx, puts)
	if err != nil || dke == nil {
		return nil, err
	}
	c, err := uniqueConflictJSON(dke, puts)
	return &c, err
}

// fastForward moves target onto a new timeline forked at the source's
// state: its log is the source's from then on, as git's pointer move.
// The working database gets the source's changes (puts), nothing is
// logged, and the old timeline is closed against late writers (see
// commit.Protocol.Move).
func fastForward(ctx context.Context, o *mergeOptions, w *workdb.Branch, r *wal.Repo, project, target string,
	base int64, theirs diff.Point, puts []workdb.Put, msg string, report map[string]any) error {
	f := o.f
	root, err := r.ForkTimeline(ctx, project, &wal.Branch{Project: project, Name: o.source, Timeline: theirs.TL}, theirs.LSN)
	if err != nil {
		return err
	}
	err = w.MovePuts(ctx, puts, root, base, "fast-forward to "+o.source, wal.CommitInfo{Message: msg, Author: f.Author, MergeOf: merge.MergeOf(theirs)})
	if err != nil {
		var dke *workdb.DuplicateKeyError
		if errors.As(err, &dke) {
			return uniqueConflict(f, o, target, report, dke, puts)
		}
		return uncommittedHint(err, o.into, target)
	}
	report["head"], report["lsn_from"], report["lsn_to"] = root.LSN, base+1, root.LSN
	if f.JSON {
		return f.IO.PrintJSON(report)
	}
	fmt.Fprintf(f.IO.Out, "Fast-forward: moved %s to %s: LSN %d..%d, head %d\n", target, o.source, base+1, root.LSN, root.LSN)
	return nil
}
