package main

import (
	"context"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Commit 2b2d0cb names a lease record by _id alone, on the ground that a
// lease record is inserted once by its holder and never replaced or
// deleted. One command does drop the leases collection: argon export
// --to-uri to the workspace's own server with --to-db naming the metadata
// database and --drop. validateDatabaseName takes any name, and the
// sink's check drops each exported collection's namesake in the target
// before it writes: a branch holding a collection named "leases" (any
// name argon uses: "slots", "entries", ... likewise) replaces the
// metadata collection with the branch's documents. Every lease record is
// gone: a writer that read an old head can then insert the lease of a
// filled slot again (what ARCHITECTURE says the records are kept for),
// and a writer in progress keeps updating, by _id alone, a record another
// writer inserted after the drop for the same slot.
func TestReview5ExportDropsTheLeases(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("needs a fresh server of its own")
	}
	dir, app := review5Project(t, "r5lease")
	ctx := context.Background()
	meta := os.Getenv("ARGON_DB")
	leases := app.Database(meta).Collection("leases")
	before, err := leases.CountDocuments(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil || before == 0 {
		t.Fatalf("lease records before: %d, %v", before, err)
	}
	runMonitored(t, dir, nil, []string{"insert", "leases", `{"_id": "mine"}`})
	code, out, errOut := review5Argon(dir, "export", "--to-uri", os.Getenv("ARGON_URI"), "--to-db", meta, "--drop")
	after, err := leases.CountDocuments(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	if after < before+1 {
		t.Fatalf("argon export --to-db %s (the metadata database) --drop: exit %d\n%s%s"+
			"lease records before: %d (and one more for the insert); after: %d: the export dropped the metadata database's leases collection",
			meta, code, out, errOut, before, after)
	}
}

// The same export path with a branch collection named "slots": the
// metadata database's slots collection (every commit of every branch) is
// dropped and replaced by the branch's documents; argon log then fails
// ("timeline ... has no slot 0") and fsck finds 0 slots. Not introduced
// by 2b2d0cb: shown for the weight of the export path above.
func TestReview5ExportDropsTheLog(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("needs a fresh server of its own")
	}
	dir, _ := review5Project(t, "r5slots")
	runMonitored(t, dir, nil, []string{"insert", "slots", `{"_id": "mine"}`})
	code, out, errOut := review5Argon(dir, "export", "--to-uri", os.Getenv("ARGON_URI"), "--to-db", os.Getenv("ARGON_DB"), "--drop")
	if lcode, lout, lerr := review5Argon(dir, "log"); lcode != 0 {
		t.Fatalf("argon export --to-db (the metadata database) --drop: exit %d\n%s%s"+
			"then argon log: exit %d\n%s%s", code, out, errOut, lcode, lout, lerr)
	}
}
