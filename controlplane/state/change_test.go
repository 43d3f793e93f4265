package state

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

// wantErr checks that res failed with code and a message containing every
// one of parts.
func wantErr(t *testing.T, res Result, code api.Code, parts ...string) {
	t.Helper()
	if codeOf(res) != code {
		t.Fatalf("got %v; want a %s error", res.Err, code)
	}
	for _, p := range parts {
		if !strings.Contains(res.Err.Message, p) {
			t.Errorf("error %q does not contain %q", res.Err.Message, p)
		}
	}
}

func TestConflictRefusedOrQueued(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	first := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"site": "berlin"}, "100%", 0)
	body := RolloutCreate{Release: h.addRelease("web", "2.0.1"), Selector: map[string]string{"env": "prod"}, Plan: plan(t, "100%", 0)}

	res := h.noChange(CmdRolloutCreate, body, api.CodeConflict)
	wantErr(t, res, api.CodeConflict, "rollout "+first, "web@2.0.0", "running", "on h01, h03", "from 2030-03-04", "open-ended", "--queue")

	body.Queue = true
	queued := h.must(CmdRolloutCreate, body).ID
	if r := h.rollout(queued); r.State != api.RolloutQueued || len(r.After) != 1 || r.After[0] != first {
		t.Fatalf("queued rollout: state %s after %v; want queued after [%s]", r.State, r.After, first)
	}
	wantErr(t, h.noChange(CmdRolloutStart, RolloutStart{Rollout: queued}, api.CodeConflict), api.CodeConflict, "queued after "+first)
	h.must(CmdRolloutControl, RolloutControl{Rollout: first, Action: "abort"})
	h.must(CmdRolloutStart, RolloutStart{Rollout: queued})
	if r := h.rollout(queued); r.State != api.RolloutRunning {
		t.Errorf("after its predecessor ended: %s; want running", r.State)
	}

	// Changes in periods that do not overlap do not conflict.
	h2 := newHarness(t)
	fleet(h2)
	p1 := plan(t, "100%", 0)
	p1.Deadline = h2.now.Add(time.Hour)
	h2.createAndStart(RolloutCreate{Release: h2.addRelease("web", "2.0.0"), Plan: p1})
	p2 := plan(t, "100%", 0)
	p2.NotBefore = h2.now.Add(2 * time.Hour)
	h2.must(CmdRolloutCreate, RolloutCreate{Release: h2.addRelease("web", "2.0.1"), Plan: p2})
}

func TestFreeze(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	rel := h.addRelease("web", "2.0.0")
	// A rollout started before the freeze: its frozen hosts may not start.
	before := h.addRollout(rel, map[string]string{"env": "prod"}, "100%", 0)
	freeze := deploy.Freeze{Name: "black-friday", Start: h.now, End: h.now.Add(72 * time.Hour), Selector: map[string]string{"site": "berlin"}, Reason: "sales"}
	h.must(CmdFreezeSet, FreezeSet{Freeze: freeze})
	wantErr(t, h.noChange(CmdRolloutStep, h.stepBody(before, 0, deploy.Continue, "h02", "h01"), api.CodeConflict),
		api.CodeConflict, "host h01 cannot start: freeze black-friday is in force")
	h.start(before, 0, "h02", "h05")
	h.must(CmdRolloutControl, RolloutControl{Rollout: before, Action: "abort"})

	body := RolloutCreate{Release: h.addRelease("web", "2.0.1"), Selector: map[string]string{"env": "prod"}, Plan: plan(t, "100%", 0)}
	wantErr(t, h.noChange(CmdRolloutCreate, body, api.CodeConflict), api.CodeConflict, "freeze black-friday", "sales", "on h01, h03", "override")

	body.Override = "security fix CVE-2030-1"
	id := h.createAndStart(body)
	r := h.rollout(id)
	if len(r.Overrides) != 1 || r.Overrides[0].Reason != body.Override || r.Overrides[0].Gates[0] != GateFreeze {
		t.Errorf("overrides: %+v; want the freeze override", r.Overrides)
	}
	h.start(id, 0, "h01") // overridden
	if !hasAudit(h, id, AuditRolloutOverride, body.Override) {
		t.Errorf("the override is not in the audit trail")
	}

	h.must(CmdFreezeDelete, FreezeDelete{Name: "black-friday"})
	if fs, _ := h.store.Freezes(nil); len(fs) != 0 {
		t.Errorf("freezes after delete: %v", fs)
	}
	h.noChange(CmdFreezeSet, FreezeSet{Freeze: deploy.Freeze{Name: "x", Start: h.now, End: h.now}}, api.CodeInvalid)
}

func TestStartGates(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	bare := h.addReleaseWith("web", "2.0.0", func(m *artifacts.Manifest) { m.HealthChecks = nil })
	id := h.must(CmdRolloutCreate, RolloutCreate{Release: bare, Selector: map[string]string{"env": "dev"}, Plan: plan(t, "100%", 0)}).ID
	wantErr(t, h.noChange(CmdRolloutStart, RolloutStart{Rollout: id}, api.CodeConflict), api.CodeConflict,
		"cannot start", "gate health-checks failed", "declares no health check", "--override")
	h.must(CmdRolloutStart, RolloutStart{Rollout: id, Override: "smoke-tested by hand"})
	r := h.rollout(id)
	if r.State != api.RolloutRunning || len(r.Overrides) != 1 || r.Overrides[0].Gates[0] != GateHealthChecks {
		t.Errorf("after override: %s %+v; want running with the health-checks override", r.State, r.Overrides)
	}

	// Approvals: two needed for prod, from people other than the release's
	// and the rollout's creators.
	h.must(CmdSettingsSet, SettingsSet{Settings: api.Settings{Approvals: []api.ApprovalRule{{Selector: map[string]string{"env": "prod"}, Count: 2}}}})
	rel := h.addRelease("api", "1.0.0")
	h.actor = "carol"
	prod := h.must(CmdRolloutCreate, RolloutCreate{Release: rel, Selector: map[string]string{"env": "prod"}, Plan: plan(t, "100%", 0)}).ID
	h.must(CmdApprove, Approve{Release: rel})
	h.actor = "alice"
	h.must(CmdApprove, Approve{Release: rel})
	wantErr(t, h.noChange(CmdRolloutStart, RolloutStart{Rollout: prod}, api.CodeConflict), api.CodeConflict,
		"gate approvals failed: 1 of 2 approval(s) needed by rule env=prod")
	h.actor = "bob"
	h.must(CmdApprove, Approve{Release: rel})
	h.must(CmdRolloutStart, RolloutStart{Rollout: prod})
	for _, g := range h.rollout(prod).Gates {
		if !g.OK {
			t.Errorf("gate %s failed: %s", g.Name, g.Detail)
		}
	}
}

func TestStartGatesOfflineHostsAndBackout(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	h.must(CmdHostStatus, HostStatus{Down: []string{"h03"}})
	rel := h.addRelease("web", "2.0.0")
	rv, err := h.store.ReviewPlan(rel, map[string]string{"env": "prod"}, "", "", plan(t, "1,100%", 0), "tester", h.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := rv.Failed(); len(got) != 1 || got[0] != GateHosts {
		t.Fatalf("failed gates: %v; want [hosts]", got)
	}
	if g := rv.Gates[2]; !strings.Contains(g.Detail, "1 of 4 target host(s) offline: h03") {
		t.Errorf("hosts gate: %q", g.Detail)
	}
	if g := rv.Gates[6]; g.Name != GateBackout || !g.OK || !strings.Contains(g.Detail, "4 first install(s)") {
		t.Errorf("back-out gate: %+v", g)
	}
	if len(rv.Forecast.Waves) != 2 || rv.Forecast.End.IsZero() {
		t.Errorf("forecast: %+v", rv.Forecast)
	}
}

func TestHostTimeout(t *testing.T) {
	h, r := stepFixture(t)
	h.must(CmdAgentReport, reportBody("h1", r, deploy.Downloading, ""))
	step := h.stepBody(r, 0, deploy.Continue)
	step.TimedOut = []string{"h1"}
	wantErr(t, h.noChange(CmdRolloutStep, step, api.CodeConflict), api.CodeConflict, "host h1 has not timed out")

	step = h.stepBody(r, 0, deploy.Continue)
	step.TimedOut = []string{"h1"}
	h.applyAt(h.now.Add(deploy.DefaultHostTimeout), CmdRolloutStep, "", step)
	if d := h.deployment(r, "h1"); d.State != deploy.Failed || !strings.Contains(d.Reason, "no progress for 30m0s while downloading") {
		t.Errorf("h1: %s %q; want failed for no progress", d.State, d.Reason)
	}
}

func TestHostWaitingForWindowNeverTimesOut(t *testing.T) {
	h, r := stepFixture(t)
	h.must(CmdAgentReport, reportBody("h1", r, deploy.WaitingForWindow, ""))
	step := h.stepBody(r, 0, deploy.Continue)
	step.TimedOut = []string{"h1"}
	h.index++
	h.now = h.now.Add(48 * time.Hour)
	if res := h.store.Apply(h.index, entry(t, CmdRolloutStep, "", h.now, step)); codeOf(res) != api.CodeConflict {
		t.Errorf("timing out a host waiting for its window: %v; want a conflict", res.Err)
	}
}

func TestChangeBudget(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	h.must(CmdSettingsSet, SettingsSet{Settings: api.Settings{Budget: &api.Budget{Label: "site", Max: 1}}})
	r := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"env": "prod"}, "100%", 0)
	wantErr(t, h.noChange(CmdRolloutStep, h.stepBody(r, 0, deploy.Continue, "h01", "h03"), api.CodeConflict),
		api.CodeConflict, "host h03 cannot start: the change budget of site=berlin (1 at once) is used up")
	h.start(r, 0, "h01", "h02")
	held, budget := h.store.StartLimits(nil, h.rollout(r), h.store.RolloutHosts(nil, h.rollout(r)), h.now)
	if budget == nil || budget.InFlight["berlin"] != 1 || budget.InFlight["paris"] != 1 || budget.Domains[2] != "berlin" {
		t.Errorf("budget state: %+v", budget)
	}
	if held[2] {
		t.Errorf("h03 held; only the budget keeps it")
	}
}

func TestPromote(t *testing.T) {
	h := newHarness(t)
	h.addHosts(map[string]string{"env": "prod"}, "h1", "h2", "h3")
	p := plan(t, "1,100%", 0)
	p.ManualPromote = true
	r := h.createAndStart(RolloutCreate{Release: h.addRelease("web", "2.0.0"), Plan: p})
	h.start(r, 0, "h1")
	wantErr(t, h.noChange(CmdRolloutControl, RolloutControl{Rollout: r, Action: "promote"}, api.CodeConflict),
		api.CodeConflict, "wave 1 has hosts still in progress")
	report(h, r, deploy.Succeeded, "h1")
	h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "promote", Reason: "canary looks good"})
	if got := h.rollout(r).Promoted; got != 1 {
		t.Errorf("promoted: %d; want 1", got)
	}
	h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Continue, "h2", "h3"))
	wantErr(t, h.noChange(CmdRolloutControl, RolloutControl{Rollout: r, Action: "promote"}, api.CodeConflict), api.CodeConflict, "last wave")
}

// TestRollbackInWaves drives a rollout that trips its threshold with
// on_failure rollback: it waits for the host in flight, then a rollback
// rollout takes the updated hosts back, each to the version it ran.
func TestRollbackInWaves(t *testing.T) {
	h := newHarness(t)
	h.addHosts(map[string]string{"env": "prod"}, "h1", "h2", "h3", "h4")
	v1 := h.addRollout(h.addRelease("web", "1.0.0"), nil, "100%", 0)
	h.start(v1, 0, "h1", "h2", "h3", "h4")
	for _, host := range []string{"h1", "h2", "h3", "h4"} {
		h.must(CmdAgentReport, reportBody(host, v1, deploy.Succeeded, "1.0.0"))
	}
	h.must(CmdRolloutStep, h.stepBody(v1, 0, deploy.Complete))

	p := plan(t, "1,100%", 0)
	p.OnFailure = deploy.OnFailureRollback
	r := h.createAndStart(RolloutCreate{Release: h.addRelease("web", "2.0.0"), Plan: p})
	h.start(r, 0, "h1")
	if d := h.deployment(r, "h1"); d.From != "1.0.0" {
		t.Errorf("h1 instructed from %q; want 1.0.0", d.From)
	}
	h.must(CmdAgentReport, reportBody("h1", r, deploy.Succeeded, "2.0.0"))
	h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Continue, "h2", "h3"))
	h.must(CmdAgentReport, reportBody("h2", r, deploy.Reverted, "1.0.0"))
	h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Rollback)) // threshold tripped, h3 in flight
	ro := h.rollout(r)
	if ro.State != api.RolloutRollingBack || ro.RollbackID != "" {
		t.Fatalf("rollout: %s, rollback %q; want rolling-back, waiting for h3", ro.State, ro.RollbackID)
	}
	if d := h.deployment(r, "h4"); d.State != deploy.Skipped {
		t.Errorf("h4: %s; want skipped", d.State)
	}
	h.noChange(CmdRolloutStep, h.stepBody(r, 1, deploy.Continue, "h4"), api.CodeConflict)
	h.must(CmdAgentReport, reportBody("h3", r, deploy.Succeeded, "2.0.0"))
	h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Rollback))

	ro = h.rollout(r)
	rb := h.rollout(ro.RollbackID)
	if rb.Kind != api.KindRollback || rb.RollbackOf != r || rb.State != api.RolloutRunning || strings.Join(rb.Targets, ",") != "h1,h3" || len(rb.Sizes) != 2 {
		t.Fatalf("rollback rollout: %+v; want running over h1,h3 in 2 waves", rb)
	}
	if d := h.deployment(rb.ID, "h1"); d.Release != "web@1.0.0" || d.Version != "1.0.0" {
		t.Errorf("rollback of h1 installs %s; want web@1.0.0", d.Release)
	}
	if desired := h.store.DesiredFor(nil, "h1"); len(desired.Deployments) != 0 {
		t.Errorf("h1 instructed before the rollback starts it: %+v", desired.Deployments)
	}
	h.start(rb.ID, 0, "h1")
	h.must(CmdAgentReport, reportBody("h1", rb.ID, deploy.Succeeded, "1.0.0"))
	h.must(CmdRolloutStep, h.stepBody(rb.ID, 1, deploy.Continue, "h3"))
	h.must(CmdAgentReport, reportBody("h3", rb.ID, deploy.Succeeded, "1.0.0"))
	h.must(CmdRolloutStep, h.stepBody(rb.ID, 1, deploy.Complete))
	if got := h.rollout(r).State; got != api.RolloutRolledBack {
		t.Errorf("original rollout: %s; want rolled-back", got)
	}
	for _, host := range []string{"h1", "h2", "h3", "h4"} {
		if v := h.host(host).Releases["web"]; v != "1.0.0" {
			t.Errorf("%s runs %s; want 1.0.0", host, v)
		}
	}
	for _, a := range []string{AuditRollbackStart, AuditRolledBack, AuditHostsReverted} {
		if !hasAudit(h, r, a, "") {
			t.Errorf("no %s entry for %s", a, r)
		}
	}
}

func TestOperatorRollbackOfCompletedRollout(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1", "h2")
	v1 := h.addRollout(h.addRelease("web", "1.0.0"), nil, "100%", 0)
	h.start(v1, 0, "h1", "h2")
	for _, host := range []string{"h1", "h2"} {
		h.must(CmdAgentReport, reportBody(host, v1, deploy.Succeeded, "1.0.0"))
	}
	h.must(CmdRolloutStep, h.stepBody(v1, 0, deploy.Complete))
	// First installs have nothing to go back to.
	h.must(CmdRolloutControl, RolloutControl{Rollout: v1, Action: "rollback"})
	if r := h.rollout(v1); r.State != api.RolloutRolledBack || !strings.Contains(r.Reason, "first install") {
		t.Errorf("rollback of first installs: %s %q", r.State, r.Reason)
	}

	pending := h.must(CmdRolloutCreate, RolloutCreate{Release: h.addRelease("web", "2.0.0"), Plan: plan(t, "100%", 0)}).ID
	wantErr(t, h.noChange(CmdRolloutControl, RolloutControl{Rollout: pending, Action: "rollback"}, api.CodeConflict), api.CodeConflict, "never started")
}

func hasAudit(h *harness, subject, action, detail string) bool {
	for _, e := range h.store.AuditFor(nil, subject) {
		if e.Action == action && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

func TestAuditChainDetectsTampering(t *testing.T) {
	h, r := stepFixture(t)
	h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "pause", Reason: "lunch"})
	h.must(CmdFreezeSet, FreezeSet{Freeze: deploy.Freeze{Name: "f", Start: h.now, End: h.now.Add(time.Hour)}})
	entries, _ := h.store.Audit(nil, 0, 0)
	if len(entries) < 5 {
		t.Fatalf("%d audit entries; want every decision", len(entries))
	}
	if err := api.VerifyAudit(entries); err != nil {
		t.Fatalf("untouched chain: %v", err)
	}
	if page, _ := h.store.Audit(nil, 2, 2); len(page) != 2 || page[0].Seq != 3 {
		t.Errorf("page after 2: %+v", page)
	}

	snap := persist(t, h.store)
	tamper := func(edit func(lines [][]byte) [][]byte) error {
		lines := edit(bytes.Split(bytes.TrimSpace(snap), []byte("\n")))
		s := NewStore()
		if err := s.Restore(bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))); err != nil {
			t.Fatalf("restore: %v", err)
		}
		got, _ := s.Audit(nil, 0, 0)
		return api.VerifyAudit(got)
	}
	altered := tamper(func(lines [][]byte) [][]byte {
		for i, l := range lines {
			if bytes.Contains(l, []byte(`"detail":"lunch"`)) {
				lines[i] = bytes.Replace(l, []byte("lunch"), []byte("lunch!"), 1)
			}
		}
		return lines
	})
	if altered == nil || !strings.Contains(altered.Error(), "was altered") {
		t.Errorf("altered entry: %v; want detected", altered)
	}
	missing := tamper(func(lines [][]byte) [][]byte {
		for i, l := range lines {
			if bytes.Contains(l, []byte(`"action":"rollout.created"`)) {
				return append(lines[:i:i], lines[i+1:]...)
			}
		}
		t.Fatal("no rollout.created entry")
		return nil
	})
	if missing == nil || !strings.Contains(missing.Error(), "missing") {
		t.Errorf("missing entry: %v; want detected", missing)
	}
}

func TestRolloutTargetsByFacts(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	for host, sys := range map[string]inventory.System{
		"h01": {HostName: "h01", OperatingSystem: inventory.OperatingSystem{Name: "debian", Version: "12.7"}, MemorySummary: inventory.MemorySummary{TotalSystemMemoryGiB: 16}},
		"h02": {HostName: "h02", OperatingSystem: inventory.OperatingSystem{Name: "debian", Version: "11.9"}, MemorySummary: inventory.MemorySummary{TotalSystemMemoryGiB: 4}},
		"h03": {HostName: "h03", OperatingSystem: inventory.OperatingSystem{Name: "alpine", Version: "3.20"}, MemorySummary: inventory.MemorySummary{TotalSystemMemoryGiB: 32}},
	} {
		b, err := json.Marshal(sys)
		if err != nil {
			t.Fatal(err)
		}
		h.must(CmdInventory, Inventory{Host: host, System: b, Digest: sha(string(b))})
	}
	rel := h.addRelease("web", "2.0.0")
	id := h.must(CmdRolloutCreate, RolloutCreate{Release: rel, Selector: map[string]string{"env": "prod"}, Where: "os=debian,memory_gib>=8", Plan: plan(t, "100%", 0)}).ID
	if got := h.rollout(id).Targets; !slices.Equal(got, []string{"h01"}) {
		t.Errorf("targets %v; want [h01]", got)
	}
	h.must(CmdRolloutControl, RolloutControl{Rollout: id, Action: "abort"})
	id = h.must(CmdRolloutCreate, RolloutCreate{Release: rel, Where: "os_version>=11.9,os=debian", Plan: plan(t, "100%", 0)}).ID
	if got := h.rollout(id).Targets; !slices.Equal(got, []string{"h01", "h02"}) {
		t.Errorf("targets %v; want [h01 h02]", got)
	}
	wantErr(t, h.noChange(CmdRolloutCreate, RolloutCreate{Release: rel, Where: "os=windows", Plan: plan(t, "100%", 0)}, api.CodeInvalid), api.CodeInvalid, "where os=windows")
	wantErr(t, h.noChange(CmdRolloutCreate, RolloutCreate{Release: rel, Where: "memory_gib>>8", Plan: plan(t, "100%", 0)}, api.CodeInvalid), api.CodeInvalid, "unknown operator")
}
