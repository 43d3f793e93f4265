package inventory

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// fieldError is a Validate failure: which field, what is wrong with it, and
// the sentinel error it wraps.
type fieldError struct {
	field  string
	detail string
	err    error
}

func (e *fieldError) Error() string { return "inventory: " + e.field + ": " + e.detail }
func (e *fieldError) Unwrap() error { return e.err }

// at names the field at fault and returns e as an error.
func (e *fieldError) at(format string, args ...any) error {
	e.field = fmt.Sprintf(format, args...)
	return e
}

func badString(s string, limit int) *fieldError {
	if len(s) > limit {
		return &fieldError{detail: "longer than " + strconv.Itoa(limit) + " bytes", err: ErrTooLong}
	}
	if !utf8.ValidString(s) {
		return &fieldError{detail: "not valid UTF-8", err: ErrInvalidUTF8}
	}
	return nil
}

func badCount(n, limit int) *fieldError {
	if n > limit {
		return &fieldError{detail: "more than " + strconv.Itoa(limit) + " entries", err: ErrTooMany}
	}
	return nil
}

func badFloat(x float64) *fieldError {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return &fieldError{detail: "not a finite number", err: ErrOutOfRange}
	case x < 0:
		return &fieldError{detail: "negative", err: ErrOutOfRange}
	}
	return nil
}

func badInt[T int | int64](n T) *fieldError {
	if n < 0 {
		return &fieldError{detail: "negative", err: ErrOutOfRange}
	}
	return nil
}

// named is a value and the name Validate reports it under.
type named[T any] struct {
	name string
	v    T
}

// Validate checks the bounds of an inventory that came from elsewhere:
// HostName is present; every string, map key and map value is valid UTF-8
// and at most 1024 bytes (keys of Facts and Releases at most 128); there
// are at most 256 network interfaces with at most 64 addresses in each
// address list, 256 filesystems, 20000 packages, and 256 entries in each of
// Facts and Releases; no number is negative or non-finite. The error names
// the first field at fault, e.g. "inventory: Packages[12].Name: longer than
// 1024 bytes", and wraps one of the package's sentinel errors.
func (s *System) Validate() error {
	if s == nil {
		return &fieldError{field: "System", detail: "missing", err: ErrMissing}
	}
	if s.HostName == "" {
		return &fieldError{field: "HostName", detail: "missing", err: ErrMissing}
	}
	for _, f := range [...]named[string]{
		{"HostName", s.HostName},
		{"SerialNumber", s.SerialNumber},
		{"Manufacturer", s.Manufacturer},
		{"Model", s.Model},
		{"UUID", s.UUID},
		{"ProcessorSummary.Model", s.ProcessorSummary.Model},
		{"OperatingSystem.Name", s.OperatingSystem.Name},
		{"OperatingSystem.Version", s.OperatingSystem.Version},
		{"OperatingSystem.Family", s.OperatingSystem.Family},
		{"OperatingSystem.Kernel", s.OperatingSystem.Kernel},
		{"OperatingSystem.Architecture", s.OperatingSystem.Architecture},
		{"AgentVersion", s.AgentVersion},
	} {
		if e := badString(f.v, maxString); e != nil {
			return e.at("%s", f.name)
		}
	}
	for _, f := range [...]named[int]{
		{"ProcessorSummary.Count", s.ProcessorSummary.Count},
		{"ProcessorSummary.CoreCount", s.ProcessorSummary.CoreCount},
		{"ProcessorSummary.LogicalProcessorCount", s.ProcessorSummary.LogicalProcessorCount},
	} {
		if e := badInt(f.v); e != nil {
			return e.at("%s", f.name)
		}
	}
	if e := badFloat(s.MemorySummary.TotalSystemMemoryGiB); e != nil {
		return e.at("MemorySummary.TotalSystemMemoryGiB")
	}
	if err := validateFilesystems(s.Filesystems); err != nil {
		return err
	}
	if err := validateInterfaces(s.NetworkInterfaces); err != nil {
		return err
	}
	if err := validatePackages(s.Packages); err != nil {
		return err
	}
	if err := validateMap("Releases", s.Releases); err != nil {
		return err
	}
	return validateMap("Facts", s.Facts)
}

func validateFilesystems(fss []Filesystem) error {
	if e := badCount(len(fss), maxFilesystems); e != nil {
		return e.at("Filesystems")
	}
	for i, fs := range fss {
		for _, f := range [...]named[string]{{"Device", fs.Device}, {"MountPoint", fs.MountPoint}, {"FSType", fs.FSType}} {
			if e := badString(f.v, maxString); e != nil {
				return e.at("Filesystems[%d].%s", i, f.name)
			}
		}
		for _, f := range [...]named[int64]{{"TotalBytes", fs.TotalBytes}, {"FreeBytes", fs.FreeBytes}} {
			if e := badInt(f.v); e != nil {
				return e.at("Filesystems[%d].%s", i, f.name)
			}
		}
	}
	return nil
}

func validateInterfaces(nis []NetworkInterface) error {
	if e := badCount(len(nis), maxInterfaces); e != nil {
		return e.at("NetworkInterfaces")
	}
	for i, n := range nis {
		for _, f := range [...]named[string]{{"Name", n.Name}, {"MACAddress", n.MACAddress}} {
			if e := badString(f.v, maxString); e != nil {
				return e.at("NetworkInterfaces[%d].%s", i, f.name)
			}
		}
		if e := badInt(n.MTUSize); e != nil {
			return e.at("NetworkInterfaces[%d].MTUSize", i)
		}
		for _, f := range [...]named[[]string]{{"IPv4Addresses", n.IPv4Addresses}, {"IPv6Addresses", n.IPv6Addresses}} {
			if e := badCount(len(f.v), maxAddresses); e != nil {
				return e.at("NetworkInterfaces[%d].%s", i, f.name)
			}
			for j, a := range f.v {
				if e := badString(a, maxString); e != nil {
					return e.at("NetworkInterfaces[%d].%s[%d]", i, f.name, j)
				}
			}
		}
	}
	return nil
}

func validatePackages(pkgs []Package) error {
	if e := badCount(len(pkgs), maxPackages); e != nil {
		return e.at("Packages")
	}
	for i, p := range pkgs {
		for _, f := range [...]named[string]{{"Name", p.Name}, {"Version", p.Version}, {"Manager", p.Manager}} {
			if e := badString(f.v, maxString); e != nil {
				return e.at("Packages[%d].%s", i, f.name)
			}
		}
	}
	return nil
}

// validateMap checks a Facts or Releases map, in key order so that the
// error reported is always the same one.
func validateMap(name string, m map[string]string) error {
	if e := badCount(len(m), maxMapEntries); e != nil {
		return e.at("%s", name)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		// The key is not quoted in the message: it may be long or invalid.
		if e := badString(k, maxKey); e != nil {
			e.detail = "key " + e.detail
			return e.at("%s", name)
		}
		if e := badString(m[k], maxString); e != nil {
			return e.at("%s[%q]", name, k)
		}
	}
	return nil
}
