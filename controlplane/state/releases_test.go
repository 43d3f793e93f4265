package state

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

func TestReleaseCreate(t *testing.T) {
	a, b, c, stranger := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	const app, version = "web", "2.0.0"
	digest := payloadDigest(app, version)
	tests := []struct {
		name     string
		policies []TrustSet
		blobSize int64 // of the registered blob; 0 registers none
		manifest []byte
		signers  []signer
		want     api.Code
		wantMsg  string // part of the error message
	}{
		{name: "exact app policy, 1 of 1",
			policies: []TrustSet{policyBody(app, 1, a)}, blobSize: 1000, signers: []signer{a}},
		{name: "wildcard policy",
			policies: []TrustSet{policyBody("*", 1, a)}, blobSize: 1000, signers: []signer{a}},
		{name: "2 of 3 with two signatures",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, blobSize: 1000, signers: []signer{c, a}},
		{name: "2 of 3 with a stranger's signature besides",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, blobSize: 1000, signers: []signer{stranger, b, c}},
		{name: "the app's own policy wins over the wildcard",
			policies: []TrustSet{policyBody("*", 1, a), policyBody(app, 1, b)}, blobSize: 1000, signers: []signer{b}},
		{name: "unsigned",
			policies: []TrustSet{policyBody(app, 1, a)}, blobSize: 1000,
			want: api.CodeForbidden, wantMsg: "0 valid signature(s)"},
		{name: "signed by an unknown key",
			policies: []TrustSet{policyBody(app, 1, a)}, blobSize: 1000, signers: []signer{stranger},
			want: api.CodeForbidden, wantMsg: "is not in the"},
		{name: "2 of 3 with one signature",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, blobSize: 1000, signers: []signer{b},
			want: api.CodeForbidden, wantMsg: "1 valid signature(s) from distinct policy keys, 2 required"},
		{name: "2 of 3 with one key signing twice",
			policies: []TrustSet{policyBody(app, 2, a, b, c)}, blobSize: 1000, signers: []signer{a, a},
			want: api.CodeForbidden, wantMsg: "2 required"},
		{name: "signed by the wildcard's key when the app has its own policy",
			policies: []TrustSet{policyBody("*", 1, a), policyBody(app, 1, b)}, blobSize: 1000, signers: []signer{a},
			want: api.CodeForbidden},
		{name: "no policy covers the app",
			policies: []TrustSet{policyBody("api", 1, a)}, blobSize: 1000, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "no trust policy covers application web"},
		{name: "blob of another size",
			policies: []TrustSet{policyBody(app, 1, a)}, blobSize: 999, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "is 999 bytes, the manifest says 1000"},
		{name: "blob not uploaded",
			policies: []TrustSet{policyBody(app, 1, a)}, signers: []signer{a},
			want: api.CodeInvalid, wantMsg: "has not been uploaded"},
		{name: "manifest with an unknown field",
			policies: []TrustSet{policyBody(app, 1, a)}, blobSize: 1000, signers: []signer{a},
			manifest: []byte(`{"name":"web","version":"2.0.0","schema":1,"extra":1}`),
			want:     api.CodeInvalid},
		{name: "not a manifest",
			policies: []TrustSet{policyBody(app, 1, a)}, blobSize: 1000, signers: []signer{a},
			manifest: []byte("web 2.0.0"), want: api.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, p := range tt.policies {
				h.must(CmdTrustSet, p)
			}
			if tt.blobSize > 0 {
				h.must(CmdBlobRegister, BlobRegister{Digest: digest, Size: tt.blobSize, Holders: []string{"s1"}})
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

func TestTrustSet(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	tests := []struct {
		name string
		body TrustSet
		want api.Code
	}{
		{"valid", policyBody("web", 1, a, b), ""},
		{"wildcard", policyBody(artifacts.AnyApp, 2, a, b), ""},
		{"threshold above the key count", policyBody("web", 3, a, b), api.CodeInvalid},
		{"zero threshold", policyBody("web", 0, a), api.CodeInvalid},
		{"no keys", policyBody("web", 1), api.CodeInvalid},
		{"key listed twice", policyBody("web", 1, a, a), api.CodeInvalid},
		{"bad app name", policyBody("Web App", 1, a), api.CodeInvalid},
		{"key that does not parse", TrustSet{Policy: artifacts.Policy{App: "web", Keys: []string{"not-a-key"}, Threshold: 1}}, api.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.want != "" {
				h.noChange(CmdTrustSet, tt.body, tt.want)
				return
			}
			first := h.must(CmdTrustSet, tt.body)
			second := h.must(CmdTrustSet, tt.body) // replacing keeps the creation index
			ps, index := h.store.TrustPolicies(nil)
			if len(ps) != 1 || ps[0].App != tt.body.Policy.App || !slices.Equal(ps[0].Keys, tt.body.Policy.Keys) {
				t.Fatalf("policies: got %+v; want the one set", ps)
			}
			if ps[0].CreateIndex != first.Index || ps[0].ModifyIndex != second.Index || index != second.Index {
				t.Errorf("meta: got %+v and table index %d; want create %d, modify %d", ps[0].Meta, index, first.Index, second.Index)
			}
		})
	}
}

func TestBlobRegister(t *testing.T) {
	d := payloadDigest("web", "1.0.0")
	tests := []struct {
		name        string
		body        BlobRegister
		want        api.Code
		wantHolders []string
	}{
		{"new holder is merged in order", BlobRegister{Digest: d, Size: 10, Holders: []string{"s0", "s2"}}, "", []string{"s0", "s1", "s2"}},
		{"known holder again", BlobRegister{Digest: d, Size: 10, Holders: []string{"s1"}}, "", []string{"s1"}},
		{"other size", BlobRegister{Digest: d, Size: 11, Holders: []string{"s2"}}, api.CodeConflict, nil},
		{"upper-case digest", BlobRegister{Digest: strings.ToUpper(d), Size: 10}, api.CodeInvalid, nil},
		{"short digest", BlobRegister{Digest: d[:10], Size: 10}, api.CodeInvalid, nil},
		{"zero size", BlobRegister{Digest: d, Size: 0}, api.CodeInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(CmdBlobRegister, BlobRegister{Digest: d, Size: 10, Holders: []string{"s1"}})
			if tt.want != "" {
				h.noChange(CmdBlobRegister, tt.body, tt.want)
				return
			}
			h.must(CmdBlobRegister, tt.body)
			blob, _ := h.store.Blob(d)
			if !slices.Equal(blob.Holders, tt.wantHolders) || blob.Size != 10 {
				t.Errorf("blob: got %+v; want size 10, holders %v", blob, tt.wantHolders)
			}
		})
	}
}
