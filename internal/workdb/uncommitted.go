package workdb

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
)

// UncommittedError refuses a CLI write that would change documents an
// application changed in the working database and did not commit: the
// write's commit would record their changes as its own (issue 7).
type UncommittedError struct {
	Branch string
	Coll   string
	IDs    []bson.RawValue
}

func (e *UncommittedError) Error() string {
	if len(e.IDs) == 1 {
		return fmt.Sprintf("document %s of %s has uncommitted changes in the working database of branch %s", FormatValue(e.IDs[0]), e.Coll, e.Branch)
	}
	var ids []string
	for _, id := range e.IDs[:min(len(e.IDs), 5)] {
		ids = append(ids, FormatValue(id))
	}
	more := ""
	if len(e.IDs) > 5 {
		more = ", ..."
	}
	return fmt.Sprintf("%d documents of %s (_id %s%s) have uncommitted changes in the working database of branch %s", len(e.IDs), e.Coll, strings.Join(ids, ", "), more, e.Branch)
}

// refuseUncommitted checks, for a write holding the branch at its base,
// that docs (as the working database holds them, about to be changed) are
// committed: the newest entry of each at the base is a put of exactly
// these bytes. Otherwise an application changed them and did not commit,
// and the write is refused (UncommittedError) before it changes anything.
//
// On the embedded engine the check is free while the database's files are
// those a full scan found clean (DBFiles): then every document is
// committed. Otherwise it asks the log for the documents' keys
// (LatestAtOrBelow: their entries only, by key, on MongoDB).
func (w *Branch) refuseUncommitted(ctx context.Context, coll string, docs []bson.Raw) error {
	if len(docs) == 0 || w.knownClean() {
		return nil
	}
	keys := make([][]byte, len(docs))
	for i, d := range docs {
		keys[i] = wal.KeyOf(d.Lookup("_id"))
	}
	latest, _, err := w.Repo.LatestAtOrBelow(ctx, w.TL, w.base, coll, keys, false)
	if err != nil {
		return err
	}
	var ids []bson.RawValue
	for i, d := range docs {
		if e := latest[string(keys[i])]; e == nil || e.Op != wal.OpPut || !bytes.Equal(e.Doc, d) {
			ids = append(ids, d.Lookup("_id"))
		}
	}
	if len(ids) > 0 {
		sort.SliceStable(ids, func(i, j int) bool { return FormatValue(ids[i]) < FormatValue(ids[j]) })
		return &UncommittedError{Branch: w.Name, Coll: coll, IDs: ids}
	}
	return nil
}

// knownClean reports that the working database's files are byte for byte
// those a full scan found equal to the committed state, and remembers it
// for keepClean.
func (w *Branch) knownClean() bool {
	if w.Files == nil {
		return false
	}
	fp, err := w.Files.Fingerprint(w.DB.Name())
	w.cleanAtStart = err == nil && fp != "" && fp == w.Files.Clean(w.DB.Name())
	return w.cleanAtStart
}

// keepClean is called after a write committed: when the database was
// known clean before it, it holds exactly the committed state now, and
// its new files are recorded clean (only by a process that runs the
// engine itself: DBFiles.KeepClean), so that the next write and status
// need not check it again.
func (w *Branch) keepClean() {
	if w.cleanAtStart && w.Files != nil {
		_ = w.Files.KeepClean(w.DB.Name())
	}
	w.cleanAtStart = false
}
