package artifacts

import (
	"fmt"
	"slices"
)

// Matches reports whether a host of architecture arch (a Go architecture
// name) with labels is a target of the release, and if not why.
func (t *Targets) Matches(arch string, labels map[string]string) error {
	if t == nil {
		return nil
	}
	if len(t.Architectures) > 0 && !slices.Contains(t.Architectures, arch) {
		return fmt.Errorf("release is for %v; this host is %s", t.Architectures, arch)
	}
	for k, v := range t.Labels {
		if labels[k] != v {
			return fmt.Errorf("release is for hosts labelled %s=%s; this host has %s=%q", k, v, k, labels[k])
		}
	}
	return nil
}
