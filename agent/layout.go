package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/drover-dev/drover/artifacts"
)

// layout names the files in an agent's directory.
type layout struct{ dir string }

func (l layout) config() string         { return filepath.Join(l.dir, "agent.json") }
func (l layout) tls(name string) string { return filepath.Join(l.dir, "tls", name) }
func (l layout) trust() string          { return filepath.Join(l.dir, "trust.json") }
func (l layout) journal() string        { return filepath.Join(l.dir, "journal.json") }
func (l layout) clearHalt() string      { return filepath.Join(l.dir, "clear-halt") }
func (l layout) cache() string          { return filepath.Join(l.dir, "cache") }
func (l layout) apps() string           { return filepath.Join(l.dir, "apps") }
func (l layout) app(app string) string  { return filepath.Join(l.dir, "apps", app) }
func (l layout) releases(app string) string {
	return filepath.Join(l.app(app), "releases")
}
func (l layout) release(app, version string) string {
	return filepath.Join(l.releases(app), version)
}
func (l layout) current(app string) string { return filepath.Join(l.app(app), "current") }

// Current returns the version an application's current link points at, or
// "" when it has none.
func (l layout) Current(app string) (string, error) {
	target, err := os.Readlink(l.current(app))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", l.current(app), err)
	}
	return filepath.Base(target), nil
}

// Installed returns every application with a current version.
func (l layout) Installed() (map[string]string, error) {
	entries, err := os.ReadDir(l.apps())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if v, err := l.Current(e.Name()); err == nil && v != "" {
			out[e.Name()] = v
		}
	}
	return out, nil
}

// switchCurrent points apps/APP/current at releases/VERSION atomically: a
// new link under a temporary name, renamed over the old one (rename is
// atomic), then the directory synced so the switch survives a power loss.
// An empty version removes the link.
func (l layout) switchCurrent(app, version string) error {
	link := l.current(app)
	if version == "" {
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return artifacts.SyncDir(l.app(app))
	}
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("releases", version), tmp); err != nil {
		return fmt.Errorf("cannot create link: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("cannot switch %s to %s: %w", app, version, err)
	}
	return artifacts.SyncDir(l.app(app))
}

// prune removes releases of app other than the keep newest by
// modification time and the ones named in protect.
func (l layout) prune(app string, keep int, protect ...string) error {
	entries, err := os.ReadDir(l.releases(app))
	if err != nil {
		return err
	}
	type rel struct {
		name string
		mod  int64
	}
	var rels []rel
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() {
			rels = append(rels, rel{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].mod > rels[j].mod })
	for i, r := range rels {
		if i < keep || contains(protect, r.name) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.releases(app), r.name)); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
