package wal

import (
	"errors"
	"fmt"
)

// NotFoundError reports a project, branch, tag or document that does not
// exist.
type NotFoundError struct {
	Kind, Name string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found", e.Kind, e.Name)
}

// ExistsError reports a name that is already taken.
type ExistsError struct {
	Kind, Name string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s %q already exists", e.Kind, e.Name)
}

// InvalidNameError reports a name that breaks the naming rules.
type InvalidNameError struct {
	Kind, Name, Why string
}

func (e *InvalidNameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s", e.Kind, e.Name, e.Why)
}

// BusyError reports a timeline held by another writer for longer than the
// caller was willing to wait.
type BusyError struct {
	Branch string
	PID    int
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("branch %q is busy: another writer (pid %d) holds it", e.Branch, e.PID)
	}
	return fmt.Sprintf("branch %q is busy: another writer holds it", e.Branch)
}

// ErrClaimLost reports that a writer's claim expired and was taken over
// before it could commit: its write did not happen.
var ErrClaimLost = errors.New("the write was not committed: its claim on the branch expired and another writer took over")

// RangeError reports an LSN outside a timeline's history.
type RangeError struct {
	Ref  string
	LSN  int64
	Head int64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("LSN %d is past the head of %s (head is %d)", e.LSN, e.Ref, e.Head)
}
