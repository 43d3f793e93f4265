package state

import (
	"bytes"
	"strings"
	"testing"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

func TestReleaseCreate(t *testing.T) {
	a, b, c, stranger := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	const app, version = "web", "2.0.0"
	digest := payloadDigest(app, version)
	stored := payloadBody(app, version, 1000, "s1") // what manifest(app, version, 1000) names
	storedChunks := payloadList(app, version, 1000).Digest()
	smaller := payloadBody(app, version, 999, "s1")
	tarGz := stored
	tarGz.Format = artifacts.FormatTarGz
	otherList := stored
	otherList.List = chunkList("another payload", 500, 500).Encode() // same size, other chunks
	// noChunks is a manifest as it was before chunk lists: valid but for payload.chunks.
	noChunks := []byte(`{"name":"web","payload":{"format":"tar","sha256":"` + digest + `","size":1000},"schema":1,"version":"2.0.0"}`)
	zip := []byte(`{"name":"web","payload":{"chunks":"` + storedChunks + `","format":"zip","sha256":"` + digest + `","size":1000},"schema":1,"version":"2.0.0"}`)
	tests := []struct {
		name      string
		policies  []TrustSet
		payload   *PayloadRegister // registered before; nil registers stored
		noPayload bool             // registers none
		manifest  []byte           // nil means manifest(app, version, 1000)
		signers   []signer
		want      api.Code
		wantMsg   string // part of the error message
	}{
		{name: "exact app policy, 1 of 1",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a}},
		{name: "wildcard policy",
			policies: []TrustSet{policyBody("*", 1, a)}, signers: []signer{a}},
		{name: "2 of 3 with two signatures",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, signers: []signer{c, a}},
		{name: "2 of 3 with a stranger's signature besides",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, signers: []signer{stranger, b, c}},
		{name: "the app's own policy wins over the wildcard",
			policies: []TrustSet{policyBody("*", 1, a), policyBody(app, 1, b)}, signers: []signer{b}},
		{name: "tar.gz payload and manifest",
			policies: []TrustSet{policyBody(app, 1, a)}, payload: &tarGz, signers: []signer{a},
			manifest: manifestWith(t, app, version, 1000, func(m *artifacts.Manifest) { m.Payload.Format = artifacts.FormatTarGz })},
		{name: "manifest with targets",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a},
			manifest: manifestWith(t, app, version, 1000, func(m *artifacts.Manifest) {
				m.Targets = &artifacts.Targets{Architectures: []string{"arm64"}, Labels: map[string]string{"site": "berlin"}}
			})},
		{name: "unsigned",
			policies: []TrustSet{policyBody(app, 1, a)},
			want:     api.CodeForbidden, wantMsg: "0 valid signature(s)"},
		{name: "signed by an unknown key",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{stranger},
			want: api.CodeForbidden, wantMsg: "is not in the"},
		{name: "2 of 3 with one signature",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, signers: []signer{b},
			want: api.CodeForbidden, wantMsg: "1 valid signature(s) from distinct policy keys, 2 required"},
		{name: "2 of 3 with one key signing twice",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, signers: []signer{a, a},
			want: api.CodeForbidden, wantMsg: "2 required"},
		{name: "signed by the wildcard's key when the app has its own policy",
			policies: []TrustSet{policyBody("*", 1, a), policyBody(app, 1, b)}, signers: []signer{a},
			want: api.CodeForbidden},
		{name: "no policy covers the app",
			policies: []TrustSet{policyBody("api", 1, a)}, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "no trust policy covers application web"},
		{name: "payload of another size",
			policies: []TrustSet{policyBody(app, 1, a)}, payload: &smaller, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "is 999 bytes, the manifest says 1000"},
		{name: "payload with another chunk list",
			policies: []TrustSet{policyBody(app, 1, a)}, payload: &otherList, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "the manifest names " + storedChunks},
		{name: "manifest naming another chunk list",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a},
			manifest: manifestWith(t, app, version, 1000, func(m *artifacts.Manifest) { m.Payload.Chunks = sha("another list") }),
			want:     api.CodeInvalid, wantMsg: "has chunk list " + storedChunks + ", the manifest names " + sha("another list")},
		{name: "payload in another format",
			policies: []TrustSet{policyBody(app, 1, a)}, payload: &tarGz, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "is tar.gz, the manifest says tar"},
		{name: "manifest saying another format",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a},
			manifest: manifestWith(t, app, version, 1000, func(m *artifacts.Manifest) { m.Payload.Format = artifacts.FormatTarGz }),
			want:     api.CodeInvalid, wantMsg: "is tar, the manifest says tar.gz"},
		{name: "payload not uploaded",
			policies: []TrustSet{policyBody(app, 1, a)}, noPayload: true, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "has not been uploaded"},
		{name: "manifest without a chunk list",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a}, manifest: noChunks,
			want: api.CodeInvalid, wantMsg: "payload.chunks"},
		{name: "manifest with an unsupported format",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a}, manifest: zip,
			want: api.CodeInvalid, wantMsg: "payload.format"},
		{name: "manifest with an unknown field",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a},
			manifest: []byte(`{"name":"web","version":"2.0.0","schema":1,"extra":1}`),
			want:     api.CodeInvalid},
		{name: "not a manifest",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a},
			manifest: []byte("web 2.0.0"), want: api.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, p := range tt.policies {
				h.must(CmdTrustSet, p)
			}
			if !tt.noPayload {
				p := stored
				if tt.payload != nil {
					p = *tt.payload
				}
				h.must(CmdPayloadRegister, p)
			}
			m := tt.manifest
			if m == nil {
				m = manifest(t, app, version, 1000)
			}
			body := ReleaseCreate{Manifest: m, Signatures: sigs(m, tt.signers...)}
			if tt.want != "" {
				res := h.noChange(CmdReleaseCreate, body, tt.want)
				if res.Err != nil && !strings.Contains(res.Err.Message, tt.wantMsg) {
					t.Errorf("error: got %q; want it to contain %q", res.Err.Message, tt.wantMsg)
				}
				return
			}
			res := h.must(CmdReleaseCreate, body)
			if res.ID != "web@2.0.0" {
				t.Errorf("release id: got %q; want %q", res.ID, "web@2.0.0")
			}
			rel, ok := h.store.Release(res.ID)
			if !ok {
				t.Fatalf("release %s not stored", res.ID)
			}
			if rel.App != app || rel.Version != version || rel.Payload != digest || !bytes.Equal(rel.Manifest, m) ||
				len(rel.Signatures) != len(tt.signers) || rel.CreatedBy != "tester" || !rel.CreatedAt.Equal(h.now) {
				t.Errorf("release = %+v; want web 2.0.0 with payload %s, the manifest and %d signatures", rel, digest, len(tt.signers))
			}
			if rel.CreateIndex != res.Index || rel.ModifyIndex != res.Index {
				t.Errorf("release meta: got %+v; want index %d", rel.Meta, res.Index)
			}
		})
	}
}

// TestReleaseCreateTwice checks that the same manifest is accepted again
// without change, and that another manifest under the same name@version is
// refused.
func TestReleaseCreateTwice(t *testing.T) {
	h := newHarness(t)
	id := h.addRelease("web", "2.0.0")
	first, _ := h.store.Release(id)
	same := manifest(t, "web", "2.0.0", 1000)

	other := manifest(t, "web", "2.0.0", 2000) // same name@version, another payload size
	tests := []struct {
		name string
		body ReleaseCreate
		want api.Code
	}{
		{"same manifest and signatures", ReleaseCreate{Manifest: same, Signatures: sigs(same, *h.signer)}, ""},
		{"same manifest, no signatures", ReleaseCreate{Manifest: same}, ""},
		{"another manifest", ReleaseCreate{Manifest: other, Signatures: sigs(other, *h.signer)}, api.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := objects(t, h.store)
			res := h.apply(CmdReleaseCreate, tt.body)
			if got := codeOf(res); got != tt.want {
				t.Fatalf("got code %q (%v); want %q", got, res.Err, tt.want)
			}
			if tt.want == "" && res.ID != id {
				t.Errorf("id: got %q; want %q", res.ID, id)
			}
			if after := objects(t, h.store); !bytes.Equal(before, after) {
				t.Errorf("creating %s again changed the state", id)
			}
			if rel, _ := h.store.Release(id); rel != first {
				t.Errorf("release: got %+v; want the first one %+v", rel, first)
			}
		})
	}
}
