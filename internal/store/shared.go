package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The shared workspace engine: with Options.Shared, the first argon
// command of a workspace starts `argon serve --idle-exit IDLE` in the
// background, and it and every later command connect to it as clients,
// so that concurrent commands run side by side instead of waiting for the
// workspace lock, and the engine starts once, not once per command. The
// serve ends after IDLE without a client; the next command starts another.
// It is an ordinary argon serve: applications can use it too.

// DefaultIdle is how long a workspace engine started by a command waits
// without a client before it ends.
const DefaultIdle = 60 * time.Second

// sharedStartTimeout bounds the wait for a started workspace engine to be
// ready, beyond the lock timeout it may first spend waiting for a command
// that runs the engine itself.
const sharedStartTimeout = 30 * time.Second

// ServeLog is where a workspace engine a command started writes what it
// prints, in the workspace's .argon directory; past maxServeLog bytes the
// next start empties it.
const (
	ServeLog    = "serve.log"
	maxServeLog = 1 << 20
)

func openShared(ctx context.Context, opts Options) (*Store, error) {
	var started *os.Process
	var lastErr error
	for attempt := 0; ; attempt++ {
		// The workspace lock tells this workspace's live engine from a
		// serve.json left behind or copied with the workspace: acquire
		// returns the serve that holds the lock, or the lock itself when
		// nobody does, after waiting up to the lock timeout for a command
		// that runs the engine itself (LockedError, exit 5, as without
		// a shared engine).
		fl, si, err := acquire(ctx, opts.Dir, opts.LockTimeout)
		if err != nil {
			return nil, err
		}
		if si != nil {
			s, err := openServed(ctx, si, opts, true)
			if err == nil {
				s.dataDir = filepath.Join(opts.Dir, "data")
				if started != nil && started.Pid == si.PID {
					s.Notices = append(s.Notices, fmt.Sprintf("started the workspace engine (pid %d; it ends after %s without a client)", started.Pid, idleOf(opts)))
				}
				return s, nil
			}
			// It ended between its file and our connection.
			lastErr = err
		} else {
			// Nobody serves (a serve holds the lock while it serves): a
			// serve.json here is left behind or copied, and its pid may
			// be anyone's now. Remove it, then start one, which takes
			// the lock.
			_ = os.Remove(servePath(opts.Dir))
			_ = fl.Unlock()
		}
		if attempt == 2 {
			if lastErr == nil {
				lastErr = errors.New("it ended as soon as it started, three times")
			}
			return nil, fmt.Errorf("cannot reach the workspace engine: %w", lastErr)
		}
		logStart := logSize(opts.Dir)
		p, err := startShared(opts)
		if err != nil {
			return nil, err
		}
		started = p
		if err := waitShared(ctx, opts, p); err != nil {
			return nil, err
		}
		if !alive(p.Pid) && ReadServeInfo(opts.Dir) == nil {
			// It ended without serving, and no other serves now.
			why := lastLogLine(opts.Dir, logStart)
			if strings.HasPrefix(why, "workspace is locked") {
				return nil, &LockedError{PID: lockHolder(opts.Dir)}
			}
			if why == "" {
				why = "it ended without a word"
			}
			lastErr = fmt.Errorf("it did not start: %s (see %s)", why, filepath.Join(opts.Dir, ServeLog))
		}
	}
}

// logSize is the size of the workspace engine's log now.
func logSize(dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, ServeLog))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// lastLogLine is the last line the workspace engine's log gained past
// offset from, without argon's "error: " prefix.
func lastLogLine(dir string, from int64) string {
	b, err := os.ReadFile(filepath.Join(dir, ServeLog))
	if err != nil || int64(len(b)) < from {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b[from:])), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	return strings.TrimPrefix(last, "argon: error: ")
}

func idleOf(opts Options) time.Duration {
	if opts.Idle > 0 {
		return opts.Idle
	}
	return DefaultIdle
}

// startShared starts `argon serve --idle-exit` for the workspace, detached
// from this process (its own session: it outlives the command and a
// terminal's signals), writing to ServeLog.
func startShared(opts Options) (*os.Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start the workspace engine: %w", err)
	}
	if strings.HasSuffix(strings.TrimSuffix(exe, ".exe"), ".test") {
		// A Go test binary would run its tests, not argon serve.
		return nil, errors.New("start the workspace engine: not from a test binary (unset ARGON_ENGINE)")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	mode := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if logSize(opts.Dir) > maxServeLog {
		mode |= os.O_TRUNC
	}
	logf, err := os.OpenFile(filepath.Join(opts.Dir, ServeLog), mode, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start the workspace engine: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "serve", "--idle-exit", idleOf(opts).String(),
		"--lock-timeout", opts.LockTimeout.String(), "--timeout", opts.ServerSelectionTimeout.String())
	cmd.Dir = filepath.Dir(opts.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "ARGON_URI=", "ARGON_ENGINE=embedded")
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the workspace engine: %w", err)
	}
	// Reaped in the background while this process lives; after that, by
	// whoever inherits it.
	go func() { _ = cmd.Wait() }()
	return cmd.Process, nil
}

// waitShared waits until a workspace engine serves (the one started as
// p, or another one that won the workspace first), or p has ended.
func waitShared(ctx context.Context, opts Options, p *os.Process) error {
	deadline := time.Now().Add(opts.LockTimeout + sharedStartTimeout)
	for {
		if ReadServeInfo(opts.Dir) != nil || !alive(p.Pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the workspace engine did not start in time (see " + filepath.Join(opts.Dir, ServeLog) + ")")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
