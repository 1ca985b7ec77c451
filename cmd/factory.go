package cmd

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.mongodb.org/mongo-driver/v2/event"

	commitpkg "github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
	"github.com/argon-db/argon/internal/workspace"
)

// Factory carries what every command needs: streams, resolved
// configuration, the workspace, and a lazily opened store.
type Factory struct {
	IO *ui.IOStreams
	// Dir is the directory argon runs in.
	Dir string

	// Resolved configuration (flag > env > workspace > user > default).
	URI     string
	Project string
	// wsConfig is the workspace's config file as written (setup).
	wsConfig    *workspace.Config
	DB          string
	Author      string
	JSON        bool
	NoPager     bool
	LockTimeout time.Duration
	Timeout     time.Duration
	// SharedEngine runs the embedded engine as a workspace engine every
	// command joins (config "engine: shared"), which ends after
	// EngineIdle without a client.
	SharedEngine bool
	EngineIdle   time.Duration

	Workspace *workspace.Workspace

	store *store.Store
	repo  *wal.Repo
	// Monitor, when set, sees every command sent to the server (tests).
	Monitor *event.CommandMonitor
	// protocol runs writes and guards reads of working databases.
	protocol *commitpkg.Protocol
	// snapshotEvery overrides how many log entries a timeline grows past
	// its last image snapshot before a commit takes one.
	snapshotEvery *int64
}

// setup finds the workspace and resolves configuration for cmd. Config
// values are pushed into the flags the user did not set, so a flag's value
// is always the one in force.
func (f *Factory) setup(cmd *cobra.Command) error {
	ws, err := workspace.Find(f.Dir)
	if err != nil {
		return err
	}
	f.Workspace = ws
	v := viper.New()
	v.SetEnvPrefix("ARGON")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	v.SetConfigType("yaml")
	if p := userConfigPath(); p != "" {
		if _, err := os.Stat(p); err == nil {
			v.SetConfigFile(p)
			if err := v.MergeInConfig(); err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
		}
	}
	if ws != nil {
		v.SetConfigFile(ws.ConfigPath())
		if err := v.MergeInConfig(); err != nil {
			return fmt.Errorf("read %s: %w", ws.ConfigPath(), err)
		}
		c, err := ws.Config()
		if err != nil {
			return err
		}
		f.wsConfig = &c
	}
	var ferr error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || ferr != nil || !configurable[fl.Name] {
			return
		}
		if v.IsSet(fl.Name) {
			if err := cmd.Flags().Set(fl.Name, v.GetString(fl.Name)); err != nil {
				ferr = fmt.Errorf("invalid value for %s from the environment or config: %w", fl.Name, err)
			}
		}
	})
	if ferr != nil {
		return ferr
	}
	if v.IsSet("snapshot-every") {
		n, err := strconv.ParseInt(v.GetString("snapshot-every"), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid snapshot-every %q (ARGON_SNAPSHOT_EVERY or config): want a number of log entries, 0 for never", v.GetString("snapshot-every"))
		}
		f.snapshotEvery = &n
	}
	switch e := v.GetString("engine"); e {
	case "", "embedded":
	case "shared":
		f.SharedEngine = true
	default:
		return usageErrorf("invalid engine %q (ARGON_ENGINE or config): want embedded or shared", e)
	}
	if v.IsSet("engine-idle") {
		d, err := time.ParseDuration(v.GetString("engine-idle"))
		if err != nil || d <= 0 {
			return usageErrorf("invalid engine-idle %q (ARGON_ENGINE_IDLE or config): want a duration such as 60s", v.GetString("engine-idle"))
		}
		f.EngineIdle = d
	}
	if fl := cmd.Flags().Lookup("db"); fl != nil && fl.Changed && fl.Value.String() == "" {
		// An empty --db would silently mean the default database.
		return &wal.InvalidNameError{Kind: "metadata database", Name: "", Why: "it is empty (leave --db out for the default, argon_wal)"}
	}
	// Long steps inside the work (rebuilding a working database,
	// materialising a past state, reading a database for changes) show a
	// progress line on a terminal.
	var bar *ui.Progress
	label := ""
	cmd.SetContext(workdb.WithProgress(cmd.Context(), func(what string, n int) {
		if n < 0 || what != label {
			bar.Done()
			bar, label = nil, ""
		}
		if n < 0 {
			return
		}
		if bar == nil {
			bar, label = f.IO.Progress(what), what
		}
		bar.Update(n, "documents")
	}))
	f.Author = v.GetString("author")
	if f.Author == "" {
		if u, err := user.Current(); err == nil && u.Username != "" {
			f.Author = u.Username
		} else {
			f.Author = "unknown"
		}
	}
	return nil
}

// configurable lists the flags that the environment (ARGON_*) and config
// files may set.
var configurable = map[string]bool{
	"uri": true, "project": true, "db": true, "branch": true,
	"lock-timeout": true, "timeout": true,
}

func userConfigPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "argon", "config.yaml")
}

var errNoWorkspace = withHint(errors.New("not in an argon workspace (no .argon folder here or above)"),
	"run `argon init` here, or give a server with --uri / ARGON_URI and a project with --project / ARGON_PROJECT")

// Store opens the deployment once per command.
func (f *Factory) Store(ctx context.Context) (*store.Store, error) {
	if f.store != nil {
		return f.store, nil
	}
	opts := store.Options{URI: f.URI, LockTimeout: f.LockTimeout, ServerSelectionTimeout: f.Timeout, Monitor: f.Monitor,
		Shared: f.SharedEngine, Idle: f.EngineIdle}
	if f.URI == "" {
		if f.Workspace == nil {
			return nil, errNoWorkspace
		}
		opts.Dir = f.Workspace.Dir()
	}
	s, err := store.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, n := range s.Notices {
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: %s\n", n)
	}
	f.store = s
	return s, nil
}

// Repo returns the versioned store.
func (f *Factory) Repo(ctx context.Context) (*wal.Repo, error) {
	if f.repo != nil {
		return f.repo, nil
	}
	s, err := f.Store(ctx)
	if err != nil {
		return nil, err
	}
	if f.DB != "" && f.DB != wal.DefaultDatabase {
		if err := wal.CheckMetadataName(f.DB); err != nil {
			return nil, err
		}
	}
	r := wal.Open(s.Client, f.DB)
	r.Scans = s.Embedded || s.FerretDB
	r.FerretDB = s.Embedded || s.FerretDB
	r.Embedded = s.Embedded
	// On the embedded engine, lookups by _id in the log's collections use
	// an index only once argon has added it (store.IndexIDs). It only
	// makes them faster: when it cannot be added now, the next command
	// tries again.
	_ = s.IndexIDs(r.DB.Name())
	if d := os.Getenv("ARGON_COMMIT_DATE"); d != "" {
		t, err := time.Parse(time.RFC3339, d)
		if err != nil {
			return nil, fmt.Errorf("invalid ARGON_COMMIT_DATE %q: want RFC3339, like 2026-01-02T15:04:05Z", d)
		}
		t = t.UTC().Truncate(time.Millisecond) // as BSON dates keep it
		r.Now = func() time.Time { return t }
	}
	if d := os.Getenv("ARGON_BUSY_TIMEOUT"); d != "" {
		t, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("invalid ARGON_BUSY_TIMEOUT %q: %w", d, err)
		}
		r.BusyTimeout = t
	}
	if d := os.Getenv("ARGON_LEASE_TTL"); d != "" {
		t, err := time.ParseDuration(d)
		if err != nil || t <= 0 {
			return nil, fmt.Errorf("invalid ARGON_LEASE_TTL %q: want a positive duration, like 30s", d)
		}
		r.LeaseTTL = t
	}
	r.Exclusive = s.Exclusive
	if f.snapshotEvery != nil {
		r.ImageEvery = *f.snapshotEvery
	}
	f.repo = r
	return r, nil
}

// Close releases the store.
// page sends the command's output through a pager on a terminal (see
// ui.StartPager), unless --no-pager.
func (f *Factory) page() {
	if !f.NoPager {
		f.IO.StartPager()
	}
}

func (f *Factory) Close() {
	if f.store != nil {
		f.store.Close()
		f.store = nil
	}
}

// ProjectName is the project commands work on.
func (f *Factory) ProjectName() (string, error) {
	if f.Project != "" {
		return f.Project, nil
	}
	if f.Workspace == nil && f.URI == "" {
		return "", errNoWorkspace
	}
	return "", withHint(errors.New("no project configured"), "set --project or ARGON_PROJECT, or run `argon init PROJECT`")
}

// branchOf returns branch name of project. The project is read at the
// same time as the branch, for its log format: an argon refuses a project
// whose log is of a newer format than it reads (wal.Format), and a
// command on a branch reads the log too (review37: commands that read
// the branch alone never saw the format). When the branch is not found,
// the project's error, if any, says which of the two is missing.
func (f *Factory) branchOf(ctx context.Context, name string) (*wal.Repo, *wal.Branch, error) {
	project, err := f.ProjectName()
	if err != nil {
		return nil, nil, err
	}
	r, err := f.Repo(ctx)
	if err != nil {
		return nil, nil, err
	}
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, perr = r.Project(ctx, project)
	}()
	b, err := r.Branch(ctx, project, name)
	<-done
	// A project of a newer format (wal.FormatError), or a failed read.
	// A project not found is told below, with the branch.
	var nf *wal.NotFoundError
	if err == nil && perr != nil && !errors.As(perr, &nf) {
		return nil, nil, perr
	}
	if errors.As(err, &nf) {
		if _, _, perr := f.project(ctx); perr != nil {
			return nil, nil, perr
		}
		err = suggestBranch(ctx, r, project, err)
	}
	return r, b, err
}

// project opens the repo and checks that the project exists.
func (f *Factory) project(ctx context.Context) (*wal.Repo, string, error) {
	name, err := f.ProjectName()
	if err != nil {
		return nil, "", err
	}
	r, err := f.Repo(ctx)
	if err != nil {
		return nil, "", err
	}
	if _, err := r.Project(ctx, name); err != nil {
		var nf *wal.NotFoundError
		if errors.As(err, &nf) {
			if f.Workspace != nil && f.wsConfig != nil && name == f.wsConfig.Project {
				// Another --db (review41).
				db := cmp.Or(f.wsConfig.DB, wal.DefaultDatabase)
				return nil, "", withHint(err, "the workspace's project "+name+" is in metadata database "+db+"; check --db")
			}
			if f.Workspace != nil && f.URI == "" && f.wsConfig != nil {
				// The workspace's own engine: another folder's init
				// makes another engine, which this one never sees
				// (review39).
				return nil, "", withHint(err, "this workspace's project is "+f.wsConfig.Project+"; check --project, ARGON_PROJECT and --db")
			}
			if f.Workspace != nil {
				// argon init here would refuse: this folder has a workspace.
				return nil, "", withHint(err, "create it from another folder with `argon init "+name+" --uri URI` (this server's), or check --project, ARGON_PROJECT and --db")
			}
			return nil, "", withHint(err, "create it with `argon init "+name+"`")
		}
		return nil, "", err
	}
	return r, name, nil
}

// CurrentBranch is the branch commands use when --branch is not given:
// the workspace's current branch when the command works on the
// workspace's own project, else main.
func (f *Factory) CurrentBranch() (string, error) {
	if f.atWorkspace() {
		return f.Workspace.Branch()
	}
	return "main", nil
}

// atWorkspace reports whether the command works on the workspace's own
// project, whose branch the workspace's current branch (.argon/HEAD) is:
// --project or --db (or ARGON_PROJECT, ARGON_DB) naming another project
// leave the workspace's current branch out of it. (The URI is not
// compared: a user-wide config may set one for every workspace.)
func (f *Factory) atWorkspace() bool {
	if f.Workspace == nil {
		return false
	}
	if f.wsConfig == nil {
		return true // a Factory set up by hand, in tests
	}
	c := f.wsConfig
	db := func(s string) string {
		if s == "" {
			return wal.DefaultDatabase
		}
		return s
	}
	return c.Project == f.Project && db(c.DB) == db(f.DB)
}

// branchOrCurrent resolves an explicit branch flag or the current branch.
func (f *Factory) branchOrCurrent(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return f.CurrentBranch()
}

// openBranch resolves a --branch flag (or the current branch) to the repo,
// the branch, and its working database.
func (f *Factory) openBranch(ctx context.Context, flag string) (*wal.Repo, *wal.Branch, *workdb.Branch, error) {
	name, err := f.branchOrCurrent(flag)
	if err != nil {
		return nil, nil, nil, err
	}
	r, b, err := f.branchOf(ctx, name)
	if err != nil {
		return nil, nil, nil, err
	}
	w, err := f.workingDB(ctx, r, b)
	return r, b, w, err
}

// workingDB returns the working database of a branch, wired for notices.
func (f *Factory) workingDB(ctx context.Context, r *wal.Repo, b *wal.Branch) (*workdb.Branch, error) {
	s, err := f.Store(ctx)
	if err != nil {
		return nil, err
	}
	p, err := f.Protocol()
	if err != nil {
		return nil, err
	}
	w := p.Open(r, b)
	// FerretDB, embedded or a server, reads by _id point lookups and
	// stores documents as sent but for the cases storedAsSent knows.
	w.ScanReads = s.Embedded || s.FerretDB
	w.Scratch = s.Scratch()
	if files := s.DBFiles(); files != nil {
		w.Files = files
		// Lookups by _id in the working database use an index only once
		// argon has added it (store.IndexIDs); a collection an
		// application created since the last command gets it now. Only
		// lookups are faster with it: a failure leaves it to the next
		// command.
		if s.Exclusive {
			_ = files.IndexIDs(w.DB.Name())
		}
	}
	w.Notice = func(msg string) { fmt.Fprintf(f.IO.ErrOut, "argon: notice: %s\n", msg) }
	return w, nil
}

// Protocol returns the write protocol, configured from the environment.
func (f *Factory) Protocol() (*commitpkg.Protocol, error) {
	if f.protocol == nil {
		p := commitpkg.New()
		if d := os.Getenv("ARGON_RESOLVE_TIMEOUT"); d != "" {
			t, err := time.ParseDuration(d)
			if err != nil || t <= 0 {
				return nil, fmt.Errorf("invalid ARGON_RESOLVE_TIMEOUT %q: want a positive duration, like 20s", d)
			}
			p.ResolveTimeout = t
		}
		f.protocol = p
	}
	return f.protocol, nil
}

// limits says what the engine in use cannot store: with no URI it is the
// embedded engine (in this process or an argon serve); at a URI, a FerretDB
// server has the same limits and MongoDB none.
// Which server is at a URI is known once it is connected to.
func (f *Factory) limits(ctx context.Context) (workdb.Limits, error) {
	if f.URI == "" {
		return workdb.Limits{Engine: workdb.EmbeddedEngine}, nil
	}
	s, err := f.Store(ctx)
	if err != nil {
		return workdb.Limits{}, err
	}
	if s.FerretDB {
		return workdb.Limits{Engine: workdb.FerretDBServer}, nil
	}
	return workdb.Limits{}, nil
}

// answer reads the user's answer to a question, a line of standard input;
// "" when ctx ends first (Ctrl-C at the question: Main's signal), so that
// the question is declined and the command ends.
func (f *Factory) answer(ctx context.Context) string {
	got := make(chan string, 1)
	go func() {
		ans, _ := bufio.NewReader(f.IO.In).ReadString('\n')
		got <- ans
	}()
	select {
	case ans := <-got:
		return ans
	case <-ctx.Done():
		return ""
	}
}
