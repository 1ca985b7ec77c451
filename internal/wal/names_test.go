package wal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/enginetest"
)

// Racing renames and deletes of one branch name, each on its own
// connection: exactly one wins each race, and afterwards every timeline
// has exactly one name (before fencing, two renames of one name both
// succeeded and the two new names shared a timeline and its data).
func TestRacingRenamesAndDeletes(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	r0 := Open(srv.Client, srv.DB)
	if err := r0.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	main, err := func() (*Branch, error) { _, b, err := r0.CreateProject(ctx, "p"); return b, err }()
	if err != nil {
		t.Fatal(err)
	}
	const racers, rounds = 4, 15
	repos := make([]*Repo, racers)
	for i := range repos {
		c, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Disconnect(ctx) })
		repos[i] = Open(c, srv.DB)
	}
	for round := 0; round < rounds; round++ {
		name := fmt.Sprintf("s%d", round)
		if _, err := r0.CreateBranch(ctx, "p", name, main, -1); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wins := make(chan string, racers)
		for i := 0; i < racers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var err error
				target := fmt.Sprintf("s%d-to-%d", round, i)
				if i == racers-1 && round%3 == 0 {
					_, _, err = repos[i].DeleteBranch(ctx, "p", name)
					target = "(deleted)"
				} else {
					_, err = repos[i].RenameBranch(ctx, "p", name, target)
				}
				var ce *ConflictError
				var nf *NotFoundError
				switch {
				case err == nil:
					wins <- target
				case errors.As(err, &ce), errors.As(err, &nf):
				default:
					t.Errorf("round %d racer %d: %v", round, i, err)
				}
			}(i)
		}
		wg.Wait()
		close(wins)
		var won []string
		for w := range wins {
			won = append(won, w)
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d operations won: %v", round, len(won), won)
		}
	}
	bs, err := r0.Branches(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	byTL := map[string][]string{}
	dbs := map[string]string{}
	for _, b := range bs {
		byTL[b.Timeline] = append(byTL[b.Timeline], b.Name)
		if other, ok := dbs[b.DB]; ok {
			t.Errorf("branches %s and %s share working database %s", other, b.Name, b.DB)
		}
		dbs[b.DB] = b.Name
	}
	for tl, names := range byTL {
		if len(names) != 1 {
			t.Errorf("timeline %s has names %v", tl, names)
		}
	}
}
