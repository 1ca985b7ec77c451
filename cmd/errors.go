package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/refs"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Exit codes. They are part of argon's interface: scripts rely on them.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitConflict = 3
	ExitNotFound = 4
	ExitBusy     = 5
	// ExitUnknown: a commit's reply was lost and its outcome could not be
	// read back; it may or may not have been applied.
	ExitUnknown = 6
)

// UsageError is bad command-line usage: a wrong flag or argument count.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErrorf(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// hintError carries hints printed after the error.
type hintError struct {
	err   error
	hints []string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hints ...string) error { return &hintError{err: err, hints: hints} }

// exitError lets a command end with a code and no message (diff
// --exit-code style).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// busyError is a command that could not get a quiet moment to act in
// (exit code ExitBusy, as a busy branch).
type busyError struct{ msg string }

func (e *busyError) Error() string { return e.msg }

// notFoundError is a missing thing the user named.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func exitCode(err error) int {
	var (
		ue  *UsageError
		nf  *wal.NotFoundError
		nf2 *notFoundError
		le  *store.LockedError
		be  *wal.BusyError
		ee  *exitError
		uo  *wal.UnknownOutcomeError
	)
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &uo):
		return ExitUnknown
	case errors.As(err, new(*ConflictError)):
		return ExitConflict
	case errors.As(err, new(*refs.SyntaxError)):
		return ExitUsage
	case errors.As(err, new(*refs.RangeError)), errors.As(err, new(*wal.RangeError)), errors.As(err, new(*wal.TimeError)):
		// A state past the history a ref names is not there, whichever
		// way the ref was written (BRANCH@LSN or BRANCH~N).
		return ExitNotFound
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &nf), errors.As(err, &nf2), errors.As(err, new(*wal.ConflictError)),
		errors.As(err, new(*workdb.IndexNotFoundError)), deletedMeanwhile(err):
		// A branch renamed or deleted by another command while this one
		// worked on it is gone, as a branch that was never there.
		return ExitNotFound
	case errors.As(err, &le), errors.As(err, &be), errors.As(err, new(*store.ServingError)), errors.As(err, new(*busyError)):
		return ExitBusy
	}
	return ExitError
}

// printError writes err as one `argon: error:` line, plus hints; with
// asJSON, as one JSON object instead, so that scripts can parse it:
// {"error": MESSAGE, "code": EXIT CODE, "hint": HINTS}.
func printError(w io.Writer, err error, uri string, asJSON bool) {
	msg := describe(err)
	msg = store.RedactIn(msg, uri)
	msg = strings.ReplaceAll(strings.TrimSpace(msg), "\n", " ")
	var hints []string
	var he *hintError
	if errors.As(err, &he) {
		for _, h := range he.hints {
			hints = append(hints, store.RedactIn(h, uri))
		}
	}
	if strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "disk I/O error") {
		// SQLite's words, from the embedded engine (or a FerretDB server).
		hints = append(hints, "the disk holding the engine's data is full or failing: free space and run the command again; "+
			"the failed write is discarded then, and nothing committed is lost")
	}
	if asJSON {
		out := struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
			Hint  string `json:"hint,omitempty"`
		}{msg, exitCode(err), strings.Join(hints, "; ")}
		b, _ := json.Marshal(out)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "argon: error: %s\n", msg)
	for _, h := range hints {
		fmt.Fprintf(w, "argon: hint: %s\n", h)
	}
}

// describe turns driver and engine errors into messages a user can act on.
func describe(err error) string {
	var (
		se  *ejson.SyntaxError
		de  *workdb.DocumentError
		dke *workdb.DuplicateKeyError
		ce  mongo.CommandError
	)
	var ue *store.UnreachableError
	var uo *wal.UnknownOutcomeError
	var to *wal.TakenOverError
	switch {
	case errors.As(err, &uo), errors.As(err, &to):
		return err.Error()
	case errors.As(err, &se), errors.As(err, &de), errors.As(err, &dke), errors.As(err, &ue):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: " + err.Error()
	case isConnectionDrop(err):
		return "the database engine closed the connection (" + err.Error() + ")"
	case errors.As(err, &ce):
		return "server refused the request: " + serverMessage(ce.Message)
	}
	var we mongo.WriteException
	if errors.As(err, &we) && len(we.WriteErrors) > 0 {
		msgs := make([]string, len(we.WriteErrors))
		for i, e := range we.WriteErrors {
			msgs[i] = serverMessage(e.Message)
		}
		return "server refused the write: " + strings.Join(msgs, "; ")
	}
	return err.Error()
}

// goLocation matches the source locations FerretDB puts before its
// internal errors ("[msg_insert.go:168 handler.(*Handler).MsgInsert] ").
var goLocation = regexp.MustCompile(`\[[A-Za-z0-9_]+\.go:[0-9]+ [^\]]*\] `)

// serverMessage makes a server's message readable: FerretDB's source
// locations go, and what its PostgreSQL store refuses is said in words.
func serverMessage(msg string) string {
	msg = goLocation.ReplaceAllString(msg, "")
	if strings.Contains(msg, "(SQLSTATE 22P05)") {
		// Measured on FerretDB v1.24.2 over PostgreSQL 15: a NUL character
		// in a string cannot be stored (PostgreSQL's jsonb refuses \u0000).
		return "a string holds a NUL character (\\u0000), which the server's PostgreSQL store cannot hold (MongoDB can)"
	}
	return msg
}

func isConnectionDrop(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection closed unexpectedly") ||
		strings.Contains(s, "incomplete read of message header") ||
		strings.Contains(s, "connection reset by peer")
}

// deletedMeanwhile reports a write refused because its branch was deleted
// while it ran (the delete closed the timeline).
func deletedMeanwhile(err error) bool {
	var to *wal.TakenOverError
	return errors.As(err, &to) && to.Deleted
}
