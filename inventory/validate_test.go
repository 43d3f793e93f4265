package inventory

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", maxString+1)
	tests := []struct {
		name    string
		change  func(*System)
		want    error
		message string // the whole error message
	}{
		{"valid", func(*System) {}, nil, ""},
		{"limits reached, not passed", func(s *System) {
			s.Model = strings.Repeat("é", maxString/2)
			s.Packages = make([]Package, maxPackages)
			s.Facts = map[string]string{strings.Repeat("k", maxKey): "v"}
		}, nil, ""},
		{"missing host name", func(s *System) { s.HostName = "" },
			ErrMissing, "inventory: HostName: missing"},
		{"long package name", func(s *System) { s.Packages[2].Name = long },
			ErrTooLong, "inventory: Packages[2].Name: longer than 1024 bytes"},
		{"long OS kernel", func(s *System) { s.OperatingSystem.Kernel = long },
			ErrTooLong, "inventory: OperatingSystem.Kernel: longer than 1024 bytes"},
		{"invalid UTF-8 serial", func(s *System) { s.SerialNumber = "SN\xff" },
			ErrInvalidUTF8, "inventory: SerialNumber: not valid UTF-8"},
		{"invalid UTF-8 address", func(s *System) { s.NetworkInterfaces[1].IPv4Addresses[0] = "\xc0" },
			ErrInvalidUTF8, "inventory: NetworkInterfaces[1].IPv4Addresses[0]: not valid UTF-8"},
		{"invalid UTF-8 fact value", func(s *System) { s.Facts["role"] = "w\xe2\x28" },
			ErrInvalidUTF8, `inventory: Facts["role"]: not valid UTF-8`},
		{"too many packages", func(s *System) { s.Packages = make([]Package, maxPackages+1) },
			ErrTooMany, "inventory: Packages: more than 20000 entries"},
		{"too many interfaces", func(s *System) { s.NetworkInterfaces = make([]NetworkInterface, maxInterfaces+1) },
			ErrTooMany, "inventory: NetworkInterfaces: more than 256 entries"},
		{"too many addresses", func(s *System) { s.NetworkInterfaces[0].IPv6Addresses = make([]string, maxAddresses+1) },
			ErrTooMany, "inventory: NetworkInterfaces[0].IPv6Addresses: more than 64 entries"},
		{"too many filesystems", func(s *System) { s.Filesystems = make([]Filesystem, maxFilesystems+1) },
			ErrTooMany, "inventory: Filesystems: more than 256 entries"},
		{"too many facts", func(s *System) {
			for i := range maxMapEntries + 1 {
				s.Facts[strings.Repeat("k", i+1)] = ""
			}
		}, ErrTooMany, "inventory: Facts: more than 256 entries"},
		{"long release key", func(s *System) { s.Releases[strings.Repeat("a", maxKey+1)] = "1" },
			ErrTooLong, "inventory: Releases: key longer than 128 bytes"},
		{"negative size", func(s *System) { s.Filesystems[1].TotalBytes = -1 },
			ErrOutOfRange, "inventory: Filesystems[1].TotalBytes: negative"},
		{"negative MTU", func(s *System) { s.NetworkInterfaces[0].MTUSize = -1500 },
			ErrOutOfRange, "inventory: NetworkInterfaces[0].MTUSize: negative"},
		{"negative core count", func(s *System) { s.ProcessorSummary.CoreCount = -4 },
			ErrOutOfRange, "inventory: ProcessorSummary.CoreCount: negative"},
		{"NaN memory", func(s *System) { s.MemorySummary.TotalSystemMemoryGiB = math.NaN() },
			ErrOutOfRange, "inventory: MemorySummary.TotalSystemMemoryGiB: not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sample()
			tt.change(s)
			err := s.Validate()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			if err != nil && err.Error() != tt.message {
				t.Errorf("message = %q, want %q", err.Error(), tt.message)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	var s *System
	if err := s.Validate(); !errors.Is(err, ErrMissing) {
		t.Errorf("nil System: Validate() = %v, want ErrMissing", err)
	}
}
