package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
)

var recordHostile = flag.Bool("record-hostile", false, "print what each hostile input does instead of checking it")

// hostileCase is one bad input: the command line (and standard input),
// the exit code and the message argon must answer with.
type hostileCase struct {
	args  []string
	stdin string
	code  int
	msg   string // the first line of stderr; with "re:", a regexp it matches
	// ferret marks what only FerretDB refuses (types, field names): not
	// checked against MongoDB, which stores them.
	ferret bool
}

// hostileState fingerprints what a bad input must not change: every
// branch's committed head, and every document and index of every
// database argon made for the project (markers aside).
func hostileState(t *testing.T, srv *enginetest.Server) string {
	t.Helper()
	ctx := context.Background()
	r := wal.Open(srv.Client, srv.DB)
	h := &strings.Builder{}
	bs, err := r.Branches(ctx, "hostile")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		head, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "branch %s %s %d\n", b.Name, b.Timeline, head.LSN)
	}
	// The databases argon made: its registry of working databases (a
	// listDatabases would do too, but costs a third of a second on the
	// PostgreSQL-backed server, which sizes every database).
	var dbs []string
	cur, err := srv.Client.Database(srv.DB).Collection("workdbs").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for cur.Next(ctx) {
		dbs = append(dbs, cur.Current.Lookup("_id").StringValue())
	}
	cur.Close(ctx)
	sort.Strings(dbs)
	fmt.Fprintf(h, "databases %v\n", dbs)
	for _, name := range dbs {
		db := srv.Client.Database(name)
		colls, err := db.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(colls)
		for _, c := range colls {
			if c == "_argon" {
				continue
			}
			cur, err := db.Collection(c).Find(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			var docs []string
			for cur.Next(ctx) {
				docs = append(docs, cur.Current.String())
			}
			cur.Close(ctx)
			sort.Strings(docs)
			fmt.Fprintf(h, "%s.%s %d %s\n", name, c, len(docs), strings.Join(docs, ","))
			ix, err := db.Collection(c).Indexes().ListSpecifications(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ix {
				fmt.Fprintf(h, "index %s %s %v\n", s.Name, s.KeysDocument, s.Unique != nil && *s.Unique)
			}
		}
	}
	if os.Getenv("HOSTILE_DEBUG") != "" {
		return h.String()
	}
	sum := sha256.Sum256([]byte(h.String()))
	return hex.EncodeToString(sum[:])
}

// TestHostileInputs feeds argon bad and hostile input across its commands:
// each gets its documented exit code and a one-line message, and leaves
// the log and every working database exactly as they were.
func TestHostileInputs(t *testing.T) {
	srv := enginetest.Start(t)
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": srv.URI, "ARGON_DB": srv.DB, "ARGON_PROJECT": "hostile",
		"ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir, "NO_COLOR": "1"} {
		t.Setenv(k, v)
	}
	run := func(stdin string, args ...string) (int, string, string) {
		io, in, out, errOut := ui.Test()
		in.WriteString(stdin)
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, out.String(), errOut.String()
	}
	must := func(args ...string) {
		if code, _, e := run("", args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, e)
		}
	}
	must("init", "hostile")
	must("insert", "c", `{"_id": 1, "email": "a@x", "n": 1}`)
	must("insert", "c", `{"_id": 2, "email": "b@x", "n": 2}`)
	must("insert", "c", `{"_id": "s", "email": "c@x"}`)
	must("index", "create", "c", `{"email": 1}`, "--unique")
	must("branch", "create", "feature")
	must("insert", "c", `{"_id": 3, "email": "d@x"}`, "--branch", "feature")

	ferretDB := srv.Embedded || srv.FerretDB
	for i, tc := range hostileCases() {
		if tc.ferret && !ferretDB {
			continue
		}
		before := hostileState(t, srv)
		code, out, errOut := run(tc.stdin, tc.args...)
		first, _, _ := strings.Cut(errOut, "\n")
		after := hostileState(t, srv)
		if *recordHostile {
			rec, _ := json.Marshal(map[string]any{"i": i, "code": code, "msg": first, "changed": before != after})
			fmt.Println(string(rec))
			continue
		}
		name := fmt.Sprintf("case %d (argon %s)", i, strings.Join(tc.args, " "))
		if len(name) > 200 {
			name = name[:200] + "..."
		}
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s%s", name, code, tc.code, out, errOut)
			continue
		}
		if rx, ok := strings.CutPrefix(tc.msg, "re:"); ok {
			if !regexp.MustCompile(rx).MatchString(first) {
				t.Errorf("%s: stderr %q does not match %q", name, first, rx)
			}
		} else if first != tc.msg {
			t.Errorf("%s: stderr %q, want %q", name, first, tc.msg)
		}
		if before != after {
			t.Errorf("%s: the log or a working database changed", name)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
