package artifacts

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
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
	Name         string        `json:"name"`
	Payload      Payload       `json:"payload"`
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

// HealthCheck is a command run in the release directory after activation;
// exit status 0 means healthy.
type HealthCheck struct {
	Command []string `json:"command"`
	Name    string   `json:"name"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Provenance records where a release was built.
type Provenance struct {
	BuildID      string `json:"build_id,omitempty"`
	Builder      string `json:"builder,omitempty"`
	SourceCommit string `json:"source_commit,omitempty"`
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
		field := fmt.Sprintf("health_checks[%d]", i)
		if hc.Name == "" || len(hc.Name) > 64 || !utf8.ValidString(hc.Name) {
			return bad(field+".name", "must be 1-64 bytes of UTF-8")
		}
		if len(hc.Command) == 0 || len(hc.Command) > maxCommandArgs {
			return bad(field+".command", "must have 1-%d arguments", maxCommandArgs)
		}
		for _, a := range hc.Command {
			if len(a) > maxArgBytes {
				return bad(field+".command", "argument longer than %d bytes", maxArgBytes)
			}
			if !utf8.ValidString(a) {
				return bad(field+".command", "argument is not valid UTF-8")
			}
		}
		if hc.Timeout < 0 || time.Duration(hc.Timeout) > maxCheckTimeout {
			return bad(field+".timeout", "must be between 0 and %v", maxCheckTimeout)
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
		for field, v := range map[string]string{"build_id": p.BuildID, "builder": p.Builder, "source_commit": p.SourceCommit} {
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
