package workdb_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/workdb"
)

// EachByID lists a collection in the order the engine's sort by _id
// gives, for every kind of _id it sorts itself (strings, ObjectIds,
// integers of both sizes, doubles), in memory and merged from runs in
// temporary files, and for mixes it leaves to the engine. The engine's
// own sort is the oracle.
func TestEachByIDIsTheEnginesOrder(t *testing.T) {
	srv := enginetest.Start(t)
	if !srv.Embedded && !srv.FerretDB {
		t.Skip("argon sorts by _id itself on FerretDB only")
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	word := func() string {
		const letters = "aAbZz0_-é✓ "
		var b strings.Builder
		for n := rng.IntN(6); n > 0; n-- {
			b.WriteString(string([]rune(letters)[rng.IntN(len([]rune(letters)))]))
		}
		return b.String()
	}
	kinds := map[string]func(i int) any{
		"strings": func(i int) any { return fmt.Sprintf("%s%d", word(), i) },
		"objectids": func(int) any {
			var oid bson.ObjectID
			for i := range oid {
				oid[i] = byte(rng.IntN(256))
			}
			return oid
		},
		"integers": func(i int) any {
			if i%2 == 0 {
				return int32(rng.Int32() - math.MaxInt32/2)
			}
			return rng.Int64() - math.MaxInt64/2
		},
		"doubles": func(int) any { return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(30)-10)) },
		"mixed": func(i int) any {
			if i%3 == 0 {
				return int32(i)
			}
			return fmt.Sprintf("s%d", i)
		},
	}
	for name, id := range kinds {
		c := srv.Client.Database(srv.DB + "_sort").Collection(name)
		seen := map[string]bool{}
		var docs []any
		for i := 0; len(docs) < 300; i++ {
			v := id(i)
			k := fmt.Sprint(v)
			if seen[k] {
				continue
			}
			seen[k] = true
			docs = append(docs, bson.D{{Key: "_id", Value: v}, {Key: "pad", Value: strings.Repeat("p", rng.IntN(200))}})
		}
		if _, err := c.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		list := func(ferret bool) string {
			t.Helper()
			var b strings.Builder
			n, err := workdb.EachByID(ctx, c, ferret, func(d bson.Raw) error {
				b.WriteString(d.String())
				b.WriteString("\n")
				return nil
			})
			if err != nil || n != len(docs) {
				t.Fatalf("%s: %d documents, %v", name, n, err)
			}
			return b.String()
		}
		want := list(false) // the engine's sort
		for _, run := range []int{16 << 20, 4096, 100} {
			workdb.SetRunBytes(t, run)
			if got := list(true); got != want {
				t.Errorf("%s, runs of %d bytes: the order differs from the engine's:\n%s\nwant\n%s", name, run, got, want)
			}
		}
	}
}

// With no temporary directory for its runs, EachByID leaves the sort to
// the engine: the same order, nothing passed on twice.
func TestEachByIDWithoutATemporaryDirectory(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	c := srv.Client.Database(srv.DB + "_sort").Collection("c")
	var docs []any
	for i := 0; i < 200; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("k%03d", (i*37)%200)}, {Key: "pad", Value: strings.Repeat("p", 50)}})
	}
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	workdb.SetRunBytes(t, 500)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	var got []string
	n, err := workdb.EachByID(ctx, c, true, func(d bson.Raw) error {
		got = append(got, d.Lookup("_id").StringValue())
		return nil
	})
	if err != nil || n != 200 || len(got) != 200 {
		t.Fatalf("%d documents (%d passed on), %v", n, len(got), err)
	}
	for i, id := range got {
		if want := fmt.Sprintf("k%03d", i); id != want {
			t.Fatalf("document %d is %s, want %s", i, id, want)
		}
	}
}
