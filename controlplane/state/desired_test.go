package state

import (
	"reflect"
	"slices"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// desiredFixture is a rollout over h1 and h2 in one wave, both instructed.
func desiredFixture(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.addHosts(map[string]string{"env": "prod"}, "h1", "h2")
	h.addHosts(map[string]string{"env": "dev"}, "h3")
	r := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"env": "prod"}, "100%", 0)
	h.start(r, 0, "h1", "h2")
	return h, r
}

// TestDesiredForInFlight checks that only deployments in flight are listed.
func TestDesiredForInFlight(t *testing.T) {
	tests := []struct {
		state deploy.HostState // h1's, reached by reports
		want  bool
	}{
		{deploy.Instructed, true},
		{deploy.Downloading, true},
		{deploy.Staged, true},
		{deploy.WaitingForWindow, true},
		{deploy.Activating, true},
		{deploy.Probation, true},
		{deploy.Succeeded, false},
		{deploy.Reverted, false},
		{deploy.Failed, false},
		{deploy.Skipped, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			h, r := desiredFixture(t)
			if tt.state != deploy.Instructed {
				h.must(CmdAgentReport, reportBody("h1", r, tt.state, ""))
			}
			d := h.store.DesiredFor(nil, "h1")
			if got := len(d.Deployments) == 1; got != tt.want {
				t.Fatalf("h1 in %s: got %d deployments listed; want listed: %v", tt.state, len(d.Deployments), tt.want)
			}
			if tt.want && (d.Deployments[0].Host != "h1" || d.Deployments[0].Rollout != r || d.Deployments[0].State != tt.state) {
				t.Errorf("deployment: got %+v; want h1 in %s, %s", d.Deployments[0], r, tt.state)
			}
			if len(d.Trust) != 1 {
				t.Errorf("trust policies: got %d; want 1", len(d.Trust))
			}
		})
	}

	t.Run("pending and unknown hosts", func(t *testing.T) {
		h := newHarness(t)
		h.addHosts(nil, "h1", "h2")
		h.addRollout(h.addRelease("web", "2.0.0"), nil, "1,100%", 0) // nothing started
		for _, host := range []string{"h1", "h2", "h3", "nosuch"} {
			if d := h.store.DesiredFor(nil, host); len(d.Deployments) != 0 {
				t.Errorf("%s: got %d deployments; want none", host, len(d.Deployments))
			}
		}
	})
}

// TestDesiredForIndexAndWatch checks that h1's desired state changes index,
// and wakes a blocking query on it, exactly when h1's deployment or a trust
// policy changes.
func TestDesiredForIndexAndWatch(t *testing.T) {
	tests := []struct {
		name   string
		change func(h *harness, r string)
		want   bool // whether h1's desired state changes
	}{
		{"h1 reports progress", func(h *harness, r string) {
			h.must(CmdAgentReport, reportBody("h1", r, deploy.Downloading, "1.0.0"))
		}, true},
		{"h1 succeeds", func(h *harness, r string) {
			h.must(CmdAgentReport, reportBody("h1", r, deploy.Succeeded, "2.0.0"))
		}, true},
		{"a trust policy is set", func(h *harness, r string) {
			h.must(CmdTrustSet, policyBody("web", 1, *h.signer))
		}, true},
		{"the trust policy is rotated", func(h *harness, r string) {
			h.must(CmdTrustSet, rotationBody(artifacts.AnyApp, 2, 1, []signer{newSigner(h.tb)}, *h.signer))
		}, true},
		{"h2 reports progress", func(h *harness, r string) {
			h.must(CmdAgentReport, reportBody("h2", r, deploy.Downloading, "1.0.0"))
		}, false},
		{"h2 succeeds", func(h *harness, r string) {
			h.must(CmdAgentReport, reportBody("h2", r, deploy.Succeeded, "2.0.0"))
		}, false},
		{"another host enrolls", func(h *harness, r string) { h.addHosts(nil, "h4") }, false},
		{"h2 reports its inventory", func(h *harness, r string) {
			h.must(CmdInventory, Inventory{Host: "h2", System: []byte(`{}`), Digest: "d"})
		}, false},
		{"a release is created", func(h *harness, r string) { h.addRelease("api", "1.0.0") }, false},
		{"a payload is registered", func(h *harness, r string) {
			h.must(CmdPayloadRegister, payloadBody("api", "1.0.0", 1000, "s1"))
		}, false},
		{"a payload gets another holder", func(h *harness, r string) {
			h.must(CmdPayloadRegister, payloadBody("web", "2.0.0", 1000, "s2"))
		}, false},
		{"a refused rotation", func(h *harness, r string) {
			h.noChange(CmdTrustSet, rotationBody(artifacts.AnyApp, 2, 1, []signer{newSigner(h.tb)}), api.CodeForbidden)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, r := desiredFixture(t)
			ws := memdb.NewWatchSet()
			before := h.store.DesiredFor(ws, "h1")
			if before.Index == 0 {
				t.Fatalf("index before: got 0; want the index of the last change")
			}
			tt.change(h, r)
			after := h.store.DesiredFor(nil, "h1")

			wantIndex := before.Index
			if tt.want {
				wantIndex = h.index
			}
			if after.Index != wantIndex {
				t.Errorf("index: got %d; want %d (before %d, change at %d)", after.Index, wantIndex, before.Index, h.index)
			}
			wait := mustNotFire
			if tt.want {
				wait = mustFire
			}
			if got := fires(ws, wait); got != tt.want {
				t.Errorf("watch on h1's desired state fired: got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestDesiredForTrustRotation checks that a host's desired state carries
// the current version of each trust policy, and moves to the new one when
// a policy is rotated.
func TestDesiredForTrustRotation(t *testing.T) {
	h, _ := desiredFixture(t)
	first := h.store.DesiredFor(nil, "h1")
	if len(first.Trust) != 1 || first.Trust[0].App != artifacts.AnyApp || first.Trust[0].Serial != 1 ||
		!slices.Equal(first.Trust[0].Keys, []string{h.signer.pub}) {
		t.Fatalf("trust before the rotation: got %+v; want the harness's policy, serial 1", first.Trust)
	}
	next := newSigner(t)
	rotation := rotationBody(artifacts.AnyApp, 2, 1, []signer{next}, *h.signer)
	res := h.must(CmdTrustSet, rotation)
	for _, host := range []string{"h1", "h3", "nosuch"} { // in the rollout, not in it, unknown
		d := h.store.DesiredFor(nil, host)
		if len(d.Trust) != 1 || !reflect.DeepEqual(d.Trust[0].SignedPolicy, rotation.Policy) {
			t.Errorf("%s: trust after the rotation: got %+v; want serial 2 with its signatures", host, d.Trust)
		}
		if d.Index != res.Index {
			t.Errorf("%s: index: got %d; want %d, the rotation's", host, d.Index, res.Index)
		}
	}
	// What was read before is not changed under the reader.
	if first.Trust[0].Serial != 1 || first.Index >= res.Index {
		t.Errorf("desired state read before the rotation changed: %+v", first)
	}
}

// TestDesiredForOtherHostNotWoken checks one host's change among many does
// not wake the others' blocking queries.
func TestDesiredForOtherHostNotWoken(t *testing.T) {
	h := newHarness(t)
	hosts := []string{"a1", "a10", "a2", "b1", "h1", "h10", "h11", "h2"}
	h.addHosts(nil, hosts...)
	r := h.addRollout(h.addRelease("web", "2.0.0"), nil, "100%", 0)
	h.start(r, 0, hosts...)
	watches := map[string]memdb.WatchSet{}
	for _, host := range hosts {
		watches[host] = memdb.NewWatchSet()
		h.store.DesiredFor(watches[host], host)
	}
	h.must(CmdAgentReport, reportBody("h1", r, deploy.Downloading, ""))
	if !fires(watches["h1"], mustFire) {
		t.Errorf("h1's watch did not fire")
	}
	others := memdb.NewWatchSet() // every other host's watch, checked at once
	for _, host := range hosts {
		if host != "h1" {
			for ch := range watches[host] {
				others.Add(ch)
			}
		}
	}
	if !fires(others, mustNotFire) {
		return
	}
	for _, host := range hosts {
		if host != "h1" && fires(watches[host], mustNotFire) {
			t.Errorf("%s's watch fired on a change of h1", host)
		}
	}
}
