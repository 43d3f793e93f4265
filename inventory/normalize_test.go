package inventory

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

// sample returns a valid System with every kind of field set, its lists in
// canonical order.
func sample() *System {
	return &System{
		HostName:         "web-1",
		SerialNumber:     "SN123",
		Manufacturer:     "Dell Inc.",
		Model:            "PowerEdge R650",
		UUID:             "4c4c4544-0042-3010-8051-b7c04f4e3233",
		ProcessorSummary: ProcessorSummary{Count: 2, CoreCount: 32, LogicalProcessorCount: 64, Model: "Intel(R) Xeon(R) Gold 6338"},
		MemorySummary:    MemorySummary{TotalSystemMemoryGiB: 251.55},
		OperatingSystem:  OperatingSystem{Name: "debian", Version: "12.7", Family: "debian", Kernel: "6.1.0-25-amd64", Architecture: "x86_64"},
		Filesystems: []Filesystem{
			{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 100 << 30, FreeBytes: 40 << 30},
			{Device: "/dev/sdb1", MountPoint: "/data", FSType: "xfs", TotalBytes: 1 << 40, FreeBytes: 1 << 39},
		},
		NetworkInterfaces: []NetworkInterface{
			{Name: "eth0", MACAddress: "52:54:00:12:34:56", IPv4Addresses: []string{"192.0.2.10/24", "192.0.2.9/24"}, IPv6Addresses: []string{"2001:db8::10/64", "fe80::1/64"}, MTUSize: 1500},
			{Name: "eth1", MACAddress: "52:54:00:12:34:57", IPv4Addresses: []string{"198.51.100.7/24"}, MTUSize: 9000},
		},
		Packages: []Package{
			{Name: "bash", Version: "5.2.15-2+b7", Manager: "dpkg"},
			{Name: "libc6", Version: "2.36-9+deb12u8", Manager: "dpkg"},
			{Name: "openssl", Version: "3.0.14-1~deb12u2", Manager: "dpkg"},
		},
		Releases:     map[string]string{"api": "1.4.2", "worker": "1.4.1"},
		AgentVersion: "0.1.0",
		Facts:        map[string]string{"rack": "b12", "role": "web"},
		CollectedAt:  time.Date(2024, 10, 1, 12, 0, 0, 0, time.UTC),
	}
}

// shuffled returns a deep copy of sample with every list reversed, other
// maps of the same content, and another collection time.
func shuffled() *System {
	s := sample()
	slices.Reverse(s.Filesystems)
	slices.Reverse(s.NetworkInterfaces)
	slices.Reverse(s.Packages)
	for i := range s.NetworkInterfaces {
		slices.Reverse(s.NetworkInterfaces[i].IPv4Addresses)
		slices.Reverse(s.NetworkInterfaces[i].IPv6Addresses)
	}
	s.Facts = map[string]string{"role": "web", "rack": "b12"}
	s.CollectedAt = s.CollectedAt.Add(time.Hour)
	return s
}

func TestNormalizeOrder(t *testing.T) {
	a, b := sample(), shuffled()
	a.Normalize()
	b.Normalize()
	b.CollectedAt = a.CollectedAt
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("normalised JSON differs:\n%s\n%s", ja, jb)
	}
	if got := a.NetworkInterfaces[0].IPv4Addresses; !slices.Equal(got, []string{"192.0.2.10/24", "192.0.2.9/24"}) {
		t.Errorf("addresses not sorted: %v", got)
	}
	var nilSystem *System
	nilSystem.Normalize() // must not panic
}

func TestDigest(t *testing.T) {
	base := sample().Digest()
	if len(base) != 64 {
		t.Fatalf("Digest = %q, want 64 hex digits", base)
	}
	tests := []struct {
		name   string
		change func(*System)
		same   bool
	}{
		{"reordered lists and later CollectedAt", func(s *System) { *s = *shuffled() }, true},
		{"zero CollectedAt", func(s *System) { s.CollectedAt = time.Time{} }, true},
		{"fact removed", func(s *System) { delete(s.Facts, "rack") }, false},
		{"package upgraded", func(s *System) { s.Packages[0].Version = "5.2.15-2+b8" }, false},
		{"free space changed", func(s *System) { s.Filesystems[0].FreeBytes-- }, false},
		{"release deployed", func(s *System) { s.Releases["api"] = "1.5.0" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sample()
			tt.change(s)
			if got := s.Digest(); (got == base) != tt.same {
				t.Errorf("Digest equal to base = %v, want %v", got == base, tt.same)
			}
		})
	}
}

func TestDigestEmptyEqualsNil(t *testing.T) {
	a, b := sample(), sample()
	a.Facts, b.Facts = nil, map[string]string{}
	a.NetworkInterfaces[1].IPv6Addresses, b.NetworkInterfaces[1].IPv6Addresses = nil, []string{}
	if a.Digest() != b.Digest() {
		t.Error("nil and empty lists and maps digest differently")
	}
}

func TestDigestLeavesSystemAlone(t *testing.T) {
	s := shuffled()
	before, _ := json.Marshal(s)
	s.Digest()
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Errorf("Digest modified its System:\n%s\n%s", before, after)
	}
}

func TestDigestOddValues(t *testing.T) {
	var nilSystem *System
	if nilSystem.Digest() != (&System{}).Digest() {
		t.Error("nil System digests unlike a zero System")
	}
	s := sample()
	s.MemorySummary.TotalSystemMemoryGiB = math.NaN()
	_ = s.Digest() // must not panic
}
