package cmd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/refs"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// point is the state a command names: a branch's head, or a branch at a
// past LSN.
type point = refs.Point

// resolvePoint resolves a ref (see package refs) for defaultBranch.
// A ref no branch or tag could be named is a usage error (invalidRef).
func (f *Factory) resolvePoint(ctx context.Context, r *wal.Repo, project, defaultBranch, spec string) (*point, error) {
	p, err := f.resolveAt(ctx, r, project, defaultBranch, spec)
	if err != nil {
		return nil, invalidRef(err, spec)
	}
	return p, nil
}

// resolveAt is resolvePoint for --at, which tells a point that does not
// read from a name not found itself (openReader).
func (f *Factory) resolveAt(ctx context.Context, r *wal.Repo, project, defaultBranch, spec string) (*point, error) {
	p, err := refs.Resolve(ctx, r, project, defaultBranch, spec, time.Now())
	return p, suggestBranch(ctx, r, project, err)
}

// invalidRef turns err, spec's resolution failing on a branch not found,
// into a ref that does not read (exit 2) when no branch or tag could have
// that name (HEAD^2, a..b); other errors are returned as they are.
func invalidRef(err error, spec string) error {
	var nf *wal.NotFoundError
	if errors.As(err, &nf) && nf.Kind == "branch" && nf.Name != "" && !timelineForm.MatchString(nf.Name) {
		var bad *wal.InvalidNameError
		if errors.As(wal.ValidateBranch("branch", nf.Name), &bad) {
			return &refs.SyntaxError{Msg: fmt.Sprintf("invalid ref %q: %s (argon help refs)", spec, bad.Why)}
		}
	}
	return err
}

// timelineForm is a timeline id, which refs take for a deleted branch's
// history (TIMELINE@LSN).
var timelineForm = regexp.MustCompile(`^[0-9a-f]{24}$`)

// reader answers reads at a point: the working database at a head, a
// materialised view of the log in the past.
type reader interface {
	FindTo(ctx context.Context, coll string, q workdb.Query, d *workdb.Docs) error
	Count(ctx context.Context, coll string, filter bson.Raw) (int64, error)
	HasCollection(ctx context.Context, coll string) (bool, error)
	Collections(ctx context.Context) ([]workdb.CollectionInfo, error)
	CollectionNames(ctx context.Context) ([]string, error)
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
	case !ok && strings.Contains(at, "~"):
		spec = at // BRANCH~N
	case !ok && isWhen(at):
		spec = def + "@" + at
	case !ok:
		spec = at // a tag (or a branch's head)
	case name != "" && name != "HEAD" && branchFlag != "" && name != branchFlag:
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
	p, err := f.resolveAt(ctx, r, project, def, spec)
	if err != nil {
		if spec == at && !strings.ContainsAny(at, "@~^") && errors.As(err, new(*wal.NotFoundError)) {
			// Neither a WHEN nor a tag or branch. What starts like a
			// number or a time, or could be no name (main^, a..b), is a
			// point that does not read (exit 2); a word is a name not
			// found, as everywhere refs are taken (exit 4). Either way,
			// say what --at takes.
			hint := "--at takes an LSN, a time (2026-11-25T10:00:00Z, or 10m, 2h, 3d back) or a ref: a branch, a tag, BRANCH@{N} (argon help refs)"
			// A legal name with a '.' or '/' (1.1, v/2) is no point in
			// time: a tag or branch not found.
			named := wal.ValidateBranch("branch", at) == nil
			if c := at[0]; (c >= '0' && c <= '9' || c == '-' || c == '+' || !named) && !(named && strings.ContainsAny(at, "./")) {
				_, _, err = refs.ParseWhen(at, time.Now())
				hint = "--at also takes a ref: a branch, a tag, BRANCH@{N} (argon help refs)"
			} else {
				err = &wal.NotFoundError{Kind: "branch or tag", Name: at}
			}
			err = withHint(err, hint)
		}
		return nil, nil, invalidRef(err, spec)
	}
	// An explicit --at is always committed state, read from the log, even
	// when it names the head: the working database may hold changes an
	// application has not committed.
	owner, err := r.Owner(ctx, p.Branch.Timeline, p.LSN)
	if err != nil {
		return nil, nil, err
	}
	// Each collection is materialised on its first read, alone.
	v := workdb.OpenCollViews(r, owner, p.LSN)
	// A read near the branch's head may be laid over its working
	// database (workdb/headbase.go): the branch's own, opened from its
	// record, while the branch is on the timeline the point was read on.
	// A tag's state is read over the branch now on the tag's timeline,
	// if one is.
	var on *wal.Branch
	if p.Tag == nil {
		if b, err := r.Branch(ctx, project, p.Branch.Name); err == nil && b.Timeline == p.Branch.Timeline {
			on = b
		}
	} else if bs, err := r.Branches(ctx, project); err == nil {
		for i := range bs {
			if bs[i].Timeline == p.Branch.Timeline {
				on = &bs[i]
				break
			}
		}
	}
	if on != nil {
		w, err := f.workingDB(ctx, r, on)
		if err != nil {
			return nil, nil, err
		}
		v.OverHead(w)
	}
	noticed := false
	v.Built = func(coll string, lsn int64) {
		// One notice a command: a read that also lists the state's
		// collections (a hint for a missing one) builds a second view.
		if noticed {
			return
		}
		noticed = true
		if lsn != p.LSN {
			// The view of an image below the point, which reads near
			// it share (workdb/overlay.go). A tag's name takes no LSN.
			at := fmt.Sprintf("%s@%d", p.Branch.Name, lsn)
			if p.Tag != nil {
				at = fmt.Sprintf("LSN %d", lsn)
			}
			fmt.Fprintf(f.IO.ErrOut, "argon: notice: materialised %s at %s, the image snapshot nearest to %s, from the log; later reads near it reuse it (argon gc drops it)\n",
				coll, at, describePoint(p))
			return
		}
		what := describePoint(p)
		if coll != "" {
			what = coll + " at " + what
		}
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: materialised %s from the log; later reads of it reuse it (argon gc drops it)\n", what)
	}
	return v, p, nil
}

// isWhen reports whether s reads as the WHEN of BRANCH@WHEN (an LSN or a
// time) rather than as a ref.
func isWhen(s string) bool {
	_, _, err := refs.ParseWhen(s, time.Now())
	return err == nil
}

func describePoint(p *point) string {
	if p.Tag != nil && p.LSN == p.Tag.LSN {
		return fmt.Sprintf("tag %s (%s@%d)", p.Tag.Name, p.Tag.Branch, p.LSN)
	}
	if p.Tag != nil {
		return fmt.Sprintf("%s@%d", p.Tag.Branch, p.LSN)
	}
	if p.LSN < 0 {
		return "branch " + p.Branch.Name
	}
	return fmt.Sprintf("%s@%d", p.Branch.Name, p.LSN)
}
