package wal

import (
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
	// Host names where the writer runs, when known (for people only).
	Host string
}

func (e *BusyError) Error() string {
	if e.Host != "" {
		return fmt.Sprintf("branch %q is busy: another writer (on %s) holds it", e.Branch, e.Host)
	}
	return fmt.Sprintf("branch %q is busy: another writer holds it", e.Branch)
}

// RangeError reports an LSN outside a timeline's history.
type RangeError struct {
	Ref  string
	LSN  int64
	Head int64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("LSN %d is past the head of %s (head is %d)", e.LSN, e.Ref, e.Head)
}
