package chunks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Walk calls fn for every stored chunk with its digest and modification
// time, in digest order, and stops at the first error fn returns, which it
// returns as it is. fn may Remove the chunk it is given. Walk also removes
// temporary files older than an hour, left behind by writes that crashed.
func (s *Store) Walk(fn func(digest string, modTime time.Time) error) error {
	for i := range 256 {
		prefix := fmt.Sprintf("%02x", i)
		sub := filepath.Join(s.dir, prefix)
		entries, err := os.ReadDir(sub)
		if err != nil {
			return fmt.Errorf("cannot read chunk store: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir
			}
			if err != nil {
				return fmt.Errorf("cannot read chunk store: %w", err)
			}
			if strings.HasPrefix(name, tmpPrefix) {
				if time.Since(info.ModTime()) > staleTmp {
					os.Remove(filepath.Join(sub, name))
				}
				continue
			}
			if !validDigest(name) || !strings.HasPrefix(name, prefix) || !info.Mode().IsRegular() {
				continue
			}
			if err := fn(name, info.ModTime()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Missing returns the refs of list that the store does not hold, in list
// order, each once.
func (s *Store) Missing(list List) []Ref {
	var missing []Ref
	seen := make(map[string]bool, len(list))
	for _, r := range list {
		if seen[r.SHA256] {
			continue
		}
		seen[r.SHA256] = true
		if !s.Has(r.SHA256) {
			missing = append(missing, r)
		}
	}
	return missing
}
