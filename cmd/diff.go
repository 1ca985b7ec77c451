package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type diffOptions struct {
	f                                 *Factory
	refs                              []string
	branch, coll                      string
	stat, nameOnly, exitCode, working bool
	canonical                         bool
}

func newDiffCmd(f *Factory) *cobra.Command {
	o := &diffOptions{f: f}
	cmd := &cobra.Command{
		Use:   "diff [FROM] [TO]",
		Short: "Show the documents and indexes that differ between two states",
		Long: `Show what differs between two states: documents added, removed and
modified (with each changed field by dotted path, old and new value), and
index definitions.

With no ref: the current branch against the state it was forked from.
With one: that ref against the current branch's head. With two: FROM
against TO. A ref is BRANCH, BRANCH@LSN, BRANCH@TIME (or @10m, @3d),
BRANCH~N (N commits back), BRANCH@{N} (a reflog position), a TAG, or
TIMELINE@LSN as the reflog prints it (argon help refs).
--working shows what applications changed in the working database and did
not commit (what argon status counts), in detail.

The cost follows the change, not the data: only entries written on either
side since the common history are read.`,
		Example: `  argon diff
  argon diff main
  argon diff main~1 main --collection users
  argon diff main@2026-11-25T10:00:00Z feature-x --stat
  argon diff --working --json
  argon diff main feature-x --exit-code >/dev/null || echo "they differ"`,
		Args: rangeArgs(0, 2, "at most two refs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.refs = args
			if o.working && len(args) > 0 {
				return usageErrorf("--working compares the working database with its head: it takes no refs")
			}
			if o.stat && o.nameOnly {
				return usageErrorf("--stat and --name-only cannot be used together")
			}
			return runDiff(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.branch, "branch", "", "the current branch for this command")
	cmd.Flags().StringVar(&o.coll, "collection", "", "compare only this collection")
	cmd.Flags().BoolVar(&o.stat, "stat", false, "per collection counts only")
	cmd.Flags().BoolVar(&o.nameOnly, "name-only", false, "one line per changed document or index, no values")
	cmd.Flags().BoolVar(&o.exitCode, "exit-code", false, "exit 1 when there are differences (as git diff --exit-code)")
	cmd.Flags().BoolVar(&o.working, "working", false, "show uncommitted changes in the working database")
	cmd.Flags().BoolVar(&o.canonical, "canonical", false, "print values as canonical Extended JSON (exact types)")
	return cmd
}

func runDiff(ctx context.Context, o *diffOptions) error {
	f := o.f
	if o.coll != "" {
		if err := workdb.ValidateCollection(o.coll); err != nil {
			return err
		}
	}
	var changes []diff.Change
	if o.working {
		_, _, w, err := f.openBranch(ctx, o.branch)
		if err != nil {
			return err
		}
		wc, err := workingChanges(ctx, w)
		if err != nil {
			return err
		}
		for _, c := range wc {
			if o.coll != "" && c.Coll != o.coll {
				continue
			}
			dc := diff.Change{Coll: c.Coll, Kind: c.Kind, Index: c.Index, ID: c.ID, From: c.Was, To: c.Doc}
			switch c.Kind {
			case workdb.Deleted:
				dc.Kind = diff.Removed
			case workdb.Modified:
				if !c.Index {
					dc.Fields = diff.Fields(c.Was, c.Doc)
				}
			}
			changes = append(changes, dc)
		}
	} else {
		r, project, err := f.project(ctx)
		if err != nil {
			return err
		}
		cur, err := f.branchOrCurrent(o.branch)
		if err != nil {
			return err
		}
		var from, to diff.Point
		switch len(o.refs) {
		case 0:
			b, err := r.Branch(ctx, project, cur)
			if err != nil {
				return err
			}
			tl, err := r.Timeline(ctx, b.Timeline)
			if err != nil {
				return err
			}
			head, err := r.Head(ctx, b.Timeline)
			if err != nil {
				return err
			}
			from, to = diff.Point{TL: tl.ID, LSN: tl.Base}, diff.Point{TL: tl.ID, LSN: head.LSN}
		default:
			if from, err = f.resolveRef(ctx, r, project, cur, o.refs[0]); err != nil {
				return err
			}
			spec := cur
			if len(o.refs) == 2 {
				spec = o.refs[1]
			}
			if to, err = f.resolveRef(ctx, r, project, cur, spec); err != nil {
				return err
			}
		}
		if changes, _, err = diff.Between(ctx, r, from, to, o.coll); err != nil {
			return err
		}
	}
	f.page()
	if err := printDiff(o, changes); err != nil {
		return err
	}
	if o.exitCode && len(changes) > 0 {
		return &exitError{code: ExitError}
	}
	return nil
}

// resolveRef turns a ref into a committed state (see package refs).
func (f *Factory) resolveRef(ctx context.Context, r *wal.Repo, project, cur, spec string) (diff.Point, error) {
	if spec == "" {
		return diff.Point{}, usageErrorf("the ref is empty: name a branch, a tag, BRANCH@LSN, BRANCH~N ... (argon help refs)")
	}
	p, err := f.resolvePoint(ctx, r, project, cur, spec)
	if err != nil {
		return diff.Point{}, err
	}
	s, err := slotOf(ctx, r, p)
	return diff.Point{TL: p.Branch.Timeline, LSN: p.LSN, Slot: s}, err
}

// slotOf reads the slot a ref's history starts at when the ref names one
// (refs.Point's SlotN: BRANCH~N, or a tag made from one), else nil.
func slotOf(ctx context.Context, r *wal.Repo, p *point) (*wal.Slot, error) {
	if p.SlotTL == "" {
		return nil, nil
	}
	return r.SlotAtLSN(ctx, p.SlotTL, p.LSN, p.SlotN)
}

type diffFieldJSON struct {
	Path string          `json:"path"`
	From json.RawMessage `json:"from,omitempty"`
	To   json.RawMessage `json:"to,omitempty"`
}

type diffJSON struct {
	Collection string          `json:"collection"`
	Change     string          `json:"change"`
	ID         json.RawMessage `json:"_id,omitempty"`
	Index      string          `json:"index,omitempty"`
	From       json.RawMessage `json:"from,omitempty"`
	To         json.RawMessage `json:"to,omitempty"`
	Fields     []diffFieldJSON `json:"fields,omitempty"`
}

// formatters print a value and a document as the options ask (relaxed or
// canonical Extended JSON); absent ones print as nothing.
func (o *diffOptions) formatters() (func(bson.RawValue) (json.RawMessage, error), func(bson.Raw) (json.RawMessage, error)) {
	val := func(v bson.RawValue) (json.RawMessage, error) {
		if v.Type == 0 {
			return nil, nil
		}
		return ejson.FormatValue(v, o.canonical)
	}
	doc := func(d bson.Raw) (json.RawMessage, error) {
		if d == nil {
			return nil, nil
		}
		s, err := ejson.Format(d, o.canonical)
		return json.RawMessage(s), err
	}
	return val, doc
}

// diffJSONs is changes as --json prints them.
func diffJSONs(o *diffOptions, changes []diff.Change) ([]diffJSON, error) {
	val, doc := o.formatters()
	out := []diffJSON{}
	for _, c := range changes {
		j := diffJSON{Collection: c.Coll, Change: c.Kind}
		var err error
		if c.Index {
			j.Index = c.ID.StringValue()
		} else if j.ID, err = val(c.ID); err != nil {
			return nil, err
		}
		if !o.nameOnly {
			if j.From, err = doc(c.From); err != nil {
				return nil, err
			}
			if j.To, err = doc(c.To); err != nil {
				return nil, err
			}
			for _, fl := range c.Fields {
				fj := diffFieldJSON{Path: fl.Path}
				if fj.From, err = val(fl.From); err != nil {
					return nil, err
				}
				if fj.To, err = val(fl.To); err != nil {
					return nil, err
				}
				j.Fields = append(j.Fields, fj)
			}
		}
		out = append(out, j)
	}
	return out, nil
}

// diffStat is the per-collection count of --stat.
type diffStat struct {
	Collection string `json:"collection"`
	Added      int    `json:"added"`
	Modified   int    `json:"modified"`
	Removed    int    `json:"removed"`
	Indexes    int    `json:"index_changes"`
}

// statOf counts changes per collection, sorted by collection.
func statOf(changes []diff.Change) []diffStat {
	per := map[string]*diffStat{}
	for _, c := range changes {
		n := per[c.Coll]
		if n == nil {
			n = &diffStat{Collection: c.Coll}
			per[c.Coll] = n
		}
		switch {
		case c.Index:
			n.Indexes++
		case c.Kind == diff.Added:
			n.Added++
		case c.Kind == diff.Removed:
			n.Removed++
		default:
			n.Modified++
		}
	}
	out := make([]diffStat, 0, len(per))
	for _, n := range per {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Collection < out[j].Collection })
	return out
}

func printDiff(o *diffOptions, changes []diff.Change) error {
	f := o.f
	val, doc := o.formatters()
	if f.JSON && o.stat {
		return f.IO.PrintJSON(statOf(changes))
	}
	if f.JSON {
		out, err := diffJSONs(o, changes)
		if err != nil {
			return err
		}
		return f.IO.PrintJSON(out)
	}
	w := f.IO.Out
	st := f.IO.Styles()
	if o.stat {
		for _, n := range statOf(changes) {
			line := fmt.Sprintf("%s: %d added, %d modified, %d removed", n.Collection, n.Added, n.Modified, n.Removed)
			if n.Indexes > 0 {
				line += ", " + plural(int64(n.Indexes), "index change")
			}
			fmt.Fprintln(w, line)
		}
		return nil
	}
	for _, c := range changes {
		what := ""
		if c.Index {
			what = "index " + c.ID.StringValue()
		} else {
			id, err := val(c.ID)
			if err != nil {
				return err
			}
			what = string(id)
		}
		if o.nameOnly {
			fmt.Fprintf(w, "%s\t%s\t%s\n", c.Kind, c.Coll, what)
			continue
		}
		style := st.Changed
		switch c.Kind {
		case diff.Added:
			style = st.Added
		case diff.Removed:
			style = st.Removed
		}
		fmt.Fprintln(w, style.Render(fmt.Sprintf("%s %s %s", c.Kind, c.Coll, what)))
		switch c.Kind {
		case diff.Added:
			d, err := doc(c.To)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, st.Added.Render("  + "+string(d)))
		case diff.Removed:
			d, err := doc(c.From)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, st.Removed.Render("  - "+string(d)))
		default:
			if c.Index {
				a, _ := doc(c.From)
				b, _ := doc(c.To)
				fmt.Fprintln(w, st.Removed.Render("  - "+string(a)))
				fmt.Fprintln(w, st.Added.Render("  + "+string(b)))
				continue
			}
			for _, fl := range c.Fields {
				a, err := val(fl.From)
				if err != nil {
					return err
				}
				b, err := val(fl.To)
				if err != nil {
					return err
				}
				switch {
				case a == nil:
					fmt.Fprintln(w, st.Added.Render(fmt.Sprintf("  + %s: %s", fl.Path, b)))
				case b == nil:
					fmt.Fprintln(w, st.Removed.Render(fmt.Sprintf("  - %s: %s", fl.Path, a)))
				default:
					fmt.Fprintln(w, st.Changed.Render(fmt.Sprintf("  ~ %s: %s -> %s", fl.Path, a, b)))
				}
			}
		}
	}
	return nil
}
