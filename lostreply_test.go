package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/ui"
)

// Proxy modes for the next commit (the insert of a head slot).
const (
	passThrough int32 = iota
	applyThenDrop
	dropUnsent
	applyThenOutage
)

// slotInsert is how an insert into the slots collection starts in BSON:
// the string element insert: "slots".
var slotInsert = []byte("\x02insert\x00\x06\x00\x00\x00slots\x00")

// faultProxy sits between argon and the server. It forwards everything,
// except that, when armed, it loses the reply to the next commit insert:
// after forwarding the request (the commit happened) or without forwarding
// it (it did not), and optionally refuses every connection for a while
// after (an outage).
type faultProxy struct {
	ln       net.Listener
	upstream string
	mode     atomic.Int32
	downTill atomic.Int64
	wg       sync.WaitGroup
}

func startFaultProxy(t *testing.T, upstream string) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: upstream}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if time.Now().UnixNano() < p.downTill.Load() {
				_ = c.Close()
				continue
			}
			p.wg.Add(1)
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

func (p *faultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	var mute atomic.Bool // set: replies are read from the server and lost
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !mute.Load() {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(hdr[:]))
		msg := make([]byte, n)
		copy(msg, hdr[:])
		if _, err := io.ReadFull(client, msg[4:]); err != nil {
			return
		}
		if bytes.Contains(msg, slotInsert) && p.mode.Load() != passThrough {
			mute.Store(true)
			switch p.mode.Swap(passThrough) {
			case applyThenDrop:
				_, _ = server.Write(msg)
				time.Sleep(100 * time.Millisecond) // let the server apply it
				return
			case dropUnsent:
				return
			case applyThenOutage:
				_, _ = server.Write(msg)
				time.Sleep(100 * time.Millisecond)
				p.downTill.Store(time.Now().Add(3 * time.Second).UnixNano())
				return
			}
		}
		if time.Now().UnixNano() < p.downTill.Load() {
			return
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// TestLostCommitReply loses the reply to a commit between argon and the
// server (finding 3 of the write-path issue). A commit that was applied is
// reported as committed; one that was not is reported as not committed and
// leaves nothing behind; one whose outcome cannot be read back in time
// exits 6 and the next command settles it. fsck is clean after each.
func TestLostCommitReply(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("needs the in-test engine")
	}
	srv := enginetest.Start(t)
	u, err := url.Parse(srv.URI)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startFaultProxy(t, u.Host)
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "mongodb://" + proxy.ln.Addr().String() + "/", "ARGON_DB": srv.DB,
		"ARGON_PROJECT": "lost", "ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir,
		"ARGON_RESOLVE_TIMEOUT": "1s", "ARGON_LEASE_TTL": "500ms", "NO_COLOR": "1"} {
		t.Setenv(k, v)
	}
	run := func(args ...string) (string, string, int) {
		io, _, out, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return out.String(), errOut.String(), code
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("argon %v: exit %d\n%s", args, code, errOut)
		}
		return out
	}
	ids := func() string {
		t.Helper()
		var docs []struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal([]byte(must("find", "c", "--json", "--relaxed", "--sort", `{"_id": 1}`)), &docs); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, d := range docs {
			s = append(s, d.ID)
		}
		return strings.Join(s, ",")
	}
	fsck := func() {
		t.Helper()
		if out, _, code := run("fsck"); code != 0 || strings.Contains(out, "differ from the log") {
			t.Fatalf("fsck: exit %d\n%s", code, out)
		}
	}
	must("init", "lost")
	must("insert", "c", `{"_id": "a0"}`)

	// Applied, reply lost: success, because it is committed.
	proxy.mode.Store(applyThenDrop)
	if _, errOut, code := run("insert", "c", `{"_id": "a1"}`); code != 0 {
		t.Fatalf("applied commit with a lost reply: exit %d\n%s", code, errOut)
	}
	if got := ids(); got != "a0,a1" {
		t.Fatalf("after an applied commit: %s", got)
	}
	fsck()

	// Never applied: not committed, nothing visible, the next write works.
	proxy.mode.Store(dropUnsent)
	_, errOut, code := run("insert", "c", `{"_id": "a2"}`)
	if code != 1 || !strings.Contains(errOut, "not committed") {
		t.Fatalf("lost commit: exit %d\n%s", code, errOut)
	}
	if got := ids(); got != "a0,a1" {
		t.Fatalf("after a lost commit: %s", got)
	}
	fsck()
	must("insert", "c", `{"_id": "a3"}`)

	// Applied, then an outage longer than the resolve bound: exit 6, and
	// the next command, once the server is back, finds it committed.
	proxy.mode.Store(applyThenOutage)
	_, errOut, code = run("insert", "c", `{"_id": "a4"}`)
	if code != 6 || !strings.Contains(errOut, "may have been applied") {
		t.Fatalf("commit during an outage: exit %d\n%s", code, errOut)
	}
	time.Sleep(3 * time.Second)
	if got := ids(); got != "a0,a1,a3,a4" {
		t.Fatalf("after the outage: %s", got)
	}
	fsck()
	must("insert", "c", `{"_id": "a5"}`)
	if out := must("log", "--oneline"); strings.Count(out, "\n") != 5 {
		t.Fatalf("log:\n%s", out)
	}
}
