package workdb

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
)

// What held (passes): for numbers near the int32 bounds, 2^53 and 2^63 and
// for negative zero, sameValueKeys(a) lists the key of every int32, int64
// or double b that wal.ValueKey takes as the same value as a (MongoDB's
// comparison), and no key of a different value.
func TestReview6SameValueKeysMatchValueKey(t *testing.T) {
	var vals []bson.RawValue
	add := func(v any) {
		typ, b, err := bson.MarshalValue(v)
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, bson.RawValue{Type: typ, Value: b})
	}
	ints := []int64{0, 1, -1, 2, math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1,
		1 << 53, 1<<53 + 1, 1<<53 - 1, -(1 << 53), -(1 << 53) - 1, 1 << 62, 4611686018427388000,
		math.MaxInt64, math.MaxInt64 - 1, math.MinInt64, math.MinInt64 + 1}
	for _, n := range ints {
		add(n)
		if n >= math.MinInt32 && n <= math.MaxInt32 {
			add(int32(n))
		}
		add(float64(n))
		add(math.Nextafter(float64(n), math.Inf(1)))
		add(math.Nextafter(float64(n), math.Inf(-1)))
	}
	add(math.Copysign(0, -1))
	add(0.5)
	add(float64(1 << 63))
	add(-float64(1 << 63))
	for _, a := range vals {
		keys, ok := sameValueKeys(a)
		if !ok {
			t.Fatalf("sameValueKeys(%v) not ok", a)
		}
		have := map[string]bool{}
		for _, k := range keys {
			have[string(k)] = true
		}
		for _, b := range vals {
			same := wal.ValueKey(a) == wal.ValueKey(b)
			if got := have[string(wal.KeyOf(b))]; got != same {
				t.Errorf("sameValueKeys(%s %v) lists %s %v: %v; same value: %v", a.Type, a, b.Type, b, got, same)
			}
		}
	}
}
