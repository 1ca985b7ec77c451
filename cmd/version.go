package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by the release build (goreleaser ldflags).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func buildInfo() (v, c, d string) {
	v, c, d = version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			}
		}
	}
	return v, c, d
}

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print argon's version",
		Example: `  argon version --json`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.JSON {
				v, c, d := buildInfo()
				return f.IO.PrintJSON(map[string]string{"version": v, "commit": c, "date": d, "go": runtime.Version()})
			}
			fmt.Fprintln(f.IO.Out, versionLine())
			return nil
		},
	}
}

// versionLine is what argon version and argon --version print.
func versionLine() string {
	v, c, d := buildInfo()
	line := "argon " + v
	if c != "" {
		line += " (" + c
		if d != "" {
			line += ", " + d
		}
		line += ")"
	}
	return line
}
