package cmd

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func newReflogCmd(f *Factory) *cobra.Command {
	limit := 0
	cmd := &cobra.Command{
		Use:   "reflog [BRANCH]",
		Short: "Show every move of branch names, newest first",
		Long: `Show the reflog: every creation, deletion, rename, fast-forward and reset
of a branch name, with the timeline and LSN it pointed at before (OLD) and
after (NEW). A deleted branch's last head can be found here. Commits are
not listed: argon log shows them.

BRANCH@{N} names these positions in refs: @{0} the branch's head (a
deleted branch: its head when deleted), @{N} the OLD of its Nth newest
record, where it was just before that move.`,
		Example: `  argon reflog
  argon reflog feature-x --json
  argon reflog -n 5
  argon find users --at 'main@{1}'         # main before its last move (reset, fast-forward)
  argon reset 'main@{1}'                   # undo the last reset
  argon branch create back --from 'gone@{0}'  # a deleted branch, back`,
		Args: rangeArgs(0, 1, "an optional branch name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, project, err := f.project(ctx)
			if err != nil {
				return err
			}
			branch := ""
			if len(args) == 1 {
				branch = args[0]
			}
			recs, err := r.Reflog(ctx, project, branch)
			if err != nil {
				return err
			}
			if branch != "" && len(recs) == 0 {
				// A branch that ever existed has records (a deleted one
				// too): none means the name never was a branch.
				return &notFoundError{msg: fmt.Sprintf("no branch %q has ever existed in project %s", branch, project)}
			}
			if limit < 0 {
				return usageErrorf("--max-count must be 0 (all) or more, got %d", limit)
			}
			if limit > 0 && len(recs) > limit {
				recs = recs[:limit] // newest first
			}
			if f.JSON {
				out := make([]reflogJSON, len(recs))
				for i, rec := range recs {
					out[i] = reflogJSON{Branch: rec.Branch, Time: rec.Time, Action: rec.Action, Message: rec.Message}
					if rec.OldTL != "" {
						out[i].OldTL, out[i].OldLSN = &rec.OldTL, &rec.OldLSN
					}
					if rec.NewTL != "" {
						out[i].NewTL, out[i].NewLSN = &rec.NewTL, &rec.NewLSN
					}
				}
				return f.IO.PrintJSON(out)
			}
			t := f.IO.NewTable("TIME", "BRANCH", "ACTION", "OLD", "NEW")
			pos := func(tl string, lsn int64) string {
				if tl == "" {
					return "-"
				}
				return tl + "@" + strconv.FormatInt(lsn, 10)
			}
			for _, rec := range recs {
				t.Row(f.formatTime(rec.Time), rec.Branch, rec.Action, pos(rec.OldTL, rec.OldLSN), pos(rec.NewTL, rec.NewLSN))
			}
			if len(recs) == 0 && f.IO.IsStdoutTTY() {
				fmt.Fprintln(f.IO.ErrOut, "no reflog records")
				return nil
			}
			return t.Render()
		},
	}
	cmd.Flags().IntVarP(&limit, "max-count", "n", 0, "show at most this many records, the newest (0: all)")
	return cmd
}

// reflogJSON is a reflog record in --json: a position the branch did not
// have (before its creation, after its deletion) is null, where 0 would
// read as LSN 0.
type reflogJSON struct {
	Branch  string    `json:"branch"`
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	OldTL   *string   `json:"old_timeline"`
	OldLSN  *int64    `json:"old_lsn"`
	NewTL   *string   `json:"new_timeline"`
	NewLSN  *int64    `json:"new_lsn"`
	Message string    `json:"message,omitempty"`
}
