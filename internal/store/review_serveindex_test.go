package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Review (passes): a dropDatabase sent unacknowledged (w: 0, moreToCome),
// pipelined on one connection
// ahead of 50 inserts, is held while the indexer has the file open, and
// the inserts that follow it are all there once the serve has stopped.
func TestReviewServeIndexerHoldsUnacknowledgedDrop(t *testing.T) {
	dir, client, stop, release := serveWithVictimHeld(t, options.Client().SetMaxPoolSize(1))
	ctx := context.Background()
	w0 := options.Database().SetWriteConcern(writeconcern.Unacknowledged())
	if err := client.Database("victim", w0).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(release)
	}()
	want := insertFifty(t, client)
	_ = client.Disconnect(ctx)
	stop()
	if got := victimIDs(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after a w:0 drop and 50 acknowledged inserts: %v, want %v", got, want)
	}
}
