package cmd

import (
	"bytes"
	"os"
	"testing"
)

// TestCLIDocIsCurrent fails when docs/CLI.md no longer matches the command
// tree: regenerate it with `go run ./internal/tools/clidoc`.
func TestCLIDocIsCurrent(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCLIDoc(&buf); err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		t.Fatal("docs/CLI.md is out of date with the command tree: run `go run ./internal/tools/clidoc` and commit the result")
	}
}
