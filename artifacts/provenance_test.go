package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Digests used by the statements below.
const (
	provPayload  = "5f1c0b6a3e9d2f47a8c1b0e6d3f2a9875c4b1e0d9f8a7b6c5d4e3f2a1b0c9d8e"
	provOther    = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	provCommit   = "3f786850e387550fdab836ed7e6dc881de23001b"
	provCommit2  = "89e6c98d92887913cadf06b2adb97f26cde4849b"
	provCommit64 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

// githubV1 is a statement as GitHub Actions' build provenance attestation
// writes it: a SLSA v1 predicate with the workflow's buildType.
func githubV1() map[string]any {
	return map[string]any{
		"_type": "https://in-toto.io/Statement/v1",
		"subject": []any{
			map[string]any{"name": "web-api_1.4.2_linux_amd64.tar.gz", "digest": map[string]any{"sha256": provPayload}},
		},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters": map[string]any{
					"workflow": map[string]any{
						"ref":        "refs/tags/v1.4.2",
						"repository": "https://github.com/acme/web-api",
						"path":       ".github/workflows/release.yml",
					},
				},
				"internalParameters": map[string]any{
					"github": map[string]any{
						"event_name":          "push",
						"repository_id":       "702118234",
						"repository_owner_id": "1287364",
						"runner_environment":  "github-hosted",
					},
				},
				"resolvedDependencies": []any{
					map[string]any{
						"uri":    "git+https://github.com/acme/web-api@refs/tags/v1.4.2",
						"digest": map[string]any{"gitCommit": provCommit},
					},
				},
			},
			"runDetails": map[string]any{
				"builder": map[string]any{"id": "https://github.com/actions/runner/github-hosted"},
				"metadata": map[string]any{
					"invocationId": "https://github.com/acme/web-api/actions/runs/9876543210/attempts/1",
				},
			},
		},
	}
}

// slsaV02 is a statement as the SLSA GitHub generator (v1.x) writes it:
// a v0.1 statement with a SLSA v0.2 predicate.
func slsaV02() map[string]any {
	src := map[string]any{
		"uri":        "git+https://github.com/acme/web-api@refs/heads/main",
		"digest":     map[string]any{"sha1": provCommit},
		"entryPoint": ".github/workflows/release.yml",
	}
	return map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject": []any{
			map[string]any{"name": "web-api-linux-arm64", "digest": map[string]any{"sha256": provOther}},
			map[string]any{"name": "web-api-linux-amd64", "digest": map[string]any{"sha256": provPayload}},
		},
		"predicate": map[string]any{
			"builder":   map[string]any{"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.9.0"},
			"buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
			"invocation": map[string]any{
				"configSource": src,
				"parameters":   map[string]any{},
				"environment":  map[string]any{"github_run_attempt": "1", "github_run_id": "6012409813"},
			},
			"metadata": map[string]any{
				"buildInvocationId": "6012409813-1",
				"completeness":      map[string]any{"parameters": true, "environment": false, "materials": false},
				"reproducible":      false,
			},
			"materials": []any{
				map[string]any{"uri": "git+https://github.com/acme/web-api@refs/heads/main", "digest": map[string]any{"sha1": provCommit}},
			},
		},
	}
}

// stmt encodes a statement, after edit changes it.
func stmt(t testing.TB, base func() map[string]any, edit func(m map[string]any)) []byte {
	t.Helper()
	m := base()
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at returns the object at a dotted path of m.
func at(m map[string]any, path string) map[string]any {
	for _, k := range strings.Split(path, ".") {
		m = m[k].(map[string]any)
	}
	return m
}

// dsse wraps a statement in a DSSE envelope with one (unverified) signature.
func dsse(payload []byte, enc *base64.Encoding) []byte {
	b, _ := json.Marshal(map[string]any{
		"payloadType": "application/vnd.in-toto+json",
		"payload":     enc.EncodeToString(payload),
		"signatures":  []any{map[string]any{"keyid": "", "sig": "MEUCIQ=="}},
	})
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestParseProvenance(t *testing.T) {
	v1Want := BuildProvenance{
		Builder:    "https://github.com/actions/runner/github-hosted",
		BuildType:  "https://actions.github.io/buildtypes/workflow/v1",
		Repository: "https://github.com/acme/web-api",
		Commit:     provCommit,
		BuildID:    "https://github.com/acme/web-api/actions/runs/9876543210/attempts/1",
		Subjects:   []string{provPayload},
	}
	v02Want := BuildProvenance{
		Builder:    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.9.0",
		BuildType:  "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
		Repository: "https://github.com/acme/web-api",
		Commit:     provCommit,
		BuildID:    "6012409813-1",
		Subjects:   []string{provOther, provPayload},
	}
	with := func(w BuildProvenance, edit func(w *BuildProvenance)) BuildProvenance {
		w.Subjects = append([]string(nil), w.Subjects...)
		edit(&w)
		return w
	}
	v1 := stmt(t, githubV1, nil)
	tests := []struct {
		name  string
		input []byte
		want  BuildProvenance
	}{
		{"v1 GitHub Actions", v1, v1Want},
		{"v1 predicate in a v0.1 statement", stmt(t, githubV1, func(m map[string]any) {
			m["_type"] = "https://in-toto.io/Statement/v0.1"
		}), v1Want},
		{"v1 commit from the dependency of the named repository", stmt(t, githubV1, func(m map[string]any) {
			def := at(m, "predicate.buildDefinition")
			def["resolvedDependencies"] = []any{
				map[string]any{"uri": "git+https://github.com/acme/shared-actions@refs/heads/main", "digest": map[string]any{"gitCommit": provCommit2}},
				map[string]any{"uri": "pkg:docker/ubuntu@22.04", "digest": map[string]any{"sha256": provOther}},
				map[string]any{"uri": "git+https://github.com/ACME/web-api.git@refs/tags/v1.4.2", "digest": map[string]any{"gitCommit": provCommit}},
			}
		}), v1Want},
		{"v1 named repository without a matching dependency has no commit", stmt(t, githubV1, func(m map[string]any) {
			def := at(m, "predicate.buildDefinition")
			def["resolvedDependencies"] = []any{
				map[string]any{"uri": "git+https://github.com/acme/shared-actions@refs/heads/main", "digest": map[string]any{"gitCommit": provCommit2}},
			}
		}), with(v1Want, func(w *BuildProvenance) { w.Commit = "" })},
		{"v1 externalParameters.source as a string", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.buildDefinition")["externalParameters"] = map[string]any{
				"source": "git+https://github.com/acme/web-api@refs/heads/release",
			}
		}), v1Want},
		{"v1 externalParameters.source as an object with a digest", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.buildDefinition")["externalParameters"] = map[string]any{
				"source": map[string]any{"uri": "git+https://gitlab.example.com/acme/web-api@refs/heads/main", "digest": map[string]any{"sha1": provCommit2}},
			}
		}), with(v1Want, func(w *BuildProvenance) {
			w.Repository, w.Commit = "https://gitlab.example.com/acme/web-api", provCommit2
		})},
		{"v1 first dependency with a uri and a commit, SHA-256 git", stmt(t, githubV1, func(m map[string]any) {
			def := at(m, "predicate.buildDefinition")
			delete(def, "externalParameters")
			def["resolvedDependencies"] = []any{
				map[string]any{"uri": "https://example.com/toolchain.tar.gz", "digest": map[string]any{"sha256": provOther}},
				map[string]any{"digest": map[string]any{"gitCommit": provCommit2}},
				map[string]any{"uri": "git+ssh://git@git.example.com/acme/web-api@refs/heads/main", "digest": map[string]any{"gitCommit": strings.ToUpper(provCommit64)}},
				map[string]any{"uri": "git+https://github.com/acme/other", "digest": map[string]any{"gitCommit": provCommit2}},
			}
		}), with(v1Want, func(w *BuildProvenance) {
			w.Repository, w.Commit = "ssh://git@git.example.com/acme/web-api", provCommit64
		})},
		{"v1 minimal: builder and subject only", stmt(t, githubV1, func(m map[string]any) {
			m["predicate"] = map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": "https://ci.example.com/builder"}}}
		}), BuildProvenance{Builder: "https://ci.example.com/builder", Subjects: []string{provPayload}}},
		{"subjects: upper-case hex, duplicates and other algorithms", stmt(t, githubV1, func(m map[string]any) {
			m["subject"] = []any{
				map[string]any{"name": "a.sig", "digest": map[string]any{"sha512": strings.Repeat("ab", 64)}},
				map[string]any{"name": "a", "digest": map[string]any{"sha256": strings.ToUpper(provPayload), "sha1": provCommit}},
				map[string]any{"name": "a-again", "digest": map[string]any{"sha256": provPayload}},
				map[string]any{"digest": map[string]any{"sha256": provOther}},
			}
		}), with(v1Want, func(w *BuildProvenance) { w.Subjects = []string{provPayload, provOther} })},
		{"unknown fields and case variants of keys are ignored", []byte(strings.Replace(string(v1), `"_type"`,
			`"_TYPE":"x","Subject":[],"extra":{"deep":[[1e999,{"a":null}]]},"_type"`, 1)), v1Want},
		{"v0.2 SLSA generator", stmt(t, slsaV02, nil), v02Want},
		{"v0.2 in a v1 statement", stmt(t, slsaV02, func(m map[string]any) {
			m["_type"] = "https://in-toto.io/Statement/v1"
		}), v02Want},
		{"v0.2 source from materials[0]", stmt(t, slsaV02, func(m map[string]any) {
			delete(at(m, "predicate.invocation"), "configSource")
			at(m, "predicate")["materials"] = []any{
				map[string]any{"uri": "git+https://github.com/acme/web-api-fork@refs/heads/fix", "digest": map[string]any{"sha1": provCommit2}},
				map[string]any{"uri": "git+https://github.com/acme/web-api@refs/heads/main", "digest": map[string]any{"sha1": provCommit}},
			}
		}), with(v02Want, func(w *BuildProvenance) { w.Repository, w.Commit = "https://github.com/acme/web-api-fork", provCommit2 })},
		{"v0.2 without a source", stmt(t, slsaV02, func(m map[string]any) {
			delete(at(m, "predicate"), "invocation")
			delete(at(m, "predicate"), "materials")
		}), with(v02Want, func(w *BuildProvenance) { w.Repository, w.Commit = "", "" })},
		{"DSSE envelope, standard base64", dsse(v1, base64.StdEncoding), v1Want},
		{"DSSE envelope, URL-safe base64 without padding", dsse(stmt(t, slsaV02, nil), base64.RawURLEncoding), v02Want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProvenance(tt.input)
			if err != nil {
				t.Fatalf("ParseProvenance() error: %v", err)
			}
			want := tt.want
			want.Statement = sha256Hex(tt.input)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("ParseProvenance() =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

func TestParseProvenanceErrors(t *testing.T) {
	v1 := string(stmt(t, githubV1, nil))
	deep := strings.Replace(v1, `"_type"`, `"x":`+strings.Repeat("[", 64)+strings.Repeat("]", 64)+`,"_type"`, 1)
	tests := []struct {
		name  string
		input []byte
		want  string // the error's text after "invalid provenance: "
	}{
		// Bytes and JSON.
		{"empty", nil, "statement is not valid JSON: empty"},
		{"not JSON", []byte(`_type: https://in-toto.io/Statement/v1`), "statement is not valid JSON: invalid character"},
		{"truncated", []byte(v1[:len(v1)-1]), "statement is not valid JSON: unexpected end of JSON input"},
		{"trailing value", []byte(v1 + ` {}`), "statement is not valid JSON: more than one value"},
		{"trailing garbage", []byte(v1 + `]`), "statement is not valid JSON: invalid character ']'"},
		{"an array", []byte(`[` + v1 + `]`), "statement: want a JSON object, got array"},
		{"invalid UTF-8", []byte(strings.Replace(v1, "web-api_1", "web-api\xff_1", 1)), "statement is not valid UTF-8"},
		{"too large", []byte(v1 + strings.Repeat(" ", MaxProvenanceBytes)), fmt.Sprintf("statement is %d bytes, more than the limit of %d", len(v1)+MaxProvenanceBytes, MaxProvenanceBytes)},
		{"nested too deep", []byte(deep), "statement is not valid JSON: nested more than 64 deep"},
		{"duplicate key", []byte(strings.Replace(v1, `"_type"`, `"predicateType":"x","_type"`, 1)), `statement is not valid JSON: key "predicateType" appears twice in one object`},
		{"duplicate key, escaped", []byte(strings.Replace(v1, `"_type"`, `"subj\u0065ct":[],"_type"`, 1)), `key "subject" appears twice`},
		{"duplicate nested key", []byte(strings.Replace(v1, `{"id":`, `{"id":"https://evil.example.com","id":`, 1)), `key "id" appears twice`},

		// Statement.
		{"_type missing", stmt(t, githubV1, func(m map[string]any) { delete(m, "_type") }),
			"_type: missing, want https://in-toto.io/Statement/v1 or v0.1"},
		{"_type wrong", stmt(t, githubV1, func(m map[string]any) { m["_type"] = "https://in-toto.io/Statement/v2" }),
			`_type "https://in-toto.io/Statement/v2": want https://in-toto.io/Statement/v1 or v0.1`},
		{"_type not a string", stmt(t, githubV1, func(m map[string]any) { m["_type"] = 1 }),
			"_type: want a string, got number"},
		{"predicateType wrong", stmt(t, githubV1, func(m map[string]any) { m["predicateType"] = "x" }),
			`predicateType "x": want https://slsa.dev/provenance/v1 or v0.2`},
		{"predicateType SPDX", stmt(t, githubV1, func(m map[string]any) { m["predicateType"] = "https://spdx.dev/Document" }),
			`predicateType "https://spdx.dev/Document": want https://slsa.dev/provenance/v1 or v0.2`},
		{"predicateType only in another case", []byte(strings.Replace(v1, `"predicateType"`, `"PredicateType"`, 1)),
			"predicateType: missing, want https://slsa.dev/provenance/v1 or v0.2"},
		{"predicate missing", stmt(t, githubV1, func(m map[string]any) { delete(m, "predicate") }),
			"predicate: missing, want a SLSA provenance object"},
		{"predicate not an object", stmt(t, githubV1, func(m map[string]any) { m["predicate"] = "x" }),
			"predicate: want an object, got string"},

		// Builder.
		{"v1 builder missing", stmt(t, githubV1, func(m map[string]any) { delete(at(m, "predicate.runDetails"), "builder") }),
			"predicate.runDetails.builder.id: missing, want the builder's URI"},
		{"v1 builder empty", stmt(t, githubV1, func(m map[string]any) { at(m, "predicate.runDetails.builder")["id"] = "" }),
			"predicate.runDetails.builder.id: missing, want the builder's URI"},
		{"v1 builder not a string", stmt(t, githubV1, func(m map[string]any) { at(m, "predicate.runDetails.builder")["id"] = []any{"x"} }),
			"predicate.runDetails.builder.id: want a string, got array"},
		{"v1 builder id under the v0.2 name", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate")["builder"] = map[string]any{"id": "https://ci.example.com"}
			delete(at(m, "predicate.runDetails"), "builder")
		}), "predicate.runDetails.builder.id: missing"},
		{"v0.2 builder missing", stmt(t, slsaV02, func(m map[string]any) { delete(at(m, "predicate"), "builder") }),
			"predicate.builder.id: missing, want the builder's URI"},
		{"builder too long", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.runDetails.builder")["id"] = "https://ci.example.com/" + strings.Repeat("b", 1002)
		}), "predicate.runDetails.builder.id: 1025 bytes, more than the limit of 1024"},
		{"builder with a control character", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.runDetails.builder")["id"] = "https://ci.example.com/\x1b[2J"
		}), `predicate.runDetails.builder.id "https://ci.example.com/\x1b[2J": contains a control character`},
		{"build id not a string", stmt(t, githubV1, func(m map[string]any) { at(m, "predicate.runDetails.metadata")["invocationId"] = 42 }),
			"predicate.runDetails.metadata.invocationId: want a string, got number"},

		// Subjects.
		{"no subject", stmt(t, githubV1, func(m map[string]any) { delete(m, "subject") }),
			"subject: no sha256 digest, want at least one subject with digest.sha256"},
		{"only other digests", stmt(t, githubV1, func(m map[string]any) {
			m["subject"] = []any{map[string]any{"name": "a", "digest": map[string]any{"sha512": strings.Repeat("ab", 64)}}}
		}), "subject: no sha256 digest, want at least one subject with digest.sha256"},
		{"subject without digest", stmt(t, githubV1, func(m map[string]any) { m["subject"] = []any{map[string]any{"name": "a"}} }),
			`subject[0].digest: missing, want an object such as {"sha256": "<hex>"}`},
		{"subject not an object", stmt(t, githubV1, func(m map[string]any) { m["subject"] = []any{provPayload} }),
			"subject[0]: want an object, got string"},
		{"subject not an array", stmt(t, githubV1, func(m map[string]any) { m["subject"] = map[string]any{} }),
			"subject: want an array, got object"},
		{"sha256 too short", stmt(t, githubV1, func(m map[string]any) {
			m["subject"] = []any{map[string]any{"digest": map[string]any{"sha256": provPayload[:63]}}}
		}), fmt.Sprintf(`subject[0].digest.sha256 %q: want 64 hex characters`, provPayload[:63])},
		{"sha256 not hex", stmt(t, githubV1, func(m map[string]any) {
			m["subject"] = []any{map[string]any{"digest": map[string]any{"sha256": "sha256:" + provPayload[7:]}}}
		}), `subject[0].digest.sha256 "sha256:`},
		{"too many subjects", stmt(t, githubV1, func(m map[string]any) {
			var s []any
			for i := range 65 {
				s = append(s, map[string]any{"digest": map[string]any{"sha256": fmt.Sprintf("%064x", i)}})
			}
			m["subject"] = s
		}), "subject: 65 entries, more than the limit of 64"},

		// Source.
		{"gitCommit malformed", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.buildDefinition")["resolvedDependencies"] = []any{
				map[string]any{"uri": "git+https://github.com/acme/web-api", "digest": map[string]any{"gitCommit": "main"}},
			}
		}), `predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit "main": want 40 or 64 hex characters`},
		{"sha1 of 64 characters", stmt(t, slsaV02, func(m map[string]any) {
			at(m, "predicate.invocation.configSource.digest")["sha1"] = provCommit64
		}), fmt.Sprintf(`predicate.invocation.configSource.digest.sha1 %q: want 40 hex characters`, provCommit64)},
		{"materials[0] commit malformed", stmt(t, slsaV02, func(m map[string]any) {
			delete(at(m, "predicate.invocation"), "configSource")
			at(m, "predicate")["materials"] = []any{map[string]any{"uri": "git+https://github.com/acme/web-api", "digest": map[string]any{"sha1": "xyz"}}}
		}), `predicate.materials[0].digest.sha1 "xyz": want 40 hex characters`},
		{"source of the wrong type", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.buildDefinition.externalParameters")["source"] = 7
		}), "predicate.buildDefinition.externalParameters.source: want a URI string or an object with uri and digest, got number"},
		{"resolvedDependencies not an array", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.buildDefinition")["resolvedDependencies"] = map[string]any{}
		}), "predicate.buildDefinition.resolvedDependencies: want an array, got object"},
		{"repository too long", stmt(t, githubV1, func(m map[string]any) {
			at(m, "predicate.buildDefinition.externalParameters.workflow")["repository"] = strings.Repeat("r", 1025)
		}), "predicate.buildDefinition.externalParameters.workflow.repository: 1025 bytes, more than the limit of 1024"},

		// DSSE.
		{"DSSE wrong payloadType", []byte(strings.Replace(string(dsse([]byte(v1), base64.StdEncoding)), "application/vnd.in-toto+json", "text/plain", 1)),
			`envelope payloadType "text/plain": want application/vnd.in-toto+json`},
		{"DSSE payload missing", []byte(`{"payloadType":"application/vnd.in-toto+json","signatures":[]}`),
			"envelope payload: missing, want the base64 of an in-toto statement"},
		{"DSSE payload not base64", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"not base64!"}`),
			"envelope payload: not base64: illegal base64 data"},
		{"DSSE payload not JSON", dsse([]byte("hello"), base64.StdEncoding), "envelope payload is not valid JSON: invalid character 'h'"},
		{"DSSE payload not UTF-8", dsse([]byte("\xff"), base64.StdEncoding), "envelope payload is not valid UTF-8"},
		{"DSSE payload a nested envelope", dsse(dsse([]byte(v1), base64.StdEncoding), base64.StdEncoding), "_type: missing"},
		{"DSSE payload with a bad statement", dsse(stmt(t, githubV1, func(m map[string]any) { m["predicateType"] = "x" }), base64.StdEncoding),
			`predicateType "x": want https://slsa.dev/provenance/v1 or v0.2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProvenance(tt.input)
			if err == nil {
				t.Fatalf("ParseProvenance() = %+v; want an error containing %q", p, tt.want)
			}
			if p != nil || !errors.Is(err, ErrProvenance) {
				t.Errorf("ParseProvenance() = %v, %v; want nil and an error wrapping ErrProvenance", p, err)
			}
			if !strings.HasPrefix(err.Error(), "invalid provenance: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want %q", err, "invalid provenance: …"+tt.want+"…")
			}
		})
	}
}

func TestBuildProvenanceCheck(t *testing.T) {
	p, err := ParseProvenance(stmt(t, slsaV02, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{provPayload, provOther} {
		if err := p.Check(d); err != nil {
			t.Errorf("Check(%s) = %v; want nil for a subject of the statement", d, err)
		}
	}
	third := sha256Hex([]byte("another build"))
	tests := []struct {
		name    string
		p       *BuildProvenance
		payload string
		want    string
	}{
		{"another payload", p, third,
			fmt.Sprintf("invalid provenance: the statement is about sha256:%s (and 1 more), not this artifact (sha256:%s)", provOther, third)},
		{"another payload, one subject", &BuildProvenance{Subjects: []string{provPayload}}, third,
			fmt.Sprintf("invalid provenance: the statement is about sha256:%s, not this artifact (sha256:%s)", provPayload, third)},
		{"payload digest upper-case", p, strings.ToUpper(provPayload), "invalid provenance: payload digest"},
		{"payload digest malformed", p, "sha256:" + provPayload, "invalid provenance: payload digest"},
		{"no subjects", &BuildProvenance{}, provPayload, "invalid provenance: the statement names no sha256 subject"},
		{"nil", nil, provPayload, "invalid provenance: the statement names no sha256 subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check(tt.payload)
			if err == nil || !errors.Is(err, ErrProvenance) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Check() = %v; want an error wrapping ErrProvenance starting %q", err, tt.want)
			}
		})
	}
}

func FuzzParseProvenance(f *testing.F) {
	v1 := stmt(f, githubV1, nil)
	v02 := stmt(f, slsaV02, nil)
	for _, seed := range [][]byte{
		v1,
		v02,
		dsse(v1, base64.StdEncoding),
		dsse(v02, base64.RawURLEncoding),
		dsse(dsse(v1, base64.StdEncoding), base64.StdEncoding),
		bytes.Replace(v1, []byte(`"_type"`), []byte(`"_type":"x","_type"`), 1),
		bytes.Replace(v1, []byte(`"predicateType"`), []byte(`"PredicateType"`), 1),
		bytes.Replace(v1, []byte(provCommit), []byte(strings.ToUpper(provCommit64)), 1),
		bytes.Replace(v1, []byte(provPayload), []byte(provPayload[:63]+"G"), 1),
		bytes.Replace(v1, []byte(`"github-hosted"}`), []byte(`"\u0000\ud800\ufffd"}`), 1),
		bytes.Replace(v02, []byte(`"configSource"`), []byte(`"configsource"`), 1),
		[]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1",` +
			`"subject":[{"digest":{"sha256":"` + provPayload + `"}}],"predicate":{"runDetails":{"builder":{"id":"b"}}}}`),
		[]byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2",` +
			`"subject":[{"digest":{"sha256":"` + provPayload + `"}}],"predicate":{"builder":{"id":"b"},"materials":[null]}}`),
		[]byte(`{"payloadType":"application/vnd.in-toto+json","payload":""}`),
		[]byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`""`), []byte(``), []byte(`{"a":1e999}`), []byte("\xef\xbb\xbf{}"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProvenance(data)
		if err != nil {
			if p != nil || !errors.Is(err, ErrProvenance) {
				t.Fatalf("ParseProvenance() = %v, %v; want nil and an error wrapping ErrProvenance", p, err)
			}
			return
		}
		if p.Statement != sha256Hex(data) {
			t.Fatalf("Statement = %s; want the SHA-256 of the input, %s", p.Statement, sha256Hex(data))
		}
		if p.Builder == "" {
			t.Fatal("accepted a statement without a builder")
		}
		for _, s := range []string{p.Builder, p.BuildType, p.Repository, p.BuildID} {
			if len(s) > maxProvenanceString || !utf8ValidNoControl(s) {
				t.Fatalf("kept string %q: longer than %d bytes, not UTF-8 or with a control character", s, maxProvenanceString)
			}
		}
		if c := p.Commit; c != "" && ((len(c) != 40 && len(c) != 64) || c != strings.ToLower(c)) {
			t.Fatalf("Commit %q is not 40 or 64 lower-case hex characters", c)
		}
		if n := len(p.Subjects); n < 1 || n > maxProvenanceSubjects {
			t.Fatalf("%d subjects; want 1-%d", n, maxProvenanceSubjects)
		}
		for _, s := range p.Subjects {
			if err := ValidateDigest(s); err != nil {
				t.Fatalf("subject %q: %v", s, err)
			}
			if err := p.Check(s); err != nil {
				t.Fatalf("Check(subject %s) = %v", s, err)
			}
		}
		// The same statement in a DSSE envelope reads the same, or, when
		// it was itself an envelope, is refused.
		wrapped := dsse(data, base64.StdEncoding)
		if q, err := ParseProvenance(wrapped); err == nil {
			q.Statement = p.Statement
			if !reflect.DeepEqual(p, q) {
				t.Fatalf("wrapped in DSSE: %+v; want %+v", q, p)
			}
		} else if !isEnvelope(data) {
			t.Fatalf("refused the statement wrapped in DSSE: %v", err)
		}
	})
}

// utf8ValidNoControl reports whether s is UTF-8 without C0 or C1 controls.
func utf8ValidNoControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (0x7f <= r && r < 0xa0) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// isEnvelope reports whether a JSON object has a payloadType member.
func isEnvelope(data []byte) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	_, ok := m["payloadType"]
	return ok
}
