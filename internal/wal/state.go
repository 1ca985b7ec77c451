package wal

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// State is the result of folding entries: for each collection, the latest
// post-image of every live document.
type State struct {
	colls map[string]*collState
}

type collState struct {
	docs    map[string]*stateDoc
	indexes map[string]*stateDoc
}

type stateDoc struct {
	doc bson.Raw
	// born is the LSN at which the key last came into existence: documents
	// are listed in that order, as a collection lists them in insertion
	// order.
	born int64
}

// NewState returns the empty state.
func NewState() *State { return &State{colls: map[string]*collState{}} }

// Apply folds one entry into the state: put sets the document, del removes
// it. Applying the same entries in the same order always gives the same
// state.
func (s *State) Apply(e *Entry) {
	c := s.colls[e.Coll]
	if c == nil {
		c = &collState{docs: map[string]*stateDoc{}, indexes: map[string]*stateDoc{}}
		s.colls[e.Coll] = c
	}
	k := string(e.KeyBytes)
	switch e.Op {
	case OpIndex:
		c.indexes[k] = &stateDoc{doc: bson.Raw(e.Doc), born: e.LSN}
	case OpDropIndex:
		delete(c.indexes, k)
		if len(c.docs) == 0 && len(c.indexes) == 0 {
			delete(s.colls, e.Coll)
		}
	case OpPut:
		if d, ok := c.docs[k]; ok {
			d.doc = bson.Raw(e.Doc)
		} else {
			c.docs[k] = &stateDoc{doc: bson.Raw(e.Doc), born: e.LSN}
		}
	case OpDel:
		delete(c.docs, k)
		if len(c.docs) == 0 && len(c.indexes) == 0 {
			delete(s.colls, e.Coll)
		}
	}
}

// Indexes returns the index specifications of coll in the order they were
// created.
func (s *State) Indexes(coll string) []bson.Raw {
	c := s.colls[coll]
	if c == nil {
		return nil
	}
	return ordered(c.indexes)
}

// Collections lists the collections that hold documents or indexes, by
// name.
func (s *State) Collections() []string {
	out := make([]string, 0, len(s.colls))
	for name := range s.colls {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Docs returns the documents of coll in the order they came into being.
func (s *State) Docs(coll string) []bson.Raw {
	c := s.colls[coll]
	if c == nil {
		return nil
	}
	return ordered(c.docs)
}

func ordered(m map[string]*stateDoc) []bson.Raw {
	ds := make([]*stateDoc, 0, len(m))
	for _, d := range m {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].born < ds[j].born })
	out := make([]bson.Raw, len(ds))
	for i, d := range ds {
		out[i] = d.doc
	}
	return out
}

// Len is the number of documents in coll.
func (s *State) Len(coll string) int {
	if c := s.colls[coll]; c != nil {
		return len(c.docs)
	}
	return 0
}

// Doc returns the document of coll under key, or nil.
func (s *State) Doc(coll, key string) bson.Raw {
	if d := s.lookup(coll, false, key); d != nil {
		return d.doc
	}
	return nil
}

// Born returns the LSN at which the document of coll under key last came
// into existence: the state lists documents in that order.
func (s *State) Born(coll, key string) (int64, bool) {
	if d := s.lookup(coll, false, key); d != nil {
		return d.born, true
	}
	return 0, false
}

// lookup returns the document (or, with index, the index specification)
// of coll under key, or nil.
func (s *State) lookup(coll string, index bool, key string) *stateDoc {
	c := s.colls[coll]
	if c == nil {
		return nil
	}
	if index {
		return c.indexes[key]
	}
	return c.docs[key]
}
