// Package refs turns a ref as users write it into a committed state, in
// one place: BRANCH, BRANCH@LSN, BRANCH@TIME (RFC3339, a date, or 10m/3d
// back from now), BRANCH~N (N commits back along the branch's log, after
// any @WHEN; ~ and ^ alone are one commit, as in git), BRANCH@{N} (a reflog position), TAG and TAG~N (a branch of
// the same name comes first), and TIMELINE@LSN (a timeline id, as the
// reflog prints a deleted branch). A missing BRANCH means the default
// branch.
package refs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/argon-db/argon/internal/wal"
)

// Point is a resolved ref: Branch (or a timeline standing for one) at LSN,
// whose committed head is Head.
type Point struct {
	Branch *wal.Branch
	LSN    int64
	Head   int64
	// HeadSlot is the slot of Head as Resolve read it (nil for a ref
	// read from the reflog).
	HeadSlot *wal.Slot
	// Tag is the tag the ref named, if it named one (Branch then stands
	// for the tag's timeline).
	Tag *wal.Tag
	// SlotTL and SlotN, for a ref that walked back commits (BRANCH~N), are
	// the slot of the log just below the last commit it went back over.
	// A commit that changed nothing (a merge that brought no change) has
	// the LSN of the one below it: only the slot tells the state before it
	// from the state after it, and a fork there (argon reset) leaves the
	// commit out of the history. SlotTL is "" otherwise.
	SlotTL string
	SlotN  int64
}

// AtHead reports whether the point is the branch's head.
func (p *Point) AtHead() bool { return p.LSN == p.Head }

// SyntaxError is a ref that cannot be read.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

// RangeError is a ref past the history it names (an LSN past the head is a
// wal.RangeError).
type RangeError struct{ Msg string }

func (e *RangeError) Error() string { return e.Msg }

var (
	digits     = regexp.MustCompile(`^[0-9]+$`)
	timelineID = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

// maxDays is the furthest back a relative time may reach (a duration
// holds about 292 years).
const maxDays = 100000

// ParseWhen reads the part after '@': an LSN (lsn >= 0), or a time (lsn
// -1 and t set).
func ParseWhen(s string, now time.Time) (lsn int64, t time.Time, err error) {
	if digits.MatchString(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, time.Time{}, &SyntaxError{Msg: fmt.Sprintf("invalid LSN %q", s)}
		}
		return n, time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return -1, t, nil
		}
	}
	if d, ok := strings.CutSuffix(s, "d"); ok && digits.MatchString(d) {
		n, err := strconv.Atoi(d)
		if err != nil || n > maxDays {
			return 0, time.Time{}, &SyntaxError{Msg: fmt.Sprintf("invalid point %q: at most %d days back", s, maxDays)}
		}
		return -1, now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return -1, now.Add(-d), nil
	}
	return 0, time.Time{}, &SyntaxError{Msg: fmt.Sprintf("invalid point %q: want an LSN, an RFC3339 time like 2026-11-25T10:00:00Z, or a duration back from now like 10m or 2d", s)}
}

// Resolve turns spec into a committed state of project.
func Resolve(ctx context.Context, r *wal.Repo, project, defaultBranch, spec string, now time.Time) (*Point, error) {
	body, back, err := commitsBack(spec)
	if err != nil {
		return nil, err
	}
	name, when, hasAt := strings.Cut(body, "@")
	if name == "" || name == "HEAD" {
		name = defaultBranch
	}
	if m := reflogPos.FindStringSubmatch(when); hasAt && m != nil {
		p, err := resolveReflog(ctx, r, project, name, m[1], spec)
		if err != nil || back == 0 {
			return p, err
		}
		return walkBack(ctx, r, p, back, spec)
	}
	b, err := r.Branch(ctx, project, name)
	var tag *wal.Tag
	var nf *wal.NotFoundError
	if errors.As(err, &nf) {
		switch t, terr := r.Tag(ctx, project, name); {
		case terr == nil:
			tag, err = t, nil
			b = &wal.Branch{Project: project, Name: name, Timeline: t.TL}
		case !errors.As(terr, &nf):
			return nil, terr
		case timelineID.MatchString(name):
			b, err = r.TimelineRef(ctx, project, name)
		}
	}
	if err != nil {
		return nil, err
	}
	if tag != nil && hasAt {
		return nil, &SyntaxError{Msg: fmt.Sprintf("invalid ref %q: %s is a tag, which names one state: write %s or %s~N", spec, name, name, name)}
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		return nil, err
	}
	p := &Point{Branch: b, LSN: head.LSN, Head: head.LSN, HeadSlot: head.Slot, Tag: tag}
	if tag != nil {
		p.LSN, p.SlotTL, p.SlotN = tag.LSN, tag.SlotTL, tag.SlotN
	}
	if hasAt {
		lsn, t, err := ParseWhen(when, now)
		if err != nil {
			return nil, err
		}
		if lsn < 0 {
			if lsn, err = r.LSNAt(ctx, b.Timeline, head.LSN, t, "branch "+name); err != nil {
				return nil, err
			}
		}
		if lsn > head.LSN {
			return nil, &wal.RangeError{Ref: "branch " + name, LSN: lsn, Head: head.LSN}
		}
		p.LSN = lsn
	}
	if back > 0 {
		return walkBack(ctx, r, p, back, spec)
	}
	return p, nil
}

// backSuffix is what ends a ref that goes commits back: ~N, and as in
// git ~ and ^ for one commit each (HEAD~, HEAD^^, main~2^).
var backSuffix = regexp.MustCompile(`(?:~[0-9]*|\^)+$`)

// commitsBack splits spec into the ref it goes back from and how many
// commits back.
func commitsBack(spec string) (body string, back int, err error) {
	loc := backSuffix.FindStringIndex(spec)
	if loc == nil {
		if strings.Contains(spec, "~") {
			return "", 0, &SyntaxError{Msg: fmt.Sprintf("invalid ref %q: want BRANCH~N with N a whole number", spec)}
		}
		return spec, 0, nil
	}
	suffix := spec[loc[0]:]
	for i := 0; i < len(suffix); {
		if suffix[i] == '^' {
			back, i = back+1, i+1
			continue
		}
		j := i + 1
		for j < len(suffix) && suffix[j] >= '0' && suffix[j] <= '9' {
			j++
		}
		n := 1
		if j > i+1 {
			if n, err = strconv.Atoi(suffix[i+1 : j]); err != nil || n > 1<<30 {
				return "", 0, &SyntaxError{Msg: fmt.Sprintf("invalid ref %q: want BRANCH~N with N a whole number", spec)}
			}
		}
		back, i = back+n, j
	}
	return spec[:loc[0]], back, nil
}

// walkBack moves p back commits along its branch's log.
func walkBack(ctx context.Context, r *wal.Repo, p *Point, back int, spec string) (*Point, error) {
	seen := 0
	err := r.WalkLog(ctx, p.Branch.Timeline, p.LSN, func(it wal.LogItem) bool {
		seen++
		p.LSN = it.From - 1
		p.SlotTL, p.SlotN = it.TL, it.N-1
		return seen < back
	})
	if err != nil {
		return nil, err
	}
	if seen < back {
		return nil, &RangeError{Msg: fmt.Sprintf("ref %q: %s has only %d commits", spec, p.Branch.Name, seen)}
	}
	return p, nil
}

var reflogPos = regexp.MustCompile(`^\{([0-9]+)\}$`)

// followRenames returns a branch's reflog records (newest first) as
// BRANCH@{N} counts them: a rename moves no position, so its records are
// left out, and the records the branch made under the name it was renamed
// from (older than the rename) follow, as git's reflog follows a branch
// -m (found by a new-user run: reset then branch -m made NEW@{1} refuse).
// Records of the name older than a "rename from" belong to an earlier
// branch of that name and are left out too. depth bounds a chain of
// renames.
func followRenames(ctx context.Context, r *wal.Repo, project string, recs []wal.ReflogRecord, depth int) ([]wal.ReflogRecord, error) {
	var out []wal.ReflogRecord
	for _, rec := range recs {
		if depth > 0 && strings.HasPrefix(rec.Action, wal.RenameToPrefix) {
			// The rename just followed, seen from the old name. (A
			// name renamed away keeps it: its last position, as a
			// deleted branch's delete.)
			continue
		}
		from, ok := strings.CutPrefix(rec.Action, wal.RenameFromPrefix)
		if !ok {
			out = append(out, rec)
			continue
		}
		if depth >= 100 {
			break
		}
		older, err := r.Reflog(ctx, project, from)
		if err != nil {
			return nil, err
		}
		var below []wal.ReflogRecord
		for _, o := range older {
			if o.Seq < rec.Seq {
				below = append(below, o)
			}
		}
		rest, err := followRenames(ctx, r, project, below, depth+1)
		if err != nil {
			return nil, err
		}
		return append(out, rest...), nil
	}
	return out, nil
}

// resolveReflog resolves BRANCH@{N}, a position from the reflog: N = 0 is
// the branch's head (or, for a deleted branch, its head when it was
// deleted); N >= 1 is where the branch was just before its Nth most recent
// move (fast-forward, rename, delete), as the reflog's OLD column shows.
func resolveReflog(ctx context.Context, r *wal.Repo, project, name, num, spec string) (*Point, error) {
	n, err := strconv.Atoi(num)
	if err != nil {
		return nil, &SyntaxError{Msg: fmt.Sprintf("invalid ref %q: want BRANCH@{N} with N a whole number", spec)}
	}
	recs, err := r.Reflog(ctx, project, name)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, &wal.NotFoundError{Kind: "branch", Name: name}
	}
	if recs, err = followRenames(ctx, r, project, recs, 0); err != nil {
		return nil, err
	}
	at := func(tl string, lsn int64) (*Point, error) {
		head, err := r.Head(ctx, tl)
		if err != nil {
			return nil, err
		}
		return &Point{Branch: &wal.Branch{Project: project, Name: name, Timeline: tl}, LSN: lsn, Head: head.LSN}, nil
	}
	if n == 0 {
		if b, err := r.Branch(ctx, project, name); err == nil {
			head, err := r.Head(ctx, b.Timeline)
			if err != nil {
				return nil, err
			}
			return &Point{Branch: b, LSN: head.LSN, Head: head.LSN}, nil
		} else if !errors.As(err, new(*wal.NotFoundError)) {
			return nil, err
		}
		n = 1 // a deleted branch: where it was when deleted
	}
	if n > len(recs) || recs[n-1].OldTL == "" {
		// N counts every record, and a record of a creation holds no
		// earlier position: name the Ns that do.
		var earlier []string
		for i, rec := range recs {
			if rec.OldTL != "" {
				earlier = append(earlier, fmt.Sprintf("%s@{%d}", name, i+1))
			}
		}
		switch {
		case len(earlier) == 0:
			return nil, &RangeError{Msg: fmt.Sprintf("ref %q: the reflog of %s holds no earlier position (argon reflog %s)", spec, name, name)}
		case len(earlier) > 5:
			earlier = append(earlier[:5], fmt.Sprintf("and %d more", len(earlier)-5))
		}
		return nil, &RangeError{Msg: fmt.Sprintf("ref %q: the reflog of %s holds no position there; its earlier positions are %s (argon reflog %s)", spec, name, strings.Join(earlier, ", "), name)}
	}
	return at(recs[n-1].OldTL, recs[n-1].OldLSN)
}
