// Command argon is git for MongoDB data.
package main

import (
	"os"

	"github.com/argon-db/argon/cmd"
)

func main() { os.Exit(cmd.Main()) }
