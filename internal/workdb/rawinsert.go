package workdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// rawInsertBytes bounds the documents of one insert command sent by
// rawInsert: a command is one BSON document, at most 16 MiB.
const rawInsertBytes = 8 << 20

// rawInsert inserts docs, in order, with one insert command built from
// their bytes. The driver's InsertMany decodes every document again to
// find its _id (to return it): measured on the embedded engine, the
// insert of a 20,000-document view took 305 ms that way and 275 ms this
// way (BENCHMARKS, fifteenth session). The documents here are argon's
// own, each with an _id. Only for FerretDB: a command sent this way
// carries no write concern, and FerretDB, one node, has none to apply.
//
// A write error is returned as InsertMany returns it (a
// mongo.BulkWriteException), so that mongo.IsDuplicateKeyError holds.
func rawInsert(ctx context.Context, c *mongo.Collection, docs []bson.Raw) error {
	idx, cmd := bsoncore.AppendDocumentStart(nil)
	cmd = bsoncore.AppendStringElement(cmd, "insert", c.Name())
	aidx, cmd := bsoncore.AppendArrayElementStart(cmd, "documents")
	for i, d := range docs {
		cmd = bsoncore.AppendDocumentElement(cmd, strconv.Itoa(i), d)
	}
	cmd, _ = bsoncore.AppendArrayEnd(cmd, aidx)
	cmd = bsoncore.AppendBooleanElement(cmd, "ordered", true)
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, idx)
	var reply struct {
		N           int64 `bson:"n"`
		WriteErrors []struct {
			Index  int    `bson:"index"`
			Code   int    `bson:"code"`
			ErrMsg string `bson:"errmsg"`
		} `bson:"writeErrors"`
	}
	err := c.Database().RunCommand(ctx, bson.Raw(cmd), options.RunCmd().SetReadPreference(readpref.Primary())).Decode(&reply)
	var we mongo.WriteException
	if errors.As(err, &we) {
		// The driver reads the reply's write errors itself.
		ex := mongo.BulkWriteException{WriteConcernError: we.WriteConcernError, Labels: we.Labels}
		for _, e := range we.WriteErrors {
			ex.WriteErrors = append(ex.WriteErrors, mongo.BulkWriteError{WriteError: e})
		}
		return ex
	}
	if err != nil {
		return err
	}
	if len(reply.WriteErrors) > 0 {
		ex := mongo.BulkWriteException{}
		for _, we := range reply.WriteErrors {
			ex.WriteErrors = append(ex.WriteErrors, mongo.BulkWriteError{WriteError: mongo.WriteError{Index: we.Index, Code: we.Code, Message: we.ErrMsg}})
		}
		return ex
	}
	if reply.N != int64(len(docs)) {
		return fmt.Errorf("insert into %s: the server inserted %d of %d documents", c.Name(), reply.N, len(docs))
	}
	return nil
}
