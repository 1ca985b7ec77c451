package workdb

import (
	"context"
)

// Review32DiffKept is what status does with a changed database: a scan
// that keeps what it read (scanSums), then the streamed comparison
// (diffKept). keptNil reports that the scan kept nothing (past keepMax).
func (w *Branch) Review32DiffKept(ctx context.Context, head int64) (changes []Change, keptNil bool, err error) {
	_, kept, err := scanSums(ctx, w.DB, true, nil)
	if err != nil {
		return nil, false, err
	}
	defer kept.Close()
	changes, err = w.diffKept(ctx, head, kept)
	return changes, kept == nil, err
}

// Review32DiffState is the comparison before this session: the state
// folded whole, the database read again, bytes compared.
func (w *Branch) Review32DiffState(ctx context.Context, head int64) ([]Change, error) {
	return w.diffState(ctx, head, nil)
}

// Review32CountDocs is countDocs.
var Review32CountDocs = countDocs
