package workdb

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Found by an adversarial review: MongoDB takes -0.0 and 0 as one _id,
// but equalityKey wrote a negative zero double as "n-0" (big.Float keeps
// the sign). TestEqualityKey's {int64(0), -0.0} case did not test it: the
// Go constant -0.0 is +0. On the embedded engine withStoredID turns -0.0
// into 0.0 first, so only an input sent to a MongoDB server reached the
// server's duplicate key error, which the check was written to replace.
func TestReviewEqualityKeyNegativeZero(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, c := range []struct{ a, b any }{
		{negZero, int32(0)},
		{negZero, 0.0},
		{bson.D{{Key: "a", Value: negZero}}, bson.D{{Key: "a", Value: int64(0)}}},
		{bson.A{negZero}, bson.A{int32(0)}},
	} {
		ka, kb := equalityKey(rawValue(t, c.a)), equalityKey(rawValue(t, c.b))
		if ka != kb {
			t.Errorf("%v and %v: keys %q and %q, want equal (MongoDB: -0.0 == 0)", c.a, c.b, ka, kb)
		}
	}
}
