package store

import (
	"io"
	"net"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A write the guard passed on for a client that then left stays followed
// until the engine answers it, here 2.5 s later (the guard gave up after
// 2 s until the twenty-third session): a hold granted meanwhile waits for
// it, so it cannot land under the new holder (issue 7: a killed client's
// batch became visible after a takeover), and the database has a write
// token again once it is answered.
func TestRelayFollowsAGoneClientsWrite(t *testing.T) {
	t.Parallel()
	const delay = 2500 * time.Millisecond
	engine, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	answered := make(chan struct{})
	go func() {
		c, err := engine.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		msg, err := readMessage(c)
		if err != nil {
			return
		}
		time.Sleep(delay)
		close(answered)
		_, _ = c.Write(reply(msg, bson.D{{Key: "ok", Value: 1.0}, {Key: "n", Value: int32(1)}}))
		_, _ = io.Copy(io.Discard, c)
	}()

	writes := newWriteLog()
	holds := newWriteHolds(writes)
	client, proxied := net.Pipe()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		relay(proxied, engine.Addr().String(), writes, nil, holds, metadataDBsIn(t.TempDir()))
	}()
	body, err := bson.Marshal(bson.D{{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}, {Key: "$db", Value: "ar_p__main"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write(requestMsg(1, body)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); writes.token("ar_p__main") != ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the insert was never counted as passed on")
		}
	}
	client.Close()

	holds.hold("ar_p__main", "taker", false, time.Minute)
	select {
	case <-answered:
	default:
		t.Fatal("a hold was granted before the engine answered the write of a client that left")
	}
	holds.release("ar_p__main", "taker")
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the relay did not end once the write was answered")
	}
	if writes.token("ar_p__main") == "" {
		t.Fatal("no write token once the gone client's write was answered")
	}
}
