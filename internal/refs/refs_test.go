package refs

import (
	"errors"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		lsn  int64
		t    time.Time
		fail bool
	}{
		{in: "42", lsn: 42},
		{in: "0", lsn: 0},
		{in: "2026-11-25T10:00:00Z", lsn: -1, t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		{in: "2026-11-24", lsn: -1, t: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{in: "10m", lsn: -1, t: now.Add(-10 * time.Minute)},
		{in: "3d", lsn: -1, t: now.Add(-72 * time.Hour)},
		{in: "yesterday", fail: true},
		{in: "-5", fail: true},
		{in: "99999999999999999999", fail: true},
		{in: "", fail: true},
		{in: "99999999d", fail: true},
	}
	for _, c := range cases {
		lsn, tm, err := ParseWhen(c.in, now)
		var se *SyntaxError
		if c.fail {
			if !errors.As(err, &se) {
				t.Errorf("%q: %v, want a syntax error", c.in, err)
			}
			continue
		}
		if err != nil || lsn != c.lsn || !tm.Equal(c.t) {
			t.Errorf("%q: %d %v %v, want %d %v", c.in, lsn, tm, err, c.lsn, c.t)
		}
	}
}

// FuzzParseWhen: any input is either read or refused with a SyntaxError;
// nothing panics.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"1", "2026-11-25T10:00:00Z", "10m", "3d", "x", "~", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lsn, _, err := ParseWhen(s, time.Now())
		var se *SyntaxError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("%q: %v", s, err)
		}
		if err == nil && lsn < -1 {
			t.Fatalf("%q: LSN %d", s, lsn)
		}
	})
}
