package wal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// KeyList is the keys a lease announces, stored as one binary value: a
// version byte (1), then for each key a flags byte (1: an index), the
// collection and the key, each as a uvarint length and its bytes.
//
// An array of {c, k, i} documents, as leases held them before, is read
// too. On FerretDB every update of a lease (an announcement, a heartbeat,
// the removal of its keys) decodes and encodes the whole record, and an
// array of documents costs it about 15 µs an element: the announcements
// of a 5,000-document import cost more than its inserts (BENCHMARKS,
// twelfth session). One binary value costs it a copy.
type KeyList []KeyRef

const keyListVersion = 1

// MarshalBSONValue encodes the list as one binary value.
func (l KeyList) MarshalBSONValue() (byte, []byte, error) {
	b := []byte{keyListVersion}
	for _, k := range l {
		flags := byte(0)
		if k.Index {
			flags = 1
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(len(k.Coll)))
		b = append(b, k.Coll...)
		b = binary.AppendUvarint(b, uint64(len(k.Key)))
		b = append(b, k.Key...)
	}
	t, data, err := bson.MarshalValue(bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: b})
	return byte(t), data, err
}

// UnmarshalBSONValue decodes a binary list, or an array of documents as
// leases held before.
func (l *KeyList) UnmarshalBSONValue(typ byte, data []byte) error {
	rv := bson.RawValue{Type: bson.Type(typ), Value: data}
	switch rv.Type {
	case bson.TypeNull, bson.TypeUndefined:
		*l = nil
		return nil
	case bson.TypeArray:
		var old []KeyRef
		if err := rv.Unmarshal(&old); err != nil {
			return err
		}
		*l = old
		return nil
	}
	_, b, ok := rv.BinaryOK()
	if !ok {
		return fmt.Errorf("a key list is a binary value or an array, not %s", rv.Type)
	}
	bad := errors.New("malformed key list")
	if len(b) == 0 || b[0] != keyListVersion {
		return bad
	}
	b = b[1:]
	field := func() ([]byte, error) {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, bad
		}
		f := b[w : w+int(n)]
		b = b[w+int(n):]
		return f, nil
	}
	out := KeyList{}
	for len(b) > 0 {
		flags := b[0]
		if flags&^1 != 0 {
			return bad // a flag this version does not know
		}
		b = b[1:]
		coll, err := field()
		if err != nil {
			return err
		}
		key, err := field()
		if err != nil {
			return err
		}
		out = append(out, KeyRef{Coll: string(coll), Key: append([]byte(nil), key...), Index: flags&1 != 0})
	}
	*l = out
	return nil
}
