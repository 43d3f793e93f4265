package artifacts

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a manifest may say. Every length from the network is bounded.
const (
	MaxManifestBytes = 64 << 10
	MaxPayloadBytes  = 16 << 30
	maxHealthChecks  = 16
	maxCommandArgs   = 64
	maxArgBytes      = 4096
	maxCheckTimeout  = time.Hour
)

// ValidName reports whether s is a valid application name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)
	archRE    = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
)

// Manifest describes one release of one application. It is what signers sign.
// Fields are declared in the alphabetical order of their JSON names, so that
// encoding/json writes them in canonical (sorted-key) order.
type Manifest struct {
	HealthChecks []HealthCheck `json:"health_checks,omitempty"`
	Hooks        *Hooks        `json:"hooks,omitempty"`
	Name         string        `json:"name"`
	Payload      Payload       `json:"payload"`
	Probation    *Probation    `json:"probation,omitempty"`
	Provenance   *Provenance   `json:"provenance,omitempty"`
	Schema       int           `json:"schema"`
	Targets      *Targets      `json:"targets,omitempty"`
	Version      string        `json:"version"`
}

// Payload formats.
const (
	FormatTar   = "tar"    // uncompressed: chunks deduplicate across versions
	FormatTarGz = "tar.gz" // accepted; its chunks rarely deduplicate
)

// Payload identifies the bytes a release installs.
type Payload struct {
	// Chunks is the SHA-256 of the canonical encoding of the payload's
	// chunk list (see artifacts/chunks), which binds the list the agent
	// downloads by to this manifest.
	Chunks string `json:"chunks"`
	Format string `json:"format"` // FormatTar or FormatTarGz
	SHA256 string `json:"sha256"` // lower-case hex
	Size   int64  `json:"size"`   // exact length in bytes
}

// Targets says which hosts a release is for. An agent refuses a release
// whose targets exclude it; the control plane targets only matching hosts.
type Targets struct {
	// Architectures are Go architecture names (amd64, arm64, arm, 386, ...).
	Architectures []string `json:"architectures,omitempty"`
	// Labels must all be present, with these values, on the host.
	Labels map[string]string `json:"labels,omitempty"`
}

// Health check types.
const (
	CheckCommand = "command" // Command exits 0
	CheckHTTP    = "http"    // GET URL answers ExpectStatus (default 200), with BodyContains if set
	CheckTCP     = "tcp"     // a TCP connection to Address succeeds
	CheckProcess = "process" // a process named Process runs
)

// HealthCheck is one check of a release's health after activation. A
// command runs in the release directory.
type HealthCheck struct {
	Address      string   `json:"address,omitempty"`
	BodyContains string   `json:"body_contains,omitempty"`
	Command      []string `json:"command,omitempty"`
	ExpectStatus int      `json:"expect_status,omitempty"`
	Name         string   `json:"name"`
	Process      string   `json:"process,omitempty"`
	Timeout      Duration `json:"timeout,omitempty"`
	Type         string   `json:"type,omitempty"` // default command
	URL          string   `json:"url,omitempty"`
}

// Kind is the check's type, command when unset.
func (hc HealthCheck) Kind() string {
	if hc.Type == "" {
		return CheckCommand
	}
	return hc.Type
}

// Hook is a command run in the release directory at one point of an apply.
type Hook struct {
	Command []string `json:"command"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Hooks are a release's commands around activation. PreActivate runs
// before the switch (failing it aborts the apply, nothing changed);
// Activate runs right after the switch, and again for the previous release
// when the agent switches back (restarting a service, say); PostActivate
// runs after Activate. A failing Activate or PostActivate reverts.
type Hooks struct {
	Activate     *Hook `json:"activate,omitempty"`
	PostActivate *Hook `json:"post_activate,omitempty"`
	PreActivate  *Hook `json:"pre_activate,omitempty"`
}

// What an agent does when it cannot reach any server during probation.
const (
	UnreachableRevert = "revert" // the dead-man's switch: switch back
	UnreachableWait   = "wait"   // keep the release and wait for a server
	UnreachableAccept = "accept" // commit on the health checks alone
)

// Probation is how long a release must prove itself after activation.
type Probation struct {
	// HealthyDeadline: the release fails if not healthy (for
	// MinHealthyTime) this long after activation. Default 5m.
	HealthyDeadline Duration `json:"healthy_deadline,omitempty"`
	// Interval between rounds of checks. Default 2s.
	Interval Duration `json:"interval,omitempty"`
	// MinHealthyTime: every check must pass continuously this long. 0 =
	// the first round that passes commits.
	MinHealthyTime Duration `json:"min_healthy_time,omitempty"`
	// Unreachable is revert (default), wait or accept.
	Unreachable string `json:"unreachable,omitempty"`
	// UnreachableAfter is how long without reaching any server counts as
	// unreachable. Default 2m.
	UnreachableAfter Duration `json:"unreachable_after,omitempty"`
}

// Provenance records where a release was built. When it comes from an
// in-toto statement (drover artifact push --provenance), Statement is the
// statement's SHA-256: signing the manifest binds the statement to the
// payload, and a trust policy may then require a named builder and
// repository (Policy.Provenance).
type Provenance struct {
	BuildID      string `json:"build_id,omitempty"`
	BuildType    string `json:"build_type,omitempty"`
	Builder      string `json:"builder,omitempty"`
	Repository   string `json:"repository,omitempty"`
	SourceCommit string `json:"source_commit,omitempty"`
	Statement    string `json:"statement_sha256,omitempty"`
}

// Duration is a time.Duration written as a string such as "30s".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ID is the release's name@version.
func (m *Manifest) ID() string { return m.Name + "@" + m.Version }

// Validate checks every field against the manifest rules.
func (m *Manifest) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidManifest, field, fmt.Sprintf(format, args...))
	}
	if m.Schema != 1 {
		return bad("schema", "must be 1, got %d", m.Schema)
	}
	if !nameRE.MatchString(m.Name) {
		return bad("name", "%q must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit", m.Name)
	}
	if !versionRE.MatchString(m.Version) {
		return bad("version", "%q must be 1-64 characters of A-Z, a-z, 0-9, '.', '+', '_', '-'", m.Version)
	}
	if m.Payload.Format != FormatTar && m.Payload.Format != FormatTarGz {
		return bad("payload.format", "%q is not supported; allowed: tar, tar.gz", m.Payload.Format)
	}
	if err := ValidateDigest(m.Payload.SHA256); err != nil {
		return bad("payload.sha256", "%v", err)
	}
	if err := ValidateDigest(m.Payload.Chunks); err != nil {
		return bad("payload.chunks", "%v", err)
	}
	if m.Payload.Size <= 0 || m.Payload.Size > MaxPayloadBytes {
		return bad("payload.size", "%d must be between 1 and %d", m.Payload.Size, int64(MaxPayloadBytes))
	}
	if len(m.HealthChecks) > maxHealthChecks {
		return bad("health_checks", "at most %d allowed", maxHealthChecks)
	}
	for i, hc := range m.HealthChecks {
		if err := hc.validate(fmt.Sprintf("health_checks[%d]", i)); err != nil {
			return err
		}
	}
	if h := m.Hooks; h != nil {
		for _, hk := range []struct {
			field string
			hook  *Hook
		}{{"hooks.pre_activate", h.PreActivate}, {"hooks.activate", h.Activate}, {"hooks.post_activate", h.PostActivate}} {
			if hk.hook == nil {
				continue
			}
			if err := validateCommand(hk.field, hk.hook.Command); err != nil {
				return err
			}
			if err := validateTimeout(hk.field, hk.hook.Timeout); err != nil {
				return err
			}
		}
	}
	if p := m.Probation; p != nil {
		for _, d := range []struct {
			field string
			v     Duration
		}{{"probation.healthy_deadline", p.HealthyDeadline}, {"probation.interval", p.Interval},
			{"probation.min_healthy_time", p.MinHealthyTime}, {"probation.unreachable_after", p.UnreachableAfter}} {
			if err := validateTimeout(d.field, d.v); err != nil {
				return err
			}
		}
		switch p.Unreachable {
		case "", UnreachableRevert, UnreachableWait, UnreachableAccept:
		default:
			return bad("probation.unreachable", "%q: allowed values are revert, wait, accept", p.Unreachable)
		}
		if p.HealthyDeadline > 0 && p.MinHealthyTime > p.HealthyDeadline {
			return bad("probation.min_healthy_time", "longer than healthy_deadline")
		}
	}
	if t := m.Targets; t != nil {
		if len(t.Architectures) > 16 || len(t.Labels) > 32 {
			return bad("targets", "at most 16 architectures and 32 labels")
		}
		for _, a := range t.Architectures {
			if !archRE.MatchString(a) {
				return bad("targets.architectures", "%q is not a Go architecture name such as amd64 or arm64", a)
			}
		}
		for k, v := range t.Labels {
			if len(k) == 0 || len(k) > 63 || len(v) > 63 || !utf8.ValidString(k) || !utf8.ValidString(v) {
				return bad("targets.labels", "keys 1-63 bytes, values at most 63 bytes, UTF-8")
			}
		}
	}
	if p := m.Provenance; p != nil {
		for field, v := range map[string]string{"build_id": p.BuildID, "builder": p.Builder, "source_commit": p.SourceCommit,
			"build_type": p.BuildType, "repository": p.Repository, "statement_sha256": p.Statement} {
			if len(v) > 256 {
				return bad("provenance."+field, "longer than 256 bytes")
			}
			if !utf8.ValidString(v) {
				return bad("provenance."+field, "not valid UTF-8")
			}
		}
	}
	return nil
}

func (hc HealthCheck) validate(field string) error {
	bad := func(f, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidManifest, field+f, fmt.Sprintf(format, args...))
	}
	if hc.Name == "" || len(hc.Name) > 64 || !utf8.ValidString(hc.Name) {
		return bad(".name", "must be 1-64 bytes of UTF-8")
	}
	if err := validateTimeout(field+".timeout", hc.Timeout); err != nil {
		return err
	}
	for _, s := range []struct{ f, v string }{{".address", hc.Address}, {".body_contains", hc.BodyContains}, {".process", hc.Process}, {".url", hc.URL}} {
		if len(s.v) > maxArgBytes || !utf8.ValidString(s.v) {
			return bad(s.f, "at most %d bytes of UTF-8", maxArgBytes)
		}
	}
	switch hc.Kind() {
	case CheckCommand:
		return validateCommand(field+".command", hc.Command)
	case CheckHTTP:
		u, err := url.Parse(hc.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad(".url", "%q must be an http or https URL", hc.URL)
		}
		if hc.ExpectStatus != 0 && (hc.ExpectStatus < 100 || hc.ExpectStatus > 599) {
			return bad(".expect_status", "%d is not an HTTP status", hc.ExpectStatus)
		}
	case CheckTCP:
		if _, _, err := net.SplitHostPort(hc.Address); err != nil {
			return bad(".address", "%q must be host:port", hc.Address)
		}
	case CheckProcess:
		if hc.Process == "" || strings.ContainsRune(hc.Process, '/') {
			return bad(".process", "a process name (as in /proc/PID/comm) is required")
		}
	default:
		return bad(".type", "%q: allowed values are command, http, tcp, process", hc.Type)
	}
	return nil
}

func validateCommand(field string, argv []string) error {
	if len(argv) == 0 || len(argv) > maxCommandArgs {
		return fmt.Errorf("%w: %s: must have 1-%d arguments", ErrInvalidManifest, field, maxCommandArgs)
	}
	for _, a := range argv {
		if len(a) > maxArgBytes {
			return fmt.Errorf("%w: %s: argument longer than %d bytes", ErrInvalidManifest, field, maxArgBytes)
		}
		if !utf8.ValidString(a) {
			return fmt.Errorf("%w: %s: argument is not valid UTF-8", ErrInvalidManifest, field)
		}
	}
	return nil
}

func validateTimeout(field string, d Duration) error {
	if d < 0 || time.Duration(d) > maxCheckTimeout {
		return fmt.Errorf("%w: %s: must be between 0 and %v", ErrInvalidManifest, field, maxCheckTimeout)
	}
	return nil
}

// Canonical returns the manifest's canonical JSON: sorted keys, no
// insignificant whitespace, no HTML escaping. These are the bytes to sign.
func (m *Manifest) Canonical() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("cannot encode manifest: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseManifest decodes and validates manifest bytes received from anywhere.
// Unknown fields are refused, so that a signer cannot sign something the
// agent would silently ignore.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrInvalidManifest, len(b), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	// Only JSON whitespace may follow. (dec.More would miss a stray '}' or ']'.)
	if len(bytes.Trim(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, fmt.Errorf("%w: trailing data after the manifest", ErrInvalidManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ValidateDigest checks that s is a lower-case hex SHA-256.
func ValidateDigest(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("sha256 must be 64 hex characters, got %d", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil || s != toLowerASCII(s) {
		return fmt.Errorf("sha256 must be lower-case hex")
	}
	return nil
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
