// Package testsize sizes the long tests of the suite. By default they run
// at the size CI runs on every change, chosen so that the README's
// `go test ./...` takes under five minutes on an idle 2-core machine.
// With ARGON_TEST_SIZE=nightly they run at the larger size of a nightly
// run (scripts/nightly.sh): more random histories, operations, rounds and
// every point of the checks that CI samples. A test's own flag, where it
// has one (-model-ops, -crash-kills, ...), overrides both.
package testsize

import (
	"fmt"
	"os"
)

// nightly is read once: a value other than "", "ci" or "nightly" is a
// mistake in the run's set-up, not a size.
var nightly = func() bool {
	switch v := os.Getenv("ARGON_TEST_SIZE"); v {
	case "", "ci":
		return false
	case "nightly":
		return true
	default:
		panic(fmt.Sprintf("ARGON_TEST_SIZE=%q: want ci or nightly", v))
	}
}()

// Nightly reports whether the suite runs at its nightly size.
func Nightly() bool { return nightly }

// Pick returns ci, or nightly in a nightly run.
func Pick(ci, nightlySize int) int {
	if nightly {
		return nightlySize
	}
	return ci
}

// Stride is the step of a check that visits every point in a nightly
// run and every k-th point (a different subset per offset) in CI.
func Stride(k int) int { return Pick(k, 1) }
