// Package workspace finds and writes argon's per-directory state: the
// .argon folder with its config file and current branch, like .git.
package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DirName is the name of the workspace folder.
const DirName = ".argon"

// Workspace is an initialised .argon folder.
type Workspace struct {
	// Root is the folder holding .argon.
	Root string
}

// Dir is the .argon folder itself.
func (w *Workspace) Dir() string { return filepath.Join(w.Root, DirName) }

// ConfigPath is the workspace's config file.
func (w *Workspace) ConfigPath() string { return filepath.Join(w.Dir(), "config.yaml") }

func (w *Workspace) headPath() string { return filepath.Join(w.Dir(), "HEAD") }

// Find walks up from dir to the nearest folder holding .argon/config.yaml.
// It returns nil when there is none.
func Find(dir string) (*Workspace, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, DirName, "config.yaml")); err == nil && !fi.IsDir() {
			return &Workspace{Root: dir}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, nil
		}
		dir = parent
	}
}

// Config is what `argon init` writes to .argon/config.yaml.
type Config struct {
	Project string `yaml:"project"`
	URI     string `yaml:"uri,omitempty"`
	DB      string `yaml:"db,omitempty"`
}

// Config reads the workspace's config file.
func (w *Workspace) Config() (Config, error) {
	var c Config
	b, err := os.ReadFile(w.ConfigPath())
	if err != nil {
		return c, err
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("read %s: %w", w.ConfigPath(), err)
	}
	return c, nil
}

// ErrExists reports a folder that already has a workspace.
var ErrExists = errors.New("workspace already exists")

// Create makes a workspace in root with cfg. The config file may hold
// credentials, so it is written 0600.
func Create(root string, cfg Config) (*Workspace, error) {
	w := &Workspace{Root: root}
	if _, err := os.Stat(w.ConfigPath()); err == nil {
		return nil, fmt.Errorf("%w in %s", ErrExists, w.Dir())
	}
	if err := os.MkdirAll(w.Dir(), 0o755); err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := writeFile(w.ConfigPath(), b, 0o600); err != nil {
		return nil, err
	}
	if err := w.SetBranch("main"); err != nil {
		return nil, err
	}
	return w, nil
}

// Remove deletes a workspace folder (used to undo a failed init).
func (w *Workspace) Remove() error { return os.RemoveAll(w.Dir()) }

// Branch returns the current branch.
func (w *Workspace) Branch() (string, error) {
	b, err := os.ReadFile(w.headPath())
	if errors.Is(err, os.ErrNotExist) {
		return "main", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// SetBranch records the current branch.
func (w *Workspace) SetBranch(name string) error {
	return writeFile(w.headPath(), []byte(name+"\n"), 0o644)
}

// writeFile replaces path atomically: a crash leaves the old or the new
// content, never a torn file.
func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
