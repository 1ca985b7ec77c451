package wal

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const collTags = "tags"

// Tag names one committed state for good: timeline TL at LSN. The state
// at or below a committed head never changes (nothing committed is
// deleted or rewritten), so a tag needs no copy and never moves; it stays
// valid when the branch it was made on is renamed, written or deleted.
type Tag struct {
	ID      string    `bson:"_id" json:"-"`
	Project string    `bson:"project" json:"-"`
	Name    string    `bson:"name" json:"name"`
	TL      string    `bson:"tl" json:"timeline"`
	LSN     int64     `bson:"lsn" json:"lsn"`
	Branch  string    `bson:"branch" json:"branch"` // the branch it was made on, for people
	Message string    `bson:"message,omitempty" json:"message,omitempty"`
	Author  string    `bson:"author,omitempty" json:"author,omitempty"`
	Created time.Time `bson:"created_at" json:"created_at"`
	// SlotTL and SlotN name the slot the tagged history starts at, for a
	// tag made from BRANCH~N below a commit that changed nothing (see
	// refs.Point's SlotN); SlotTL is empty otherwise.
	SlotTL string `bson:"slot_tl,omitempty" json:"-"`
	SlotN  int64  `bson:"slot_n,omitempty" json:"-"`
}

func tagID(project, name string) string { return project + "/" + name }

// CreateTag records tag t, named t.Name in t.Project, by one unique
// insert: of two creations of one name, one wins and the other gets an
// ExistsError. A name a branch already has is refused too, since a branch
// hides a tag of its name in refs.
func (r *Repo) CreateTag(ctx context.Context, t *Tag) error {
	if err := ValidateBranch("tag", t.Name); err != nil {
		return err
	}
	if _, err := r.Branch(ctx, t.Project, t.Name); err == nil {
		return &InvalidNameError{Kind: "tag", Name: t.Name, Why: "a branch has that name, and would hide the tag in refs"}
	} else if !errors.As(err, new(*NotFoundError)) {
		return err
	}
	t.ID = tagID(t.Project, t.Name)
	t.Created = r.Now()
	if _, err := r.DB.Collection(collTags).InsertOne(ctx, t); err != nil {
		if isDup(err) {
			return &ExistsError{Kind: "tag", Name: t.Name}
		}
		return err
	}
	return nil
}

// Tag returns the named tag of project.
func (r *Repo) Tag(ctx context.Context, project, name string) (*Tag, error) {
	var t Tag
	err := r.DB.Collection(collTags).FindOne(ctx, bson.D{{Key: "_id", Value: tagID(project, name)}}).Decode(&t)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &NotFoundError{Kind: "tag", Name: name}
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Tags lists the tags of project by name.
func (r *Repo) Tags(ctx context.Context, project string) ([]Tag, error) {
	cur, err := r.DB.Collection(collTags).Find(ctx, bson.D{{Key: "project", Value: project}},
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := []Tag{}
	return out, cur.All(ctx, &out)
}

// DeleteTag removes the named tag and returns what it named. The state it
// named stays in the log.
func (r *Repo) DeleteTag(ctx context.Context, project, name string) (*Tag, error) {
	t, err := r.Tag(ctx, project, name)
	if err != nil {
		return nil, err
	}
	res, err := r.DB.Collection(collTags).DeleteOne(ctx, bson.D{{Key: "_id", Value: t.ID}, {Key: "created_at", Value: t.Created}})
	if err != nil {
		return nil, err
	}
	if res.DeletedCount == 0 {
		// Deleted (and perhaps made again) by someone else meanwhile.
		return nil, &NotFoundError{Kind: "tag", Name: name}
	}
	return t, nil
}

// NotATag refuses name for a branch when a tag has it (notATag).
func (r *Repo) NotATag(ctx context.Context, project, name string) error {
	return r.notATag(ctx, project, name)
}

// notATag refuses a branch name a tag has: the branch would hide the tag
// in refs. (A tag is refused a branch's name the same way; two commands
// racing could still make both, and then the branch wins in refs.)
func (r *Repo) notATag(ctx context.Context, project, name string) error {
	_, err := r.Tag(ctx, project, name)
	if err == nil {
		return &InvalidNameError{Kind: "branch", Name: name, Why: "a tag has that name, and the branch would hide it in refs (argon tag -d " + name + " first)"}
	}
	if errors.As(err, new(*NotFoundError)) {
		return nil
	}
	return err
}
