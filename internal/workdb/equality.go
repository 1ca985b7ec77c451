package workdb

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
)

// equalityKey is a string that two _id values share exactly when MongoDB
// takes them as the same value for a unique index (wal.ValueKey). An
// input holding two of them is refused before anything is written, naming
// both documents (the server's own duplicate key error would say "already
// exists" of the input's own document).
func equalityKey(v bson.RawValue) string { return wal.ValueKey(v) }

// sameValueMessage says that _id id (of document at, 0-based) repeats
// first (of document firstAt), which differs in bytes but not for
// MongoDB; the two are printed in canonical Extended JSON when the
// relaxed forms would read alike (1 and the 64-bit 1).
func sameValueMessage(id bson.RawValue, firstAt int, first bson.RawValue) string {
	a, b := FormatValue(id), FormatValue(first)
	if a == b {
		a, b = canonicalValue(id), canonicalValue(first)
	}
	return fmt.Sprintf("duplicate _id %s: document %d has _id %s, which MongoDB takes as the same value", a, firstAt+1, b)
}

func canonicalValue(v bson.RawValue) string {
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, true, false)
	if err != nil {
		return v.String()
	}
	return strings.TrimSuffix(strings.TrimPrefix(string(b), `{"v":`), "}")
}
