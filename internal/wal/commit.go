package wal

import (
	"context"
	"errors"
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
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return nil, err
	}
	var out []LogItem
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
			return nil, errors.New("log is inconsistent: no commit holds LSN " + itoa(at) + " of timeline " + t.ID)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, LogItem{Commit: c, Inherited: i > 0})
		if limit > 0 && len(out) >= limit {
			break
		}
		at = c.From - 1
	}
	return out, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
