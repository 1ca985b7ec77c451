package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workspace"
)

type initOptions struct {
	f        *Factory
	project  string
	existing bool
}

func newInitCmd(f *Factory) *cobra.Command {
	o := &initOptions{f: f}
	cmd := &cobra.Command{
		Use:   "init [PROJECT]",
		Short: "Create a workspace and a project with branch main",
		Long: `Create a workspace (.argon/ in the current folder) and a project with one
branch, main, at LSN 0.

With no server configured the project lives in the embedded engine under
.argon/data. With --uri (or ARGON_URI) it lives on that MongoDB deployment and
the URI is saved in .argon/config.yaml (mode 0600). PROJECT defaults to the
folder's name. --existing attaches the folder to a project that already
exists on the server instead of creating one.`,
		Example: `  argon init shop
  argon init shop --uri mongodb://localhost:27017
  argon init shop --uri "$ARGON_URI" --existing`,
		Args: rangeArgs(0, 1, "at most one project name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if args[0] == "" {
					return usageErrorf("project name must not be empty: give a name, or none to name the project after the folder")
				}
				o.project = args[0]
			}
			return runInit(cmd.Context(), o, cmd.Flags().Changed("uri"))
		},
	}
	cmd.Flags().BoolVar(&o.existing, "existing", false, "attach to a project that already exists on the server")
	return cmd
}

var unsafeProjectChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func runInit(ctx context.Context, o *initOptions, uriFromFlag bool) error {
	f := o.f
	name := o.project
	if name == "" {
		name = strings.Trim(unsafeProjectChars.ReplaceAllString(filepath.Base(f.Dir), "-"), "-_")
		if name == "" {
			return usageErrorf("cannot name a project after folder %q: give a name, `argon init NAME`", filepath.Base(f.Dir))
		}
	}
	if err := wal.ValidateProject(name); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(f.Dir, workspace.DirName, "config.yaml")); err == nil {
		return withHint(fmt.Errorf("a workspace already exists in %s", filepath.Join(f.Dir, workspace.DirName)),
			"argon status shows its project and branch")
	}
	cfg := workspace.Config{Project: name, DB: f.DB}
	if uriFromFlag {
		cfg.URI = f.URI
	}
	ws, err := workspace.Create(f.Dir, cfg)
	if err != nil {
		return err
	}
	f.Workspace = ws
	ok := false
	defer func() {
		if !ok {
			f.Close()
			_ = ws.Remove()
		}
	}()
	r, err := f.Repo(ctx)
	if err != nil {
		return err
	}
	if err := r.EnsureSchema(ctx); err != nil {
		return err
	}
	if s, err := f.Store(ctx); err == nil {
		_ = s.IndexIDs(r.DB.Name()) // as in Repo, now that the collections exist
	}
	if o.existing {
		if _, err := r.Project(ctx, name); err != nil {
			return err
		}
	} else if _, _, err := r.CreateProject(ctx, name); err != nil {
		var ee *wal.ExistsError
		if errors.As(err, &ee) {
			if f.URI != "" {
				// The hint names no URI: it may hold a password.
				return withHint(err, "to work on it from this folder, run `argon init "+name+" --uri URI --existing` with the same URI")
			}
			return withHint(err, "to work on it from this folder, run `argon init "+name+" --existing`")
		}
		return err
	}
	ok = true
	s, _ := f.Store(ctx)
	if f.JSON {
		return f.IO.PrintJSON(map[string]any{
			"project": name, "branch": "main", "workspace": ws.Dir(), "engine": s.Engine(),
		})
	}
	verb := "Initialized"
	if o.existing {
		verb = "Attached"
	}
	fmt.Fprintf(f.IO.Out, "%s argon project %s in %s (engine: %s)\n", verb, name, ws.Dir(), s.Describe())
	fmt.Fprintf(f.IO.Out, "On branch main\n")
	return nil
}
