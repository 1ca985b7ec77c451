package store

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// opMsgWith builds an OP_MSG request with request id 7: a body document
// and, when seq is not empty, a document sequence named "documents".
func opMsgWith(t *testing.T, body bson.D, seq ...bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, headerBytes+4)
	msg = append(msg, 0)
	msg = append(msg, b...)
	if len(seq) > 0 {
		var docs []byte
		for _, d := range seq {
			raw, err := bson.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, raw...)
		}
		id := append([]byte("documents"), 0)
		sec := make([]byte, 4)
		binary.LittleEndian.PutUint32(sec, uint32(4+len(id)+len(docs)))
		msg = append(msg, 1)
		msg = append(msg, sec...)
		msg = append(msg, id...)
		msg = append(msg, docs...)
	}
	binary.LittleEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.LittleEndian.PutUint32(msg[4:], 7)
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	return msg
}

func TestGuardRefusal(t *testing.T) {
	dec, _ := bson.ParseDecimal128("1.5")
	cases := []struct {
		name string
		msg  []byte
		want string
	}{
		{"plain insert", opMsgWith(t, bson.D{{Key: "insert", Value: "c"}}, bson.D{{Key: "_id", Value: 1}}), ""},
		{"decimal in a sequence", opMsgWith(t, bson.D{{Key: "insert", Value: "c"}},
			bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}, {Key: "p", Value: bson.D{{Key: "x", Value: dec}}}}),
			`document 2: field "p.x" is a Decimal128`},
		{"minkey in a filter", opMsgWith(t, bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: bson.MinKey{}}}}}}}),
			`field "filter.v.$gt" is a MinKey`},
		{"NaN in an array", opMsgWith(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "a", Value: bson.A{1.0, math.NaN()}}}}}}),
			`field "documents.0.a.1" is NaN`},
		{"infinity passes (the engine refuses it properly)", opMsgWith(t, bson.D{{Key: "v", Value: math.Inf(1)}}), ""},
		{"a transaction's insert", opMsgWith(t, bson.D{{Key: "insert", Value: "c"}, {Key: "startTransaction", Value: true}, {Key: "autocommit", Value: false}}), noTransactions},
		{"commitTransaction", opMsgWith(t, bson.D{{Key: "commitTransaction", Value: 1}, {Key: "autocommit", Value: false}}), noTransactions},
	}
	for _, tc := range cases {
		got := refusal(tc.msg)
		if tc.want == "" && got != "" || tc.want != "" && !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: refusal %q, want %q", tc.name, got, tc.want)
		}
	}

	req := cases[1].msg
	reply := errorReply(req, "why", 2, "BadValue")
	if int(binary.LittleEndian.Uint32(reply)) != len(reply) || binary.LittleEndian.Uint32(reply[8:]) != 7 || opCode(reply) != opMsg {
		t.Fatalf("reply header %x", reply[:16])
	}
	doc := bson.Raw(reply[headerBytes+5:])
	if doc.Lookup("ok").Double() != 0 || doc.Lookup("code").Int32() != 2 || doc.Lookup("errmsg").StringValue() != "why" {
		t.Errorf("reply %s", doc)
	}
}
