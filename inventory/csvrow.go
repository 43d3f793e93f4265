package inventory

import (
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// csvRow renders r in CSVColumns order.
func csvRow(r Record) []string {
	s := r.System
	if s == nil {
		s = &System{} // every System cell renders empty
	}
	return []string{
		text(r.Host),
		text(s.HostName), text(s.SerialNumber), text(s.Manufacturer), text(s.Model),
		text(s.OperatingSystem.Name), text(s.OperatingSystem.Version),
		text(s.OperatingSystem.Kernel), text(s.OperatingSystem.Architecture),
		count(s.ProcessorSummary.Count), count(s.ProcessorSummary.CoreCount),
		count(s.ProcessorSummary.LogicalProcessorCount),
		text(s.ProcessorSummary.Model), decimal(s.MemorySummary.TotalSystemMemoryGiB),
		text(ipAddresses(s)), text(macAddresses(s)), decimal(disksGiB(s)),
		text(pairs(r.Labels)), text(pairs(s.Releases)), text(s.AgentVersion),
		text(r.Status), timestamp(r.LastSeen), timestamp(r.UpdatedAt), timestamp(r.DriftAt),
	}
}

// text renders a text cell, defusing one that a spreadsheet would read as
// a formula, as OWASP advises against CSV injection.
func text(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func count(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func decimal(x float64) string {
	if !(x > 0) || math.IsInf(x, 0) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// pairs renders m as key=value;... sorted by key.
func pairs(m map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

// ipAddresses lists the addresses of all interfaces without their prefix
// length: IPv4 then IPv6, each sorted, duplicates removed.
func ipAddresses(s *System) string {
	var v4, v6 []string
	for _, n := range s.NetworkInterfaces {
		v4 = append(v4, n.IPv4Addresses...)
		v6 = append(v6, n.IPv6Addresses...)
	}
	return strings.Join(append(bareSorted(v4), bareSorted(v6)...), ";")
}

// bareSorted strips the prefix lengths from addrs, and sorts and
// deduplicates the result.
func bareSorted(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a); err == nil {
			a = p.Addr().String()
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func macAddresses(s *System) string {
	var macs []string
	for _, n := range s.NetworkInterfaces {
		if n.MACAddress != "" {
			macs = append(macs, n.MACAddress)
		}
	}
	slices.Sort(macs)
	return strings.Join(slices.Compact(macs), ";")
}

// disksGiB adds up the sizes of the filesystems in GiB, counting a device
// mounted in several places (bind mounts, btrfs subvolumes) once.
func disksGiB(s *System) float64 {
	size := make(map[string]uint64)
	for _, fs := range s.Filesystems {
		key := "device " + fs.Device
		if fs.Device == "" {
			key = "mount " + fs.MountPoint
		}
		size[key] = max(size[key], uint64(max(fs.TotalBytes, 0)))
	}
	var total uint64
	for _, b := range size {
		total += b
	}
	return gib(total)
}
