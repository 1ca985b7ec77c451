package cmd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/store"
)

type serveOptions struct {
	f           *Factory
	addr        string
	port        int
	allowRemote bool
	idleExit    time.Duration
}

func newServeCmd(f *Factory) *cobra.Command {
	o := &serveOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve [--port N]",
		Short: "Serve the workspace's embedded engine to applications and other argon processes",
		Long: `Run the workspace's embedded engine as a MongoDB-wire server on a loopback
port until interrupted (SIGINT or SIGTERM). Applications, mongosh and other
argon commands in the workspace connect to it; argon commands find it by
themselves. The connection string is printed on stdout.

It listens on 127.0.0.1 unless --addr names another address, which also
needs --allow-remote: the embedded engine has no authentication.

With --idle-exit it ends once it has had no client for that long (and
not before 10 seconds after it started, the time its first client may
take to connect). That is
how the workspace engine runs: with ARGON_ENGINE=shared (or "engine:
shared" in the config), the first argon command starts "argon serve
--idle-exit 60s" in the background and every command joins it.`,
		Example: `  argon serve --port 27018
  mongosh "$(argon connect)"
  argon serve --idle-exit 10m &`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.f.URI != "" {
				return usageErrorf("argon serve serves the embedded engine; it cannot serve --uri %s", store.Redact(o.f.URI))
			}
			if o.idleExit < 0 {
				return usageErrorf("invalid --idle-exit %s", o.idleExit)
			}
			if o.port < 0 || o.port > 65535 {
				return usageErrorf("invalid --port %d", o.port)
			}
			ip := net.ParseIP(o.addr)
			if ip == nil {
				return usageErrorf("invalid --addr %q: want an IP address", o.addr)
			}
			if !ip.IsLoopback() {
				if !o.allowRemote {
					return usageErrorf("refusing to listen on %s without --allow-remote: the embedded engine has no authentication", o.addr)
				}
				fmt.Fprintf(f.IO.ErrOut, "argon: warning: listening on %s: anyone who can reach it can read and change every branch\n", o.addr)
			}
			return runServe(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1", "address to listen on")
	cmd.Flags().IntVar(&o.port, "port", 0, "port to listen on (0: any free port)")
	cmd.Flags().BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback --addr")
	cmd.Flags().DurationVar(&o.idleExit, "idle-exit", 0, "end after this long without a client (0: never); how a shared workspace engine is started")
	return cmd
}

func runServe(ctx context.Context, o *serveOptions) error {
	f := o.f
	if f.Workspace == nil {
		return errNoWorkspace
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	addr := net.JoinHostPort(o.addr, strconv.Itoa(o.port))
	return store.ServeIdle(ctx, f.Workspace.Dir(), addr, f.LockTimeout, o.idleExit, func(uri string) {
		if f.JSON {
			_ = f.IO.PrintJSON(map[string]any{"uri": uri, "pid": os.Getpid(), "workspace": f.Workspace.Root})
		} else {
			fmt.Fprintln(f.IO.Out, uri)
		}
		fmt.Fprintf(f.IO.ErrOut, "argon: serving %s at %s (stop with Ctrl-C)\n", f.Workspace.Root, uri)
	})
}
