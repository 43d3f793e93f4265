package state

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// lifecycleFixture: hosts t1 (test), s1 and s2 (staging), p1 (prod); a
// lifecycle for every application test → staging (soak 24h, a smoke job on
// s2) → prod; and release web@1.0.0.
func lifecycleFixture(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.addHosts(map[string]string{"env": "test"}, "t1")
	h.addHosts(map[string]string{"env": "staging"}, "s1")
	h.addHosts(map[string]string{"env": "staging", "smoke": "yes"}, "s2")
	h.addHosts(map[string]string{"env": "prod"}, "p1")
	for _, e := range []string{"test", "staging", "prod"} {
		h.must(CmdEnvSet, EnvSet{Env: api.Environment{Name: e, Where: "env=" + e}})
	}
	h.must(CmdLifecycleSet, LifecycleSet{Lifecycle: api.Lifecycle{Name: "default", Apps: []string{"*"}, Stages: []api.Stage{
		{Env: "test"},
		{Env: "staging", Soak: artifacts.Duration(24 * time.Hour), Verify: []api.VerifyJob{{Name: "smoke", Command: []string{"./smoke"}, Hosts: "smoke=yes"}}},
		{Env: "prod"},
	}}})
	return h, h.addRelease("web", "1.0.0")
}

// review returns a rollout's readiness gate by name.
func (h *harness) gate(rollout, name string) api.Gate {
	h.tb.Helper()
	rv, err := h.store.ReviewRollout(rollout, h.now)
	if err != nil {
		h.tb.Fatal(err)
	}
	i := slices.IndexFunc(rv.Gates, func(g api.Gate) bool { return g.Name == name })
	if i < 0 {
		h.tb.Fatalf("rollout %s has no %s gate: %+v", rollout, name, rv.Gates)
	}
	return rv.Gates[i]
}

// complete runs a started rollout to completion, every host succeeding.
func (h *harness) complete(r string, hosts ...string) {
	h.tb.Helper()
	h.start(r, 0, hosts...)
	for _, host := range hosts {
		h.must(CmdAgentReport, reportBody(host, r, deploy.Succeeded, "1.0.0"))
	}
	h.must(CmdRolloutStep, h.stepBody(r, 0, deploy.Complete))
}

func TestLifecycleRefusesSkippingAStage(t *testing.T) {
	h, rel := lifecycleFixture(t)

	// Straight to production by label: the stage is found from the hosts.
	prod := h.must(CmdRolloutCreate, RolloutCreate{Release: rel, Selector: map[string]string{"env": "prod"}, Plan: plan(t, "100%", 0)}).ID
	if env := h.rollout(prod).Env; env != "prod" {
		t.Fatalf("rollout to prod hosts has environment %q", env)
	}
	wantErr(t, h.noChange(CmdRolloutStart, RolloutStart{Rollout: prod}, api.CodeConflict), api.CodeConflict,
		"lifecycle", "has not completed in staging, the stage before prod")

	// test is the first stage; then staging becomes possible.
	test := h.createAndStart(RolloutCreate{Release: rel, Env: "test", Plan: plan(t, "100%", 0)})
	staging := h.must(CmdRolloutCreate, RolloutCreate{Release: rel, Env: "staging", Plan: plan(t, "100%", 0)}).ID
	if g := h.gate(staging, GateLifecycle); g.OK || !strings.Contains(g.Detail, "not completed in test") {
		t.Errorf("staging before test completed: %+v", g)
	}
	h.complete(test, "t1")
	if g := h.gate(staging, GateLifecycle); !g.OK {
		t.Errorf("staging after test completed: %+v", g)
	}
	h.must(CmdRolloutStart, RolloutStart{Rollout: staging})
	if got := h.rollout(staging).Targets; !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("staging targets = %v; want the staging hosts only", got)
	}
	h.complete(staging, "s1", "s2")

	// Not soaked, and the smoke job has not reported.
	if g := h.gate(prod, GateLifecycle); g.OK || !strings.Contains(g.Detail, "of the 24h0m0s required") {
		t.Errorf("prod right after staging: %+v", g)
	}
	runs := h.store.Evidence(nil, rel)
	if len(runs) != 1 || runs[0].Host != "s2" || runs[0].State != api.JobPending || runs[0].Env != "staging" {
		t.Fatalf("verification runs after staging = %+v; want smoke pending on s2", runs)
	}
	if d := h.store.DesiredFor(nil, "s2"); len(d.Jobs) != 1 || d.Jobs[0].Job != "smoke" {
		t.Errorf("s2's desired state has jobs %+v", d.Jobs)
	}

	// The job fails: evidence blocks production even after the soak.
	h.must(CmdJobResult, JobResult{Host: "s2", Report: api.JobReport{ID: runs[0].ID, JobResult: api.JobResult{
		ExitCode: 1, Duration: time.Second, Output: "FAIL: checkout", JUnit: &api.JUnitSummary{Tests: 3, Failures: 1}}}})
	h.now = h.now.Add(25 * time.Hour)
	if g := h.gate(prod, GateLifecycle); !g.OK {
		t.Errorf("prod after the soak: %+v", g)
	}
	if g := h.gate(prod, GateEvidence); g.OK || !strings.Contains(g.Detail, "smoke on s2 (exit 1, 1 of 3 test(s) failed)") {
		t.Errorf("evidence after a failed job: %+v", g)
	}
	if d := h.store.DesiredFor(nil, "s2"); len(d.Jobs) != 0 {
		t.Errorf("a finished job is still in s2's desired state")
	}
	// A job report from another host, or for a job that does not exist, is refused.
	wantErr(t, h.noChange(CmdJobResult, JobResult{Host: "s1", Report: api.JobReport{ID: runs[0].ID}}, api.CodeNotFound), api.CodeNotFound)

	// An admin overrides, with a reason, recorded in the rollout and the audit trail.
	h.must(CmdRolloutStart, RolloutStart{Rollout: prod, Override: "hotfix approved in CHG-77"})
	if o := h.rollout(prod).Overrides; len(o) != 1 || !slices.Contains(o[0].Gates, GateEvidence) {
		t.Errorf("overrides = %+v", o)
	}
	audit := h.store.AuditFor(nil, prod)
	if !slices.ContainsFunc(audit, func(e api.AuditEntry) bool {
		return e.Action == AuditRolloutOverride && strings.Contains(e.Detail, "evidence") && strings.Contains(e.Detail, "CHG-77")
	}) {
		t.Errorf("audit of %s has no override entry: %+v", prod, audit)
	}
}

func TestLifecycleEvidencePasses(t *testing.T) {
	h, rel := lifecycleFixture(t)
	h.complete(h.createAndStart(RolloutCreate{Release: rel, Env: "test", Plan: plan(t, "100%", 0)}), "t1")
	staging := h.createAndStart(RolloutCreate{Release: rel, Env: "staging", Plan: plan(t, "100%", 0)})
	h.complete(staging, "s1", "s2")
	run := h.store.Evidence(nil, rel)[0]
	h.must(CmdJobResult, JobResult{Host: "s2", Report: api.JobReport{ID: run.ID, JobResult: api.JobResult{Duration: 2 * time.Second, JUnit: &api.JUnitSummary{Tests: 12}}}})
	h.now = h.now.Add(24 * time.Hour)
	prod := h.must(CmdRolloutCreate, RolloutCreate{Release: rel, Env: "prod", Plan: plan(t, "100%", 0)}).ID
	for _, name := range []string{GateLifecycle, GateEvidence} {
		if g := h.gate(prod, name); !g.OK {
			t.Errorf("%s: %+v", name, g)
		}
	}
	h.must(CmdRolloutStart, RolloutStart{Rollout: prod})
	if ev := h.store.Evidence(nil, rel); ev[0].State != api.JobPassed {
		t.Errorf("evidence = %+v", ev)
	}
}

func TestLifecycleValidation(t *testing.T) {
	h := newHarness(t)
	h.must(CmdEnvSet, EnvSet{Env: api.Environment{Name: "test", Where: "env=test"}})
	wantErr(t, h.noChange(CmdLifecycleSet, LifecycleSet{Lifecycle: api.Lifecycle{Name: "l", Apps: []string{"web"},
		Stages: []api.Stage{{Env: "test"}, {Env: "prod"}}}}, api.CodeInvalid), api.CodeInvalid, "environment prod does not exist")
	wantErr(t, h.noChange(CmdEnvSet, EnvSet{Env: api.Environment{Name: "x", Where: "memory_gib>>1"}}, api.CodeInvalid), api.CodeInvalid, "where")
	h.must(CmdEnvSet, EnvSet{Env: api.Environment{Name: "prod", Where: "env=prod"}})
	h.must(CmdLifecycleSet, LifecycleSet{Lifecycle: api.Lifecycle{Name: "l", Apps: []string{"web"}, Stages: []api.Stage{{Env: "test"}, {Env: "prod"}}}})
	wantErr(t, h.noChange(CmdLifecycleSet, LifecycleSet{Lifecycle: api.Lifecycle{Name: "m", Apps: []string{"web"},
		Stages: []api.Stage{{Env: "test"}, {Env: "prod"}}}}, api.CodeConflict), api.CodeConflict, "lifecycle l already governs web")
	wantErr(t, h.noChange(CmdEnvDelete, EnvDelete{Name: "prod"}, api.CodeConflict), api.CodeConflict, "stage of lifecycle l")
}
