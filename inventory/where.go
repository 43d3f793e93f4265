package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadWhere is wrapped by every error of ParseWhere; the message names the
// term at fault and what is allowed there.
var ErrBadWhere = errors.New("inventory: invalid where expression")

// Limits of a where expression.
const (
	maxWhereBytes = 4096 // the whole expression
	maxWhereTerms = 32
	maxWhereKey   = 128 // bytes in a key
	maxWhereValue = 256 // bytes in a value
)

// Attributes flattens what a Where can test about a host: its labels, with
// their keys as given ("env", "site"), and facts from its inventory sys,
// which may be nil:
//
//	hostname, serial, manufacturer, model    HostName, SerialNumber, ...
//	os, os_version, os_family, kernel, arch  OperatingSystem
//	cpus                                     LogicalProcessorCount
//	memory_gib                               TotalSystemMemoryGiB
//	agent_version                            AgentVersion
//	release.<app>                            each entry of Releases
//	fact.<key>                               each custom fact
//	package.<name>                           each OS package's version
//
// Empty and zero facts are left out. If a host has two packages of one name
// (two architectures, two package managers), package.<name> is the higher
// version.
//
// A label named like a fact (a label "os" or "release.web") hides that
// fact, even when the label's value is empty: labels come from the operator
// (through the join token) and facts from the host, so the operator's word
// stands and a host cannot report its way past a label.
func Attributes(labels map[string]string, sys *System) map[string]string {
	attrs := make(map[string]string, len(labels)+16)
	if sys != nil {
		addFacts(attrs, sys)
	}
	maps.Copy(attrs, labels)
	return attrs
}

func addFacts(attrs map[string]string, sys *System) {
	set := func(k, v string) {
		if v != "" {
			attrs[k] = v
		}
	}
	set("hostname", sys.HostName)
	set("serial", sys.SerialNumber)
	set("manufacturer", sys.Manufacturer)
	set("model", sys.Model)
	set("os", sys.OperatingSystem.Name)
	set("os_version", sys.OperatingSystem.Version)
	set("os_family", sys.OperatingSystem.Family)
	set("kernel", sys.OperatingSystem.Kernel)
	set("arch", sys.OperatingSystem.Architecture)
	set("agent_version", sys.AgentVersion)
	if n := sys.ProcessorSummary.LogicalProcessorCount; n > 0 {
		set("cpus", strconv.Itoa(n))
	}
	if x := sys.MemorySummary.TotalSystemMemoryGiB; x > 0 && !math.IsInf(x, 0) {
		set("memory_gib", strconv.FormatFloat(x, 'f', -1, 64))
	}
	for app, v := range sys.Releases {
		set("release."+app, v)
	}
	for k, v := range sys.Facts {
		set("fact."+k, v)
	}
	for _, p := range sys.Packages {
		k := "package." + p.Name
		if old, ok := attrs[k]; !ok || cmp.Or(compareVersions(p.Version, old), strings.Compare(p.Version, old)) > 0 {
			set(k, p.Version)
		}
	}
}

// Where is a parsed filter over Attributes, such as
// "os=debian,memory_gib>=8": a conjunction of terms separated by commas.
//
//	key=value   the attribute equals value
//	key!=value  the attribute is absent or differs from value
//	key>=N      also >, <=, <: a numeric comparison; see below
//	key~glob    the attribute is present and matches glob as a whole
//	key         the attribute is present and not empty
//	!key        the attribute is absent or empty
//
// Keys are up to 128 bytes of a-z, 0-9, '_', '.', '-', '/', beginning with a
// letter. Values are up to 256 bytes of printable UTF-8 and compare case
// sensitively; they cannot contain a comma nor begin with =, !, <, > or ~.
// Whitespace around terms, keys and operators is ignored. At most 32 terms
// and 4096 bytes. Globs are those of path.Match: *, ?, [a-z], \ to escape;
// * does not match '/'.
//
// >, >=, < and <= compare numbers as float64; an attribute that is not a
// number never matches. For the version keys (os_version, kernel,
// agent_version, release.<app>, package.<name>) they compare versions
// instead, as compareVersions describes; an attribute that is not a version
// (does not begin with a digit) never matches.
//
// The zero Where matches every host. Two Wheres are equal when their String
// forms are.
type Where struct {
	terms []term // sorted by key, op, value; no duplicates
}

type op uint8

const (
	opPresent op = iota
	opAbsent
	opEq
	opNe
	opGt
	opGe
	opLt
	opLe
	opGlob
)

var opText = [...]string{opEq: "=", opNe: "!=", opGt: ">", opGe: ">=", opLt: "<", opLe: "<=", opGlob: "~"}

const (
	opChars = "=!<>~"
	opHelp  = "use =, !=, >, >=, <, <=, ~ (glob), key or !key"
	keyHelp = "a key is a lower-case letter then a-z, 0-9, '_', '.', '-', '/'"
)

type term struct {
	key   string
	op    op
	value string  // as written; empty for opPresent and opAbsent
	num   float64 // value as a number, for numeric comparisons
}

type whereError struct{ term, detail string }

func (e *whereError) Error() string {
	if e.term == "" {
		return "where: " + e.detail
	}
	return "where: " + quoteShort(e.term) + ": " + e.detail
}

func (e *whereError) Unwrap() error { return ErrBadWhere }

// ParseWhere parses a filter such as "os=debian,memory_gib>=8"; see Where.
// An empty or blank string is the zero Where, which matches everything.
func ParseWhere(s string) (Where, error) {
	if len(s) > maxWhereBytes {
		return Where{}, &whereError{detail: fmt.Sprintf("expression is %d bytes; at most %d", len(s), maxWhereBytes)}
	}
	if strings.TrimSpace(s) == "" {
		return Where{}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxWhereTerms {
		return Where{}, &whereError{detail: fmt.Sprintf("%d terms; at most %d", len(parts), maxWhereTerms)}
	}
	terms := make([]term, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return Where{}, &whereError{detail: fmt.Sprintf("term %d is empty; separate terms with single commas", i+1)}
		}
		t, err := parseTerm(p)
		if err != nil {
			return Where{}, err
		}
		terms = append(terms, t)
	}
	slices.SortFunc(terms, func(a, b term) int {
		return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.op, b.op), strings.Compare(a.value, b.value))
	})
	return Where{terms: slices.Compact(terms)}, nil
}

func parseTerm(s string) (term, error) {
	bad := func(format string, args ...any) (term, error) {
		return term{}, &whereError{term: s, detail: fmt.Sprintf(format, args...)}
	}
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		key := strings.TrimSpace(rest)
		if i := strings.IndexAny(key, opChars); i >= 0 {
			return bad("! goes only before a bare key, as in !%s; to exclude a value write key!=value", key[:i])
		}
		if err := checkKey(key); err != "" {
			return bad("%s", err)
		}
		return term{key: key, op: opAbsent}, nil
	}
	n := 0
	for n < len(s) && isKeyByte(s[n]) {
		n++
	}
	key, rest := s[:n], s[n:]
	if rest != "" && !isOpByte(rest[0]) && !unicode.IsSpace(rune(rest[0])) {
		return bad("%s", keyHelp) // such as "OS=debian" or "os.Name"
	}
	if err := checkKey(key); err != "" {
		return bad("%s", err)
	}
	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	if rest == "" {
		return term{key: key, op: opPresent}, nil
	}
	n = 0
	for n < len(rest) && isOpByte(rest[n]) {
		n++
	}
	if n == 0 {
		return bad("no operator after %q; %s", key, opHelp)
	}
	o := slices.Index(opText[:], rest[:n])
	if o < 0 {
		return bad("unknown operator; %s", opHelp)
	}
	t := term{key: key, op: op(o), value: strings.TrimSpace(rest[n:])}
	if err := checkValue(&t); err != "" {
		return bad("%s", err)
	}
	return t, nil
}

func isOpByte(c byte) bool { return strings.IndexByte(opChars, c) >= 0 }

func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/'
}

// checkKey returns what is wrong with key, or "".
func checkKey(key string) string {
	switch {
	case key == "":
		return "missing key; " + keyHelp
	case len(key) > maxWhereKey:
		return fmt.Sprintf("key is %d bytes; at most %d", len(key), maxWhereKey)
	case key[0] < 'a' || key[0] > 'z':
		return keyHelp
	}
	for i := range len(key) {
		if !isKeyByte(key[i]) {
			return keyHelp
		}
	}
	return ""
}

// checkValue returns what is wrong with t.value, or "", and sets t.num.
func checkValue(t *term) string {
	v := t.value
	switch {
	case v == "" && t.op == opEq:
		return fmt.Sprintf("missing value; to select hosts without %s write !%s", t.key, t.key)
	case v == "" && t.op == opNe:
		return fmt.Sprintf("missing value; to select hosts with %s write %s", t.key, t.key)
	case v == "":
		return "missing value"
	case len(v) > maxWhereValue:
		return fmt.Sprintf("value is %d bytes; at most %d", len(v), maxWhereValue)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
		return "value must be printable UTF-8"
	case isOpByte(v[0]):
		return fmt.Sprintf("value must not begin with %q; %s", v[0], opHelp)
	}
	switch t.op {
	case opGlob:
		if _, err := path.Match(v, ""); err != nil {
			return "bad glob; use *, ?, [a-z] and \\ as in path.Match"
		}
	case opGt, opGe, opLt, opLe:
		if isVersionKey(t.key) {
			if !isVersion(v) {
				return fmt.Sprintf("%s compares versions on %s; give one that begins with a digit, such as 1.4.2", opText[t.op], t.key)
			}
		} else if x, ok := parseNumber(v); ok {
			t.num = x
		} else {
			return fmt.Sprintf("%s needs a number, as in %s%s8", opText[t.op], t.key, opText[t.op])
		}
	}
	return ""
}

// parseNumber parses a finite decimal number, without Go's hexadecimal,
// underscores, Inf and NaN.
func parseNumber(s string) (float64, bool) {
	if s == "" || strings.Trim(s, "0123456789+-.eE") != "" {
		return 0, false
	}
	x, err := strconv.ParseFloat(s, 64)
	return x, err == nil && !math.IsInf(x, 0)
}

func isVersionKey(key string) bool {
	switch key {
	case "os_version", "kernel", "agent_version":
		return true
	}
	return strings.HasPrefix(key, "release.") || strings.HasPrefix(key, "package.")
}

// Match reports whether attrs, as made by Attributes, satisfy every term.
func (w Where) Match(attrs map[string]string) bool {
	for _, t := range w.terms {
		if !t.match(attrs[t.key]) {
			return false
		}
	}
	return true
}

// match tests the attribute's value; "" means absent.
func (t term) match(v string) bool {
	switch t.op {
	case opPresent:
		return v != ""
	case opAbsent:
		return v == ""
	case opEq:
		return v == t.value
	case opNe:
		return v != t.value
	case opGlob:
		ok, _ := path.Match(t.value, v)
		return v != "" && ok
	}
	var c int
	if isVersionKey(t.key) {
		if !isVersion(v) {
			return false
		}
		c = compareVersions(v, t.value)
	} else {
		x, ok := parseNumber(v)
		if !ok {
			return false
		}
		c = cmp.Compare(x, t.num)
	}
	switch t.op {
	case opGt:
		return c > 0
	case opGe:
		return c >= 0
	case opLt:
		return c < 0
	default: // opLe
		return c <= 0
	}
}

// String returns w in canonical form: terms sorted by key, no whitespace.
func (w Where) String() string {
	var b strings.Builder
	for i, t := range w.terms {
		if i > 0 {
			b.WriteByte(',')
		}
		if t.op == opAbsent {
			b.WriteByte('!')
		}
		b.WriteString(t.key)
		b.WriteString(opText[t.op]) // "" for opPresent and opAbsent,
		b.WriteString(t.value)      // whose value is ""
	}
	return b.String()
}

// Labels returns the label map equivalent to w, and true, if every term of
// w is key=value with each key once. The zero Where gives an empty map.
func (w Where) Labels() (map[string]string, bool) {
	labels := make(map[string]string, len(w.terms))
	for _, t := range w.terms {
		if _, dup := labels[t.key]; dup || t.op != opEq {
			return nil, false
		}
		labels[t.key] = t.value
	}
	return labels, true
}

// IsZero reports whether w has no terms and so matches everything.
func (w Where) IsZero() bool { return len(w.terms) == 0 }

// MarshalText returns w.String().
func (w Where) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText parses b with ParseWhere.
func (w *Where) UnmarshalText(b []byte) error {
	v, err := ParseWhere(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// isVersion reports whether v begins with a digit, after an optional epoch
// ("1:") and "v".
func isVersion(v string) bool {
	_, v, _ = cutEpoch(v)
	v = trimV(v)
	return v != "" && isDigit(v[0])
}

// compareVersions compares two dotted versions and returns -1, 0 or +1,
// following what semantic versions, Debian and RPM agree on:
//
//   - A leading "v" is ignored when a digit follows it (v1.2 = 1.2).
//   - An epoch ("1:" in 1:9.2p1-2) counts only when both versions have one,
//     so that package.openssh-client>=9.2 matches 1:9.2p1-2.
//   - Versions are split into fields at '.' and '-', compared in order.
//     Within a field, runs of digits compare as numbers (9 < 10, 04 = 4),
//     other runs byte by byte, and a run of digits ranks above other text.
//     A field ranks above its own prefix (2 < 2p1), unless what follows
//     begins with '~' (1~rc1 < 1, as in Debian).
//   - If one version has more fields, it ranks higher (1.2 < 1.2.0 <
//     1.2.0-1), unless its first extra field begins with a letter, a
//     pre-release (1.2.0-rc1 < 1.2.0).
func compareVersions(a, b string) int {
	ea, a, hasA := cutEpoch(a)
	eb, b, hasB := cutEpoch(b)
	if hasA && hasB {
		if c := compareDigits(ea, eb); c != 0 {
			return c
		}
	}
	sep := func(r rune) bool { return r == '.' || r == '-' }
	fa, fb := strings.FieldsFunc(trimV(a), sep), strings.FieldsFunc(trimV(b), sep)
	for i := range min(len(fa), len(fb)) {
		if c := compareField(fa[i], fb[i]); c != 0 {
			return c
		}
	}
	extra := func(f []string, n int) int { // f is longer than n fields
		if c := f[n][0]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			return -1
		}
		return +1
	}
	switch {
	case len(fa) > len(fb):
		return extra(fa, len(fb))
	case len(fb) > len(fa):
		return -extra(fb, len(fa))
	}
	return 0
}

// compareField compares runs of digits as numbers and other runs as bytes.
func compareField(a, b string) int {
	for a != "" && b != "" {
		ra, rb := run(a), run(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		var c int
		switch {
		case da && db:
			c = compareDigits(ra, rb)
		case da:
			c = +1
		case db:
			c = -1
		default:
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	switch {
	case a != "":
		return tilde(a)
	case b != "":
		return -tilde(b)
	}
	return 0
}

// tilde ranks a field's remainder against its end: below if it begins with '~'.
func tilde(rest string) int {
	if rest[0] == '~' {
		return -1
	}
	return +1
}

// run returns the leading run of digits or of non-digits of s.
func run(s string) string {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i]
}

// compareDigits compares two strings of decimal digits of any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
}

func cutEpoch(v string) (epoch, rest string, ok bool) {
	e, rest, ok := strings.Cut(v, ":")
	if !ok || e == "" || strings.TrimLeft(e, "0123456789") != "" {
		return "", v, false
	}
	return e, rest, true
}

func trimV(v string) string {
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && isDigit(v[1]) {
		return v[1:]
	}
	return v
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
