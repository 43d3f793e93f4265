package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCollectRealHost collects the machine the test runs on.
func TestCollectRealHost(t *testing.T) {
	s, err := Collect(t.Context(), CollectOptions{})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if s.HostName == "" {
		t.Error("no HostName")
	}
	if s.OperatingSystem.Kernel == "" {
		t.Error("no kernel")
	}
	if s.ProcessorSummary.LogicalProcessorCount < 1 || s.ProcessorSummary.Count < 1 {
		t.Errorf("ProcessorSummary = %+v, want at least 1 CPU", s.ProcessorSummary)
	}
	if s.MemorySummary.TotalSystemMemoryGiB <= 0 {
		t.Errorf("TotalSystemMemoryGiB = %v, want > 0", s.MemorySummary.TotalSystemMemoryGiB)
	}
	if time.Since(s.CollectedAt) > time.Minute || s.CollectedAt.Location() != time.UTC {
		t.Errorf("CollectedAt = %v, want now in UTC", s.CollectedAt)
	}
	for _, n := range s.NetworkInterfaces {
		if n.Name == "lo" {
			t.Error("loopback interface reported")
		}
	}
	for _, fs := range s.Filesystems {
		if skipFilesystem(fs.FSType, fs.MountPoint) {
			t.Errorf("pseudo filesystem reported: %+v", fs)
		}
	}
	if err := s.Validate(); err != nil {
		t.Errorf("collected System fails Validate: %v", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse of collected System: %v", err)
	}
	if parsed.Digest() != s.Digest() {
		t.Error("digest changed over a JSON round trip")
	}
	t.Logf("collected %d filesystems, %d interfaces, %d packages; digest %s",
		len(s.Filesystems), len(s.NetworkInterfaces), len(s.Packages), s.Digest())
}

// TestCollectFakeRoot reads DMI data and packages from a fake tree.
func TestCollectFakeRoot(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no rpm binary
	root := fakeRoot(t, map[string]string{
		"sys/class/dmi/id/product_serial": "CZJ12345AB\n",
		"sys/class/dmi/id/sys_vendor":     "HPE\n",
		"sys/class/dmi/id/product_name":   "To Be Filled By O.E.M.\n",
		"sys/class/dmi/id/product_uuid":   "30393137-3136-5A43-4A31-323334354142\n",
		"var/lib/dpkg/status":             dpkgStatus,
	})
	at := time.Date(2024, 10, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	s, err := Collect(t.Context(), CollectOptions{Root: root, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if s.SerialNumber != "CZJ12345AB" || s.Manufacturer != "HPE" || s.Model != "" ||
		s.UUID != "30393137-3136-5a43-4a31-323334354142" {
		t.Errorf("DMI fields = %q %q %q %q", s.SerialNumber, s.Manufacturer, s.Model, s.UUID)
	}
	if !s.CollectedAt.Equal(at) || s.CollectedAt.Location() != time.UTC {
		t.Errorf("CollectedAt = %v, want %v in UTC", s.CollectedAt, at)
	}
	names := make([]string, len(s.Packages))
	for i, p := range s.Packages {
		names[i] = p.Name
	}
	if !slices.Equal(names, []string{"bash", "held", "libc6"}) {
		t.Errorf("packages = %v", s.Packages)
	}

	s, err = Collect(t.Context(), CollectOptions{Root: root, SkipPackages: true})
	if err != nil {
		t.Fatalf("Collect with SkipPackages: %v", err)
	}
	if s.Packages != nil {
		t.Errorf("SkipPackages: got %d packages", len(s.Packages))
	}
}

func TestCollectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Collect(ctx, CollectOptions{}); !errors.Is(err, context.Canceled) || s != nil {
		t.Errorf("Collect(canceled) = %v, %v; want context.Canceled", s, err)
	}
}

func TestSkipFilesystem(t *testing.T) {
	tests := []struct {
		fstype, mountpoint string
		skip               bool
	}{
		{"ext4", "/", false},
		{"xfs", "/var/lib/docker", false},
		{"overlay", "/", false},
		{"overlay", "/var/lib/docker/overlay2/abc/merged", true},
		{"proc", "/proc", true},
		{"tmpfs", "/run", true},
		{"cgroup2", "/sys/fs/cgroup", true},
		{"ext4", "/dev/shm", true},
		{"nfs4", "/mnt/share", true},
		{"squashfs", "/snap/core/1", true},
	}
	for _, tt := range tests {
		if got := skipFilesystem(tt.fstype, tt.mountpoint); got != tt.skip {
			t.Errorf("skipFilesystem(%q, %q) = %v, want %v", tt.fstype, tt.mountpoint, got, tt.skip)
		}
	}
}

func TestDMIValue(t *testing.T) {
	tests := map[string]string{
		"  R650 \n":                              "R650",
		"Default string\n":                       "",
		"System Serial Number":                   "",
		"Not Specified\x00":                      "",
		"Dell Inc.":                              "Dell Inc.",
		"00000000-0000-0000-0000-000000000000\n": "",
	}
	for in, want := range tests {
		if got := dmiValue(in); got != want {
			t.Errorf("dmiValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFit(t *testing.T) {
	s := &System{HostName: "h\xff" + strings.Repeat("é", maxString)}
	for i := range maxInterfaces + 10 {
		s.NetworkInterfaces = append(s.NetworkInterfaces, NetworkInterface{
			Name:          "veth" + strings.Repeat("x", i),
			IPv6Addresses: make([]string, maxAddresses+1),
		})
	}
	s.Filesystems = make([]Filesystem, maxFilesystems+1)
	s.Packages = make([]Package, maxPackages+1)
	s.fit()
	if err := s.Validate(); err != nil {
		t.Errorf("fitted System fails Validate: %v", err)
	}
	if !strings.HasPrefix(s.HostName, "h\uFFFDé") || len(s.NetworkInterfaces) != maxInterfaces {
		t.Errorf("fit: HostName %q..., %d interfaces", s.HostName[:8], len(s.NetworkInterfaces))
	}
}
