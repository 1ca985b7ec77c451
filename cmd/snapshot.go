package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
)

func newSnapshotCmd(f *Factory) *cobra.Command {
	var branch string
	cmd := &cobra.Command{
		Use:   "snapshot [REF]",
		Short: "Keep an image of a state, so reads of it and after it replay less log",
		Long: `Store the whole state at REF (default: the current branch's head) as an
image snapshot. Reading a state (find --at, a checkout that builds a working
database, diff against an old state) starts from the newest image on the
branch's history at or below it, and replays only the log entries above
the image, instead of the whole history.

Images are caches of the log: they never change what a read returns, and
argon gc --images drops them. A commit takes one by itself when its branch
has grown snapshot-every log entries (default 10000; ARGON_SNAPSHOT_EVERY
or "snapshot-every" in the config, 0 for never) past its newest image, and
at least as many entries as that image holds documents.`,
		Example: `  argon snapshot
  argon snapshot main@1200
  argon snapshot list`,
		Args: rangeArgs(0, 1, "at most one ref"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, project, err := f.project(ctx)
			if err != nil {
				return err
			}
			cur, spec, err := f.refArg(branch, args)
			if err != nil {
				return err
			}
			p, err := f.resolvePoint(ctx, r, project, cur, spec)
			if err != nil {
				return err
			}
			if p.LSN == 0 {
				return fmt.Errorf("%s is the empty state before the first commit: there is nothing to keep", spec)
			}
			before, err := r.NearestImage(ctx, p.Branch.Timeline, p.LSN)
			if err != nil {
				return err
			}
			img, err := r.TakeImage(ctx, project, p.Branch.Timeline, p.LSN)
			if err != nil {
				return err
			}
			existed := before != nil && before.ID == img.ID && before.Token == img.Token
			if f.JSON {
				// Named as snapshot list names it: by the branch whose
				// timeline holds the image, none when no branch does (a
				// state from before a reset: review39).
				name, err := imageBranch(ctx, r, project, img.TL)
				if err != nil {
					return err
				}
				return f.IO.PrintJSON(map[string]any{"image": imageJSONOf(img, name), "existed": existed})
			}
			if existed {
				fmt.Fprintf(f.IO.Out, "an image of %s@%d already exists\n", p.Branch.Name, p.LSN)
				return nil
			}
			fmt.Fprintf(f.IO.Out, "saved an image of %s@%d: %s, %s, %s\n", p.Branch.Name, p.LSN,
				plural(img.Docs, "document"), plural(img.Indexes, "index"), sizeOf(img.Bytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&branch, "branch", "", "branch a bare LSN is on (default: the current branch)")
	cmd.AddCommand(newSnapshotListCmd(f))
	return cmd
}

type imageJSON struct {
	Branch   string    `json:"branch,omitempty"`
	Timeline string    `json:"timeline"`
	LSN      int64     `json:"lsn"`
	Docs     int64     `json:"documents"`
	Indexes  int64     `json:"indexes"`
	Bytes    int64     `json:"bytes"`
	Chunks   int       `json:"chunks"`
	Created  time.Time `json:"created"`
}

func imageJSONOf(img *wal.Image, branch string) imageJSON {
	return imageJSON{Branch: branch, Timeline: img.TL, LSN: img.LSN, Docs: img.Docs, Indexes: img.Indexes,
		Bytes: img.Bytes, Chunks: img.Chunks, Created: img.Time.UTC()}
}

// imageBranch is the branch whose timeline is tl, as snapshot list names
// an image's: "" when no branch points at it now.
func imageBranch(ctx context.Context, r *wal.Repo, project, tl string) (string, error) {
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return "", err
	}
	names, err := r.NamesOf(ctx, project, bs, []string{})
	if err != nil {
		return "", err
	}
	return names[tl], nil
}

func newSnapshotListCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the image snapshots of the project",
		Long: `List the project's image snapshots: the branch whose history holds each
(a timeline id when no branch points at it any more), its LSN, the
documents and indexes it holds and its size.`,
		Example: `  argon snapshot list
  argon snapshot list --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, project, err := f.project(ctx)
			if err != nil {
				return err
			}
			imgs, err := r.Images(ctx, project)
			if err != nil {
				return err
			}
			// The branches that point at each image's timeline now: a
			// deleted branch's name is no ref (argon log labels its
			// history "NAME (deleted)"; here its timeline id names it).
			bs, err := r.Branches(ctx, project)
			if err != nil {
				return err
			}
			names, err := r.NamesOf(ctx, project, bs, []string{})
			if err != nil {
				return err
			}
			if f.JSON {
				out := make([]imageJSON, len(imgs))
				for i := range imgs {
					out[i] = imageJSONOf(&imgs[i], names[imgs[i].TL])
				}
				return f.IO.PrintJSON(out)
			}
			t := f.IO.NewTable("BRANCH", "LSN", "DOCUMENTS", "INDEXES", "SIZE", "CREATED")
			for i := range imgs {
				img := &imgs[i]
				name := names[img.TL]
				if name == "" {
					name = "timeline:" + img.TL
				}
				t.Row(name, strconv.FormatInt(img.LSN, 10), strconv.FormatInt(img.Docs, 10),
					strconv.FormatInt(img.Indexes, 10), sizeOf(img.Bytes), img.Time.UTC().Format(time.RFC3339))
			}
			return t.Render()
		},
	}
}

// sizeOf prints a byte count for people.
func sizeOf(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "x") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
