package state

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// fleet enrolls five hosts, not in ID order:
//
//	h01, h03  env=prod site=berlin
//	h02, h05  env=prod site=paris
//	h04       env=dev
func fleet(h *harness) {
	h.tb.Helper()
	h.addHosts(map[string]string{"env": "prod", "site": "berlin"}, "h03", "h01")
	h.addHosts(map[string]string{"env": "prod", "site": "paris"}, "h05", "h02")
	h.addHosts(map[string]string{"env": "dev"}, "h04")
}

func TestRolloutCreate(t *testing.T) {
	tests := []struct {
		name        string
		selector    map[string]string
		plan        deploy.Plan
		release     string // "" means the release made for the test
		want        api.Code
		wantTargets []string
		wantSizes   []int
		wantWaves   []int // of each target's deployment
	}{
		{name: "env=prod in three waves",
			selector: map[string]string{"env": "prod"}, plan: plan(t, "1,50%,100%", 0),
			wantTargets: []string{"h01", "h02", "h03", "h05"}, wantSizes: []int{1, 2, 4}, wantWaves: []int{0, 1, 2, 2}},
		{name: "all hosts in one wave",
			plan:        plan(t, "100%", 0),
			wantTargets: []string{"h01", "h02", "h03", "h04", "h05"}, wantSizes: []int{5}, wantWaves: []int{0, 0, 0, 0, 0}},
		{name: "two labels",
			selector: map[string]string{"env": "prod", "site": "berlin"}, plan: plan(t, "1,100%", 1),
			wantTargets: []string{"h01", "h03"}, wantSizes: []int{1, 2}, wantWaves: []int{0, 1}},
		{name: "a count larger than the target set",
			selector: map[string]string{"env": "dev"}, plan: plan(t, "10", 0),
			wantTargets: []string{"h04"}, wantSizes: []int{1}, wantWaves: []int{0}},
		{name: "waves that leave hosts over get a last wave",
			selector: map[string]string{"site": "paris"}, plan: plan(t, "1", 0),
			wantTargets: []string{"h02", "h05"}, wantSizes: []int{1, 2}, wantWaves: []int{0, 1}},
		{name: "no host matches",
			selector: map[string]string{"env": "staging"}, plan: plan(t, "100%", 0), want: api.CodeInvalid},
		{name: "a label no host has",
			selector: map[string]string{"env": "prod", "rack": "7"}, plan: plan(t, "100%", 0), want: api.CodeInvalid},
		{name: "unknown release",
			release: "web@9.9.9", plan: plan(t, "100%", 0), want: api.CodeNotFound},
		{name: "no waves",
			plan: deploy.Plan{}, want: api.CodeInvalid},
		{name: "negative max_parallel",
			plan: deploy.Plan{Waves: deploy.Waves{{Percent: 100}}, MaxParallel: -1}, want: api.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			fleet(h)
			rel := h.addRelease("web", "2.0.0")
			if tt.release != "" {
				rel = tt.release
			}
			body := RolloutCreate{Release: rel, Selector: tt.selector, Plan: tt.plan}
			if tt.want != "" {
				h.noChange(CmdRolloutCreate, body, tt.want)
				return
			}
			res := h.must(CmdRolloutCreate, body)
			if want := "r-" + strconv.FormatUint(res.Index, 10); res.ID != want {
				t.Errorf("rollout id: got %q; want %q", res.ID, want)
			}
			r := h.rollout(res.ID)
			if !slices.Equal(r.Targets, tt.wantTargets) {
				t.Errorf("targets: got %v; want %v", r.Targets, tt.wantTargets)
			}
			if !slices.Equal(r.Sizes, tt.wantSizes) {
				t.Errorf("sizes: got %v; want %v", r.Sizes, tt.wantSizes)
			}
			if r.State != api.RolloutPending || r.Wave != 0 || r.Release != rel || r.App != "web" || r.Version != "2.0.0" {
				t.Errorf("rollout = %+v; want pending web 2.0.0 at wave 0", r)
			}
			deps := h.store.RolloutHosts(nil, r)
			if len(deps) != len(tt.wantTargets) {
				t.Fatalf("deployments: got %d; want %d", len(deps), len(tt.wantTargets))
			}
			for i, d := range deps {
				if d.Host != tt.wantTargets[i] || d.Wave != tt.wantWaves[i] || d.State != deploy.Pending ||
					d.ID != r.ID+"/"+d.Host || d.Release != rel || d.CreateIndex != res.Index {
					t.Errorf("deployment %d = %+v; want %s pending in wave %d", i, d, tt.wantTargets[i], tt.wantWaves[i])
				}
			}
		})
	}
}

// TestRolloutCreateTargetLabels checks that the labels a release's
// manifest targets narrow the rollout's selector: hosts without them are
// not targeted, and a selector contradicting them is refused.
func TestRolloutCreateTargetLabels(t *testing.T) {
	tests := []struct {
		name        string
		targets     *artifacts.Targets // of the release's manifest
		selector    map[string]string
		want        api.Code
		wantMsg     string // part of the error message
		wantTargets []string
	}{
		{name: "no targets", wantTargets: []string{"h01", "h02", "h03", "h04", "h05"}},
		{name: "architectures only",
			targets:     &artifacts.Targets{Architectures: []string{"arm64"}},
			wantTargets: []string{"h01", "h02", "h03", "h04", "h05"}},
		{name: "one label, no selector",
			targets:     &artifacts.Targets{Labels: map[string]string{"site": "berlin"}},
			wantTargets: []string{"h01", "h03"}},
		{name: "one label and a selector on another",
			targets: &artifacts.Targets{Labels: map[string]string{"env": "prod"}}, selector: map[string]string{"site": "paris"},
			wantTargets: []string{"h02", "h05"}},
		{name: "one label and a selector that agrees",
			targets: &artifacts.Targets{Labels: map[string]string{"site": "berlin"}}, selector: map[string]string{"env": "prod", "site": "berlin"},
			wantTargets: []string{"h01", "h03"}},
		{name: "two labels",
			targets:     &artifacts.Targets{Labels: map[string]string{"env": "prod", "site": "paris"}},
			wantTargets: []string{"h02", "h05"}},
		{name: "an empty label value matches hosts without the label",
			targets:     &artifacts.Targets{Labels: map[string]string{"site": ""}},
			wantTargets: []string{"h04"}},
		{name: "a selector contradicting a label",
			targets: &artifacts.Targets{Labels: map[string]string{"site": "berlin"}}, selector: map[string]string{"site": "paris"},
			want: api.CodeInvalid, wantMsg: "selector site=paris contradicts release web@2.0.0, which is for site=berlin"},
		{name: "a selector contradicting one of two labels",
			targets: &artifacts.Targets{Labels: map[string]string{"env": "prod", "site": "berlin"}}, selector: map[string]string{"env": "dev"},
			want: api.CodeInvalid, wantMsg: "selector env=dev contradicts"},
		{name: "a selector no target host matches",
			targets: &artifacts.Targets{Labels: map[string]string{"site": "berlin"}}, selector: map[string]string{"env": "dev"},
			want: api.CodeInvalid, wantMsg: "no enrolled host matches the selector env=dev,site=berlin"},
		{name: "a label no host has",
			targets: &artifacts.Targets{Labels: map[string]string{"rack": "7"}},
			want:    api.CodeInvalid, wantMsg: "no enrolled host matches the selector rack=7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			fleet(h)
			rel := h.addReleaseWith("web", "2.0.0", func(m *artifacts.Manifest) { m.Targets = tt.targets })
			body := RolloutCreate{Release: rel, Selector: tt.selector, Plan: plan(t, "1,100%", 0)}
			if tt.want != "" {
				res := h.noChange(CmdRolloutCreate, body, tt.want)
				if res.Err != nil && !strings.Contains(res.Err.Message, tt.wantMsg) {
					t.Errorf("error: got %q; want it to contain %q", res.Err.Message, tt.wantMsg)
				}
				return
			}
			res := h.must(CmdRolloutCreate, body)
			r := h.rollout(res.ID)
			if !slices.Equal(r.Targets, tt.wantTargets) {
				t.Errorf("targets: got %v; want %v", r.Targets, tt.wantTargets)
			}
			if want := []int{1, len(tt.wantTargets)}; len(tt.wantTargets) > 1 && !slices.Equal(r.Sizes, want) {
				t.Errorf("sizes: got %v; want %v", r.Sizes, want)
			}
			var deployed []string
			for _, d := range h.store.RolloutHosts(nil, r) {
				deployed = append(deployed, d.Host)
			}
			if !slices.Equal(deployed, tt.wantTargets) {
				t.Errorf("deployments: got hosts %v; want %v", deployed, tt.wantTargets)
			}
			// Hosts the release excludes stay free for another rollout.
			for _, id := range []string{"h01", "h02", "h03", "h04", "h05"} {
				if got := len(h.store.HostDeployments(nil, id)) > 0; got != slices.Contains(tt.wantTargets, id) {
					t.Errorf("%s has a deployment: %v; want %v", id, got, !got)
				}
			}
		})
	}
}

// TestRolloutCreateOneChangePerHost checks that a host in a running or
// paused rollout cannot join another one, and that a completed rollout
// frees its hosts.
func TestRolloutCreateOneChangePerHost(t *testing.T) {
	tests := []struct {
		name string
		// then brings the first rollout, over env=prod site=berlin, to its state.
		then func(h *harness, r string)
		want api.Code
	}{
		{"running", func(h *harness, r string) {}, api.CodeConflict},
		{"running with a host started", func(h *harness, r string) { h.start(r, 0, "h01") }, api.CodeConflict},
		{"paused by an operator", func(h *harness, r string) {
			h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "pause"})
		}, api.CodeConflict},
		{"paused by the engine", func(h *harness, r string) {
			h.must(CmdRolloutStep, h.stepBody(r, 0, deploy.Pause))
		}, api.CodeConflict},
		{"completed", func(h *harness, r string) {
			h.start(r, 0, "h01", "h03")
			h.must(CmdAgentReport, reportBody("h01", r, deploy.Succeeded, "2.0.0"))
			h.must(CmdAgentReport, reportBody("h03", r, deploy.Failed, ""))
			h.must(CmdRolloutStep, h.stepBody(r, 0, deploy.Complete))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			fleet(h)
			first := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"site": "berlin"}, "100%", 0)
			tt.then(h, first)
			body := RolloutCreate{Release: h.addRelease("web", "2.0.1"), Selector: map[string]string{"env": "prod"}, Plan: plan(t, "100%", 0)}
			if tt.want == "" {
				res := h.must(CmdRolloutCreate, body)
				if got := len(h.rollout(res.ID).Targets); got != 4 {
					t.Errorf("targets of the new rollout: got %d; want 4", got)
				}
				return
			}
			res := h.noChange(CmdRolloutCreate, body, tt.want)
			if want := "rollout " + first + " (web@2.0.0, "; res.Err == nil || !strings.Contains(res.Err.Message, want) || !strings.Contains(res.Err.Message, "on h01, h03") {
				t.Errorf("error: got %v; want it to name %s and hosts h01, h03", res.Err, first)
			}
			if want := "--queue"; res.Err == nil || !strings.Contains(res.Err.Message, want) {
				t.Errorf("error: got %v; want it to contain %q", res.Err, want)
			}
			// Hosts outside the first rollout are free all the same.
			body.Selector = map[string]string{"site": "paris"}
			h.must(CmdRolloutCreate, body)
		})
	}
}

// stepFixture is five env=prod hosts in a rollout of waves 2,100% (sizes
// [2 5]) with max_parallel 2, whose first decision started h1. Five, so
// that the second wave has more pending hosts than max_parallel allows.
func stepFixture(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.addHosts(map[string]string{"env": "prod"}, "h1", "h2", "h3", "h4", "h5")
	h.addHosts(map[string]string{"env": "dev"}, "h9")
	r := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"env": "prod"}, "2,100%", 2)
	h.start(r, 0, "h1")
	return h, r
}

// report applies, for each host, an agent report of st in rollout r.
func report(h *harness, r string, st deploy.HostState, hosts ...string) {
	h.tb.Helper()
	current := ""
	if st == deploy.Succeeded {
		current = "2.0.0"
	}
	for _, host := range hosts {
		h.must(CmdAgentReport, reportBody(host, r, st, current))
	}
}

// finishFirstWave brings the first wave of the stepFixture rollout to final
// states the way the engine and the agents do: a decision starts h2, then
// h1 reports succeeded and h2 reverted. The rollout stays at the first wave.
func finishFirstWave(h *harness, r string) {
	h.tb.Helper()
	h.start(r, 0, "h2")
	report(h, r, deploy.Succeeded, "h1")
	report(h, r, deploy.Reverted, "h2")
}

// finishAll brings every host of the stepFixture rollout to a final state:
// the first wave as finishFirstWave, then decisions that promote to the
// second wave and start h3 and h4, then h5, within max_parallel, each
// reporting succeeded. The rollout stays running at the second wave.
func finishAll(h *harness, r string) {
	h.tb.Helper()
	finishFirstWave(h, r)
	h.start(r, 1, "h3", "h4")
	report(h, r, deploy.Succeeded, "h3", "h4")
	h.start(r, 1, "h5")
	report(h, r, deploy.Succeeded, "h5")
}

// complete finishes every host of the stepFixture rollout, then applies the
// decision that completes it.
func complete(h *harness, r string) {
	h.tb.Helper()
	finishAll(h, r)
	h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Complete))
}

func TestRolloutStepRefused(t *testing.T) {
	tests := []struct {
		name string
		prep func(h *harness, r string) // optional
		step func(h *harness, r string) RolloutStep
		want api.Code
		// wantErr is part of the error message (optional), for a refusal
		// that another check could otherwise make for the wrong reason.
		wantErr string
	}{
		{name: "stale expect index", want: api.CodeConflict,
			step: func(h *harness, r string) RolloutStep {
				s := h.stepBody(r, 0, deploy.Continue, "h2")
				s.ExpectIndex--
				return s
			}},
		{name: "decision made before a pause and resume", want: api.CodeConflict,
			step: func(h *harness, r string) RolloutStep {
				s := h.stepBody(r, 0, deploy.Continue, "h2")
				h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "pause"})
				h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "resume"})
				return s
			}},
		{name: "host started twice", want: api.CodeConflict,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h1") }},
		{name: "host twice in one decision", want: api.CodeConflict,
			prep: func(h *harness, r string) { h.must(CmdAgentReport, reportBody("h1", r, deploy.Succeeded, "")) },
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h2", "h2") }},
		{name: "host outside the wave", want: api.CodeInvalid,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h3") }},
		{name: "one host outside the wave refuses the whole decision", want: api.CodeInvalid,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h2", "h3") }},
		{name: "more than max_parallel", want: api.CodeConflict, wantErr: "would exceed max_parallel 2",
			prep: finishFirstWave,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue, "h3", "h4", "h5") }},
		{name: "more than max_parallel counting hosts in flight", want: api.CodeConflict, wantErr: "starting h5 would exceed max_parallel 2",
			prep: func(h *harness, r string) {
				finishFirstWave(h, r)
				h.start(r, 1, "h3", "h4")
				h.must(CmdAgentReport, reportBody("h3", r, deploy.Probation, ""))
			},
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue, "h5") }},
		{name: "not a target", want: api.CodeInvalid,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h9") }},
		{name: "not a host", want: api.CodeInvalid,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "nosuch") }},
		{name: "wave past the last", want: api.CodeInvalid,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 2, deploy.Continue) }},
		{name: "wave going back", want: api.CodeInvalid, wantErr: "wave 0 out of range",
			prep: func(h *harness, r string) {
				finishFirstWave(h, r)
				h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Continue))
			},
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue) }},
		{name: "promote over a host of the earlier wave still in flight", want: api.CodeConflict,
			wantErr: "wave 2 cannot start before wave 1 has finished",
			prep: func(h *harness, r string) {
				h.start(r, 0, "h2")
				report(h, r, deploy.Succeeded, "h1")
				report(h, r, deploy.Probation, "h2")
			},
			// Within max_parallel: only the promotion is wrong.
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue, "h3") }},
		{name: "promote over a host of the earlier wave never started", want: api.CodeConflict,
			wantErr: "wave 2 cannot start before wave 1 has finished",
			prep:    func(h *harness, r string) { report(h, r, deploy.Succeeded, "h1") },
			step:    func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue) }},
		{name: "promote and complete over unfinished hosts", want: api.CodeConflict,
			wantErr: "wave 2 cannot start before wave 1 has finished",
			step:    func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Complete) }},
		{name: "complete with a host in flight", want: api.CodeConflict,
			wantErr: "cannot complete while hosts are unfinished",
			prep: func(h *harness, r string) {
				finishFirstWave(h, r)
				h.start(r, 1, "h3", "h4")
				report(h, r, deploy.Succeeded, "h3", "h4")
				h.start(r, 1, "h5")
				report(h, r, deploy.Activating, "h5")
			},
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Complete) }},
		{name: "complete with a host never started", want: api.CodeConflict,
			wantErr: "cannot complete while hosts are unfinished",
			prep: func(h *harness, r string) {
				finishFirstWave(h, r)
				h.start(r, 1, "h3", "h4")
				report(h, r, deploy.Succeeded, "h3", "h4")
			},
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Complete) }},
		{name: "unknown outcome", want: api.CodeInvalid,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, "abort", "h2") }},
		{name: "paused rollout", want: api.CodeConflict,
			prep: func(h *harness, r string) { h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "pause"}) },
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h2") }},
		{name: "completed rollout", want: api.CodeConflict, wantErr: "is completed",
			prep: complete,
			step: func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue) }},
		{name: "unknown rollout", want: api.CodeNotFound,
			step: func(h *harness, r string) RolloutStep {
				s := h.stepBody(r, 0, deploy.Continue, "h2")
				s.Rollout = "r-999"
				return s
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, r := stepFixture(t)
			if tt.prep != nil {
				tt.prep(h, r)
			}
			res := h.noChange(CmdRolloutStep, tt.step(h, r), tt.want)
			if tt.wantErr != "" && (res.Err == nil || !strings.Contains(res.Err.Message, tt.wantErr)) {
				t.Errorf("error: got %v; want it to contain %q", res.Err, tt.wantErr)
			}
		})
	}
}

func TestRolloutStepApplied(t *testing.T) {
	tests := []struct {
		name       string
		prep       func(h *harness, r string) // optional
		step       func(h *harness, r string) RolloutStep
		wantState  string
		wantReason string
		wantWave   int
		wantHosts  []deploy.HostState // h1..h5 after the step
	}{
		{name: "start the rest of the first wave",
			step:      func(h *harness, r string) RolloutStep { return h.stepBody(r, 0, deploy.Continue, "h2") },
			wantState: api.RolloutRunning, wantWave: 0,
			wantHosts: []deploy.HostState{deploy.Instructed, deploy.Instructed, deploy.Pending, deploy.Pending, deploy.Pending}},
		{name: "promote and start within max_parallel",
			prep:      finishFirstWave,
			step:      func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue, "h3", "h4") },
			wantState: api.RolloutRunning, wantWave: 1,
			wantHosts: []deploy.HostState{deploy.Succeeded, deploy.Reverted, deploy.Instructed, deploy.Instructed, deploy.Pending}},
		{name: "promote only",
			prep:      finishFirstWave,
			step:      func(h *harness, r string) RolloutStep { return h.stepBody(r, 1, deploy.Continue) },
			wantState: api.RolloutRunning, wantWave: 1,
			wantHosts: []deploy.HostState{deploy.Succeeded, deploy.Reverted, deploy.Pending, deploy.Pending, deploy.Pending}},
		{name: "pause",
			step: func(h *harness, r string) RolloutStep {
				s := h.stepBody(r, 0, deploy.Pause)
				s.Reason = "failure threshold exceeded"
				return s
			},
			wantState: api.RolloutPaused, wantReason: "failure threshold exceeded", wantWave: 0,
			wantHosts: []deploy.HostState{deploy.Instructed, deploy.Pending, deploy.Pending, deploy.Pending, deploy.Pending}},
		{name: "complete",
			prep: finishAll,
			step: func(h *harness, r string) RolloutStep {
				s := h.stepBody(r, 1, deploy.Complete)
				s.Reason = "all done"
				return s
			},
			wantState: api.RolloutCompleted, wantReason: "all done", wantWave: 1,
			wantHosts: []deploy.HostState{deploy.Succeeded, deploy.Reverted, deploy.Succeeded, deploy.Succeeded, deploy.Succeeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, r := stepFixture(t)
			if tt.prep != nil {
				tt.prep(h, r)
			}
			before := map[string]*api.Deployment{}
			for _, host := range []string{"h1", "h2", "h3", "h4", "h5"} {
				before[host] = h.deployment(r, host)
			}
			res := h.must(CmdRolloutStep, tt.step(h, r))
			ro := h.rollout(r)
			if ro.State != tt.wantState || ro.Reason != tt.wantReason || ro.Wave != tt.wantWave {
				t.Errorf("rollout: got %s %q at wave %d; want %s %q at wave %d", ro.State, ro.Reason, ro.Wave, tt.wantState, tt.wantReason, tt.wantWave)
			}
			if ro.ModifyIndex != res.Index || !ro.UpdatedAt.Equal(h.now) {
				t.Errorf("rollout modify index %d, updated at %v; want %d, %v", ro.ModifyIndex, ro.UpdatedAt, res.Index, h.now)
			}
			for i, host := range []string{"h1", "h2", "h3", "h4", "h5"} {
				d := h.deployment(r, host)
				if d.State != tt.wantHosts[i] {
					t.Errorf("%s: got %s; want %s", host, d.State, tt.wantHosts[i])
				}
				// A host started before the step (h1 always) is not written by it.
				if was := before[host]; was.State != deploy.Pending && d != was {
					t.Errorf("%s was written again: got %+v; want %+v", host, d, was)
				}
				if before[host].State == deploy.Pending && d.State == deploy.Instructed && (!d.StartedAt.Equal(h.now) || d.ModifyIndex != res.Index) {
					t.Errorf("%s: started at %v, index %d; want %v, %d", host, d.StartedAt, d.ModifyIndex, h.now, res.Index)
				}
			}
		})
	}
}

// TestRolloutRunsToCompletion drives a whole rollout the way the engine
// does, with deploy.Decide over committed state, and checks it ends
// completed with every host succeeded and free for the next rollout.
func TestRolloutRunsToCompletion(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	r := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"env": "prod"}, "1,50%,100%", 2)
	for step := 0; ; step++ {
		if step > 20 {
			t.Fatal("rollout did not complete")
		}
		ro := h.rollout(r)
		if ro.State == api.RolloutCompleted {
			break
		}
		deps := h.store.RolloutHosts(nil, ro)
		p := deploy.Progress{Plan: ro.Plan, Sizes: ro.Sizes, Wave: ro.Wave}
		for _, d := range deps {
			p.Hosts = append(p.Hosts, d.State)
		}
		d := deploy.Decide(p)
		body := RolloutStep{Rollout: r, ExpectIndex: ro.ModifyIndex, Wave: d.Wave, Outcome: d.Outcome, Reason: d.Reason}
		for _, i := range d.Start {
			body.Start = append(body.Start, deps[i].Host)
		}
		h.must(CmdRolloutStep, body)
		for _, host := range body.Start {
			h.must(CmdAgentReport, reportBody(host, r, deploy.Succeeded, "2.0.0"))
		}
	}
	for _, d := range h.store.RolloutHosts(nil, h.rollout(r)) {
		if d.State != deploy.Succeeded {
			t.Errorf("%s: got %s; want succeeded", d.Host, d.State)
		}
	}
	h.addRollout(h.addRelease("web", "2.0.1"), nil, "100%", 0)
}

func TestRolloutControl(t *testing.T) {
	tests := []struct {
		name       string
		prep       func(h *harness, r string) // optional
		body       RolloutControl
		want       api.Code
		wantState  string
		wantReason string
	}{
		{name: "pause a running rollout", body: RolloutControl{Action: "pause"},
			wantState: api.RolloutPaused, wantReason: "paused by tester"},
		{name: "pause with a reason", body: RolloutControl{Action: "pause", Reason: "bad metrics"},
			wantState: api.RolloutPaused, wantReason: "bad metrics"},
		{name: "resume a paused rollout", body: RolloutControl{Action: "resume"},
			prep:      func(h *harness, r string) { h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "pause"}) },
			wantState: api.RolloutRunning, wantReason: ""},
		{name: "resume a rollout the engine paused", body: RolloutControl{Action: "resume", Reason: "fixed"},
			prep:      func(h *harness, r string) { h.must(CmdRolloutStep, h.stepBody(r, 0, deploy.Pause)) },
			wantState: api.RolloutRunning, wantReason: "fixed"},
		{name: "pause a paused rollout", body: RolloutControl{Action: "pause"}, want: api.CodeConflict,
			prep: func(h *harness, r string) { h.must(CmdRolloutControl, RolloutControl{Rollout: r, Action: "pause"}) }},
		{name: "resume a running rollout", body: RolloutControl{Action: "resume"}, want: api.CodeConflict},
		{name: "pause a completed rollout", body: RolloutControl{Action: "pause"}, want: api.CodeConflict,
			prep: complete},
		{name: "resume a completed rollout", body: RolloutControl{Action: "resume"}, want: api.CodeConflict,
			prep: complete},
		{name: "unknown action", body: RolloutControl{Action: "restart"}, want: api.CodeInvalid},
		{name: "unknown rollout", body: RolloutControl{Rollout: "r-999", Action: "pause"}, want: api.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, r := stepFixture(t)
			if tt.prep != nil {
				tt.prep(h, r)
			}
			body := tt.body
			if body.Rollout == "" {
				body.Rollout = r
			}
			if tt.want != "" {
				h.noChange(CmdRolloutControl, body, tt.want)
				return
			}
			res := h.must(CmdRolloutControl, body)
			ro := h.rollout(r)
			if ro.State != tt.wantState || ro.Reason != tt.wantReason {
				t.Errorf("rollout: got %s %q; want %s %q", ro.State, ro.Reason, tt.wantState, tt.wantReason)
			}
			if ro.ModifyIndex != res.Index || !ro.UpdatedAt.Equal(h.now) {
				t.Errorf("rollout modify index %d, updated at %v; want %d, %v", ro.ModifyIndex, ro.UpdatedAt, res.Index, h.now)
			}
		})
	}
}

func TestRunningRollouts(t *testing.T) {
	h := newHarness(t)
	fleet(h)
	rel := h.addRelease("web", "2.0.0")
	a := h.addRollout(rel, map[string]string{"site": "berlin"}, "100%", 0)
	b := h.addRollout(rel, map[string]string{"site": "paris"}, "100%", 0)
	c := h.addRollout(rel, map[string]string{"env": "dev"}, "100%", 0)
	h.must(CmdRolloutControl, RolloutControl{Rollout: b, Action: "pause"})
	h.start(c, 0, "h04")
	h.must(CmdAgentReport, reportBody("h04", c, deploy.Succeeded, "2.0.0"))
	h.must(CmdRolloutStep, h.stepBody(c, 0, deploy.Complete))

	var got []string
	for _, r := range h.store.RunningRollouts(nil) {
		got = append(got, r.ID)
	}
	if want := []string{a}; !slices.Equal(got, want) {
		t.Errorf("running: got %v; want %v", got, want)
	}
	all, index := h.store.Rollouts(nil)
	if len(all) != 3 || index != h.index {
		t.Errorf("rollouts: got %d at index %d; want 3 at %d", len(all), index, h.index)
	}
}
