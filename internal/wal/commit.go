package wal

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Commit is one command's batch of entries, LSNs From..To of timeline TL.
type Commit struct {
	ID      string      `bson:"_id"`
	TL      string      `bson:"tl"`
	From    int64       `bson:"lsn_from"`
	To      int64       `bson:"lsn_to"`
	Time    time.Time   `bson:"ts"`
	Message string      `bson:"message"`
	Author  string      `bson:"author"`
	MergeOf string      `bson:"merge_of,omitempty"`
	Stats   []CollStats `bson:"stats"`
	Token   string      `bson:"token"`
}

// CollStats counts one commit's entries in one collection.
type CollStats struct {
	Coll string `bson:"coll" json:"collection"`
	Puts int    `bson:"puts" json:"puts"`
	Dels int    `bson:"dels" json:"deletes"`
	// Indexes counts index creations and drops.
	Indexes int `bson:"idx,omitempty" json:"indexes,omitempty"`
}

func sortedStats(m map[string]*CollStats) []CollStats {
	out := make([]CollStats, 0, len(m))
	for _, cs := range m {
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Coll < out[j].Coll })
	return out
}

// LogItem is one commit as seen from a branch: Inherited commits belong to
// an ancestor timeline, below the branch's fork point.
type LogItem struct {
	Commit
	Inherited bool
}

// Log returns up to limit commits (all when limit <= 0) reachable from LSN
// at on timeline tl, newest first, walking into ancestors below fork points.
// It reads commit records only, one lookup each, never log entries.
func (r *Repo) Log(ctx context.Context, tl string, at int64, limit int) ([]LogItem, error) {
	var out []LogItem
	err := r.WalkLog(ctx, tl, at, func(it LogItem) bool {
		out = append(out, it)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// WalkLog calls fn for each commit reachable from LSN at on timeline tl,
// newest first, until fn returns false.
func (r *Repo) WalkLog(ctx context.Context, tl string, at int64, fn func(LogItem) bool) error {
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return err
	}
	coll := r.DB.Collection(collCommits)
	for i := 0; i < len(anc) && at > 0; {
		t := anc[i]
		if at <= t.Base {
			i++
			continue
		}
		var c Commit
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: entryID(t.ID, at)}}).Decode(&c)
		if errors.Is(err, mongo.ErrNoDocuments) {
			// A fork point inside a commit: a child was forked at an LSN in
			// the middle of this commit's range. Show the part it inherited.
			err = coll.FindOne(ctx, bson.D{{Key: "tl", Value: t.ID},
				{Key: "lsn_from", Value: bson.D{{Key: "$lte", Value: at}}},
				{Key: "lsn_to", Value: bson.D{{Key: "$gte", Value: at}}}}).Decode(&c)
			if err == nil {
				c.To = at
				c.Stats = nil
			}
		}
		if errors.Is(err, mongo.ErrNoDocuments) {
			return errors.New("log is inconsistent: no commit holds LSN " + itoa(at) + " of timeline " + t.ID)
		}
		if err != nil {
			return err
		}
		if !fn(LogItem{Commit: c, Inherited: i > 0}) {
			return nil
		}
		at = c.From - 1
	}
	return nil
}

// TimeError reports a time before the history of a branch began.
type TimeError struct {
	Ref   string
	Time  time.Time
	Start time.Time
}

func (e *TimeError) Error() string {
	return fmt.Sprintf("%s is before %s existed (created %s)", e.Time.UTC().Format(time.RFC3339), e.Ref, e.Start.UTC().Format(time.RFC3339))
}

// LSNAt returns the LSN of the state at time t on timeline tl (whose head is
// head): the end of the newest commit made at or before t, or 0 when t is
// after the project was created but before its first commit.
func (r *Repo) LSNAt(ctx context.Context, tl string, head int64, t time.Time, ref string) (int64, error) {
	lsn := int64(-1)
	err := r.WalkLog(ctx, tl, head, func(it LogItem) bool {
		if !it.Time.After(t) {
			lsn = it.To
			return false
		}
		return true
	})
	if err != nil || lsn >= 0 {
		return lsn, err
	}
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return 0, err
	}
	root := anc[len(anc)-1]
	if t.Before(root.Created.Truncate(time.Second)) {
		return 0, &TimeError{Ref: ref, Time: t, Start: root.Created}
	}
	return 0, nil
}

// Owner returns the timeline on tl's ancestry that wrote LSN lsn (the root
// for LSN 0): the one whose own range holds it. States are cached under
// their owner, so that a branch and its parent share the views of their
// common history.
func (r *Repo) Owner(ctx context.Context, tl string, lsn int64) (string, error) {
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return "", err
	}
	for _, t := range anc {
		if lsn > t.Base {
			return t.ID, nil
		}
	}
	return anc[len(anc)-1].ID, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
