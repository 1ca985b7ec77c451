package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/argon-db/argon/internal/ui"
)

// WriteCLIDoc writes the reference of every command and help topic, as one
// Markdown page (docs/CLI.md), generated from the command tree by cobra's
// doc generator so that it cannot drift from `argon help`.
func WriteCLIDoc(w io.Writer) error {
	root := NewRootCmd(&Factory{IO: ui.System()})
	root.DisableAutoGenTag = true
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	fmt.Fprint(w, "# argon command reference\n\n"+
		"Generated from the command tree (`go run ./internal/tools/clidoc`); "+
		"a test fails when this page and `argon help` disagree. "+
		"The same text is printed by `argon help COMMAND` and `argon COMMAND --help`.\n\n")
	// One page, so cobra's links to per-command files become anchors.
	link := func(file string) string {
		return "#" + strings.ReplaceAll(strings.TrimSuffix(file, ".md"), "_", "-")
	}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if c.Hidden || c.Name() == "help" {
			return nil
		}
		if err := doc.GenMarkdownCustom(c, w, link); err != nil {
			return err
		}
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}
