package state

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// trustPolicy returns app's current trust policy.
func (h *harness) trustPolicy(app string) *api.TrustPolicy {
	h.tb.Helper()
	ps, _ := h.store.TrustPolicies(nil)
	for _, p := range ps {
		if p.App == app {
			return p
		}
	}
	h.tb.Fatalf("application %s has no trust policy", app)
	return nil
}

// editPolicy returns b with its policy changed by edit, signatures kept.
func editPolicy(b TrustSet, edit func(p *artifacts.SignedPolicy)) TrustSet {
	edit(&b.Policy)
	return b
}

// TestTrustSet checks the first version of a policy: serial 1 and a valid
// shape, and that an admin cannot set it again once it exists.
func TestTrustSet(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	tests := []struct {
		name    string
		body    TrustSet
		want    api.Code
		wantMsg string // part of the error message
	}{
		{name: "valid", body: policyBody("web", 1, a, b)},
		{name: "wildcard", body: policyBody(artifacts.AnyApp, 2, a, b)},
		{name: "signatures on the first version are kept but not needed",
			body: rotationBody("web", 1, 1, []signer{a}, b)},
		{name: "serial 0", body: TrustSet{Policy: signedPolicy("web", 0, 1, a)},
			want: api.CodeInvalid, wantMsg: "the first one has serial 1, not 0"},
		{name: "serial 2 without a serial 1", body: rotationBody("web", 2, 1, []signer{a}, a),
			want: api.CodeInvalid, wantMsg: "the first one has serial 1, not 2"},
		{name: "threshold above the key count", body: policyBody("web", 3, a, b), want: api.CodeInvalid, wantMsg: "threshold"},
		{name: "zero threshold", body: policyBody("web", 0, a), want: api.CodeInvalid, wantMsg: "threshold"},
		{name: "no keys", body: policyBody("web", 1), want: api.CodeInvalid, wantMsg: "keys"},
		{name: "key listed twice", body: policyBody("web", 1, a, a), want: api.CodeInvalid, wantMsg: "listed twice"},
		{name: "bad app name", body: policyBody("Web App", 1, a), want: api.CodeInvalid, wantMsg: "app"},
		{name: "key that does not parse",
			body: TrustSet{Policy: artifacts.SignedPolicy{Policy: artifacts.Policy{App: "web", Keys: []string{"not-a-key"}, Threshold: 1}, Serial: 1}},
			want: api.CodeInvalid, wantMsg: "keys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.want != "" {
				res := h.noChange(CmdTrustSet, tt.body, tt.want)
				if res.Err != nil && !strings.Contains(res.Err.Message, tt.wantMsg) {
					t.Errorf("error: got %q; want it to contain %q", res.Err.Message, tt.wantMsg)
				}
				return
			}
			res := h.must(CmdTrustSet, tt.body)
			ps, index := h.store.TrustPolicies(nil)
			if len(ps) != 1 || !reflect.DeepEqual(ps[0].SignedPolicy, tt.body.Policy) {
				t.Fatalf("policies: got %+v; want the one set, %+v", ps, tt.body.Policy)
			}
			if ps[0].CreateIndex != res.Index || ps[0].ModifyIndex != res.Index || index != res.Index {
				t.Errorf("meta: got %+v and table index %d; want %d", ps[0].Meta, index, res.Index)
			}
			if got := h.store.TrustHistory(nil); !reflect.DeepEqual(got, []artifacts.SignedPolicy{tt.body.Policy}) {
				t.Errorf("history: got %+v; want the one version set", got)
			}
			// Once a policy exists, only its keys can change it: setting
			// serial 1 again, even the same policy, is refused.
			h.noChange(CmdTrustSet, tt.body, api.CodeForbidden)
		})
	}
}

// TestTrustRotation checks that a new version of a policy is accepted
// only with the next serial and at least the current threshold of
// signatures by the current keys over its document, and that a refused
// rotation changes nothing.
func TestTrustRotation(t *testing.T) {
	a, b, c := newSigner(t), newSigner(t), newSigner(t) // web, serial 1: 2 of 3
	e := newSigner(t)                                   // api, serial 1: 1 of 1
	d, f, stranger := newSigner(t), newSigner(t), newSigner(t)
	tests := []struct {
		name    string
		body    TrustSet
		signers []signer // enough signers of a release under the new version
		want    api.Code
		wantMsg string // part of the error message
	}{
		{name: "2 of 3 current keys", body: rotationBody("web", 2, 1, []signer{d}, a, c), signers: []signer{d}},
		{name: "all 3 current keys", body: rotationBody("web", 2, 1, []signer{d}, c, b, a), signers: []signer{d}},
		{name: "a stranger's signature besides", body: rotationBody("web", 2, 1, []signer{d}, stranger, b, c), signers: []signer{d}},
		{name: "signed by the new keys as well", body: rotationBody("web", 2, 2, []signer{d, f}, d, f, a, b), signers: []signer{f, d}},
		{name: "keeping a current key", body: rotationBody("web", 2, 2, []signer{a, d}, a, b), signers: []signer{a, d}},
		{name: "raising the threshold", body: rotationBody("web", 2, 3, []signer{a, b, c}, a, b), signers: []signer{a, b, c}},

		{name: "unsigned", body: rotationBody("web", 2, 1, []signer{d}),
			want: api.CodeForbidden, wantMsg: "0 valid signature(s) from distinct policy keys, 2 required"},
		{name: "below the current threshold", body: rotationBody("web", 2, 1, []signer{d}, a),
			want: api.CodeForbidden, wantMsg: "1 valid signature(s) from distinct policy keys, 2 required"},
		{name: "one current key signing twice", body: rotationBody("web", 2, 1, []signer{d}, b, b),
			want: api.CodeForbidden, wantMsg: "2 required"},
		{name: "signed by the new keys only", body: rotationBody("web", 2, 2, []signer{d, f}, d, f),
			want: api.CodeForbidden, wantMsg: "is not in the \"web\" policy"},
		{name: "new keys and one current key", body: rotationBody("web", 2, 2, []signer{d, f}, d, f, c),
			want: api.CodeForbidden, wantMsg: "1 valid signature(s)"},
		{name: "signed by another application's key", body: rotationBody("web", 2, 1, []signer{d}, e),
			want: api.CodeForbidden, wantMsg: "is not in the \"web\" policy"},
		{name: "changed after signing",
			body: editPolicy(rotationBody("web", 2, 1, []signer{d}, a, b), func(p *artifacts.SignedPolicy) { p.Keys = []string{stranger.pub} }),
			want: api.CodeForbidden, wantMsg: "0 valid signature(s)"},
		{name: "threshold lowered after signing",
			body: editPolicy(rotationBody("web", 2, 2, []signer{d, f}, a, b), func(p *artifacts.SignedPolicy) { p.Threshold = 1 }),
			want: api.CodeForbidden, wantMsg: "bad signature"},
		{name: "signatures over another serial",
			body: editPolicy(rotationBody("web", 3, 1, []signer{d}, a, b), func(p *artifacts.SignedPolicy) { p.Serial = 2 }),
			want: api.CodeForbidden, wantMsg: "bad signature"},
		{name: "serial jump", body: rotationBody("web", 3, 1, []signer{d}, a, b),
			want: api.CodeForbidden, wantMsg: "serial 3 cannot follow serial 1"},
		{name: "same serial again", body: rotationBody("web", 1, 1, []signer{d}, a, b),
			want: api.CodeForbidden, wantMsg: "serial 1 cannot follow serial 1"},
		{name: "serial going back", body: TrustSet{Policy: signedPolicy("web", 0, 1, d)},
			want: api.CodeForbidden, wantMsg: "serial 0 cannot follow serial 1"},
		{name: "invalid new version", body: rotationBody("web", 2, 2, []signer{d}, a, b),
			want: api.CodeForbidden, wantMsg: "threshold"},
		{name: "web's rotation relabelled for api",
			body: editPolicy(rotationBody("web", 2, 1, []signer{d}, a, b), func(p *artifacts.SignedPolicy) { p.App = "api" }),
			want: api.CodeForbidden, wantMsg: "is not in the \"api\" policy"},
		{name: "api's rotation signed by web's keys", body: rotationBody("api", 2, 1, []signer{d}, a, b),
			want: api.CodeForbidden, wantMsg: "is not in the \"api\" policy"},
		{name: "web's rotation relabelled for an application without a policy",
			body: editPolicy(rotationBody("web", 2, 1, []signer{d}, a, b), func(p *artifacts.SignedPolicy) { p.App = "db" }),
			want: api.CodeInvalid, wantMsg: "application db has no trust policy yet"},
		{name: "web's rotation relabelled for the wildcard",
			body: editPolicy(rotationBody("web", 2, 1, []signer{d}, a, b), func(p *artifacts.SignedPolicy) { p.App = artifacts.AnyApp }),
			want: api.CodeInvalid, wantMsg: "has no trust policy yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			web1 := policyBody("web", 2, a, b, c)
			api1 := policyBody("api", 1, e)
			first := h.must(CmdTrustSet, web1)
			h.must(CmdTrustSet, api1)
			if tt.want != "" {
				res := h.noChange(CmdTrustSet, tt.body, tt.want)
				if res.Err != nil && !strings.Contains(res.Err.Message, tt.wantMsg) {
					t.Errorf("error: got %q; want it to contain %q", res.Err.Message, tt.wantMsg)
				}
				return
			}
			res := h.must(CmdTrustSet, tt.body)
			web := h.trustPolicy("web")
			if !reflect.DeepEqual(web.SignedPolicy, tt.body.Policy) {
				t.Errorf("web's policy: got %+v; want %+v", web.SignedPolicy, tt.body.Policy)
			}
			if web.CreateIndex != first.Index || web.ModifyIndex != res.Index {
				t.Errorf("web's policy meta: got %+v; want created at %d, modified at %d", web.Meta, first.Index, res.Index)
			}
			if _, index := h.store.TrustPolicies(nil); index != res.Index {
				t.Errorf("trust table index: got %d; want %d", index, res.Index)
			}
			if got := h.trustPolicy("api"); !reflect.DeepEqual(got.SignedPolicy, api1.Policy) {
				t.Errorf("api's policy changed: got %+v; want %+v", got.SignedPolicy, api1.Policy)
			}
			want := []artifacts.SignedPolicy{api1.Policy, web1.Policy, tt.body.Policy}
			if got := h.store.TrustHistory(nil); !reflect.DeepEqual(got, want) {
				t.Errorf("history: got %+v; want %+v", got, want)
			}
			// Releases now need the new version's keys.
			m := manifest(t, "web", "2.0.0", 1000)
			h.must(CmdPayloadRegister, payloadBody("web", "2.0.0", 1000, "s1"))
			h.must(CmdReleaseCreate, ReleaseCreate{Manifest: m, Signatures: sigs(m, tt.signers...)})
		})
	}
}

// TestTrustRotationGovernsReleases checks that after a rotation the old
// keys neither sign releases nor the next rotation, and the new ones do.
func TestTrustRotationGovernsReleases(t *testing.T) {
	old, cur := newSigner(t), newSigner(t)
	h := newHarness(t)
	h.must(CmdTrustSet, policyBody("web", 1, old))
	h.must(CmdPayloadRegister, payloadBody("web", "1.0.0", 1000, "s1"))
	h.must(CmdPayloadRegister, payloadBody("web", "2.0.0", 1000, "s1"))
	m1, m2 := manifest(t, "web", "1.0.0", 1000), manifest(t, "web", "2.0.0", 1000)
	h.must(CmdReleaseCreate, ReleaseCreate{Manifest: m1, Signatures: sigs(m1, old)})

	h.must(CmdTrustSet, rotationBody("web", 2, 1, []signer{cur}, old))
	h.noChange(CmdReleaseCreate, ReleaseCreate{Manifest: m2, Signatures: sigs(m2, old)}, api.CodeForbidden)
	h.must(CmdReleaseCreate, ReleaseCreate{Manifest: m2, Signatures: sigs(m2, cur)})
	if _, ok := h.store.Release("web@1.0.0"); !ok {
		t.Errorf("the release signed under serial 1 is gone after the rotation")
	}

	h.noChange(CmdTrustSet, rotationBody("web", 3, 1, []signer{old}, old), api.CodeForbidden)
	h.must(CmdTrustSet, rotationBody("web", 3, 1, []signer{old}, cur))
	if p := h.trustPolicy("web"); p.Serial != 3 || !slices.Equal(p.Keys, []string{old.pub}) {
		t.Errorf("web's policy: got serial %d, keys %v; want serial 3 trusting the first key again", p.Serial, p.Keys)
	}
}

// TestTrustHistory checks that every version of every policy is kept, by
// application and then serial (in numeric order past 9), and that a
// blocking query on the history wakes on a new version only.
func TestTrustHistory(t *testing.T) {
	h := newHarness(t)
	keys := make([]signer, 12)
	for i := range keys {
		keys[i] = newSigner(t)
	}
	var web []artifacts.SignedPolicy
	set := func(b TrustSet) {
		t.Helper()
		h.must(CmdTrustSet, b)
		web = append(web, b.Policy)
	}
	set(policyBody("web", 1, keys[0]))
	any1 := policyBody(artifacts.AnyApp, 1, keys[0])
	h.must(CmdTrustSet, any1)
	for serial := 2; serial <= 11; serial++ {
		set(rotationBody("web", uint64(serial), 1, []signer{keys[serial-1]}, keys[serial-2]))
	}
	api1 := policyBody("api", 1, keys[11])
	h.must(CmdTrustSet, api1)
	h.noChange(CmdTrustSet, rotationBody("web", 12, 1, []signer{keys[11]}, keys[0]), api.CodeForbidden)

	ws := memdb.NewWatchSet()
	got := h.store.TrustHistory(ws)
	want := append([]artifacts.SignedPolicy{any1.Policy, api1.Policy}, web...)
	if !reflect.DeepEqual(got, want) {
		var serials []string
		for _, p := range got {
			serials = append(serials, fmt.Sprintf("%s/%d", p.App, p.Serial))
		}
		t.Fatalf("history: got %v; want */1, api/1, web/1 to web/11, each as set", serials)
	}
	if p := h.trustPolicy("web"); !reflect.DeepEqual(p.SignedPolicy, web[len(web)-1]) {
		t.Errorf("web's current policy: got serial %d; want the last one, serial %d", p.Serial, len(web))
	}

	h.addHosts(nil, "h1")
	if fires(ws, mustNotFire) {
		t.Errorf("the history's watch fired on an enrollment")
	}
	set(rotationBody("web", 12, 1, []signer{keys[0]}, keys[10]))
	if !fires(ws, mustFire) {
		t.Errorf("the history's watch did not fire on a rotation")
	}
	if got := h.store.TrustHistory(nil); len(got) != 14 || !reflect.DeepEqual(got[len(got)-1], web[len(web)-1]) {
		t.Errorf("history after the rotation: got %d versions ending with %+v; want 14 ending with web/12", len(got), got[len(got)-1])
	}
}
