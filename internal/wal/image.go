package wal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Image snapshots.
//
// An image is the whole state of a timeline at one LSN: every live
// document and index specification, with the LSN at which each came into
// being (the order a fold lists them in). A fold of (tl, lsn) starts from
// the newest image on tl's ancestry at or below lsn and replays only the
// entries above it, so its cost follows the state and the entries since
// the image, not the whole history.
//
// Layout: the header lives in the images collection under _id "tl:lsn";
// the records of each collection of the state are a stream of their own,
// cut into chunks of imageChunk bytes, stored as documents
// {_id: "nnnnnnnn", data: binary} in a collection of the image's own
// (image_<tl>_<lsn>_<token>), so that reading one image reads that image
// only, whatever the engine, and dropping it is one dropCollection. The
// header lists, for each collection, its run of chunks and their SHA-256:
// a read of one collection reads its own chunks only, each by its string
// _id (the one lookup the embedded engine answers from an index). Format
// 1 cut one stream of every collection's records, under integer _ids: a
// read of one collection read and decoded the whole state.
//
// Safety: an image is a cache of the log (rule 1). The state at an LSN at
// or below a committed head never changes (nothing committed is deleted or
// rewritten), so an image, once written, is right forever. A writer
// writes its chunks first, under a fresh token, and the image exists only
// once the unique insert of its header succeeds; the header names the
// token, the number of chunks and a SHA-256 of their bytes. A loser of the
// race, or a writer that died, leaves a collection no header names: gc
// drops it (once its token is an hour old). A reader checks the chunks
// against the header and, when they do not match (a collection dropped
// under it), passes that image over for the next nearest, down to the
// root: an image can make a read faster, never different.

const (
	collImages        = "images"
	imageCollPrefix   = "image_"
	imageRecordDoc    = 'd'
	imageRecordIndex  = 'i'
	DefaultImageEvery = 10000
	// imageGrace is how long gc leaves chunks no header names yet: an
	// image may still be being written.
	imageGrace = time.Hour
)

// imageChunk is the size of an image's chunks, unless a Repo's
// imageChunk says otherwise (tests).
const imageChunk = 2 << 20

// chunkSize is the size of the chunks r cuts images into.
func (r *Repo) chunkSize() int {
	if r.imageChunk > 0 {
		return r.imageChunk
	}
	return imageChunk
}

// Image is the header of one image snapshot.
type Image struct {
	ID      string    `bson:"_id"`
	Project string    `bson:"project"`
	TL      string    `bson:"tl"`
	LSN     int64     `bson:"lsn"`
	Token   string    `bson:"token"`
	Coll    string    `bson:"coll"`
	Chunks  int       `bson:"chunks"`
	Docs    int64     `bson:"docs"`
	Indexes int64     `bson:"indexes"`
	Bytes   int64     `bson:"bytes"`
	Sum     string    `bson:"sum"`
	Time    time.Time `bson:"created_at"`
	// Format is the encoding of the records; an image of another format
	// is passed over.
	Format int `bson:"format"`
	// Colls locates each collection's records (format 2), by name.
	Colls []ImageColl `bson:"colls,omitempty"`
	// ChunkSums is the SHA-256 of each chunk, one after another (32
	// bytes each): a streamed read checks each chunk before it passes on
	// any of its documents (stream.go). Images written before it have
	// none; an argon that does not know it ignores it.
	ChunkSums []byte `bson:"chunk_sums,omitempty"`
}

// chunkSum is the checksum ChunkSums holds for chunk n, or nil when the
// image holds none.
func (img *Image) chunkSum(n int) []byte {
	if len(img.ChunkSums) != sha256.Size*img.Chunks || n < 0 || n >= img.Chunks {
		return nil
	}
	return img.ChunkSums[n*sha256.Size : (n+1)*sha256.Size]
}

// ImageColl is one collection's run of chunks in an image (format 2).
type ImageColl struct {
	Name string `bson:"name"`
	// First is the number of its first chunk; its chunks are
	// First..First+Chunks-1.
	First  int    `bson:"first"`
	Chunks int    `bson:"chunks"`
	Bytes  int64  `bson:"bytes"`
	Sum    string `bson:"sum"`
}

// imageFormat is the encoding of image records this argon writes. It
// reads this one and imageFormat1.
const (
	imageFormat  = 2
	imageFormat1 = 1
)

// imageChunkID is the _id of chunk n of a format-2 image: a string, so
// that the embedded engine finds it by its index.
func imageChunkID(n int) string { return fmt.Sprintf("%08d", n) }

func imageID(tl string, lsn int64) string { return slotID(tl, lsn) }

// ImageError reports an image whose chunks do not match its header.
type ImageError struct {
	Image *Image
	Msg   string
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("image %s@%d: %s", e.Image.TL, e.Image.LSN, e.Msg)
}

// imageChunkDoc is a chunk of a format-1 image.
type imageChunkDoc struct {
	N    int    `bson:"_id"`
	Data []byte `bson:"data"`
}

// imageChunkDoc2 is a chunk of a format-2 image.
type imageChunkDoc2 struct {
	ID   string `bson:"_id"`
	Data []byte `bson:"data"`
}

// encodeImage writes the records of st, collection by collection (by
// name), each collection's documents and indexes in the order they came
// into being, and cuts each collection's stream into chunks of imageChunk
// bytes: a record may span chunks of its collection, so a chunk never
// outgrows a document's size limit, whatever the documents, and no chunk
// holds records of two collections. colls locates each collection's
// chunks. The encoding of a state is deterministic.
func encodeImage(st *State) (chunks [][]byte, colls []ImageColl, docs, indexes int64) {
	colls, docs, indexes, _ = writeImage(st, imageChunk, func(c []byte) error {
		chunks = append(chunks, bytes.Clone(c))
		return nil
	})
	return chunks, colls, docs, indexes
}

// writeImage encodes src as encodeImage does, in chunks of size bytes,
// passing each chunk to put as soon as it is full (put must not keep it):
// memory holds one chunk, not the whole image beside the state.
func writeImage(src imageSource, size int, put func([]byte) error) (colls []ImageColl, docs, indexes int64, err error) {
	n := 0
	var cur []byte
	for _, name := range src.Collections() {
		ic := ImageColl{Name: name, First: n}
		h := sha256.New()
		cur = cur[:0]
		d, i, err := encodeColl(src, name, func(b []byte) error {
			h.Write(b)
			ic.Bytes += int64(len(b))
			cur = append(cur, b...)
			for len(cur) > size {
				if err := put(cur[:size]); err != nil {
					return err
				}
				cur = append(cur[:0], cur[size:]...)
				n++
			}
			return nil
		})
		if err == nil {
			err = put(cur)
			n++
		}
		if err != nil {
			return nil, 0, 0, err
		}
		docs, indexes = docs+d, indexes+i
		ic.Sum = hex.EncodeToString(h.Sum(nil))
		ic.Chunks = n - ic.First
		colls = append(colls, ic)
	}
	return colls, docs, indexes, nil
}

// imageSource is a state as an image lists it: its collections by name,
// and each collection's records, its documents then its indexes, each in
// the order they came into being.
type imageSource interface {
	Collections() []string
	records(coll string, rec func(kind byte, key string, born int64, doc []byte) error) error
}

func (s *State) records(name string, rec func(kind byte, key string, born int64, doc []byte) error) error {
	c := s.colls[name]
	if c == nil {
		return nil
	}
	for _, k := range orderedKeys(c.docs) {
		if err := rec(imageRecordDoc, k, c.docs[k].born, c.docs[k].doc); err != nil {
			return err
		}
	}
	for _, k := range orderedKeys(c.indexes) {
		if err := rec(imageRecordIndex, k, c.indexes[k].born, c.indexes[k].doc); err != nil {
			return err
		}
	}
	return nil
}

// encodeColl writes the records of collection name of src to w, a record
// at a time.
func encodeColl(src imageSource, name string, w func([]byte) error) (docs, indexes int64, err error) {
	var rec []byte
	put := func(b []byte) {
		rec = binary.AppendUvarint(rec, uint64(len(b)))
		rec = append(rec, b...)
	}
	err = src.records(name, func(kind byte, key string, born int64, doc []byte) error {
		rec = append(rec[:0], kind)
		put([]byte(name))
		rec = binary.AppendVarint(rec, born)
		put([]byte(key))
		put(doc)
		if kind == imageRecordDoc {
			docs++
		} else {
			indexes++
		}
		return w(rec)
	})
	return docs, indexes, err
}

// encodedColls is, for each collection of st, the size and SHA-256 of the
// stream encodeImage would write for it, without writing it.
func encodedColls(st *State) []ImageColl {
	var out []ImageColl
	for _, name := range st.Collections() {
		h := sha256.New()
		n := int64(0)
		_, _, _ = encodeColl(st, name, func(b []byte) error { // a State's records never fail
			h.Write(b)
			n += int64(len(b))
			return nil
		})
		out = append(out, ImageColl{Name: name, Bytes: n, Sum: hex.EncodeToString(h.Sum(nil))})
	}
	return out
}

func orderedKeys(m map[string]*stateDoc) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return m[ks[i]].born < m[ks[j]].born })
	return ks
}

// imageRecord is one record of an image's stream: a document or an index
// specification of collection name, under key, which came into being at
// LSN born.
type imageRecord struct {
	kind            byte
	name, key, body []byte
	born            int64
}

var errImageRecord = errors.New("malformed image record")

// nextRecord reads the record data starts with and returns the bytes it
// took. A record cut short by the end of data gives n 0 and no error (the
// rest may come with the next chunk); one that cannot be read, an error.
func nextRecord(data []byte) (rec imageRecord, n int, err error) {
	short := func(w int) bool { return w == 0 }
	field := func() ([]byte, bool, error) {
		l, w := binary.Uvarint(data[n:])
		if w < 0 {
			return nil, false, errImageRecord
		}
		if short(w) || uint64(len(data)-n-w) < l {
			return nil, false, nil
		}
		b := data[n+w : n+w+int(l)]
		n += w + int(l)
		return b, true, nil
	}
	if len(data) == 0 {
		return rec, 0, nil
	}
	rec.kind = data[0]
	n = 1
	var ok bool
	if rec.name, ok, err = field(); !ok {
		return rec, 0, err
	}
	born, w := binary.Varint(data[n:])
	if w < 0 {
		return rec, 0, errImageRecord
	}
	if short(w) {
		return rec, 0, nil
	}
	rec.born, n = born, n+w
	if rec.key, ok, err = field(); !ok {
		return rec, 0, err
	}
	if rec.body, ok, err = field(); !ok {
		return rec, 0, err
	}
	if rec.kind != imageRecordDoc && rec.kind != imageRecordIndex {
		return rec, 0, errImageRecord
	}
	return rec, n, nil
}

// decodeImage adds the records of an image's stream (its chunks, joined)
// to st (only coll's, when coll is not empty).
func decodeImage(st *State, data []byte, coll string) error {
	for len(data) > 0 {
		rec, n, err := nextRecord(data)
		if err != nil {
			return err
		}
		if n == 0 {
			return errImageRecord
		}
		data = data[n:]
		if coll != "" && string(rec.name) != coll {
			continue
		}
		c := st.colls[string(rec.name)]
		if c == nil {
			c = &collState{docs: map[string]*stateDoc{}, indexes: map[string]*stateDoc{}}
			st.colls[string(rec.name)] = c
		}
		d := &stateDoc{doc: bson.Raw(rec.body), born: rec.born}
		if rec.kind == imageRecordDoc {
			c.docs[string(rec.key)] = d
		} else {
			c.indexes[string(rec.key)] = d
		}
	}
	return nil
}

// owner returns the timeline on tl's ancestry whose own entries hold LSN
// lsn (the state at lsn belongs to it, and to every descendant forked at
// or after lsn), or "" for lsn 0, the empty state.
func (r *Repo) owner(ctx context.Context, tl string, lsn int64) (string, error) {
	segs, err := r.Segments(ctx, tl, 0, lsn)
	if err != nil {
		return "", err
	}
	for _, sg := range segs {
		if lsn > sg.From && lsn <= sg.To {
			return sg.TL, nil
		}
	}
	return "", nil
}

// SaveImage stores st, the state of tl at lsn (lsn at or below tl's
// committed head), as an image. When another image of that state exists,
// it is returned and st is not written.
func (r *Repo) SaveImage(ctx context.Context, project, tl string, lsn int64, st *State) (*Image, error) {
	return r.saveImage(ctx, project, tl, lsn, st)
}

func (r *Repo) saveImage(ctx context.Context, project, tl string, lsn int64, src imageSource) (*Image, error) {
	owner, err := r.owner(ctx, tl, lsn)
	if err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, fmt.Errorf("no image of the empty state at LSN 0")
	}
	if img, err := r.existingImage(ctx, owner, lsn); err != nil || img != nil {
		return img, err
	}
	img := &Image{ID: imageID(owner, lsn), Project: project, TL: owner, LSN: lsn, Token: newTimelineID(),
		Time: r.Now(), Format: imageFormat}
	img.Coll = fmt.Sprintf("%s%s_%012d_%s", imageCollPrefix, owner, lsn, img.Token)
	h := sha256.New()
	c := r.DB.Collection(img.Coll)
	colls, docs, indexes, err := writeImage(src, r.chunkSize(), func(data []byte) error {
		h.Write(data)
		sum := sha256.Sum256(data)
		img.ChunkSums = append(img.ChunkSums, sum[:]...)
		img.Bytes += int64(len(data))
		_, err := c.InsertOne(ctx, imageChunkDoc2{ID: imageChunkID(img.Chunks), Data: data})
		img.Chunks++
		return err
	})
	if err != nil {
		r.dropImageColl(img.Coll)
		return nil, fmt.Errorf("write image: %w", err)
	}
	img.Colls, img.Docs, img.Indexes = colls, docs, indexes
	img.Sum = hex.EncodeToString(h.Sum(nil))
	if _, err := r.DB.Collection(collImages).InsertOne(ctx, img); err != nil {
		// The insert may have been applied and its reply lost (or the
		// context cancelled after it was sent): read the header back
		// before dropping the chunks it may name.
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		got, rerr := r.readImage(bg, owner, lsn)
		if rerr == nil && got != nil && got.Token == img.Token {
			return got, nil
		}
		r.dropImageColl(img.Coll)
		if rerr == nil && got != nil {
			return got, nil // another process published this state first
		}
		return nil, fmt.Errorf("write image: %w", err)
	}
	return img, nil
}

// existingImage returns the image of (owner, lsn) when there is one that
// loads. A header whose chunks do not load is deleted (only that header,
// by its token), so that the state can be imaged again.
func (r *Repo) existingImage(ctx context.Context, owner string, lsn int64) (*Image, error) {
	img, err := r.readImage(ctx, owner, lsn)
	if err != nil || img == nil {
		return nil, err
	}
	if _, err := r.LoadImage(ctx, img, ""); err == nil {
		return img, nil
	} else if ctx.Err() != nil {
		return nil, err
	}
	_, err = r.DB.Collection(collImages).DeleteOne(ctx, bson.D{{Key: "_id", Value: img.ID}, {Key: "token", Value: img.Token}})
	return nil, err
}

// dropImageColl drops the chunks of an image that was never named, on a
// context of its own: it runs when the caller's may be cancelled. gc
// drops what it leaves.
func (r *Repo) dropImageColl(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.DB.Collection(name).Drop(ctx)
}

func (r *Repo) readImage(ctx context.Context, tl string, lsn int64) (*Image, error) {
	var img Image
	err := r.DB.Collection(collImages).FindOne(ctx, bson.D{{Key: "_id", Value: imageID(tl, lsn)}}).Decode(&img)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &img, nil
}

// Images lists the images of project, by timeline and LSN.
func (r *Repo) Images(ctx context.Context, project string) ([]Image, error) {
	filter := bson.D{}
	if project != "" {
		filter = bson.D{{Key: "project", Value: project}}
	}
	cur, err := r.DB.Collection(collImages).Find(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []Image
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TL != out[j].TL {
			return out[i].TL < out[j].TL
		}
		return out[i].LSN < out[j].LSN
	})
	return out, nil
}

// NearestImage returns the newest image usable for the state of tl at
// lsn: one of a timeline of tl's ancestry, at an LSN that timeline holds
// on the way to (tl, lsn). Nil when there is none.
func (r *Repo) NearestImage(ctx context.Context, tl string, lsn int64) (*Image, error) {
	return r.nearestImage(ctx, tl, lsn, nil)
}

// nearestImage is NearestImage passing over the images skip names.
func (r *Repo) nearestImage(ctx context.Context, tl string, lsn int64, skip map[string]bool) (*Image, error) {
	segs, err := r.Segments(ctx, tl, 0, lsn)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	ids := make([]string, len(segs))
	for i, sg := range segs {
		ids[i] = sg.TL
	}
	// One query of the headers (small documents, one per image).
	cur, err := r.DB.Collection(collImages).Find(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, err
	}
	var imgs []Image
	if err := cur.All(ctx, &imgs); err != nil {
		return nil, err
	}
	var best *Image
	for i := range imgs {
		im := &imgs[i]
		for _, sg := range segs {
			if im.TL == sg.TL && im.LSN > sg.From && im.LSN <= sg.To && !skip[im.ID] && (best == nil || im.LSN > best.LSN) {
				best = im
			}
		}
	}
	return best, nil
}

// imageBatch is how many chunks (2 MiB each) one reply of the server
// carries when an image is read whole. The embedded engine builds each
// reply in memory, copying and encoding its documents: its default first
// batch held all 17 chunks of a 100,000-document image, a 34 MB reply,
// and a checkout built from it peaked at 312-343 MB of memory (156-180 MB
// in batches of 2; BENCHMARKS, seventeenth session).
const imageBatch = 2

// LoadImage reads an image into a state (only coll's records, when coll
// is not empty), checking its chunks against its header. A read of one
// collection of a format-2 image reads that collection's chunks only.
func (r *Repo) LoadImage(ctx context.Context, img *Image, coll string) (*State, error) {
	switch {
	case img.Format == imageFormat1:
		return r.loadImage1(ctx, img, coll)
	case img.Format != imageFormat:
		return nil, &ImageError{Image: img, Msg: fmt.Sprintf("it is of format %d; this argon reads formats %d and %d", img.Format, imageFormat1, imageFormat)}
	case coll != "":
		return r.loadImageColl(ctx, img, coll)
	}
	cur, err := r.DB.Collection(img.Coll).Find(ctx, bson.D{}, options.Find().SetBatchSize(imageBatch))
	if err != nil {
		return nil, err
	}
	var docs []imageChunkDoc2
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	if len(docs) != img.Chunks {
		return nil, &ImageError{Image: img, Msg: fmt.Sprintf("%d of its %d chunks are stored", len(docs), img.Chunks)}
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID < docs[j].ID })
	chunks := make([][]byte, len(docs))
	for i := range docs {
		if docs[i].ID != imageChunkID(i) {
			return nil, &ImageError{Image: img, Msg: fmt.Sprintf("chunk %d is missing", i)}
		}
		chunks[i] = docs[i].Data
	}
	// The runs fit the chunks: there are img.Chunks of them (above).
	if err := checkLayout(img); err != nil {
		return nil, err
	}
	st := NewState()
	for _, ic := range img.Colls {
		if err := decodeImageColl(st, img, ic, chunks[ic.First:ic.First+ic.Chunks]); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// loadImageColl reads coll's records of a format-2 image: its chunks
// only, each by its _id. A collection the header does not list is not in
// the state.
func (r *Repo) loadImageColl(ctx context.Context, img *Image, coll string) (*State, error) {
	st := NewState()
	for _, ic := range img.Colls {
		if ic.Name != coll {
			continue
		}
		if ic.Chunks < 1 || ic.First < 0 || ic.First+ic.Chunks > img.Chunks {
			return nil, &ImageError{Image: img, Msg: fmt.Sprintf("its header places collection %q at chunks %d..%d", ic.Name, ic.First, ic.First+ic.Chunks-1)}
		}
		chunks := make([][]byte, ic.Chunks)
		for i := range chunks {
			var d imageChunkDoc2
			err := r.DB.Collection(img.Coll).FindOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(ic.First + i)}}).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				return nil, &ImageError{Image: img, Msg: fmt.Sprintf("chunk %d is missing", ic.First+i)}
			}
			if err != nil {
				return nil, err
			}
			chunks[i] = d.Data
		}
		return st, decodeImageColl(st, img, ic, chunks)
	}
	return st, nil
}

// decodeImageColl checks one collection's chunks against their checksum
// and adds their records to st.
func decodeImageColl(st *State, img *Image, ic ImageColl, chunks [][]byte) error {
	h := sha256.New()
	n := int64(0)
	for _, c := range chunks {
		h.Write(c)
		n += int64(len(c))
	}
	if n != ic.Bytes || hex.EncodeToString(h.Sum(nil)) != ic.Sum {
		return &ImageError{Image: img, Msg: fmt.Sprintf("the chunks of collection %q do not match its checksum", ic.Name)}
	}
	stream := chunks[0]
	if len(chunks) > 1 {
		stream = make([]byte, 0, n)
		for i := range chunks {
			stream = append(stream, chunks[i]...)
			chunks[i] = nil // not held twice
		}
	}
	if err := decodeImage(st, stream, ic.Name); err != nil {
		return &ImageError{Image: img, Msg: err.Error()}
	}
	return nil
}

// loadImage1 reads a format-1 image: one stream of every collection's
// records, read whole whatever coll is.
func (r *Repo) loadImage1(ctx context.Context, img *Image, coll string) (*State, error) {
	cur, err := r.DB.Collection(img.Coll).Find(ctx, bson.D{}, options.Find().SetBatchSize(imageBatch))
	if err != nil {
		return nil, err
	}
	var chunks []imageChunkDoc
	if err := cur.All(ctx, &chunks); err != nil {
		return nil, err
	}
	if len(chunks) != img.Chunks {
		return nil, &ImageError{Image: img, Msg: fmt.Sprintf("%d of its %d chunks are stored", len(chunks), img.Chunks)}
	}
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].N < chunks[j].N })
	h := sha256.New()
	for i := range chunks {
		if chunks[i].N != i {
			return nil, &ImageError{Image: img, Msg: fmt.Sprintf("chunk %d is missing", i)}
		}
		h.Write(chunks[i].Data)
	}
	if hex.EncodeToString(h.Sum(nil)) != img.Sum {
		return nil, &ImageError{Image: img, Msg: "its chunks do not match its checksum"}
	}
	var stream []byte
	if len(chunks) == 1 {
		stream = chunks[0].Data
	} else {
		stream = make([]byte, 0, img.Bytes)
		for i := range chunks {
			stream = append(stream, chunks[i].Data...)
			chunks[i].Data = nil // not held twice
		}
	}
	st := NewState()
	if err := decodeImage(st, stream, coll); err != nil {
		return nil, &ImageError{Image: img, Msg: err.Error()}
	}
	return st, nil
}

// FoldStats says how a fold was done.
type FoldStats struct {
	// Image is the image the fold started from (nil: the root).
	Image *Image
	// Entries is the number of entries replayed on top of it.
	Entries int64
}

// loadNearest loads the nearest image usable for (tl, lsn) (only coll's
// records, when coll is not empty). An image that does not load (its
// chunks gone or damaged, another format) is passed over for the next
// nearest. Nil when there is none, or images are off.
func (r *Repo) loadNearest(ctx context.Context, tl string, lsn int64, coll string) (*State, *Image, error) {
	if r.NoImages {
		return nil, nil, nil
	}
	skip := map[string]bool{}
	for {
		img, err := r.nearestImage(ctx, tl, lsn, skip)
		if err != nil || img == nil {
			return nil, nil, err
		}
		st, err := r.LoadImage(ctx, img, coll)
		if err == nil {
			return st, img, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		// Same result without it, only slower.
		skip[img.ID] = true
	}
}

// foldFrom folds (tl, lsn) from the nearest usable image, or from the root
// when there is none.
func (r *Repo) foldFrom(ctx context.Context, tl string, lsn int64, coll string) (*State, FoldStats, error) {
	var fs FoldStats
	st, img, err := r.loadNearest(ctx, tl, lsn, coll)
	if err != nil {
		return nil, fs, err
	}
	from := int64(0)
	if img != nil {
		from, fs.Image = img.LSN, img
	} else {
		st = NewState()
	}
	err = r.EachEntry(ctx, tl, from, lsn, coll, func(e *Entry) error {
		st.Apply(e)
		fs.Entries++
		return nil
	})
	return st, fs, err
}

// TakeImage folds (tl, lsn) and stores the state as an image, unless one
// of that state exists.
func (r *Repo) TakeImage(ctx context.Context, project, tl string, lsn int64) (*Image, error) {
	owner, err := r.owner(ctx, tl, lsn)
	if err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, fmt.Errorf("LSN 0 is the empty state: there is nothing to keep an image of")
	}
	if img, err := r.existingImage(ctx, owner, lsn); err != nil || img != nil {
		return img, err
	}
	var below *Image
	if !r.NoImages {
		if below, err = r.nearestImage(ctx, tl, lsn, nil); err != nil {
			return nil, err
		}
	}
	if below == nil {
		// The first image of this history: written from the log without
		// holding the state (imagelog.go).
		ls, err := r.readLogState(ctx, tl, lsn, "")
		if err != nil {
			return nil, err
		}
		return r.saveImage(ctx, project, tl, lsn, ls)
	}
	st, _, err := r.foldFrom(ctx, tl, lsn, "")
	if err != nil {
		return nil, err
	}
	return r.SaveImage(ctx, project, tl, lsn, st)
}

// MaybeImage is called after a commit on tl that moved its head from base
// to lsn. When the commit crossed a multiple of ImageEvery, and the
// entries since the nearest image are at least ImageEvery and at least as
// many as that image holds documents, it takes an image at lsn. The second
// condition keeps the cost of images proportional to the writes: an image
// of n documents is written only after n new entries.
func (r *Repo) MaybeImage(ctx context.Context, project, tl string, base, lsn int64) (*Image, error) {
	every := r.ImageEvery
	if every <= 0 || r.NoImages || base/every == lsn/every {
		return nil, nil
	}
	near, err := r.NearestImage(ctx, tl, lsn)
	if err != nil {
		return nil, err
	}
	if near != nil && (lsn-near.LSN < every || lsn-near.LSN < near.Docs) {
		// Unless that image is broken (its chunk collection dropped):
		// reads pass it over, so it must not hold the next one back.
		// Counting its chunks is the cheap part of what a read checks.
		n, err := r.DB.Collection(near.Coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		if n == int64(near.Chunks) {
			return nil, nil
		}
	}
	return r.TakeImage(ctx, project, tl, lsn)
}

// DropImages deletes the images keep does not want (nil: all), then drops
// every chunk collection no remaining header names: those of the images
// deleted, and those left by a writer that lost a race or died. It
// returns the number of images deleted and of such orphaned collections
// dropped.
func (r *Repo) DropImages(ctx context.Context, keep func(*Image) bool) (images, orphans int, err error) {
	all, err := r.Images(ctx, "")
	if err != nil {
		return 0, 0, err
	}
	deleted := map[string]bool{}
	for i := range all {
		img := &all[i]
		if keep != nil && keep(img) {
			continue
		}
		// The header first: an image without chunks is never used, chunks
		// without a header are only garbage.
		if _, err := r.DB.Collection(collImages).DeleteOne(ctx, bson.D{{Key: "_id", Value: img.ID}}); err != nil {
			return images, orphans, err
		}
		deleted[img.Coll] = true
		images++
	}
	names, err := r.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return images, orphans, err
	}
	for _, n := range names {
		if !strings.HasPrefix(n, imageCollPrefix) {
			continue
		}
		// Read the headers now: an image written since the first read
		// names its collection.
		var img Image
		err := r.DB.Collection(collImages).FindOne(ctx, bson.D{{Key: "coll", Value: n}}).Decode(&img)
		if err == nil {
			continue
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return images, orphans, err
		}
		if !deleted[n] && r.imageWriteMayRun(n) {
			continue
		}
		if err := r.DB.Collection(n).Drop(ctx); err != nil {
			return images, orphans, err
		}
		if !deleted[n] {
			orphans++
		}
	}
	return images, orphans, nil
}

// imageWriteMayRun reports whether the chunk collection name may belong to
// an image still being written: its token (an ObjectID) is younger than
// imageGrace. A wrong answer only keeps garbage a while longer, or has an
// image passed over by readers.
func (r *Repo) imageWriteMayRun(name string) bool {
	i := strings.LastIndexByte(name, '_')
	id, err := bson.ObjectIDFromHex(name[i+1:])
	return err == nil && r.Now().Sub(id.Timestamp()) < imageGrace
}

// VerifyImages checks each image of the given timelines: its chunks
// against its header, and its state against a fold from the root. With
// repair, an image that fails is dropped (reads fold without it).
func (r *Repo) VerifyImages(ctx context.Context, timelines map[string]bool, repair bool) (problems, repaired []string, err error) {
	all, err := r.Images(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	plain := *r
	plain.NoImages = true
	for i := range all {
		img := &all[i]
		if !timelines[img.TL] {
			continue
		}
		problem := ""
		// The image's size, as the step's count: the fold below has no
		// count of its own.
		step := StepOf(ctx, fmt.Sprintf("checking the image at LSN %d", img.LSN))
		step.Add(int(img.Docs))
		same, err := r.imageIsFold(ctx, &plain, img)
		var ie *ImageError
		switch {
		case errors.As(err, &ie):
			problem = ie.Error()
		case err != nil:
			step.Done()
			return nil, nil, err
		case !same:
			problem = fmt.Sprintf("image %s@%d differs from a fold of the log", img.TL, img.LSN)
		}
		step.Done()
		if problem == "" {
			continue
		}
		problems = append(problems, problem)
		if repair {
			if _, _, err := r.DropImages(ctx, func(o *Image) bool { return o.ID != img.ID }); err != nil {
				return nil, nil, err
			}
			repaired = append(repaired, fmt.Sprintf("dropped image %s@%d (reads fold without it)", img.TL, img.LSN))
		}
	}
	return problems, repaired, nil
}

// imageIsFold checks img's chunks against its header (an *ImageError when
// they do not match), and says whether they hold the encoding of plain's
// fold of its state. A format-2 image is checked a chunk at a time against
// the fold's encoding, by size and checksum: memory holds the fold, not
// the image and two encodings beside it (500,000 documents: 1.1 GB).
func (r *Repo) imageIsFold(ctx context.Context, plain *Repo, img *Image) (bool, error) {
	if img.Format != imageFormat {
		st, err := r.LoadImage(ctx, img, "")
		if err != nil {
			return false, err
		}
		want, err := plain.Fold(ctx, img.TL, img.LSN, "")
		if err != nil {
			return false, err
		}
		got, _, _, _ := encodeImage(st)
		exp, _, _, _ := encodeImage(want)
		return sameChunks(got, exp), nil
	}
	if err := checkLayout(img); err != nil {
		return false, err
	}
	if len(img.ChunkSums) > 0 && img.chunkSum(0) == nil {
		// Read as an image without them: right, but not streamed into a
		// first build.
		return false, &ImageError{Image: img, Msg: fmt.Sprintf("its header holds %d bytes of chunk checksums for %d chunks", len(img.ChunkSums), img.Chunks)}
	}
	// A chunk its header does not name makes a read of the whole image
	// refuse it (LoadImage), so it is a problem here too.
	if n, err := r.DB.Collection(img.Coll).CountDocuments(ctx, bson.D{}); err != nil {
		return false, err
	} else if n != int64(img.Chunks) {
		return false, &ImageError{Image: img, Msg: fmt.Sprintf("%d of its %d chunks are stored", n, img.Chunks)}
	}
	for i := range img.Colls {
		if err := r.eachImageRecord(ctx, img, &img.Colls[i], func(imageRecord) error { return nil }); err != nil {
			return false, err
		}
	}
	want, err := plain.Fold(ctx, img.TL, img.LSN, "")
	if err != nil {
		return false, err
	}
	exp := encodedColls(want)
	if len(exp) != len(img.Colls) {
		return false, nil
	}
	for i, e := range exp {
		if ic := img.Colls[i]; ic.Name != e.Name || ic.Bytes != e.Bytes || ic.Sum != e.Sum {
			return false, nil
		}
	}
	return true, nil
}

func sameChunks(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}
