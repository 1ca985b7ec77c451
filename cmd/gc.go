package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

func newGCCmd(f *Factory) *cobra.Command {
	var images bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Drop cached states (time-travel views, image snapshots)",
		Long: `Drop every materialised past state that time travel (--at) cached, of
every project in the metadata database. They are caches of the log: the
next query at such a point builds its view again.
Scratch databases that an interrupted update --many left on a server are
dropped too (on the embedded engine its scratch folder goes when the next
update --many starts), and the pieces of image snapshots that were never
completed. Working databases of branches are kept. The log entries an
interrupted write left (an import stopped part way) are deleted by argon
fsck --repair, once the branch has a commit after them.

With --images, every image snapshot is dropped too (of every project in the
metadata database): reads of past states then replay the log from its
start until new images are taken (argon snapshot, or the next commits).`,
		Example: `  argon gc
  argon gc --images`,
		Args: exactArgs(0, "no arguments"),
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
			keep := func(*wal.Image) bool { return true }
			if images {
				keep = nil
			}
			dropped, _, err := r.DropImages(ctx, keep)
			if err != nil {
				return err
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]int{"views_dropped": n, "images_dropped": dropped})
			}
			fmt.Fprintf(f.IO.Out, "dropped %s\n", plural(int64(n), "cached view"))
			if images {
				fmt.Fprintf(f.IO.Out, "dropped %s\n", plural(int64(dropped), "image snapshot"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&images, "images", false, "drop every image snapshot too")
	return cmd
}
