package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// A client of argon serve records the token after its write as clean only
// when the token moved by the client's own writes: not when another
// client's write reached the database between the two tokens, nor when
// the database was not clean at the first.
func TestKeepCleanServedCountsOwnWrites(t *testing.T) {
	for _, tc := range []struct {
		name         string
		own, foreign int // writes to the database between the two tokens
		ownAll       int // own writes the guard counts against every database
		foreignAll   int
		cleanAtStart bool
		want         bool
	}{
		{"own writes only", 3, 0, 0, 0, true, true},
		{"no write", 0, 0, 0, 0, true, true},
		{"a foreign write", 3, 1, 0, 0, true, false},
		{"a foreign write to every database", 3, 0, 0, 1, true, false},
		{"an own write to every database", 3, 0, 1, 0, true, true},
		{"not clean at the start", 3, 0, 0, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var all, gen int64 = 10, 20
			f := &DBFiles{clean: filepath.Join(t.TempDir(), "clean.json"), record: true, own: newOwnWrites(), first: map[string]tokenCounts{}}
			f.token = func(string) (string, error) { return fmt.Sprintf("serve:e:%d:%d", all, gen), nil }
			fp, err := f.Fingerprint("w")
			if err != nil {
				t.Fatal(err)
			}
			if tc.cleanAtStart {
				if err := f.SetClean("w", fp); err != nil {
					t.Fatal(err)
				}
			}
			f.own.gen["w"] += int64(tc.own)
			f.own.gen[""] += int64(tc.ownAll)
			gen += int64(tc.own + tc.foreign)
			all += int64(tc.ownAll + tc.foreignAll)
			if err := f.KeepClean("w"); err != nil {
				t.Fatal(err)
			}
			now := fmt.Sprintf("serve:e:%d:%d", all, gen)
			if got := f.Clean("w") == now; got != tc.want {
				t.Errorf("recorded %q with the token at %q: recorded the new token %v, want %v", f.Clean("w"), now, got, tc.want)
			}
		})
	}
}
