// Command mongoping connects to the MongoDB deployment at its argument and
// runs one ping: the native baseline of a short process talking to a
// server, for the benchmarks of whole argon processes (bench_test.go).
package main

import (
	"context"
	"fmt"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mongoping URI")
		os.Exit(2)
	}
	ctx := context.Background()
	c, err := mongo.Connect(options.Client().ApplyURI(os.Args[1]))
	if err == nil {
		err = c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
		_ = c.Disconnect(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mongoping:", err)
		os.Exit(1)
	}
}
