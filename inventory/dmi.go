package inventory

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

// readDMI fills the identity fields from /sys/class/dmi/id where readable.
func readDMI(root string, s *System) {
	dir := filepath.Join(root, "sys", "class", "dmi", "id")
	for _, f := range [...]struct {
		file string
		dst  *string
	}{
		{"product_serial", &s.SerialNumber},
		{"sys_vendor", &s.Manufacturer},
		{"product_name", &s.Model},
		{"product_uuid", &s.UUID},
	} {
		v, err := readSmall(filepath.Join(dir, f.file))
		if err != nil {
			continue
		}
		v = dmiValue(v)
		if f.file == "product_uuid" {
			v = strings.ToLower(v)
		}
		*f.dst = v
	}
}

func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxString))
	return string(b), err
}

// dmiValue trims a DMI string and drops the placeholders firmware vendors
// leave in unset fields, which would make unrelated machines look alike.
func dmiValue(v string) string {
	v = strings.TrimSpace(strings.Trim(v, "\x00"))
	switch strings.ToLower(v) {
	case "none", "n/a", "na", "not specified", "not applicable", "not available",
		"default string", "to be filled by o.e.m.", "to be filled by o.e.m",
		"system serial number", "system product name", "system manufacturer",
		"0123456789", "00000000-0000-0000-0000-000000000000",
		"ffffffff-ffff-ffff-ffff-ffffffffffff",
		"03000200-0400-0500-0006-000700080009":
		return ""
	}
	return v
}
