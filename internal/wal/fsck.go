package wal

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Problem is one broken invariant of the log found by Check.
type Problem struct {
	Timeline string `json:"timeline,omitempty"`
	What     string `json:"problem"`
}

// TimelineInfo is what Check learned about one timeline.
type TimelineInfo struct {
	Timeline
	Head *Slot
	// Pending is the lease on the slot after the head, if any: a write in
	// progress, or one whose writer stopped.
	Pending *Lease
	// Uncommitted counts spilled entries no commit slot names: left by
	// writers that lost or died. Covered counts those of writers with an
	// entry at or below the head, or on a closed timeline, which can never
	// commit (DeleteCovered deletes them).
	Uncommitted, Covered int
}

// Timelines returns the timelines of project.
func (r *Repo) Timelines(ctx context.Context, project string) ([]Timeline, error) {
	cur, err := r.DB.Collection(collTimelines).Find(ctx, bson.D{{Key: "project", Value: project}})
	if err != nil {
		return nil, err
	}
	var out []Timeline
	return out, cur.All(ctx, &out)
}

// Check verifies the log of project: each timeline's slots are dense from
// 0 and form one chain (each slot's base is the head before it); every
// commit slot has exactly one entry per LSN with its token; ancestry is
// complete and acyclic, and every fork point exists in its parent; every
// branch names a timeline of the project. It reads the whole log once:
// the slots, the spilled entries and their key records of all the
// project's timelines with one query each (on FerretDB every query reads
// its whole collection, and a query per timeline read the log once per
// branch: 6 timelines over 500,000 entries took 155 s).
func (r *Repo) Check(ctx context.Context, project string) ([]TimelineInfo, []Problem, error) {
	tls, err := r.Timelines(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]*Timeline{}
	ids := make(bson.A, len(tls))
	for i := range tls {
		byID[tls[i].ID] = &tls[i]
		ids[i] = tls[i].ID
	}
	// Problems are kept by timeline, each timeline's in the order they are
	// found, and reported timeline by timeline.
	byTL := map[string][]Problem{}
	bad := func(tl, format string, a ...any) {
		byTL[tl] = append(byTL[tl], Problem{Timeline: tl, What: fmt.Sprintf(format, a...)})
	}
	slotsOf := map[string][]Slot{}
	if len(ids) > 0 {
		cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return nil, nil, err
		}
		for cur.Next(ctx) {
			var s Slot
			if err := cur.Decode(&s); err != nil {
				_ = cur.Close(ctx)
				return nil, nil, err
			}
			slotsOf[s.TL] = append(slotsOf[s.TL], s)
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, nil, err
		}
	}
	type tokenLSN struct {
		token string
		lsn   int64
	}
	// tokenEntries counts a writer's uncommitted entries, and its lowest.
	type tokenEntries struct {
		n      int
		lowest int64
	}
	type state struct {
		info        TimelineInfo
		committed   map[tokenLSN]bool // spilled commits' LSNs: seen yet
		keyed       map[string]int    // token: key records of spilled commits
		uncommitted map[string]*tokenEntries
	}
	states := make([]*state, len(tls))
	stateOf := map[string]*state{}
	keyedOf := map[string]map[string]int{}
	for i, t := range tls {
		st := &state{info: TimelineInfo{Timeline: t}, committed: map[tokenLSN]bool{}, keyed: map[string]int{}, uncommitted: map[string]*tokenEntries{}}
		states[i], stateOf[t.ID], keyedOf[t.ID] = st, st, st.keyed
		// Ancestry: complete and acyclic.
		seen := map[string]bool{t.ID: true}
		for p := t.Parent; p != ""; {
			pt := byID[p]
			if pt == nil {
				bad(t.ID, "ancestor timeline %s does not exist", p)
				break
			}
			if seen[p] {
				bad(t.ID, "ancestry is cyclic at timeline %s", p)
				break
			}
			seen[p] = true
			p = pt.Parent
		}
		slots := slotsOf[t.ID]
		byN := map[int64]*Slot{}
		maxN := int64(-1)
		for i := range slots {
			byN[slots[i].N] = &slots[i]
			maxN = max(maxN, slots[i].N)
		}
		var prev *Slot
		for n := int64(0); n <= maxN; n++ {
			s := byN[n]
			if s == nil {
				bad(t.ID, "slot %d is missing (slots are not dense)", n)
				break
			}
			switch {
			case n == 0 && (s.Kind != SlotRoot || s.LSN != t.Base):
				bad(t.ID, "slot 0 is not the root at LSN %d", t.Base)
			case n > 0 && s.Base != prev.LSN:
				bad(t.ID, "slot %d starts at LSN %d, but the head before it is %d", n, s.Base, prev.LSN)
			case s.Kind == SlotVoid && s.LSN != s.Base:
				bad(t.ID, "void slot %d moves the head", n)
			case s.Kind == SlotMoved && (s.LSN != s.Base || byID[s.To] == nil):
				bad(t.ID, "moved slot %d changes the head or names a timeline that does not exist (%s)", n, s.To)
			case s.Kind == SlotMoved && n != maxN:
				bad(t.ID, "slot %d follows moved slot %d: the timeline was closed", n+1, n)
			case s.Closed && n != maxN:
				bad(t.ID, "slot %d follows slot %d, which closed the timeline when its branch was deleted", n+1, n)
			case s.Kind == SlotCommit && s.LSN < s.Base, s.Kind == SlotCommit && s.LSN == s.Base && s.MergeOf == "":
				bad(t.ID, "commit slot %d has no entries", n)
			case s.Kind == SlotCommit && !s.Spilled && int64(len(s.Entries)) != s.LSN-s.Base:
				bad(t.ID, "commit slot %d holds %d entries for LSNs %d..%d", n, len(s.Entries), s.Base+1, s.LSN)
			case s.Kind == SlotCommit && s.Spilled:
				for l := s.Base + 1; l <= s.LSN; l++ {
					st.committed[tokenLSN{s.Token, l}] = false
				}
				if s.Keyed > 0 {
					st.keyed[s.Token] = s.Keyed
				}
			}
			prev = s
		}
		if prev != nil {
			st.info.Head = prev
			if st.info.Pending, err = r.ReadLease(ctx, t.ID, prev.N+1); err != nil {
				return nil, nil, err
			}
		}
	}
	// The chunks of a commit that says it has key records each have one,
	// which holds the hash of every key of the chunk.
	keyDocs, err := r.chunkKeysOf(ctx, keyedOf)
	if err != nil {
		return nil, nil, err
	}
	records := map[string]map[string]int{}
	for _, d := range keyDocs {
		if records[d.TL] == nil {
			records[d.TL] = map[string]int{}
		}
		records[d.TL][d.Token]++
	}
	for _, st := range states {
		for token, n := range st.keyed {
			if got := records[st.info.ID][token]; got != n {
				bad(st.info.ID, "the commit of token %s names %d key records of its log chunks; there are %d", token, n, got)
			}
		}
	}
	// Spilled entries: exactly one per committed LSN; the rest are
	// uncommitted. A chunk's records are decoded, so that one that does
	// not hold the LSNs it names is reported.
	if len(ids) > 0 {
		ecur, err := r.DB.Collection(collEntries).Find(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$in", Value: ids}}}}, options.Find().SetBatchSize(storedBatch))
		if err != nil {
			return nil, nil, err
		}
		step := StepOf(ctx, "checking the log")
		defer step.Done()
		for ecur.Next(ctx) {
			var se storedEntry
			if err := ecur.Decode(&se); err != nil {
				_ = ecur.Close(ctx)
				return nil, nil, err
			}
			st := stateOf[se.TL]
			var kd *chunkKeyDoc
			if st.keyed[se.Token] > 0 {
				if kd = keyDocs[se.ID]; kd == nil || kd.LSN != se.LSN || kd.Last != se.Last || kd.Coll != se.Coll {
					bad(se.TL, "log chunk %s has no key record, or one that names other LSNs", se.ID)
					kd = nil
				}
				delete(keyDocs, se.ID)
			}
			if err := se.expand(func(e *Entry) error {
				if kd != nil && !kd.holds(map[uint32]bool{shortHash(keyHash(e.KeyBytes)): true}) {
					bad(se.TL, "the key record of log chunk %s lacks the key of LSN %d", se.ID, e.LSN)
					kd = nil
				}
				k := tokenLSN{e.Token, e.LSN}
				if done, ok := st.committed[k]; ok {
					if done {
						bad(se.TL, "LSN %d has two entries with the committed token", e.LSN)
					}
					st.committed[k] = true
					return nil
				}
				st.info.Uncommitted++
				u := st.uncommitted[e.Token]
				if u == nil {
					u = &tokenEntries{lowest: e.LSN}
					st.uncommitted[e.Token] = u
				}
				u.n++
				u.lowest = min(u.lowest, e.LSN)
				return nil
			}); err != nil {
				bad(se.TL, "%v", err)
			}
			step.Add(int(max(se.Last-se.LSN+1, 1)))
		}
		err = ecur.Err()
		_ = ecur.Close(ctx)
		if err != nil {
			return nil, nil, err
		}
	}
	infos := make([]TimelineInfo, len(states))
	for i, st := range states {
		// A writer with an entry at or below the head, or on a closed
		// timeline, can never commit (DeleteCovered): all of its entries
		// are covered.
		for _, u := range st.uncommitted {
			if h := st.info.Head; h != nil && (u.lowest <= h.LSN || closes(h)) {
				st.info.Covered += u.n
			}
		}
		var missing []tokenLSN
		for k, done := range st.committed {
			if !done {
				missing = append(missing, k)
			}
		}
		sort.Slice(missing, func(a, b int) bool {
			if missing[a].lsn != missing[b].lsn {
				return missing[a].lsn < missing[b].lsn
			}
			return missing[a].token < missing[b].token
		})
		for _, k := range missing {
			bad(st.info.ID, "committed entry %s:%d is missing", k.token, k.lsn)
		}
		infos[i] = st.info
	}
	var left []string
	for id := range keyDocs {
		left = append(left, id)
	}
	sort.Strings(left)
	for _, id := range left {
		bad(keyDocs[id].TL, "key record %s names a log chunk that does not exist", id)
	}
	var problems []Problem
	for _, t := range tls {
		problems = append(problems, byTL[t.ID]...)
	}
	// Fork points exist in their parents.
	for _, t := range tls {
		if t.Parent == "" || byID[t.Parent] == nil {
			continue
		}
		ok := false
		for _, inf := range infos {
			if inf.ID == t.Parent && inf.Head != nil && inf.Head.N >= t.ParentSlot && inf.Head.LSN >= t.Base {
				ok = true
			}
		}
		if !ok {
			problems = append(problems, Problem{Timeline: t.ID, What: fmt.Sprintf("forks from slot %d (LSN %d) of %s, which its parent does not have", t.ParentSlot, t.Base, t.Parent)})
		}
	}
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	for _, b := range bs {
		if byID[b.Timeline] == nil {
			problems = append(problems, Problem{What: fmt.Sprintf("branch %s names timeline %s, which does not exist", b.Name, b.Timeline)})
		} else if t := byID[b.Timeline]; b.Fork != nil && *b.Fork != *forkOf(t) {
			problems = append(problems, Problem{What: fmt.Sprintf("branch %s's copy of its fork point (%+v) differs from its timeline %s (%+v)", b.Name, *b.Fork, t.ID, *forkOf(t))})
		}
	}
	return infos, problems, nil
}

// chunkKeysOf reads, with one query, the key records (collChunkKeys) of
// the commits keyed names (timeline: token: records), by the _id of their
// chunk.
func (r *Repo) chunkKeysOf(ctx context.Context, keyed map[string]map[string]int) (map[string]*chunkKeyDoc, error) {
	out := map[string]*chunkKeyDoc{}
	var tls bson.A
	for tl, tokens := range keyed {
		if len(tokens) > 0 {
			tls = append(tls, tl)
		}
	}
	if len(tls) == 0 {
		return out, nil
	}
	cur, err := r.DB.Collection(collChunkKeys).Find(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$in", Value: tls}}}})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d chunkKeyDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("decode a chunk's key record: %w", err)
		}
		if keyed[d.TL][d.Token] > 0 {
			out[d.ID] = &d
		}
	}
	return out, cur.Err()
}

// closes reports whether head, a timeline's last slot, ends it: no slot
// can follow a moved slot or the void that closes a deleted branch's
// timeline, so no writer on it can commit.
func closes(head *Slot) bool { return head.Kind == SlotMoved || head.Closed }

// DeleteCovered removes the spilled entries of tl of writers that can
// never commit: those with an entry at or below the head (head: the
// timeline's last slot) that no commit names (committedTokens: the
// tokens of tl's spilled commits), and on a closed timeline (closes)
// every one no commit names.
// Why such a writer can never commit: its entries start right above the
// head it leased the next slot on, and while that slot is empty no slot
// after it can be written, so the head stays at that writer's base. A
// head past the base means the writer's slot was filled by another's
// commit or a void. All of its entries go, those above the head too
// (until the eighteenth session only the chunks starting at or below the
// head went, and an interrupted import's other entries stayed until the
// branch grew past them). It returns how many entries it deleted.
func (r *Repo) DeleteCovered(ctx context.Context, tl string, head *Slot, committedTokens map[string]bool) (int64, error) {
	tokens := bson.A{} // never nil: the server refuses {$nin: null}
	for t := range committedTokens {
		tokens = append(tokens, t)
	}
	// The writers that can no longer commit: one of their stored
	// documents starts at or below the head, or the timeline is closed
	// (a moved slot, or a deleted branch's last void: no slot follows).
	filter := bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: bson.D{{Key: "$nin", Value: tokens}}}}
	if !closes(head) {
		filter = append(filter, bson.E{Key: "lsn", Value: bson.D{{Key: "$lte", Value: head.LSN}}})
	}
	cur, err := r.DB.Collection(collEntries).Find(ctx, filter, optionsProjection(bson.D{{Key: "token", Value: 1}}))
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	var dead bson.A
	for cur.Next(ctx) {
		var d struct {
			Token string `bson:"token"`
		}
		if err := cur.Decode(&d); err != nil {
			_ = cur.Close(ctx)
			return 0, err
		}
		if !seen[d.Token] {
			seen[d.Token] = true
			dead = append(dead, d.Token)
		}
	}
	err = cur.Err()
	_ = cur.Close(ctx)
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	// Their documents, all of them, to count their entries (a chunk
	// holds many); then those documents only.
	cur, err = r.DB.Collection(collEntries).Find(ctx, bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: bson.D{{Key: "$in", Value: dead}}}},
		optionsProjection(bson.D{{Key: "lsn", Value: 1}, {Key: "last", Value: 1}}))
	if err != nil {
		return 0, err
	}
	var ids bson.A
	var entries int64
	for cur.Next(ctx) {
		var d struct {
			ID   string `bson:"_id"`
			LSN  int64  `bson:"lsn"`
			Last int64  `bson:"last"`
		}
		if err := cur.Decode(&d); err != nil {
			_ = cur.Close(ctx)
			return 0, err
		}
		ids = append(ids, d.ID)
		entries += max(d.Last-d.LSN+1, 1)
	}
	err = cur.Err()
	_ = cur.Close(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// Their key records first: a record never names a chunk that is not
	// there.
	byID := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	if _, err := r.DB.Collection(collChunkKeys).DeleteMany(ctx, byID); err != nil {
		return 0, err
	}
	if _, err := r.DB.Collection(collEntries).DeleteMany(ctx, byID); err != nil {
		return 0, err
	}
	return entries, nil
}

// SpilledTokens returns the tokens of tl's spilled commits.
func (r *Repo) SpilledTokens(ctx context.Context, tl string) (map[string]bool, error) {
	rs, err := r.spilledRanges(ctx, tl)
	out := make(map[string]bool, len(rs))
	for t := range rs {
		out[t] = true
	}
	return out, err
}

// spilledRanges maps the token of each of tl's spilled commits to the
// LSN range (base, lsn] it committed: one scan of the slots.
func (r *Repo) spilledRanges(ctx context.Context, tl string) (map[string][2]int64, error) {
	cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{{Key: "tl", Value: tl}, {Key: "spilled", Value: true}},
		optionsProjection(bson.D{{Key: "token", Value: 1}, {Key: "base", Value: 1}, {Key: "lsn", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := map[string][2]int64{}
	for cur.Next(ctx) {
		var s Slot
		if err := cur.Decode(&s); err != nil {
			return nil, err
		}
		out[s.Token] = [2]int64{s.Base, s.LSN}
	}
	return out, cur.Err()
}

// DeleteOwnEntries removes the spilled entries a writer with token wrote
// to tl: it calls this only for a write that will never commit (its slot
// is void), and never for another writer's token.
func (r *Repo) DeleteOwnEntries(ctx context.Context, tl, token string) error {
	own := bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: token}}
	if _, err := r.DB.Collection(collChunkKeys).DeleteMany(ctx, own); err != nil {
		return err
	}
	_, err := r.DB.Collection(collEntries).DeleteMany(ctx, own)
	return err
}
