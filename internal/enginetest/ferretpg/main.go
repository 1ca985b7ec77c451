// Command ferretpg runs one FerretDB frontend with its PostgreSQL handler:
// a MongoDB-wire server whose data lives in PostgreSQL. Several of them
// over one PostgreSQL database are the "two nodes sharing one store" that
// the server-path tests run against (scripts/server-deployment.sh starts
// them). It is a test helper, not part of argon.
//
//	ferretpg -postgresql-url postgres://u@127.0.0.1:5432/ferretdb -uri-file f
//
// It listens on -listen (default: a free loopback port), writes its
// MongoDB URI to -uri-file once it accepts connections, and runs until it
// is sent SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL connection string (required)")
	uriFile := flag.String("uri-file", "", "file to write the MongoDB URI to when ready")
	verbose := flag.Bool("v", false, "log FerretDB's messages to stderr")
	flag.Parse()
	if *pgURL == "" {
		fmt.Fprintln(os.Stderr, "ferretpg: -postgresql-url is required")
		os.Exit(2)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       "postgresql",
		PostgreSQLURL: *pgURL,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretpg:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	uri := f.MongoDBURI()
	if *uriFile != "" {
		tmp := *uriFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(uri+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "ferretpg:", err)
			os.Exit(1)
		}
		if err := os.Rename(tmp, *uriFile); err != nil {
			fmt.Fprintln(os.Stderr, "ferretpg:", err)
			os.Exit(1)
		}
	} else {
		fmt.Println(uri)
	}
	<-done
}
