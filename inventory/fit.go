package inventory

import (
	"strings"
	"unicode/utf8"
)

// fit makes a collected System pass Validate and normalises it: strings are
// made valid UTF-8 and cut to the limit, then the lists are sorted and cut
// to their limits (so the entries kept are always the same ones). A host
// with hundreds of container interfaces, or a mount point that is not
// UTF-8, still reports the rest of its inventory.
func (s *System) fit() {
	for _, p := range [...]*string{
		&s.HostName, &s.SerialNumber, &s.Manufacturer, &s.Model, &s.UUID,
		&s.ProcessorSummary.Model,
		&s.OperatingSystem.Name, &s.OperatingSystem.Version, &s.OperatingSystem.Family,
		&s.OperatingSystem.Kernel, &s.OperatingSystem.Architecture,
		&s.AgentVersion,
	} {
		*p = clip(*p)
	}
	for i := range s.Filesystems {
		fs := &s.Filesystems[i]
		fs.Device, fs.MountPoint, fs.FSType = clip(fs.Device), clip(fs.MountPoint), clip(fs.FSType)
	}
	for i := range s.NetworkInterfaces {
		n := &s.NetworkInterfaces[i]
		n.Name, n.MACAddress = clip(n.Name), clip(n.MACAddress)
	}
	for i := range s.Packages {
		p := &s.Packages[i]
		p.Name, p.Version, p.Manager = clip(p.Name), clip(p.Version), clip(p.Manager)
	}
	s.Normalize()
	s.Filesystems = s.Filesystems[:min(len(s.Filesystems), maxFilesystems)]
	s.NetworkInterfaces = s.NetworkInterfaces[:min(len(s.NetworkInterfaces), maxInterfaces)]
	s.Packages = s.Packages[:min(len(s.Packages), maxPackages)]
	for i := range s.NetworkInterfaces {
		n := &s.NetworkInterfaces[i]
		n.IPv4Addresses = n.IPv4Addresses[:min(len(n.IPv4Addresses), maxAddresses)]
		n.IPv6Addresses = n.IPv6Addresses[:min(len(n.IPv6Addresses), maxAddresses)]
	}
}

// clip returns s as valid UTF-8 of at most maxString bytes, cut on a rune
// boundary.
func clip(s string) string {
	return cutUTF8(strings.ToValidUTF8(s, "\uFFFD"), maxString)
}

// cutUTF8 returns s cut to at most n bytes without splitting a rune.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
