package workdb

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// defaultSpoolMemory is how many bytes of documents a Docs with Spill set
// keeps in memory before it writes the rest to a temporary file, unless
// its Memory says otherwise.
const defaultSpoolMemory = 4 << 20

// defaultKeepMax bounds the bytes of documents a status scan keeps for the
// comparison with the log (scanSums), unless the context says otherwise.
const defaultKeepMax = 256 << 20

// ReadMemory bounds the memory of a status scan's reads (scanSums): Spool
// is the memory its spools share before they write to temporary files,
// Keep the bytes of documents it keeps at all (past it, the comparison
// with the log reads the database again). A zero field is the default (4
// MiB, 256 MiB). Tests make them small to reach files and re-reads with
// little data; a value in the context, not a package variable, lets such
// tests run in parallel with others.
type ReadMemory struct{ Spool, Keep int }

type readMemoryKey struct{}

// WithReadMemory returns ctx with the read memory m.
func WithReadMemory(ctx context.Context, m ReadMemory) context.Context {
	return context.WithValue(ctx, readMemoryKey{}, m)
}

// readMemoryOf is ctx's read memory, with the defaults for what it does
// not set.
func readMemoryOf(ctx context.Context) ReadMemory {
	m, _ := ctx.Value(readMemoryKey{}).(ReadMemory)
	return ReadMemory{Spool: cmp.Or(m.Spool, defaultSpoolMemory), Keep: cmp.Or(m.Keep, defaultKeepMax)}
}

// Docs holds the documents a read found until the read is known to have
// seen one committed state: a read of a working database runs again when
// a writer touched it meanwhile (commit.Protocol.Read), a read of a view
// when the view was dropped under it (CollViews.withView), so a read can
// hand nothing on before it has ended. With Spill set, documents past
// Memory bytes go to a temporary file, so that a read of any size
// holds a batch of the server's in memory, not its whole answer. The zero
// Docs keeps everything in memory.
type Docs struct {
	// Spill lets the documents past Memory bytes go to a file.
	Spill bool
	// Memory is how many bytes of documents it keeps in memory before
	// the rest goes to a file (0: 4 MiB).
	Memory int
	// Shared, when set, is the memory several spools share (a scan's,
	// one per collection): the bytes of documents they may still keep in
	// memory, all together, in place of Memory each.
	Shared *int
	// Strict makes Add fail when no temporary file can be made (a
	// missing or read-only temporary directory); otherwise the documents
	// stay in memory then, as without Spill.
	Strict bool
	mem    []byte // the first documents, one after another
	n      int
	f      *os.File // the rest, one after another, once mem is full
	w      *bufio.Writer
	fn     string // the file's name while it could not be removed at once
	took   int    // bytes taken from Shared
}

// inMemory reports whether a document of n bytes goes to memory, and
// takes its bytes from the shared memory when it does.
func (d *Docs) inMemory(n int) bool {
	switch {
	case d.f != nil:
		return false
	case !d.Spill:
		return true
	case d.Shared != nil:
		if n > *d.Shared {
			return false
		}
		*d.Shared -= n
		d.took += n
		return true
	default:
		return len(d.mem)+n <= cmp.Or(d.Memory, defaultSpoolMemory)
	}
}

// Add keeps a copy of doc, after those kept before.
func (d *Docs) Add(doc bson.Raw) error {
	if d.inMemory(len(doc)) {
		d.mem = append(d.mem, doc...)
		d.n++
		return nil
	}
	if d.f == nil {
		f, err := os.CreateTemp("", "argon-read-*")
		if err != nil {
			if !d.Strict {
				d.Spill = false
				d.mem = append(d.mem, doc...)
				d.n++
				return nil
			}
			return fmt.Errorf("keeping the documents of a large read in a temporary file: %w", err)
		}
		// Removed at once where the system allows it (the file lives
		// as long as it is open, even when the process is killed);
		// elsewhere at Close.
		if os.Remove(f.Name()) != nil {
			d.fn = f.Name()
		}
		d.f, d.w = f, bufio.NewWriterSize(f, 1<<20)
	}
	if _, err := d.w.Write(doc); err != nil {
		return fmt.Errorf("keeping the documents of a large read in a temporary file: %w", err)
	}
	d.n++
	return nil
}

// release gives the memory of the documents kept back to Shared.
func (d *Docs) release() {
	if d.Shared != nil {
		*d.Shared += d.took
	}
	d.took = 0
}

// Len is how many documents are kept.
func (d *Docs) Len() int { return d.n }

// Reset forgets every document kept, for a read that starts again.
func (d *Docs) Reset() error {
	d.release()
	d.mem, d.n = d.mem[:0], 0
	if d.f == nil {
		return nil
	}
	d.w.Reset(d.f)
	if err := d.f.Truncate(0); err != nil {
		return err
	}
	_, err := d.f.Seek(0, io.SeekStart)
	return err
}

// Each calls fn with each document kept, in the order they were added.
// The document passed is valid during the call only.
func (d *Docs) Each(fn func(bson.Raw) error) error {
	for rest := d.mem; len(rest) > 0; {
		n := int(binary.LittleEndian.Uint32(rest))
		if err := fn(bson.Raw(rest[:n])); err != nil {
			return err
		}
		rest = rest[n:]
	}
	if d.f == nil {
		return nil
	}
	if err := d.w.Flush(); err != nil {
		return err
	}
	defer d.f.Seek(0, io.SeekEnd) //nolint:errcheck // later Adds append; a failed seek fails them
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := docReader{r: bufio.NewReaderSize(d.f, 1<<20)}
	for {
		doc, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(doc); err != nil {
			return err
		}
	}
}

// docReader reads documents written one after another to a temporary
// file (each starts with its length, as BSON does).
type docReader struct {
	r   *bufio.Reader
	doc []byte
}

// next returns the next document, valid until the next call; ok is false
// at the end.
func (dr *docReader) next() (doc bson.Raw, ok bool, err error) {
	var head [4]byte
	if _, err := io.ReadFull(dr.r, head[:]); errors.Is(err, io.EOF) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	n := int(binary.LittleEndian.Uint32(head[:]))
	if n < 5 {
		return nil, false, fmt.Errorf("a temporary file of argon's is damaged: a document of %d bytes", n)
	}
	dr.doc = append(append(dr.doc[:0], head[:]...), make([]byte, n-4)...)
	if _, err := io.ReadFull(dr.r, dr.doc[4:]); err != nil {
		return nil, false, err
	}
	return dr.doc, true, nil
}

// All returns the documents kept, in order: those in memory share it
// (valid until the next Add or Reset), those from the file are copies.
func (d *Docs) All() ([]bson.Raw, error) {
	out := make([]bson.Raw, 0, d.n)
	for rest := d.mem; len(rest) > 0; {
		n := int(binary.LittleEndian.Uint32(rest))
		out = append(out, bson.Raw(rest[:n:n]))
		rest = rest[n:]
	}
	if d.f == nil {
		return out, nil
	}
	mem := d.mem
	d.mem = nil // Each reads the file only
	defer func() { d.mem = mem }()
	err := d.Each(func(doc bson.Raw) error {
		out = append(out, append(bson.Raw(nil), doc...))
		return nil
	})
	return out, err
}

// Close lets go of the documents and of the temporary file.
func (d *Docs) Close() error {
	d.release()
	d.mem, d.n = nil, 0
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	if d.fn != "" {
		if rerr := os.Remove(d.fn); err == nil {
			err = rerr
		}
	}
	d.f, d.w, d.fn = nil, nil, ""
	return err
}
