package artifacts

import (
	"strconv"
	"strings"
)

// CompareVersions orders two release versions: -1, 0 or +1. Versions are
// compared part by part, splitting at '.', '-' and '+': numeric parts as
// numbers, others as text, a numeric part before a textual one. A
// pre-release ("1.2.0-rc1") comes before its release ("1.2.0"); build
// metadata after '+' is ignored, as semantic versioning says. Within a
// part, digit runs compare as numbers, so "rc2" comes before "rc10". Agents use
// it to refuse a downgrade (TUF's rollback attack).
func CompareVersions(a, b string) int {
	a, _, _ = strings.Cut(a, "+")
	b, _, _ = strings.Cut(b, "+")
	aMain, aPre, aHasPre := strings.Cut(a, "-")
	bMain, bPre, bHasPre := strings.Cut(b, "-")
	if c := compareParts(aMain, bMain); c != 0 {
		return c
	}
	switch {
	case aHasPre && !bHasPre:
		return -1
	case !aHasPre && bHasPre:
		return 1
	}
	return compareParts(aPre, bPre)
}

func compareParts(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' })
	}
	ap, bp := split(a), split(b)
	for i := 0; i < len(ap) || i < len(bp); i++ {
		if i >= len(ap) {
			return -1
		}
		if i >= len(bp) {
			return 1
		}
		if c := comparePart(ap[i], bp[i]); c != 0 {
			return c
		}
	}
	return 0
}

// comparePart compares one part naturally: runs of digits as numbers,
// other runs as text, a number before text ("rc2" < "rc10", "0" < "x").
func comparePart(a, b string) int {
	ar, br := runs(a), runs(b)
	for i := 0; i < len(ar) || i < len(br); i++ {
		if i >= len(ar) {
			return -1
		}
		if i >= len(br) {
			return 1
		}
		an, aErr := strconv.ParseUint(ar[i], 10, 64)
		bn, bErr := strconv.ParseUint(br[i], 10, 64)
		var c int
		switch {
		case aErr == nil && bErr == nil:
			c = cmpInt(an, bn)
		case aErr == nil:
			c = -1
		case bErr == nil:
			c = 1
		default:
			c = strings.Compare(ar[i], br[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// runs splits s into maximal runs of digits and of non-digits.
func runs(s string) []string {
	var out []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || isDigit(s[i]) != isDigit(s[i-1]) {
			out = append(out, s[start:i])
			start = i
		}
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func cmpInt(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
