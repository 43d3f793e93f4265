package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestManifestValidate(t *testing.T) {
	checks := func(n int) []HealthCheck {
		hcs := make([]HealthCheck, n)
		for i := range hcs {
			hcs[i] = HealthCheck{Name: "c", Command: []string{"true"}}
		}
		return hcs
	}
	tests := []struct {
		name   string
		modify func(m *Manifest)
		field  string // empty: the manifest is valid
	}{
		{"valid", func(m *Manifest) {}, ""},
		{"valid minimal", func(m *Manifest) { m.HealthChecks, m.Provenance = nil, nil }, ""},
		{"valid empty provenance", func(m *Manifest) { m.Provenance = &Provenance{} }, ""},

		{"schema 0", func(m *Manifest) { m.Schema = 0 }, "schema"},
		{"schema 2", func(m *Manifest) { m.Schema = 2 }, "schema"},
		{"schema -1", func(m *Manifest) { m.Schema = -1 }, "schema"},

		{"name 1 char", func(m *Manifest) { m.Name = "a" }, ""},
		{"name digit first", func(m *Manifest) { m.Name = "0app" }, ""},
		{"name all allowed", func(m *Manifest) { m.Name = "a.b_c-d9" }, ""},
		{"name 63 chars", func(m *Manifest) { m.Name = strings.Repeat("a", 63) }, ""},
		{"name 64 chars", func(m *Manifest) { m.Name = strings.Repeat("a", 64) }, "name"},
		{"name empty", func(m *Manifest) { m.Name = "" }, "name"},
		{"name upper case", func(m *Manifest) { m.Name = "Web" }, "name"},
		{"name leading dash", func(m *Manifest) { m.Name = "-web" }, "name"},
		{"name leading dot", func(m *Manifest) { m.Name = ".web" }, "name"},
		{"name leading underscore", func(m *Manifest) { m.Name = "_web" }, "name"},
		{"name slash", func(m *Manifest) { m.Name = "web/api" }, "name"},
		{"name dotdot", func(m *Manifest) { m.Name = ".." }, "name"},
		{"name space", func(m *Manifest) { m.Name = "web api" }, "name"},
		{"name at", func(m *Manifest) { m.Name = "web@1" }, "name"},
		{"name trailing newline", func(m *Manifest) { m.Name = "web\n" }, "name"},
		{"name non-ASCII", func(m *Manifest) { m.Name = "wéb" }, "name"},
		{"name star", func(m *Manifest) { m.Name = "*" }, "name"},

		{"version 1 char", func(m *Manifest) { m.Version = "1" }, ""},
		{"version upper and plus", func(m *Manifest) { m.Version = "V1.0.0-RC_1+meta" }, ""},
		{"version 64 chars", func(m *Manifest) { m.Version = strings.Repeat("9", 64) }, ""},
		{"version 65 chars", func(m *Manifest) { m.Version = strings.Repeat("9", 65) }, "version"},
		{"version empty", func(m *Manifest) { m.Version = "" }, "version"},
		{"version leading dot", func(m *Manifest) { m.Version = ".1" }, "version"},
		{"version leading dash", func(m *Manifest) { m.Version = "-1" }, "version"},
		{"version leading plus", func(m *Manifest) { m.Version = "+1" }, "version"},
		{"version slash", func(m *Manifest) { m.Version = "1/2" }, "version"},
		{"version space", func(m *Manifest) { m.Version = "1 2" }, "version"},
		{"version tilde", func(m *Manifest) { m.Version = "1~rc1" }, "version"},
		{"version at", func(m *Manifest) { m.Version = "1@2" }, "version"},
		{"version trailing newline", func(m *Manifest) { m.Version = "1\n" }, "version"},
		{"version non-ASCII", func(m *Manifest) { m.Version = "1.0ß" }, "version"},

		{"format empty", func(m *Manifest) { m.Payload.Format = "" }, "payload.format"},
		{"format zip", func(m *Manifest) { m.Payload.Format = "zip" }, "payload.format"},
		{"format upper case", func(m *Manifest) { m.Payload.Format = "TAR.GZ" }, "payload.format"},
		{"format tgz", func(m *Manifest) { m.Payload.Format = "tgz" }, "payload.format"},

		{"digest empty", func(m *Manifest) { m.Payload.SHA256 = "" }, "payload.sha256"},
		{"digest 63 chars", func(m *Manifest) { m.Payload.SHA256 = m.Payload.SHA256[:63] }, "payload.sha256"},
		{"digest 65 chars", func(m *Manifest) { m.Payload.SHA256 += "0" }, "payload.sha256"},
		{"digest upper case", func(m *Manifest) { m.Payload.SHA256 = strings.ToUpper(m.Payload.SHA256) }, "payload.sha256"},
		{"digest not hex", func(m *Manifest) { m.Payload.SHA256 = strings.Repeat("g", 64) }, "payload.sha256"},
		{"digest with prefix", func(m *Manifest) { m.Payload.SHA256 = "sha256:" + m.Payload.SHA256[7:] }, "payload.sha256"},

		{"size 1", func(m *Manifest) { m.Payload.Size = 1 }, ""},
		{"size max", func(m *Manifest) { m.Payload.Size = MaxPayloadBytes }, ""},
		{"size 0", func(m *Manifest) { m.Payload.Size = 0 }, "payload.size"},
		{"size negative", func(m *Manifest) { m.Payload.Size = -1 }, "payload.size"},
		{"size max+1", func(m *Manifest) { m.Payload.Size = MaxPayloadBytes + 1 }, "payload.size"},

		{"16 health checks", func(m *Manifest) { m.HealthChecks = checks(16) }, ""},
		{"17 health checks", func(m *Manifest) { m.HealthChecks = checks(17) }, "health_checks"},
		{"check name empty", func(m *Manifest) { m.HealthChecks[0].Name = "" }, "health_checks[0].name"},
		{"check name 64 bytes", func(m *Manifest) { m.HealthChecks[1].Name = strings.Repeat("n", 64) }, ""},
		{"check name 65 bytes", func(m *Manifest) { m.HealthChecks[1].Name = strings.Repeat("n", 65) }, "health_checks[1].name"},
		{"check command nil", func(m *Manifest) { m.HealthChecks[1].Command = nil }, "health_checks[1].command"},
		{"check command empty", func(m *Manifest) { m.HealthChecks[0].Command = []string{} }, "health_checks[0].command"},
		{"check command 64 args", func(m *Manifest) { m.HealthChecks[0].Command = make([]string, 64) }, ""},
		{"check command 65 args", func(m *Manifest) { m.HealthChecks[0].Command = make([]string, 65) }, "health_checks[0].command"},
		{"check arg 4096 bytes", func(m *Manifest) { m.HealthChecks[1].Command = []string{strings.Repeat("a", 4096)} }, ""},
		{"check arg 4097 bytes", func(m *Manifest) { m.HealthChecks[1].Command = []string{"x", strings.Repeat("a", 4097)} }, "health_checks[1].command"},
		{"check timeout 0", func(m *Manifest) { m.HealthChecks[0].Timeout = 0 }, ""},
		{"check timeout 1h", func(m *Manifest) { m.HealthChecks[0].Timeout = Duration(time.Hour) }, ""},
		{"check timeout 1h+1ns", func(m *Manifest) { m.HealthChecks[0].Timeout = Duration(time.Hour + 1) }, "health_checks[0].timeout"},
		{"check timeout negative", func(m *Manifest) { m.HealthChecks[1].Timeout = Duration(-time.Second) }, "health_checks[1].timeout"},

		{"check name not UTF-8", func(m *Manifest) { m.HealthChecks[0].Name = "up\xff" }, "health_checks[0].name"},
		{"check arg not UTF-8", func(m *Manifest) { m.HealthChecks[1].Command = []string{"ok", "\xc3"} }, "health_checks[1].command"},
		{"check arg with NUL and unicode", func(m *Manifest) { m.HealthChecks[1].Command = []string{"a\x00b", "ünï\u2028"} }, ""},
		{"provenance builder not UTF-8", func(m *Manifest) { m.Provenance.Builder = "ci\xfe" }, "provenance.builder"},
		{"provenance 256 bytes", func(m *Manifest) {
			m.Provenance = &Provenance{BuildID: strings.Repeat("b", 256), Builder: strings.Repeat("b", 256), SourceCommit: strings.Repeat("b", 256)}
		}, ""},
		{"provenance build_id 257 bytes", func(m *Manifest) { m.Provenance.BuildID = strings.Repeat("b", 257) }, "provenance.build_id"},
		{"provenance builder 257 bytes", func(m *Manifest) { m.Provenance.Builder = strings.Repeat("b", 257) }, "provenance.builder"},
		{"provenance source_commit 257 bytes", func(m *Manifest) { m.Provenance.SourceCommit = strings.Repeat("b", 257) }, "provenance.source_commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.modify(m)
			err := m.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("Validate() = %v; want an error wrapping %v", err, ErrInvalidManifest)
			}
			if want := ": " + tt.field + ": "; !strings.Contains(err.Error(), want) {
				t.Errorf("Validate() = %q; want it to name the field %q", err, tt.field)
			}
		})
	}
}

func TestValidateDigest(t *testing.T) {
	good := digestOf([]byte("x"))
	tests := []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.Repeat("0", 64), true},
		{"", false},
		{good[:62], false},
		{good + "00", false},
		{strings.ToUpper(good), false},
		{"Z" + good[1:], false},
		{" " + good[1:], false},
		{strings.Repeat("é", 32), false},
	}
	for _, tt := range tests {
		if err := ValidateDigest(tt.in); (err == nil) != tt.ok {
			t.Errorf("ValidateDigest(%q) = %v; want ok=%v", tt.in, err, tt.ok)
		}
	}
}

// canonicalize decodes JSON and re-encodes it with sorted keys, no
// whitespace and no HTML escaping: what Canonical promises to produce.
func canonicalize(t *testing.T, b []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("canonical output is not a JSON object: %v", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps are encoded with sorted keys
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestCanonical(t *testing.T) {
	full := validManifest()
	full.HealthChecks[0].Timeout = Duration(90 * time.Second)
	maximal := validManifest()
	maximal.Payload.Size = MaxPayloadBytes
	maximal.Provenance = &Provenance{BuildID: "<&>", Builder: "ünïcode \u2028", SourceCommit: "\"quoted\" \\ \t"}
	minimal := validManifest()
	minimal.HealthChecks, minimal.Provenance = nil, nil

	for name, m := range map[string]*Manifest{"full": full, "maximal": maximal, "minimal": minimal} {
		t.Run(name, func(t *testing.T) {
			b, err := m.Canonical()
			if err != nil {
				t.Fatalf("Canonical() error: %v", err)
			}
			if want := canonicalize(t, b); !bytes.Equal(b, want) {
				t.Errorf("Canonical() =\n%s\nwant sorted keys, no whitespace:\n%s", b, want)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, compact.Bytes()) {
				t.Errorf("Canonical() has insignificant whitespace: %s", b)
			}
			if bytes.Contains(b, []byte(`\u003c`)) || bytes.Contains(b, []byte(`\u0026`)) {
				t.Errorf("Canonical() escapes HTML: %s", b)
			}
			again, err := m.Canonical()
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("second Canonical() = %s, %v; want the same bytes %s", again, err, b)
			}
			parsed, err := ParseManifest(b)
			if err != nil {
				t.Fatalf("ParseManifest(Canonical()) error: %v", err)
			}
			if !reflect.DeepEqual(parsed, m) {
				t.Errorf("ParseManifest(Canonical()) = %+v; want %+v", parsed, m)
			}
			reencoded, err := parsed.Canonical()
			if err != nil || !bytes.Equal(reencoded, b) {
				t.Errorf("Canonical() after a round trip = %s, %v; want %s", reencoded, err, b)
			}
		})
	}
}

func TestCanonicalExactBytes(t *testing.T) {
	m := &Manifest{Schema: 1, Name: "app", Version: "1.0",
		Payload:      Payload{Chunks: strings.Repeat("b", 64), Format: "tar.gz", SHA256: strings.Repeat("a", 64), Size: 42},
		HealthChecks: []HealthCheck{{Name: "up", Command: []string{"a&b"}, Timeout: Duration(1500 * time.Millisecond)}},
		Provenance:   &Provenance{Builder: "ci"}}
	got, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"health_checks":[{"command":["a&b"],"name":"up","timeout":"1.5s"}],"name":"app",` +
		`"payload":{"chunks":"` + strings.Repeat("b", 64) + `","format":"tar.gz","sha256":"` + strings.Repeat("a", 64) + `","size":42},` +
		`"provenance":{"builder":"ci"},"schema":1,"version":"1.0"}`
	if string(got) != want {
		t.Errorf("Canonical() =\n%s\nwant\n%s", got, want)
	}
}

// TestCanonicalInvalidUTF8 checks that what Validate accepts is what gets
// signed: encoding/json turns invalid UTF-8 into U+FFFD, so a manifest
// holding it would be signed as something else (and, with a 64-byte name
// of such bytes, as something ParseManifest refuses).
func TestCanonicalInvalidUTF8(t *testing.T) {
	for name, modify := range map[string]func(m *Manifest){
		"check name": func(m *Manifest) { m.HealthChecks[0].Name = strings.Repeat("\xff", 64) },
		"check arg":  func(m *Manifest) { m.HealthChecks[0].Command[0] = "curl\xff" },
		"provenance": func(m *Manifest) { m.Provenance.SourceCommit = "\xed\xa0\x80" },
		"build id":   func(m *Manifest) { m.Provenance.BuildID = "\x80" },
	} {
		t.Run(name, func(t *testing.T) {
			m := validManifest()
			modify(m)
			b, err := m.Canonical()
			if err != nil {
				if !errors.Is(err, ErrInvalidManifest) {
					t.Errorf("Canonical() = %v; want nil or %v", err, ErrInvalidManifest)
				}
				return
			}
			parsed, err := ParseManifest(b)
			if err != nil {
				t.Fatalf("Canonical() made bytes that ParseManifest refuses: %v", err)
			}
			if !reflect.DeepEqual(parsed, m) {
				t.Errorf("Canonical() = %q signs a different manifest: got provenance %+v, checks %+v; want %+v, %+v",
					b, *parsed.Provenance, parsed.HealthChecks, *m.Provenance, m.HealthChecks)
			}
		})
	}
}

func TestCanonicalRefusesInvalid(t *testing.T) {
	m := validManifest()
	m.Name = "Bad Name"
	if b, err := m.Canonical(); !errors.Is(err, ErrInvalidManifest) || b != nil {
		t.Errorf("Canonical() of an invalid manifest = %q, %v; want nil, %v", b, err, ErrInvalidManifest)
	}
}

func TestParseManifest(t *testing.T) {
	canon, err := validManifest().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	body := string(canon)
	replace := func(old, new string) string {
		if !strings.Contains(body, old) {
			t.Fatalf("test bug: %q not in %s", old, body)
		}
		return strings.Replace(body, old, new, 1)
	}
	padded := body + strings.Repeat(" ", MaxManifestBytes-len(body))
	tests := []struct {
		name string
		in   string
		ok   bool
		want string // part of the error message
	}{
		{"canonical", body, true, ""},
		{"indented", func() string {
			var b bytes.Buffer
			_ = json.Indent(&b, canon, "", "  ")
			return b.String()
		}(), true, ""},
		{"trailing newline", body + "\n", true, ""},
		{"trailing whitespace", body + " \r\n\t", true, ""},
		{"exactly the size limit", padded, true, ""},

		{"over the size limit", padded + " ", false, "limit"},
		{"empty", "", false, ""},
		{"null", "null", false, "schema"},
		{"array", "[]", false, ""},
		{"unknown top-level field", replace(`"schema":1`, `"schema":1,"extra":true`), false, "extra"},
		{"unknown payload field", replace(`"size":7`, `"size":7,"url":"http://x"`), false, "url"},
		{"unknown health check field", replace(`"name":"ready"`, `"name":"ready","env":{}`), false, "env"},
		{"unknown provenance field", replace(`"builder":`, `"signer":"x","builder":`), false, "signer"},
		{"trailing object", body + "{}", false, "trailing"},
		{"trailing manifest", body + body, false, "trailing"},
		{"trailing garbage", body + "x", false, ""},
		{"trailing closing brace", body + "}", false, ""},
		{"trailing closing bracket", body + "]", false, ""},
		{"trailing brace after newline", body + "\n}\n", false, ""},
		{"truncated", body[:len(body)-1], false, ""},
		{"schema as string", replace(`"schema":1`, `"schema":"1"`), false, ""},
		{"schema as float", replace(`"schema":1`, `"schema":1.0`), false, ""},
		{"size as float", replace(`"size":7`, `"size":7.5`), false, ""},
		{"size overflows", replace(`"size":7`, `"size":99999999999999999999`), false, ""},
		{"timeout as number", replace(`"timeout":"5s"`, `"timeout":5`), false, "duration must be a string"},
		{"timeout unparsable", replace(`"timeout":"5s"`, `"timeout":"soon"`), false, ""},
		{"timeout too long", replace(`"timeout":"5s"`, `"timeout":"2h"`), false, "health_checks[0].timeout"},
		{"invalid after parse", replace(`"name":"web-api"`, `"name":"Web"`), false, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.in))
			if tt.ok {
				if err != nil {
					t.Fatalf("ParseManifest() error: %v", err)
				}
				if !reflect.DeepEqual(m, validManifest()) {
					t.Errorf("ParseManifest() = %+v; want %+v", m, validManifest())
				}
				return
			}
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("ParseManifest() = %+v, %v; want an error wrapping %v", m, err, ErrInvalidManifest)
			}
			if m != nil {
				t.Errorf("ParseManifest() returned a manifest with its error: %+v", m)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest() error %q; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, 1500 * time.Millisecond, 90 * time.Second, time.Hour} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatal(err)
		}
		var got Duration
		if err := json.Unmarshal(b, &got); err != nil || time.Duration(got) != d {
			t.Errorf("round trip of %v through %s = %v, %v; want %v", d, b, time.Duration(got), err, d)
		}
	}
	for _, in := range []string{`30`, `"30"`, `"soon"`, `true`, `""`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %v; want an error", in, time.Duration(d))
		}
	}
}

func TestManifestID(t *testing.T) {
	if got, want := validManifest().ID(), "web-api@1.4.2+build.7"; got != want {
		t.Errorf("ID() = %q; want %q", got, want)
	}
}

func TestDigestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "payload.tar")
	content := bytes.Repeat([]byte("drover payload "), 10_000)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	digest, size, err := DigestFile(path)
	if err != nil || digest != hex.EncodeToString(sum[:]) || size != int64(len(content)) {
		t.Errorf("DigestFile() = %s, %d, %v; want %x, %d, nil", digest, size, err, sum, len(content))
	}
	if _, _, err := DigestFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("DigestFile() of a missing file: got nil error; want one")
	}
}
