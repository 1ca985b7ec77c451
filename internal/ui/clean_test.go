package ui

import "testing"

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		keep bool
		want string
	}{
		{"plain text", false, "plain text"},
		{"red \x1b[31mX\x1b[0m", false, `red \x1b[31mX\x1b[0m`},
		{"over\rwrite", false, `over\rwrite`},
		{"two\nlines", false, `two\nlines`},
		{"two\nlines", true, "two\nlines"},
		{"tab\tok", false, "tab\tok"},
		{"c1 \u009b", false, `c1 \u009b`},
		{"unicode é ✓", false, "unicode é ✓"},
	} {
		if got := Clean(tc.in, tc.keep); got != tc.want {
			t.Errorf("Clean(%q, %v) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
}
