package wal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Streaming a state.
//
// A fold holds the whole state in memory: every document of it, and the
// garbage collector's headroom over them. To build a database from a
// state (a working database, a view), that is not needed: the nearest
// image lists each collection's documents already in the order they came
// into being, so only the entries above it are held (the delta), and the
// image is read one chunk at a time and passed on, each document replaced
// by the delta's version of it, or left out when the delta deleted it.
// The documents the delta created follow, in the order they came into
// being, then the collection's indexes. The order is the fold's: a
// database built from the stream lists its documents as one built from
// the fold.
//
// Each chunk is checked against its own checksum (the header's
// ChunkSums) before any of its documents is passed on, so what was passed
// on is right even when a later chunk turns out damaged or gone (gc may
// drop an image under a read): the stream then starts again from the next
// nearest image, down to the log, and passes over as many documents and
// indexes of each collection as it passed on already. Every source lists
// a state in the same order, so those are the same ones. An image written
// before chunks had checksums of their own is checked only at the end of
// its collection's chunks: a damage found then makes the sink forget
// everything (Reset) before the stream starts again, and a sink that
// cannot forget (no Reset) is given the fold instead. Memory: the entries
// above the image, one chunk (2 MiB) and the record it ends inside.

// StateSink receives a streamed state.
type StateSink struct {
	// Doc receives the documents of each collection (collections by
	// name), in the order they came into being.
	Doc func(coll string, doc bson.Raw) error
	// Index receives a collection's index specifications, in the order
	// they were created, after its documents.
	Index func(coll string, spec bson.Raw) error
	// Reset forgets everything received so far: the stream starts again.
	// Nil when the sink cannot forget: then only images whose chunks
	// have checksums of their own are streamed.
	Reset func() error
}

// overlayDoc is what the entries above an image did to one key.
type overlayDoc struct {
	doc bson.Raw // nil: deleted
	// deleted says the key was deleted above the image (perhaps put again
	// since): the image's document, if any, is not the key's.
	deleted bool
	// born is the LSN of the first put since the last delete (or of the
	// first put): when the key came into being, unless the image holds it
	// and it was never deleted.
	born   int64
	placed bool // passed on in the image's place
}

type overlayColl struct {
	docs    map[string]*overlayDoc
	indexes []*Entry // index entries, in LSN order
}

// overlay is the entries above an image, by collection.
type overlay map[string]*overlayColl

func (o overlay) apply(e *Entry) {
	c := o[e.Coll]
	if c == nil {
		c = &overlayColl{docs: map[string]*overlayDoc{}}
		o[e.Coll] = c
	}
	switch e.Op {
	case OpIndex, OpDropIndex:
		c.indexes = append(c.indexes, e)
	case OpPut:
		k := string(e.KeyBytes)
		d := c.docs[k]
		if d == nil {
			d = &overlayDoc{born: e.LSN}
			c.docs[k] = d
		} else if d.doc == nil {
			d.born = e.LSN
		}
		d.doc = bson.Raw(e.Doc)
	case OpDel:
		k := string(e.KeyBytes)
		c.docs[k] = &overlayDoc{deleted: true}
	}
}

// FoldEach passes the state of timeline tl at LSN lsn (only coll's, when
// coll is not empty) to sink, starting from the nearest image and holding
// only the entries above it (see above). With no image below, it reads
// the log twice (imagelog.go); when the images left cannot be streamed (a
// format-1 image, or one without chunk checksums for a sink that cannot
// Reset), it folds the state and passes it on.
func (r *Repo) FoldEach(ctx context.Context, tl string, lsn int64, coll string, sink StateSink) (FoldStats, error) {
	var fs FoldStats
	// How many documents and indexes of each collection the sink has
	// received: a stream that starts again passes over as many.
	given := map[string]*[2]int{}
	count := func(m map[string]*[2]int, c string) *[2]int {
		if m[c] == nil {
			m[c] = new([2]int)
		}
		return m[c]
	}
	attempt := func() StateSink {
		seen := map[string]*[2]int{}
		pass := func(c string, i int) bool {
			s, g := count(seen, c), count(given, c)
			if s[i]++; s[i] <= g[i] {
				return false
			}
			g[i]++
			return true
		}
		return StateSink{
			Doc: func(c string, doc bson.Raw) error {
				if !pass(c, 0) {
					return nil
				}
				return sink.Doc(c, doc)
			},
			Index: func(c string, spec bson.Raw) error {
				if !pass(c, 1) {
					return nil
				}
				return sink.Index(c, spec)
			},
		}
	}
	skip := map[string]bool{}
	// fromLog: no image below (lsn, tl) is left to read.
	fromLog := r.NoImages
	for !r.NoImages {
		img, err := r.nearestImage(ctx, tl, lsn, skip)
		if err != nil {
			return fs, err
		}
		if img == nil {
			fromLog = true
			break
		}
		checked := img.chunkSum(0) != nil
		if img.Format != imageFormat || (!checked && sink.Reset == nil) {
			break // the fold reads format 1 (whole), and any image whole
		}
		n, err := r.streamImage(ctx, img, tl, lsn, coll, attempt())
		if err == nil {
			fs.Image, fs.Entries = img, n
			return fs, nil
		}
		if ctx.Err() != nil {
			// Interrupted: whatever the image's state (a damage found
			// after the sink stopped is not the answer).
			return fs, ctx.Err()
		}
		var ie *ImageError
		if !errors.As(err, &ie) {
			return fs, err
		}
		// Same result without it, only slower.
		if !checked {
			if err := sink.Reset(); err != nil {
				return fs, err
			}
			given = map[string]*[2]int{}
		}
		skip[img.ID] = true
	}
	out := attempt()
	if fromLog {
		// Two reads of the log, holding keys and the documents changed
		// after they came into being, not the state (imagelog.go).
		ls, err := r.readLogState(ctx, tl, lsn, coll)
		if err != nil {
			return fs, err
		}
		fs.Entries = ls.entries
		for _, c := range ls.Collections() {
			if err := ls.records(c, func(kind byte, _ string, _ int64, doc []byte) error {
				if kind == imageRecordDoc {
					// A copy: the log's bytes are the whole chunk's, and
					// a sink may keep documents (a batch of them).
					return out.Doc(c, bytes.Clone(doc))
				}
				return out.Index(c, doc)
			}); err != nil {
				return fs, err
			}
		}
		return fs, nil
	}
	st, fs, err := r.foldFrom(ctx, tl, lsn, coll)
	if err != nil {
		return fs, err
	}
	for _, c := range st.Collections() {
		for _, d := range st.Docs(c) {
			if err := out.Doc(c, d); err != nil {
				return fs, err
			}
		}
		for _, spec := range st.Indexes(c) {
			if err := out.Index(c, spec); err != nil {
				return fs, err
			}
		}
	}
	return fs, nil
}

// streamImage passes the state of (tl, lsn) on from img and the entries
// above it, and returns how many entries it replayed. An *ImageError says
// the image is damaged; the sink may have received part of it.
func (r *Repo) streamImage(ctx context.Context, img *Image, tl string, lsn int64, coll string, sink StateSink) (int64, error) {
	if err := checkLayout(img); err != nil {
		return 0, err
	}
	ov := overlay{}
	var n int64
	if err := r.EachEntry(ctx, tl, img.LSN, lsn, coll, func(e *Entry) error {
		ov.apply(e)
		n++
		return nil
	}); err != nil {
		return 0, err
	}
	byName := map[string]*ImageColl{}
	for i := range img.Colls {
		if ic := &img.Colls[i]; coll == "" || ic.Name == coll {
			byName[ic.Name] = ic
		}
	}
	for name := range ov {
		if _, ok := byName[name]; !ok {
			byName[name] = nil
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := r.streamColl(ctx, img, byName[name], name, ov[name], sink); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// checkLayout checks that a format-2 image's header places its
// collections' runs of chunks one after another over all its chunks.
func checkLayout(img *Image) error {
	next := 0
	for _, ic := range img.Colls {
		if ic.First != next || ic.Chunks < 1 {
			return &ImageError{Image: img, Msg: fmt.Sprintf("its header places collection %q at chunks %d..%d", ic.Name, ic.First, ic.First+ic.Chunks-1)}
		}
		next += ic.Chunks
	}
	if next != img.Chunks {
		return &ImageError{Image: img, Msg: fmt.Sprintf("its header places %d of its %d chunks", next, img.Chunks)}
	}
	return nil
}

// streamColl passes on one collection: the image's documents (ic nil: the
// image does not hold the collection) with the delta oc laid over them,
// the documents the delta created, then the indexes.
func (r *Repo) streamColl(ctx context.Context, img *Image, ic *ImageColl, name string, oc *overlayColl, sink StateSink) error {
	if oc == nil {
		oc = &overlayColl{}
	}
	indexes := map[string]*stateDoc{}
	if ic != nil {
		if err := r.eachImageRecord(ctx, img, ic, func(rec imageRecord) error {
			if string(rec.name) != name {
				return nil
			}
			if rec.kind == imageRecordIndex {
				indexes[string(rec.key)] = &stateDoc{doc: bson.Raw(rec.body), born: rec.born}
				return nil
			}
			doc := bson.Raw(rec.body)
			if d := oc.docs[string(rec.key)]; d != nil {
				if d.deleted {
					return nil // gone, or put again later: it follows
				}
				doc, d.placed = d.doc, true
			}
			return sink.Doc(name, doc)
		}); err != nil {
			return err
		}
	}
	var born []*overlayDoc
	for _, d := range oc.docs {
		if d.doc != nil && !d.placed {
			born = append(born, d)
		}
	}
	sort.Slice(born, func(i, j int) bool { return born[i].born < born[j].born })
	for _, d := range born {
		if err := sink.Doc(name, d.doc); err != nil {
			return err
		}
	}
	for _, e := range oc.indexes {
		if e.Op == OpIndex {
			indexes[string(e.KeyBytes)] = &stateDoc{doc: bson.Raw(e.Doc), born: e.LSN}
		} else {
			delete(indexes, string(e.KeyBytes))
		}
	}
	for _, spec := range ordered(indexes) {
		if err := sink.Index(name, spec); err != nil {
			return err
		}
	}
	return nil
}

// eachImageRecord reads ic's chunks one at a time, by _id, checks each
// against its own checksum when the image has them, calls fn for each
// record, and checks the chunks against the collection's checksum. Of an
// image without chunk checksums, when fn fails, the rest of the chunks are
// still read and checked: a damaged image (*ImageError) is what made a
// record fail, not the sink.
func (r *Repo) eachImageRecord(ctx context.Context, img *Image, ic *ImageColl, fn func(imageRecord) error) error {
	h := sha256.New()
	var total int64
	var pending []byte // the start of a record the next chunk ends
	var ferr error
	damaged := func(msg string) error { return &ImageError{Image: img, Msg: msg} }
	for i := 0; i < ic.Chunks; i++ {
		cn := ic.First + i
		res := r.DB.Collection(img.Coll).FindOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(cn)}})
		if err := res.Err(); errors.Is(err, mongo.ErrNoDocuments) {
			return damaged(fmt.Sprintf("chunk %d is missing", cn))
		} else if err != nil {
			return err
		}
		var d imageChunkDoc2
		if err := res.Decode(&d); err != nil {
			return damaged(fmt.Sprintf("chunk %d does not read: %v", cn, err))
		}
		if want := img.chunkSum(cn); want != nil {
			if got := sha256.Sum256(d.Data); !bytes.Equal(got[:], want) {
				return damaged(fmt.Sprintf("chunk %d does not match its checksum", cn))
			}
		}
		h.Write(d.Data)
		total += int64(len(d.Data))
		if ferr != nil {
			continue
		}
		data := d.Data
		if len(pending) > 0 {
			data = append(pending, d.Data...)
		}
		for len(data) > 0 {
			rec, n, err := nextRecord(data)
			if err != nil {
				return damaged(err.Error())
			}
			if n == 0 {
				break
			}
			data = data[n:]
			if rec.kind == imageRecordDoc && bson.Raw(rec.body).Validate() != nil {
				return damaged("a document of collection " + ic.Name + " is not valid BSON")
			}
			if ferr = fn(rec); ferr != nil {
				break
			}
		}
		if ferr != nil && img.chunkSum(cn) != nil {
			return ferr // checked data: the sink's own failure
		}
		// Only the unread tail is kept: the chunk is let go.
		pending = append([]byte(nil), data...)
	}
	if total != ic.Bytes || hex.EncodeToString(h.Sum(nil)) != ic.Sum {
		return damaged(fmt.Sprintf("the chunks of collection %q do not match its checksum", ic.Name))
	}
	if ferr != nil {
		return ferr
	}
	if len(pending) > 0 {
		return damaged(errImageRecord.Error())
	}
	return nil
}
