package commit

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/argon-db/argon/internal/workdb"
)

// A failed write records its database clean again only after an error
// the server answered: a cut-off request may still be landing.
func TestAnsweredErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{fmt.Errorf("insert: %w", context.DeadlineExceeded), false},
		{&workdb.DuplicateKeyError{}, true},
		{errors.New("E11000 duplicate key"), true},
	} {
		if got := answered(tc.err); got != tc.want {
			t.Errorf("answered(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
