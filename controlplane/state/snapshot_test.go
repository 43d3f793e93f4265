package state

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// history fills a store with some of everything: tokens, hosts with
// inventory and releases, payloads, trust policies (one rotated), releases
// (one with target labels), a completed, a
// paused and a running rollout, and remembered idempotency keys.
func history(h *harness) {
	h.tb.Helper()
	h.addHosts(map[string]string{"env": "prod", "site": "berlin"}, "h1", "h2")
	h.addHosts(map[string]string{"env": "dev"}, "h3")
	h.must(CmdTokenCreate, tokenBody("spare", 5, map[string]string{"env": "prod"}, h.now.Add(time.Hour)))
	h.must(CmdInventory, Inventory{Host: "h1", System: []byte(`{"HostName":"h1","OperatingSystem":{"Kernel":"6.1"}}`), Digest: "d1"})
	h.must(CmdInventory, Inventory{Host: "h1", System: []byte(`{"HostName":"h1","OperatingSystem":{"Kernel":"6.2"}}`), Digest: "d2"})
	web1 := h.addRelease("web", "1.0.0")
	r1 := h.addRollout(web1, map[string]string{"env": "prod"}, "1,100%", 1)
	h.start(r1, 0, "h1")
	h.must(CmdAgentReport, reportBody("h1", r1, deploy.Succeeded, "1.0.0"))
	h.must(CmdRolloutStep, h.stepBody(r1, 1, deploy.Continue, "h2"))
	h.must(CmdAgentReport, reportBody("h2", r1, deploy.Reverted, "0.9.0"))
	h.must(CmdRolloutStep, h.stepBody(r1, 1, deploy.Complete))
	web2 := h.addRelease("web", "2.0.0")
	r2 := h.applyKey(CmdRolloutCreate, "create-r2", RolloutCreate{Release: web2, Selector: map[string]string{"env": "prod"}, Plan: plan(h.tb, "1,100%", 0)}).ID
	h.must(CmdRolloutStart, RolloutStart{Rollout: r2, Override: "h2 runs a version drover did not install"})
	h.start(r2, 0, "h1")
	h.must(CmdAgentReport, reportBody("h1", r2, deploy.Downloading, "1.0.0"))
	h.addRollout(h.addRelease("api", "3.1.0"), map[string]string{"env": "dev"}, "100%", 0)
	h.applyKey(CmdEnroll, "enroll-h9", enrollBody("nosuch", "h9")) // refused, remembered
	h.must(CmdTrustSet, policyBody("api", 1, *h.signer))
	h.must(CmdTrustSet, rotationBody("api", 2, 1, []signer{newSigner(h.tb)}, *h.signer))
	h.must(CmdPayloadRegister, payloadBody("web", "2.0.0", 1000, "s2", "s3"))
	h.addReleaseWith("db", "1.0.0", func(m *artifacts.Manifest) {
		m.Targets = &artifacts.Targets{Labels: map[string]string{"site": "berlin"}}
	})
	h.must(CmdRolloutControl, RolloutControl{Rollout: r2, Action: "pause", Reason: "lunch"})
	h.must(CmdEnvSet, EnvSet{Env: api.Environment{Name: "prod", Where: "env=prod"}})
	h.must(CmdEnvSet, EnvSet{Env: api.Environment{Name: "dev", Where: "env=dev"}})
	h.must(CmdLifecycleSet, LifecycleSet{Lifecycle: api.Lifecycle{Name: "default", Apps: []string{"*"}, Stages: []api.Stage{{Env: "dev"}, {Env: "prod"}}}})
}

// reads is everything the store's reads return, for comparing two stores.
func reads(s *Store) map[string]any {
	out := map[string]any{}
	hosts, hi := s.Hosts(nil)
	out["hosts"], out["hosts index"] = hosts, hi
	out["environments"], _ = s.Environments(nil)
	out["lifecycles"], _ = s.Lifecycles(nil)
	for _, h := range hosts {
		out["history "+h.ID], _ = s.HostHistory(nil, h.ID)
	}
	releases, ri := s.Releases(nil)
	out["releases"], out["releases index"] = releases, ri
	rollouts, roi := s.Rollouts(nil)
	out["rollouts"], out["rollouts index"] = rollouts, roi
	out["running"] = s.RunningRollouts(nil)
	trust, ti := s.TrustPolicies(nil)
	out["trust"], out["trust index"] = trust, ti
	for _, r := range rollouts {
		out["rollout "+r.ID], _ = s.Rollout(nil, r.ID)
		out["rollout hosts "+r.ID] = s.RolloutHosts(nil, r)
	}
	for _, h := range hosts {
		out["host "+h.ID], _ = s.Host(nil, h.ID)
		out["host deployments "+h.ID] = s.HostDeployments(nil, h.ID)
		out["desired "+h.ID] = s.DesiredFor(nil, h.ID)
		out["token "+h.TokenID], _ = s.Token(h.TokenID)
	}
	out["token spare"], _ = s.Token("spare")
	for _, r := range releases {
		out["release "+r.ID], _ = s.Release(r.ID)
		out["payload "+r.Payload], _ = s.Payload(r.Payload)
	}
	payloads, pi := s.Payloads(nil)
	out["payloads"], out["payloads index"] = payloads, pi
	out["trust history"] = s.TrustHistory(nil)
	for _, t := range snapshotTables {
		out["index "+t] = s.TableIndex(nil, t)
	}
	return out
}

func TestSnapshotRestore(t *testing.T) {
	a := newHarness(t)
	history(a)
	snap := persist(t, a.store)

	b := newHarness(t)
	b.addHosts(nil, "stale") // replaced whole by the restore
	if err := b.store.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if _, ok := b.store.Host(nil, "stale"); ok {
		t.Errorf("host of the replaced state survived the restore")
	}
	ra, rb := reads(a.store), reads(b.store)
	for k, va := range ra {
		if vb := rb[k]; !reflect.DeepEqual(va, vb) {
			t.Errorf("%s: restored %+v; want %+v", k, vb, va)
		}
	}
	if got := persist(t, b.store); !bytes.Equal(got, snap) {
		t.Errorf("snapshot of the restored store differs:\n%s", diffLines(snap, got))
	}

	// The same entries at the same indexes give the same state on both.
	r2 := findRollout(t, a.store, api.RolloutPaused)
	further := []struct {
		typ  CmdType
		key  string
		body any
		want api.Code
	}{
		{CmdRolloutControl, "", RolloutControl{Rollout: r2, Action: "resume"}, ""},
		{CmdAgentReport, "", reportBody("h1", r2, deploy.Succeeded, "2.0.0"), ""}, // finishes the first wave
		{CmdRolloutStep, "", RolloutStep{Rollout: r2, ExpectIndex: a.index + 1, Wave: 1, Outcome: deploy.Continue, Start: []string{"h2"}}, ""},
		{CmdAgentReport, "", reportBody("h2", r2, deploy.Staged, "0.9.0"), ""},
		{CmdAgentReport, "", reportBody("h1", r2, deploy.Downloading, "1.0.0"), ""}, // late: changes nothing
		{CmdEnroll, "", enrollBody("spare", "h4"), ""},
		{CmdRolloutCreate, "create-r2", RolloutCreate{Release: "web@2.0.0", Plan: plan(t, "100%", 0)}, ""}, // remembered
		{CmdEnroll, "enroll-h9", enrollBody("spare", "h9"), api.CodeForbidden},                             // remembered refusal
		{CmdInventory, "", Inventory{Host: "h4", System: []byte(`{"os":"bsd"}`), Digest: "d4"}, ""},
		{CmdTrustSet, "", rotationBody(artifacts.AnyApp, 2, 1, []signer{newSigner(t)}, *a.signer), ""},
		{CmdTrustSet, "", rotationBody(artifacts.AnyApp, 3, 1, []signer{newSigner(t)}, *a.signer), api.CodeForbidden}, // old key
		{CmdPayloadRegister, "", payloadBody("web", "2.0.0", 1000, "s1"), ""},
		{CmdPayloadRegister, "", payloadBody("web", "2.0.0", 999, "s4"), api.CodeConflict},
		{CmdRolloutStep, "", RolloutStep{Rollout: r2, ExpectIndex: 1, Wave: 1, Outcome: deploy.Continue}, api.CodeConflict}, // stale
	}
	for i, f := range further {
		index := a.index + 1 + uint64(i)
		data := entry(t, f.typ, f.key, a.now.Add(time.Duration(i+1)*time.Second), f.body)
		resA, resB := a.store.Apply(index, data), b.store.Apply(index, data)
		if got := codeOf(resA); got != f.want {
			t.Errorf("entry %d (%s): got code %q (%v); want %q", index, f.typ, got, resA.Err, f.want)
		}
		if !reflect.DeepEqual(resA, resB) {
			t.Errorf("entry %d (%s): result on the restored store %+v; want %+v", index, f.typ, resB, resA)
		}
	}
	sa, sb := persist(t, a.store), persist(t, b.store)
	if !bytes.Equal(sa, sb) {
		t.Errorf("snapshots differ after the same entries:\n%s", diffLines(sa, sb))
	}
	if bytes.Equal(sa, snap) {
		t.Errorf("the further entries changed nothing; the check proves nothing")
	}
}

func findRollout(t *testing.T, s *Store, state string) string {
	t.Helper()
	all, _ := s.Rollouts(nil)
	for _, r := range all {
		if r.State == state {
			return r.ID
		}
	}
	t.Fatalf("no %s rollout", state)
	return ""
}

// TestSnapshotIsPointInTime checks that a snapshot taken before further
// entries writes the state as it was when taken.
func TestSnapshotIsPointInTime(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1")
	want := persist(t, h.store)
	snap := h.store.Snapshot()
	h.addHosts(nil, "h2", "h3")

	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("snapshot shows later entries:\n%s", diffLines(want, buf.Bytes()))
	}
}

// TestRestoreWakesWatchers checks that blocking queries on the replaced
// state are woken, even when the restored data is the same.
func TestRestoreWakesWatchers(t *testing.T) {
	reads := []struct {
		name string
		read func(s *Store, ws memdb.WatchSet)
	}{
		{"host", func(s *Store, ws memdb.WatchSet) { s.Host(ws, "h1") }},
		{"missing host", func(s *Store, ws memdb.WatchSet) { s.Host(ws, "nosuch") }},
		{"desired state", func(s *Store, ws memdb.WatchSet) { s.DesiredFor(ws, "h1") }},
		{"running rollouts", func(s *Store, ws memdb.WatchSet) { s.RunningRollouts(ws) }},
		{"table index", func(s *Store, ws memdb.WatchSet) { s.TableIndex(ws, tabHosts) }},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			history(h)
			snap := persist(t, h.store)
			for round := 1; round <= 2; round++ { // the second restore wakes watchers of the first one's state
				ws := memdb.NewWatchSet()
				tt.read(h.store, ws)
				if err := h.store.Restore(bytes.NewReader(snap)); err != nil {
					t.Fatalf("Restore: %v", err)
				}
				if !fires(ws, mustFire) {
					t.Errorf("restore %d: watch set filled before it did not fire", round)
				}
			}
			ws := memdb.NewWatchSet()
			tt.read(h.store, ws)
			if fires(ws, mustNotFire) {
				t.Errorf("watch set filled after the last restore fired with no change")
			}
		})
	}
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	tests := []struct {
		name string
		snap string
		want string // part of the error
	}{
		{"empty", "", "header"},
		{"not JSON", "drover\n", "header"},
		{"other version", `{"drover_snapshot":2}` + "\n", "version 2"},
		{"no version", `{"other":1}` + "\n", "version 0"},
		{"unknown table", `{"drover_snapshot":1}` + "\n" + `{"t":"widgets","v":{}}` + "\n", `unknown table "widgets"`},
		{"bad object", `{"drover_snapshot":1}` + "\n" + `{"t":"hosts","v":{"id":7}}` + "\n", "cannot decode hosts object"},
		{"truncated record", `{"drover_snapshot":1}` + "\n" + `{"t":"hosts","v":{"id":"h`, "cannot read snapshot record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addHosts(nil, "h1")
			before := persist(t, h.store)
			ws := memdb.NewWatchSet()
			h.store.Host(ws, "h1")
			err := h.store.Restore(strings.NewReader(tt.snap))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore: got error %v; want one containing %q", err, tt.want)
			}
			if after := persist(t, h.store); !bytes.Equal(before, after) {
				t.Errorf("failed restore changed the state:\n%s", diffLines(before, after))
			}
			if fires(ws, mustNotFire) {
				t.Errorf("failed restore woke watchers")
			}
		})
	}
}
