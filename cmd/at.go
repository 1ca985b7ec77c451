package cmd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// point is the state a command names: a branch's head, or a branch at a
// past LSN.
type point struct {
	Branch *wal.Branch
	LSN    int64
	Head   int64
}

// AtHead reports whether the point is the branch's committed head.
func (p *point) AtHead() bool { return p.LSN == p.Head }

var digits = regexp.MustCompile(`^[0-9]+$`)

// parseWhen reads the part after '@' (or an --at value without a branch):
// an LSN, an RFC3339 time, or a duration back from now ("10m", "2h30m",
// "3d"). It returns the LSN, or the time (lsn -1).
func parseWhen(s string, now time.Time) (int64, time.Time, error) {
	if digits.MatchString(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, time.Time{}, usageErrorf("invalid LSN %q", s)
		}
		return n, time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return -1, t, nil
		}
	}
	if d, ok := strings.CutSuffix(s, "d"); ok && digits.MatchString(d) {
		n, _ := strconv.Atoi(d)
		return -1, now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return -1, now.Add(-d), nil
	}
	return 0, time.Time{}, usageErrorf("invalid point %q: want an LSN, an RFC3339 time like 2026-11-25T10:00:00Z, or a duration back from now like 10m or 2d", s)
}

var timelineID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// resolvePoint resolves a ref, "BRANCH" or "BRANCH@WHEN" ("@WHEN" for
// defaultBranch), to a branch and an LSN on it.
func (f *Factory) resolvePoint(ctx context.Context, r *wal.Repo, project, defaultBranch, spec string) (*point, error) {
	name, when, hasAt := strings.Cut(spec, "@")
	if name == "" {
		name = defaultBranch
	}
	b, err := r.Branch(ctx, project, name)
	var nf *wal.NotFoundError
	if errors.As(err, &nf) && timelineID.MatchString(name) {
		// A timeline named directly, as the reflog shows a deleted branch.
		b, err = r.TimelineRef(ctx, project, name)
	}
	if err != nil {
		return nil, err
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		return nil, err
	}
	p := &point{Branch: b, LSN: head.LSN, Head: head.LSN}
	if !hasAt {
		return p, nil
	}
	lsn, t, err := parseWhen(when, time.Now())
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
	return p, nil
}

// reader answers reads at a point: the working database at a head, a
// materialised view of the log in the past.
type reader interface {
	Find(ctx context.Context, coll string, q workdb.Query) ([]bson.Raw, error)
	Count(ctx context.Context, coll string, filter bson.Raw) (int64, error)
	HasCollection(ctx context.Context, coll string) (bool, error)
	Collections(ctx context.Context) ([]workdb.CollectionInfo, error)
	Indexes(ctx context.Context, coll string) ([]bson.Raw, error)
}

// openReader resolves --branch and --at to something that answers reads.
func (f *Factory) openReader(ctx context.Context, branchFlag, at string) (reader, *point, error) {
	def, err := f.branchOrCurrent(branchFlag)
	if err != nil {
		return nil, nil, err
	}
	// --at takes WHEN (on --branch or the current branch) or a ref
	// BRANCH@WHEN.
	spec := def
	switch name, _, ok := strings.Cut(at, "@"); {
	case at == "":
	case !ok:
		spec = def + "@" + at
	case name != "" && branchFlag != "" && name != branchFlag:
		return nil, nil, usageErrorf("--branch %s and --at %s name different branches", branchFlag, at)
	default:
		spec = at
	}
	if at == "" {
		// The head: the working database answers, and the protocol's
		// read check finds the head itself; no need to look it up here.
		r, b, err := f.branchOf(ctx, def)
		if err != nil {
			return nil, nil, err
		}
		w, err := f.workingDB(ctx, r, b)
		return w, &point{Branch: b, LSN: -1, Head: -1}, err
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return nil, nil, err
	}
	p, err := f.resolvePoint(ctx, r, project, def, spec)
	if err != nil {
		return nil, nil, err
	}
	// An explicit --at is always committed state, read from the log, even
	// when it names the head: the working database may hold changes an
	// application has not committed.
	owner, err := r.Owner(ctx, p.Branch.Timeline, p.LSN)
	if err != nil {
		return nil, nil, err
	}
	v, err := workdb.OpenView(ctx, r, owner, p.LSN)
	if err != nil {
		return nil, nil, err
	}
	if v.Built {
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: materialised %s from the log; later reads of it reuse it (argon gc drops it)\n", describePoint(p))
	}
	return v, p, nil
}

func describePoint(p *point) string {
	if p.LSN < 0 {
		return "branch " + p.Branch.Name
	}
	return fmt.Sprintf("%s@%d", p.Branch.Name, p.LSN)
}
