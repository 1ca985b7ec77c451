package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
)

func newStatusCmd(f *Factory) *cobra.Command {
	var branchFlag string
	var verbose, short bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the project, current branch, its head and the engine",
		Long: `Show the project, the current branch (or --branch), its head LSN, the LSN
it was forked at and its parent, the engine in use (embedded, or the
server's URI with the password hidden), the branch's working database
(on a terminal, marked when argon has not built it yet: an application
writing to it before then finds none of the branch's documents), and
the documents and indexes applications changed there that are not
committed yet (counts; each document, and each index with its keys and
options, with --verbose or --json).

Piped, each field is one "key<TAB>value" line; with --verbose each change
follows as "change<TAB>collection<TAB>_id", or for an index
"change<TAB>collection<TAB>index NAME<TAB>keys<TAB>options", followed by
"<TAB>was<TAB>keys<TAB>options" when it was redefined.`,
		Example: `  argon status
  argon status --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), f, branchFlag, verbose, short)
		},
	}
	cmd.Flags().StringVar(&branchFlag, "branch", "", "branch to describe (default: the current branch)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list each changed document and index")
	cmd.Flags().BoolVarP(&short, "short", "s", false, "short format, as git status -s: the branch, then one line per change (A, M, D)")
	return cmd
}

type statusInfo struct {
	Project  string           `json:"project"`
	Branch   string           `json:"branch"`
	Head     int64            `json:"head"`
	Base     int64            `json:"base"`
	Parent   string           `json:"parent"`
	Engine   store.EngineInfo `json:"engine"`
	Database string           `json:"database"`
	// Built says whether argon has built the working database yet
	// (argon connect, checkout or a write do): before, an application
	// writing to the name finds none of the branch's documents.
	Built   bool         `json:"built"`
	Changes *changesInfo `json:"changes"`
}

func runStatus(ctx context.Context, f *Factory, branchFlag string, verbose, short bool) error {
	r, b, w, err := f.openBranch(ctx, branchFlag)
	if err != nil {
		return err
	}
	branch, project := b.Name, b.Project
	tl, err := r.Timeline(ctx, b.Timeline)
	if err != nil {
		return err
	}
	s, err := f.Store(ctx)
	if err != nil {
		return err
	}
	// The comparison runs at the committed head (the read protocol makes
	// sure of it); only a branch without a working database reads its
	// head from the log.
	changes, at, err := workingChangesAt(ctx, w)
	if err != nil {
		return err
	}
	if w.TL != tl.ID {
		// The read followed a fast-forward to the branch's new timeline
		// (and repointed the branch): describe the branch from that one.
		if tl, err = r.Timeline(ctx, w.TL); err != nil {
			return err
		}
	}
	head := wal.Head{LSN: at}
	if at < 0 {
		if head, err = r.HeadOf(ctx, tl); err != nil {
			return err
		}
	}
	names := map[string]string{}
	if tl.Parent != "" {
		if names[tl.Parent], err = r.TimelineName(ctx, project, tl.Parent); err != nil {
			return err
		}
	}
	bi := describeOn(b, tl, head, names, branch)
	ci, err := summarize(changes)
	if err != nil {
		return err
	}
	info := statusInfo{Project: project, Branch: branch, Head: bi.Head, Base: bi.Base, Parent: bi.Parent,
		Engine: s.Engine(), Database: w.DB.Name(), Built: at >= 0, Changes: ci}
	if f.JSON {
		return f.IO.PrintJSON(info)
	}
	if short {
		// As git status -s: the branch, then a line per change.
		fmt.Fprintf(f.IO.Out, "## %s (head %d)\n", ui.Clean(info.Branch, false), info.Head)
		letter := map[string]string{"added": "A", "modified": "M", "deleted": "D", "created": "A", "dropped": "D"}
		for _, d := range ci.Documents {
			rel, _ := relaxedID(d.ID)
			fmt.Fprintf(f.IO.Out, "%s %s %s\n", letter[d.Change], ui.Clean(d.Collection, false), ui.Clean(rel, false))
		}
		for _, x := range ci.Indexes {
			l := letter[x.Change]
			if l == "" {
				l = "M"
			}
			fmt.Fprintf(f.IO.Out, "%s %s index %s\n", l, ui.Clean(x.Collection, false), ui.Clean(x.Name, false))
		}
		return nil
	}
	parent := info.Parent
	if parent == "" {
		parent = "-"
	}
	database := info.Database
	if !info.Built && f.IO.IsStdoutTTY() {
		// Piped, the value stays the name alone (--json has built).
		database += " (not built yet: `argon connect` builds it)"
	}
	rows := [][2]string{
		{"project", info.Project}, {"branch", info.Branch}, {"head", strconv.FormatInt(info.Head, 10)},
		{"base", strconv.FormatInt(info.Base, 10)}, {"parent", parent}, {"engine", s.Describe()},
		{"database", database}, {"changes", ci.line()},
	}
	st := f.IO.Styles()
	for _, row := range rows {
		if f.IO.IsStdoutTTY() {
			fmt.Fprintf(f.IO.Out, "%s %s\n", st.Header.Render(fmt.Sprintf("%-9s", row[0]+":")), row[1])
		} else {
			fmt.Fprintf(f.IO.Out, "%s\t%s\n", row[0], row[1])
		}
	}
	if verbose {
		for _, d := range ci.Documents {
			rel, _ := relaxedID(d.ID)
			if f.IO.IsStdoutTTY() {
				fmt.Fprintf(f.IO.Out, "  %-9s %s %s\n", d.Change+":", field(d.Collection), rel)
			} else {
				fmt.Fprintf(f.IO.Out, "%s\t%s\t%s\n", d.Change, field(d.Collection), rel)
			}
		}
		for _, x := range ci.Indexes {
			x.Collection, x.Name = field(x.Collection), field(x.Name)
			if f.IO.IsStdoutTTY() {
				was := ""
				if x.Was != nil {
					was = " (was " + x.Was.text(" ") + ")"
				}
				fmt.Fprintf(f.IO.Out, "  %-9s %s index %s %s%s\n", x.Change+":", x.Collection, x.Name, x.text(" "), was)
			} else {
				was := ""
				if x.Was != nil {
					was = "\twas\t" + x.Was.text("\t")
				}
				fmt.Fprintf(f.IO.Out, "%s\t%s\tindex %s\t%s%s\n", x.Change, x.Collection, x.Name, x.text("\t"), was)
			}
		}
	}
	return nil
}

// relaxedID turns a canonical Extended JSON _id into its relaxed form.
func relaxedID(canonical json.RawMessage) (string, error) {
	doc, err := ejson.ParseDocument("_id", []byte(`{"v":`+string(canonical)+`}`))
	if err != nil {
		return string(canonical), err
	}
	v, err := ejson.FormatValue(doc.Lookup("v"), false)
	return string(v), err
}

// field is a name an application chose (a collection's, an index's) as
// one field of a line: control characters, tabs included, escaped.
func field(s string) string { return strings.ReplaceAll(ui.Clean(s, false), "\t", `\t`) }
