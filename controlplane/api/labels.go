package api

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

var (
	labelKeyRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9._-]{0,63}$`)
)

// MaxLabels bounds the labels of one host.
const MaxLabels = 32

// ValidateLabels checks label keys and values.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return Errorf(CodeInvalid, "labels: at most %d, got %d", MaxLabels, len(labels))
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !labelKeyRE.MatchString(k) {
			return Errorf(CodeInvalid, "labels: key %q must be 1-63 characters of a-z, 0-9, '.', '_', '/', '-'", k)
		}
		if !labelValueRE.MatchString(labels[k]) {
			return Errorf(CodeInvalid, "labels: value of %q must be at most 63 characters of A-Z, a-z, 0-9, '.', '_', '-'", k)
		}
	}
	return nil
}

// ParseLabels reads "env=prod,site=berlin".
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("label %q: write key=value", kv)
		}
		out[k] = v
	}
	if err := ValidateLabels(out); err != nil {
		return nil, err
	}
	return out, nil
}

// FormatLabels writes labels as "k=v,k2=v2" in key order.
func FormatLabels(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}
