package workdb

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func dec(t *testing.T, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func rawValue(t *testing.T, v any) bson.RawValue {
	t.Helper()
	doc, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	return bson.Raw(doc).Lookup("v")
}

// Two _ids share an equality key exactly when MongoDB's unique _id index
// takes them as one value.
func TestEqualityKey(t *testing.T) {
	cases := []struct {
		a, b  any
		equal bool
	}{
		{int32(0), 0.0, true},
		{int64(0), -0.0, true},
		{int32(7), int64(7), true},
		{1e20, 1e20, true},
		{int64(9007199254740993), float64(9007199254740992), false},
		{1.5, int32(1), false},
		{"1", int32(1), false},
		{bson.D{{Key: "a", Value: int32(1)}}, bson.D{{Key: "a", Value: 1.0}}, true},
		{bson.A{int32(2), "x"}, bson.A{int64(2), "x"}, true},
		{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}}, bson.D{{Key: "b", Value: 2}, {Key: "a", Value: 1}}, false},
		{bson.D{{Key: "a", Value: 1}}, bson.A{1}, false},
		{bson.D{{Key: "a", Value: "1"}}, bson.D{{Key: "a", Value: int32(1)}}, false},
		{true, int32(1), false},
		{dec(t, "2"), int32(2), true},
		{dec(t, "2.0"), int64(2), true},
		{dec(t, "0.5"), 0.5, true},
		{dec(t, "0.1"), 0.1, false}, // the double 0.1 is not one tenth
		{dec(t, "NaN"), math.NaN(), true},
		{dec(t, "-Infinity"), math.Inf(-1), true},
		{dec(t, "Infinity"), math.Inf(-1), false},
		{1e300, 1e300, true},
	}
	for _, c := range cases {
		ka, kb := equalityKey(rawValue(t, c.a)), equalityKey(rawValue(t, c.b))
		if (ka == kb) != c.equal {
			t.Errorf("%v and %v: keys %q and %q, want equal %v", c.a, c.b, ka, kb, c.equal)
		}
	}
}
