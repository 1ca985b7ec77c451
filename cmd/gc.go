package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/workdb"
)

func newGCCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Drop cached states (time-travel views)",
		Long: `Drop every materialised past state that time travel (--at) cached. They are
caches of the log: the next query at such a point builds its view again.
Scratch databases that an interrupted update --many left behind are dropped
too. Working databases of branches are kept.`,
		Example: `  argon gc`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, _, err := f.project(ctx)
			if err != nil {
				return err
			}
			n, err := workdb.DropViews(ctx, r)
			if err != nil {
				return err
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]int{"views_dropped": n})
			}
			fmt.Fprintf(f.IO.Out, "dropped %d cached views\n", n)
			return nil
		},
	}
}
