package state

import (
	"bytes"
	"maps"
	"testing"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// reportFixture is a rollout of web 2.0.0 over h1 (wave 1, instructed) and
// h2 (wave 2, pending); h3 is enrolled but not a target.
func reportFixture(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.addHosts(map[string]string{"env": "prod"}, "h1", "h2")
	h.addHosts(map[string]string{"env": "dev"}, "h3")
	r := h.addRollout(h.addRelease("web", "2.0.0"), map[string]string{"env": "prod"}, "1,100%", 0)
	h.start(r, 0, "h1")
	return h, r
}

func TestAgentReport(t *testing.T) {
	const (
		old = "1.0.0" // what h1 runs until it switches
		new = "2.0.0"
	)
	tests := []struct {
		name          string
		prior         []AgentReport // by h1 in rollout r, applied first
		report        AgentReport   // Rollout "" means r
		want          api.Code
		wantUnchanged bool             // the report must change nothing at all
		wantState     deploy.HostState // of h1's deployment afterwards
		wantCurrent   string           // of h1's deployment afterwards
		wantReleases  map[string]string
	}{
		{name: "first progress",
			report:    reportBody("h1", "", deploy.Downloading, old),
			wantState: deploy.Downloading, wantCurrent: old, wantReleases: map[string]string{"web": old}},
		{name: "progress without a version",
			report:    reportBody("h1", "", deploy.Downloading, ""),
			wantState: deploy.Downloading},
		{name: "success records the new version",
			prior:     []AgentReport{reportBody("h1", "", deploy.Downloading, old)},
			report:    reportBody("h1", "", deploy.Succeeded, new),
			wantState: deploy.Succeeded, wantCurrent: new, wantReleases: map[string]string{"web": new}},
		{name: "a state may be skipped",
			report:    reportBody("h1", "", deploy.Probation, new),
			wantState: deploy.Probation, wantCurrent: new, wantReleases: map[string]string{"web": new}},
		{name: "reverted keeps the previous version",
			prior:     []AgentReport{reportBody("h1", "", deploy.Activating, old)},
			report:    reportBody("h1", "", deploy.Reverted, old),
			wantState: deploy.Reverted, wantCurrent: old, wantReleases: map[string]string{"web": old}},
		{name: "a late downloading after succeeded changes nothing",
			prior: []AgentReport{
				reportBody("h1", "", deploy.Downloading, old),
				reportBody("h1", "", deploy.Succeeded, new),
			},
			report:        reportBody("h1", "", deploy.Downloading, old),
			wantUnchanged: true,
			wantState:     deploy.Succeeded, wantCurrent: new, wantReleases: map[string]string{"web": new}},
		{name: "a late staged after probation changes nothing",
			prior: []AgentReport{
				reportBody("h1", "", deploy.Staged, old),
				reportBody("h1", "", deploy.Probation, new),
			},
			report:        reportBody("h1", "", deploy.Staged, old),
			wantUnchanged: true,
			wantState:     deploy.Probation, wantCurrent: new, wantReleases: map[string]string{"web": new}},
		{name: "a duplicate report changes nothing",
			prior:         []AgentReport{reportBody("h1", "", deploy.Downloading, old)},
			report:        reportBody("h1", "", deploy.Downloading, old),
			wantUnchanged: true,
			wantState:     deploy.Downloading, wantCurrent: old, wantReleases: map[string]string{"web": old}},
		{name: "a final state is never left",
			prior:         []AgentReport{reportBody("h1", "", deploy.Failed, old)},
			report:        reportBody("h1", "", deploy.Succeeded, new),
			wantUnchanged: true,
			wantState:     deploy.Failed, wantCurrent: old, wantReleases: map[string]string{"web": old}},
		{name: "host not instructed yet",
			report: reportBody("h2", "", deploy.Downloading, old), want: api.CodeConflict,
			wantState: deploy.Instructed},
		{name: "unknown host",
			report: reportBody("h7", "", deploy.Downloading, old), want: api.CodeNotFound,
			wantState: deploy.Instructed},
		{name: "host not a target",
			report: reportBody("h3", "", deploy.Downloading, old), want: api.CodeNotFound,
			wantState: deploy.Instructed},
		{name: "unknown rollout",
			report: reportBody("h1", "r-999", deploy.Downloading, old), want: api.CodeNotFound,
			wantState: deploy.Instructed},
		{name: "pending is not for agents",
			report: reportBody("h1", "", deploy.Pending, ""), want: api.CodeInvalid,
			wantState: deploy.Instructed},
		{name: "instructed is not for agents",
			report: reportBody("h1", "", deploy.Instructed, ""), want: api.CodeInvalid,
			wantState: deploy.Instructed},
		{name: "unknown state",
			report: reportBody("h1", "", "exploded", ""), want: api.CodeInvalid,
			wantState: deploy.Instructed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, r := reportFixture(t)
			for _, p := range tt.prior {
				p.Rollout = r
				h.must(CmdAgentReport, p)
			}
			rep := tt.report
			if rep.Rollout == "" {
				rep.Rollout = r
			}
			var res Result
			if tt.want != "" || tt.wantUnchanged {
				res = h.noChange(CmdAgentReport, rep, tt.want)
			} else {
				res = h.must(CmdAgentReport, rep)
			}
			d := h.deployment(r, "h1")
			if d.State != tt.wantState || d.Current != tt.wantCurrent {
				t.Errorf("h1 deployment: got %s, current %q; want %s, current %q", d.State, d.Current, tt.wantState, tt.wantCurrent)
			}
			host := h.host("h1")
			if !maps.Equal(host.Releases, tt.wantReleases) {
				t.Errorf("h1 releases: got %v; want %v", host.Releases, tt.wantReleases)
			}
			if tt.want != "" || tt.wantUnchanged {
				return
			}
			if d.ModifyIndex != res.Index || !d.UpdatedAt.Equal(h.now) {
				t.Errorf("h1 deployment: modify index %d, updated %v; want %d, %v", d.ModifyIndex, d.UpdatedAt, res.Index, h.now)
			}
			if !host.LastReport.Equal(h.now) {
				t.Errorf("h1 last report: got %v; want %v", host.LastReport, h.now)
			}
		})
	}
}

// TestAgentReportKeepsOtherApps checks that a report replaces only its own
// application's entry in the host's releases.
func TestAgentReportKeepsOtherApps(t *testing.T) {
	h, r := reportFixture(t)
	h.must(CmdAgentReport, reportBody("h1", r, deploy.Succeeded, "2.0.0"))
	h.start(r, 1, "h2")
	h.must(CmdAgentReport, reportBody("h2", r, deploy.Succeeded, "2.0.0"))
	h.must(CmdRolloutStep, h.stepBody(r, 1, deploy.Complete))
	r2 := h.addRollout(h.addRelease("api", "7.0.0"), map[string]string{"env": "prod"}, "100%", 0)
	h.start(r2, 0, "h1")
	before := h.host("h1").Releases
	h.must(CmdAgentReport, reportBody("h1", r2, deploy.Succeeded, "7.0.0"))

	want := map[string]string{"web": "2.0.0", "api": "7.0.0"}
	if got := h.host("h1").Releases; !maps.Equal(got, want) {
		t.Errorf("releases: got %v; want %v", got, want)
	}
	if want := map[string]string{"web": "2.0.0"}; !maps.Equal(before, want) {
		t.Errorf("releases read before the report: got %v; want %v (objects read must not change)", before, want)
	}
}

func TestInventory(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1")
	sys := []byte(`{"os":"linux","cpus":4}`)
	res := h.must(CmdInventory, Inventory{Host: "h1", System: sys, Digest: "d1"})
	host := h.host("h1")
	if !bytes.Equal(host.Inventory, sys) || host.InventoryDigest != "d1" || !host.InventoryAt.Equal(h.now) || host.ModifyIndex != res.Index {
		t.Errorf("host: got %+v; want inventory %s, digest d1 at %v, index %d", host, sys, h.now, res.Index)
	}
	// The same digest again changes nothing; an unknown host is refused.
	h.noChange(CmdInventory, Inventory{Host: "h1", System: []byte(`{"os":"other"}`), Digest: "d1"}, "")
	h.noChange(CmdInventory, Inventory{Host: "h9", System: sys, Digest: "d1"}, api.CodeNotFound)
}
