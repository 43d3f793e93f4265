package inventory

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// Normalize puts s in canonical order so that equal hosts encode to equal
// JSON: network interfaces by name, each interface's addresses, filesystems
// by mount point, packages by manager then name. Ties are broken on every
// remaining field, so the result does not depend on the input order. Empty
// lists become nil. Normalize does nothing on a nil System.
func (s *System) Normalize() {
	if s == nil {
		return
	}
	for i := range s.NetworkInterfaces {
		n := &s.NetworkInterfaces[i]
		n.IPv4Addresses = sortedOrNil(n.IPv4Addresses)
		n.IPv6Addresses = sortedOrNil(n.IPv6Addresses)
	}
	slices.SortFunc(s.NetworkInterfaces, func(a, b NetworkInterface) int {
		return cmp.Or(
			strings.Compare(a.Name, b.Name),
			strings.Compare(a.MACAddress, b.MACAddress),
			cmp.Compare(a.MTUSize, b.MTUSize),
			slices.Compare(a.IPv4Addresses, b.IPv4Addresses),
			slices.Compare(a.IPv6Addresses, b.IPv6Addresses),
		)
	})
	slices.SortFunc(s.Filesystems, func(a, b Filesystem) int {
		return cmp.Or(
			strings.Compare(a.MountPoint, b.MountPoint),
			strings.Compare(a.Device, b.Device),
			strings.Compare(a.FSType, b.FSType),
			cmp.Compare(a.TotalBytes, b.TotalBytes),
			cmp.Compare(a.FreeBytes, b.FreeBytes),
		)
	})
	slices.SortFunc(s.Packages, func(a, b Package) int {
		return cmp.Or(
			strings.Compare(a.Manager, b.Manager),
			strings.Compare(a.Name, b.Name),
			strings.Compare(a.Version, b.Version),
		)
	})
	if len(s.NetworkInterfaces) == 0 {
		s.NetworkInterfaces = nil
	}
	if len(s.Filesystems) == 0 {
		s.Filesystems = nil
	}
	if len(s.Packages) == 0 {
		s.Packages = nil
	}
}

func sortedOrNil(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	slices.Sort(v)
	return v
}

// Digest returns the hex SHA-256 of the JSON encoding of the normalised
// System with CollectedAt zeroed: it changes only when the inventory itself
// changes, whatever the order of its lists or the time it was collected.
// s is not modified. A non-finite memory size, which JSON cannot encode,
// is hashed as 0.
func (s *System) Digest() string {
	var c System
	if s != nil {
		c = s.clone()
	}
	c.Normalize()
	c.CollectedAt = time.Time{}
	if m := c.MemorySummary.TotalSystemMemoryGiB; math.IsNaN(m) || math.IsInf(m, 0) {
		c.MemorySummary.TotalSystemMemoryGiB = 0
	}
	b, err := json.Marshal(&c)
	if err != nil {
		// Unreachable: every field of a System with finite numbers encodes.
		panic("inventory: encoding System: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// clone copies s deeply enough that Normalize on the copy leaves s alone.
// Maps are shared: nothing here modifies them.
func (s *System) clone() System {
	c := *s
	c.Filesystems = slices.Clone(s.Filesystems)
	c.Packages = slices.Clone(s.Packages)
	c.NetworkInterfaces = slices.Clone(s.NetworkInterfaces)
	for i := range c.NetworkInterfaces {
		n := &c.NetworkInterfaces[i]
		n.IPv4Addresses = slices.Clone(n.IPv4Addresses)
		n.IPv6Addresses = slices.Clone(n.IPv6Addresses)
	}
	return c
}
