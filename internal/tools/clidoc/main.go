// Command clidoc writes docs/CLI.md, argon's command reference, from the
// command tree. Run it from the repository root after changing a command:
//
//	go run ./internal/tools/clidoc
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/argon-db/argon/cmd"
)

func main() {
	var buf bytes.Buffer
	if err := cmd.WriteCLIDoc(&buf); err != nil {
		fmt.Fprintln(os.Stderr, "clidoc:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("docs/CLI.md", buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "clidoc:", err)
		os.Exit(1)
	}
}
