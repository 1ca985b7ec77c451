package wal

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A lease whose keys went to key pages, widened and then narrowed again
// (the sequence prepare's rebuild runs: Widen, rebuild, Narrow), must not
// end up saying it changes exactly its record's keys when those are in
// pages: AnnouncePages removed the record's keys and Widen the pages, so
// Narrow's known true names no key at all, and a taker would repair
// nothing. Latent at 8466b7d: nothing narrows a lease after it named
// pages (a rebuild comes before the write announces anything), but the
// records' contract (known true: keys names every key the holder may
// change) breaks as soon as something does, or once widen is made to
// clear pages (TestReview11WidenAfterPagesMakesTakerRebuild).
func TestReview11NarrowAfterPagesNamesNoKeys(t *testing.T) {
	l := newChainLog(t)
	ctx := context.Background()
	var keys []KeyRef
	for i := 0; i < PageKeys+1; i++ {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("k%d", i)}})
		keys = append(keys, KeyRef{Coll: "c", Key: KeyOf(bson.Raw(raw).Lookup("_id"))})
	}
	lease := &Lease{TL: l.main, N: 7, Token: "t", TTLMillis: 30000}
	if err := l.r.InsertLease(ctx, lease); err != nil {
		t.Fatal(err)
	}
	pages := Pages(keys)
	if err := l.r.WriteKeyPages(ctx, lease.ID, pages, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.r.AnnouncePages(ctx, lease, len(pages)); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Widen(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Narrow(ctx, lease); err != nil {
		t.Fatal(err)
	}
	got, err := l.r.ReadLease(ctx, l.main, 7)
	if err != nil || got == nil {
		t.Fatal(got, err)
	}
	if got.KeysKnown && len(got.Keys) == 0 && got.Pages == 0 {
		t.Errorf("after pages, Widen and Narrow the lease says known with no keys and no pages: a taker repairs nothing of the %d keys", len(keys))
	}
}
