package wal

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The repository's clock keeps milliseconds, as BSON dates do: a record a
// command prints as it writes it (tag --json, snapshot --json) shows the
// time every later read of it shows.
func TestNowKeepsMilliseconds(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never dialled
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	r := Open(client, "")
	for i := 0; i < 20; i++ {
		now := r.Now()
		if now.Nanosecond()%int(time.Millisecond) != 0 || now.Location() != time.UTC {
			t.Fatalf("Now() = %s, want UTC to the millisecond", now.Format(time.RFC3339Nano))
		}
		time.Sleep(137 * time.Microsecond)
	}
}
