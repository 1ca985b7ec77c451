// Package ejson reads and writes documents as MongoDB Extended JSON v2,
// keeping field order and exact BSON types.
package ejson

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// SyntaxError locates malformed input.
type SyntaxError struct {
	What         string // "filter", "document 3", ...
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("invalid Extended JSON in %s at line %d, column %d: %s", e.What, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("invalid Extended JSON in %s: %s", e.What, e.Msg)
}

func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}

// ParseDocument parses one Extended JSON document (an object). what names
// the input in errors.
func ParseDocument(what string, data []byte) (bson.Raw, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &SyntaxError{What: what, Msg: "it is empty"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var probe json.RawMessage
	if err := dec.Decode(&probe); err != nil {
		return nil, syntaxErr(what, data, dec, err)
	}
	if dec.More() {
		// Point at the first byte of what follows, past blanks.
		off := dec.InputOffset()
		for off < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n"), data[off]) >= 0 {
			off++
		}
		l, c := position(data, off+1)
		return nil, &SyntaxError{What: what, Line: l, Column: c, Msg: "unexpected data after the document"}
	}
	if trimmed[0] != '{' {
		return nil, &SyntaxError{What: what, Msg: "it is not a document (a JSON object)"}
	}
	return fromExtJSON(what, probe)
}

func fromExtJSON(what string, raw []byte) (bson.Raw, error) {
	if !utf8.Valid(raw) {
		return nil, &SyntaxError{What: what, Msg: "it is not valid UTF-8"}
	}
	if esc := loneSurrogate(raw); esc != "" {
		// JSON decoders turn it into U+FFFD without a word; storing a
		// different character than the one sent is worse than refusing.
		return nil, &SyntaxError{What: what, Msg: fmt.Sprintf("the string escape %s is half of a UTF-16 surrogate pair: it is not a character", esc)}
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON(raw, false, &d); err != nil {
		return nil, &SyntaxError{What: what, Msg: cleanDriverMsg(err.Error())}
	}
	b, err := bson.Marshal(d)
	if err != nil {
		return nil, &SyntaxError{What: what, Msg: err.Error()}
	}
	return b, nil
}

// loneSurrogate returns the first \uXXXX escape in the JSON text raw that
// is a UTF-16 surrogate not paired with its other half, or "".
func loneSurrogate(raw []byte) string {
	inString := false
	hex4 := func(i int) (rune, bool) {
		if i+4 > len(raw) {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i:i+4]), 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				r, ok := hex4(i + 2)
				if ok && r >= 0xD800 && r <= 0xDFFF {
					esc := string(raw[i : i+6])
					if r >= 0xDC00 { // a low half with no high half before it
						return esc
					}
					if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
						return esc
					}
					if lo, ok := hex4(i + 8); !ok || lo < 0xDC00 || lo > 0xDFFF {
						return esc
					}
					i += 11 // the pair
					continue
				}
			}
			i++ // the escaped character
		}
	}
	return ""
}

func cleanDriverMsg(s string) string {
	return strings.TrimSpace(s)
}

func syntaxErr(what string, data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		l, c := position(data, se.Offset)
		return &SyntaxError{What: what, Line: l, Column: c, Msg: se.Error()}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		l, c := position(data, int64(len(data)))
		return &SyntaxError{What: what, Line: l, Column: c + 1, Msg: "unexpected end of input"}
	}
	l, c := position(data, dec.InputOffset())
	return &SyntaxError{What: what, Line: l, Column: c, Msg: err.Error()}
}

// ReadDocuments reads documents from r: one JSON array of documents, or a
// stream of documents (one per line, or simply one after another).
func ReadDocuments(r io.Reader) ([]bson.Raw, error) {
	var out []bson.Raw
	err := EachDocument(r, func(d bson.Raw) error {
		out = append(out, d)
		return nil
	})
	return out, err
}

// EachDocument streams the documents of r to fn, holding one at a time
// (a top-level JSON array is read element by element too).
func EachDocument(r io.Reader, fn func(bson.Raw) error) error {
	d := NewDecoder(r)
	for {
		doc, err := d.Next()
		if err != nil {
			return err
		}
		if doc == nil {
			return nil
		}
		if err := fn(doc); err != nil {
			return err
		}
	}
}

// Decoder reads documents one by one from a stream: one JSON array of
// documents, or documents one after another (one per line, or simply
// concatenated).
type Decoder struct {
	counter *lineCounter
	br      *bufio.Reader
	dec     *json.Decoder
	started bool
	inArray bool
	done    bool
	n       int
	line    int
}

// Line is the line on which the last document read starts (0 before the
// first).
func (d *Decoder) Line() int { return d.line }

// NewDecoder reads documents from r.
func NewDecoder(r io.Reader) *Decoder {
	br := bufio.NewReaderSize(r, 1<<16)
	// Track lines for error positions without holding the input.
	counter := &lineCounter{r: br}
	dec := json.NewDecoder(counter)
	dec.UseNumber()
	return &Decoder{counter: counter, br: br, dec: dec}
}

// Next returns the next document, or nil at the end of the input.
func (d *Decoder) Next() (bson.Raw, error) {
	if d.done {
		return nil, nil
	}
	if !d.started {
		d.started = true
		first, err := peekNonSpace(d.br)
		if err == io.EOF {
			d.done = true
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		d.inArray = first == '['
		if d.inArray {
			if _, err := d.dec.Token(); err != nil {
				return nil, streamErr("input", d.counter, d.dec, err, false)
			}
		}
	}
	if d.inArray && !d.dec.More() {
		if _, err := d.dec.Token(); err != nil {
			return nil, streamErr("input", d.counter, d.dec, err, false)
		}
		if d.dec.More() {
			return nil, &SyntaxError{What: "input", Msg: "unexpected data after the array"}
		}
		d.done = true
		return nil, nil
	}
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		if err == io.EOF && !d.inArray {
			d.done = true
			return nil, nil
		}
		return nil, streamErr(fmt.Sprintf("document %d", d.n+1), d.counter, d.dec, err, d.inArray)
	}
	d.n++
	d.line, _ = d.counter.pos(d.dec.InputOffset() - int64(len(raw)))
	what := fmt.Sprintf("document %d", d.n)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &SyntaxError{What: what, Msg: "it is not a document (a JSON object)"}
	}
	return fromExtJSON(what, raw)
}

func streamErr(what string, lc *lineCounter, dec *json.Decoder, err error, element bool) error {
	var se *json.SyntaxError
	msg, off := err.Error(), dec.InputOffset()
	if errors.As(err, &se) {
		// At the top level the decoder's offset counts the offending
		// byte; inside an array it is where the element began.
		msg, off = se.Error(), se.Offset
		if !element {
			off--
		}
		if se.Offset <= dec.InputOffset() {
			// Inside an array the decoder reports the offset where the
			// element began, before the blanks ahead of it: point at the
			// element itself.
			if b, rerr := io.ReadAll(io.LimitReader(dec.Buffered(), 1<<16)); rerr == nil {
				skip := len(b) - len(bytes.TrimLeft(b, " \t\r\n"))
				off = dec.InputOffset() + int64(skip)
			}
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		// Where the input ended, not where the unfinished value began.
		msg, off = "unexpected end of input", lc.read
	}
	l, c := lc.pos(off)
	return &SyntaxError{What: what, Line: l, Column: c, Msg: msg}
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil {
			if len(b) >= i-1 && err == io.EOF {
				return 0, io.EOF
			}
			return 0, err
		}
		switch c := b[i-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		default:
			return c, nil
		}
	}
}

// lineCounter records where lines start so that a decoder offset can be
// turned into a line and column. It keeps the most recent line starts only
// (the decoder never looks far behind what it has read), so memory stays
// bounded on inputs of millions of lines.
type lineCounter struct {
	r       io.Reader
	read    int64
	starts  []int64
	dropped int // line starts forgotten, all before starts[0]
}

const keepLineStarts = 1 << 14

func (lc *lineCounter) Read(p []byte) (int, error) {
	n, err := lc.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			lc.starts = append(lc.starts, lc.read+int64(i)+1)
		}
	}
	if len(lc.starts) > 2*keepLineStarts {
		drop := len(lc.starts) - keepLineStarts
		lc.dropped += drop
		lc.starts = append(lc.starts[:0], lc.starts[drop:]...)
	}
	lc.read += int64(n)
	return n, err
}

func (lc *lineCounter) pos(off int64) (int, int) {
	line, start := 1+lc.dropped, int64(0)
	for _, s := range lc.starts {
		if s > off {
			break
		}
		line, start = line+1, s
	}
	return line, int(off-start) + 1
}

// Format renders doc as Extended JSON v2: canonical (exact types) or
// relaxed (readable).
func Format(doc bson.Raw, canonical bool) (string, error) {
	b, err := bson.MarshalExtJSON(doc, canonical, false)
	return string(b), err
}

// FormatValue renders one value as Extended JSON v2.
func FormatValue(v bson.RawValue, canonical bool) (json.RawMessage, error) {
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, canonical, false)
	if err != nil {
		return nil, err
	}
	// {"v":X} -> X
	return json.RawMessage(b[5 : len(b)-1]), nil
}
