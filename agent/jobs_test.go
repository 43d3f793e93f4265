package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

func TestParseJUnit(t *testing.T) {
	for name, tc := range map[string]struct {
		xml  string
		want api.JUnitSummary
	}{
		"suites": {`<testsuites><testsuite tests="3" failures="1"/><testsuite tests="2" errors="1" skipped="1"/></testsuites>`,
			api.JUnitSummary{Tests: 5, Failures: 1, Errors: 1, Skipped: 1}},
		"one suite":       {`<?xml version="1.0"?><testsuite tests="4"><testcase name="a"/></testsuite>`, api.JUnitSummary{Tests: 4}},
		"negative counts": {`<testsuite tests="-4" failures="-1"/>`, api.JUnitSummary{}},
	} {
		got, err := parseJUnit(strings.NewReader(tc.xml))
		if err != nil || *got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, tc.want)
		}
	}
	if _, err := parseJUnit(strings.NewReader("not xml <")); err == nil {
		t.Errorf("malformed report accepted")
	}
}

// TestAgentChecksProvenance: a trust policy that requires provenance makes
// the agent refuse a release without it, or from another builder, however
// well signed.
func TestAgentChecksProvenance(t *testing.T) {
	keys := []signer{newSigner(t), newSigner(t), newSigner(t)}
	a := testAgent(t, keys)
	a.trust[0].Policy.Provenance = &artifacts.ProvenanceRule{Builders: []string{"https://ci.example/builder"}}
	good := &artifacts.Provenance{Builder: "https://ci.example/builder", SourceCommit: "abc1234", Statement: strings.Repeat("d", 64)}
	for name, tc := range map[string]struct {
		prov *artifacts.Provenance
		want string
	}{
		"from the allowed builder": {good, ""},
		"without provenance":       {nil, "requires build provenance"},
		"from another builder":     {&artifacts.Provenance{Builder: "https://laptop", Statement: good.Statement}, `built by "https://laptop"`},
	} {
		in := instruction(t, "3.0.0", func(m *artifacts.Manifest) { m.Provenance = tc.prov }, keys[0], keys[1])
		_, _, err := a.verify(in, "2.0.0")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v; want accepted", name, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v; want refused with %q", name, err, tc.want)
		}
	}
}
