package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/report"
	"github.com/drover-dev/drover/deploy"
)

// These tests run under `make test` too: the checker must catch what it
// claims to catch, or a passing e2e run proves nothing.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// dep builds a deployment whose history is the given (state, second) pairs.
func dep(host string, steps ...any) *api.Deployment {
	d := &api.Deployment{Host: host, State: deploy.Pending, Version: "2"}
	for i := 0; i+1 < len(steps); i += 2 {
		s := deploy.HostState(steps[i].(string))
		d.History = append(d.History, api.Transition{State: s, At: at(steps[i+1].(float64))})
		d.State = s
	}
	return d
}

func TestCheckParallel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deps    []*api.Deployment
		limit   int
		peak    int
		wantErr string
	}{
		{"one after another", []*api.Deployment{
			dep("a", "instructed", 1.0, "succeeded", 2.0),
			dep("b", "instructed", 3.0, "succeeded", 4.0),
		}, 1, 1, ""},
		{"an end and a start at the same instant", []*api.Deployment{
			dep("a", "instructed", 1.0, "probation", 1.5, "succeeded", 2.0),
			dep("b", "instructed", 2.0, "succeeded", 3.0),
		}, 1, 1, ""},
		{"overlap beyond the limit", []*api.Deployment{
			dep("a", "instructed", 1.0, "succeeded", 5.0),
			dep("b", "instructed", 2.0, "succeeded", 6.0),
			dep("c", "instructed", 3.0, "reverted", 4.0),
		}, 2, 3, "3 hosts in flight"},
		{"a host that never ends counts until the end", []*api.Deployment{
			dep("a", "instructed", 1.0, "activating", 2.0),
			dep("b", "instructed", 9.0),
		}, 1, 2, "2 hosts in flight"},
		{"skipped and pending hosts never count", []*api.Deployment{
			dep("a", "skipped", 1.0), dep("b"), dep("c", "instructed", 1.0, "failed", 2.0),
		}, 1, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peak, err := checkParallel(tc.deps, tc.limit)
			if peak != tc.peak {
				t.Errorf("peak %d; want %d", peak, tc.peak)
			}
			wantErr(t, err, tc.wantErr)
		})
	}
}

func TestCheckSnapshots(t *testing.T) {
	snap := func(sec float64, states ...string) snapshot {
		var st api.RolloutStatus
		for i, s := range states {
			st.Hosts = append(st.Hosts, &api.Deployment{Host: string(rune('a' + i)), State: deploy.HostState(s)})
		}
		return snapshot{At: at(sec), Status: st}
	}
	for _, tc := range []struct {
		name    string
		snaps   []snapshot
		wantErr string
	}{
		{"forward", []snapshot{snap(1, "pending", "instructed"), snap(2, "instructed", "probation"), snap(3, "succeeded", "succeeded")}, ""},
		{"too many in flight", []snapshot{snap(1, "downloading", "staged", "probation")}, "3 hosts in flight"},
		{"backwards", []snapshot{snap(1, "probation"), snap(2, "downloading")}, "went back from probation to downloading"},
		{"out of a final state", []snapshot{snap(1, "reverted"), snap(2, "succeeded")}, "left final state reverted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkSnapshots(tc.snaps, 2)
			wantErr(t, err, tc.wantErr)
		})
	}
}

func TestCheckOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		d       *api.Deployment
		wantErr string
	}{
		{"once", dep("a", "instructed", 1.0, "downloading", 2.0, "succeeded", 3.0), ""},
		{"started twice", dep("a", "instructed", 1.0, "succeeded", 2.0, "instructed", 3.0), "instructed after succeeded"},
		{"state repeated", dep("a", "instructed", 1.0, "probation", 2.0, "probation", 3.0), "probation after probation"},
		{"time goes back", dep("a", "instructed", 5.0, "succeeded", 4.0), "before the state it follows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, checkOnce([]*api.Deployment{tc.d}), tc.wantErr)
		})
	}
	d := dep("a", "instructed", 1.0)
	d.State = deploy.Succeeded
	wantErr(t, checkOnce([]*api.Deployment{d}), "its history ends with instructed")
}

func TestCheckDecisions(t *testing.T) {
	r := &api.Rollout{ID: "r-9", State: api.RolloutCompleted, Sizes: []int{1, 2, 4}}
	entry := func(seq uint64, actor, action, detail string) api.AuditEntry {
		return api.AuditEntry{Seq: seq, Actor: actor, Action: action, Subject: "r-9", Detail: detail}
	}
	good := []api.AuditEntry{
		entry(1, "operator/e2e-deployer", actCreated, ""),
		entry(2, "operator/e2e-deployer", actStarted, ""),
		{Seq: 3, Actor: "operator/admin", Action: "freeze.set", Subject: "freeze/x"},
		entry(4, "engine@s1", actPromoted, "wave 2 of 3 started"),
		entry(5, "engine@s2", actPromoted, "wave 3 of 3 started"),
		entry(6, "engine@s2", actCompleted, "all done"),
	}
	n, err := checkDecisions(good, r)
	if err != nil || n != 5 {
		t.Fatalf("good trail: %d entries, %v; want 5, nil", n, err)
	}
	for _, tc := range []struct {
		name    string
		entries []api.AuditEntry
		wantErr string
	}{
		{"a wave promoted twice (two leaders)", []api.AuditEntry{good[0], good[1], good[3], entry(5, "engine@s3", actPromoted, "wave 2 of 3 started")}, "wave 2 promoted after wave 2"},
		{"started twice", []api.AuditEntry{good[0], good[1], entry(3, "operator/x", actStarted, "")}, "rollout.started recorded 2 times"},
		{"engine after completion", append(append([]api.AuditEntry{}, good...), entry(7, "engine@s1", actPaused, "")), "after the rollout was rollout.completed"},
		{"completed short of the last wave", []api.AuditEntry{good[0], good[1], good[3], good[5]}, "promoting to wave 2 of 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkDecisions(tc.entries, r)
			wantErr(t, err, tc.wantErr)
		})
	}
}

func TestCheckChain(t *testing.T) {
	chain := []api.AuditEntry{{Seq: 1, Index: 5, Hash: "a"}, {Seq: 2, Index: 9, Prev: "a", Hash: "b"}, {Seq: 3, Index: 9, Prev: "b", Hash: "c"}}
	wantErr(t, checkChain(chain), "")
	wantErr(t, checkChain([]api.AuditEntry{chain[0], {Seq: 2, Index: 4, Prev: "a", Hash: "b"}}), "entry 2 has Raft index 4, before entry 1's 5")
	broken := append([]api.AuditEntry{}, chain...)
	broken[2].Prev = "x"
	wantErr(t, checkChain(broken), "entry 3 does not name the hash of entry 2")
	wantErr(t, checkChain([]api.AuditEntry{chain[0], chain[2]}), "entry 2 has sequence number 3")
}

func TestCheckHosts(t *testing.T) {
	succeeded := dep("a", "instructed", 1.0, "succeeded", 2.0)
	succeeded.Current, succeeded.Rollout = "2", "r-1"
	reverted := dep("a", "instructed", 1.0, "reverted", 2.0)
	reverted.Current = "1"
	for _, tc := range []struct {
		name    string
		o       hostOutcome
		wantErr string
	}{
		{"succeeded", hostOutcome{Host: "a", Before: "1", After: "2", Known: "2", Main: succeeded, Activations: []string{"2"}}, ""},
		{"reverted", hostOutcome{Host: "a", Before: "1", After: "1", Known: "1", Main: reverted, Activations: []string{"2", "1"}}, ""},
		{"not a target", hostOutcome{Host: "a", Before: "1", After: "1", Known: "1"}, ""},
		{"disk disagrees", hostOutcome{Host: "a", Before: "1", After: "1", Known: "1", Main: succeeded, Activations: []string{"2"}}, "its final states imply \"2\""},
		{"control plane disagrees", hostOutcome{Host: "a", Before: "1", After: "2", Known: "1", Main: succeeded, Activations: []string{"2"}}, "the control plane says \"1\""},
		{"applied twice", hostOutcome{Host: "a", Before: "1", After: "2", Known: "2", Main: succeeded, Activations: []string{"2", "2"}}, "activated 2 2 times"},
		{"succeeded without activating", hostOutcome{Host: "a", Before: "1", After: "2", Known: "2", Main: succeeded}, "activated it 0 times"},
		{"still in flight", hostOutcome{Host: "a", Before: "1", After: "1", Known: "1", Main: dep("a", "instructed", 1.0)}, "still instructed"},
		{"rolled back", hostOutcome{Host: "a", Before: "1", After: "1", Known: "1", Main: succeeded, Activations: []string{"2", "1"},
			Rollback: &api.Deployment{Host: "a", Version: "1", State: deploy.Succeeded, Current: "1"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, checkHosts([]hostOutcome{tc.o}), tc.wantErr)
		})
	}
}

func TestCheckWritesAndCutOffLeader(t *testing.T) {
	wantErr(t, checkWrites([]string{"w-1", "w-2"}, map[string]bool{"w-1": true, "w-2": true, "w-3": true}), "")
	wantErr(t, checkWrites([]string{"w-1", "w-2"}, map[string]bool{"w-1": true}), "1 acknowledged write(s) lost: w-2")
	entries := []api.AuditEntry{{Seq: 1, Actor: "engine@s1", Time: at(1)}, {Seq: 2, Actor: "engine@s2", Time: at(5)}}
	wantErr(t, checkNoDecisionsBy(entries, "engine@s1", at(2), at(9)), "")
	wantErr(t, checkNoDecisionsBy(entries, "engine@s2", at(2), at(9)), "committed by engine@s2")
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error; want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q; want one containing %q", err, want)
	}
}

func TestCheckReport(t *testing.T) {
	d1 := dep("host-01", "instructed", 1.0, "succeeded", 2.0)
	d2 := dep("host-02", "instructed", 3.0, "reverted", 4.0)
	d2.Wave = 1
	d1.From, d2.From = "1", "1"
	st := &api.RolloutStatus{Rollout: &api.Rollout{ID: "r-5", Release: "e2eapp@2", Version: "2", State: api.RolloutCompleted, Sizes: []int{1, 2}},
		Hosts: []*api.Deployment{d1, d2}}
	good := func() *report.Report {
		return &report.Report{Rollout: "r-5", Release: "e2eapp@2", State: api.RolloutCompleted,
			Artifact: report.Artifact{PayloadSHA256: "abc"},
			Waves:    []report.Wave{{Wave: 1, Hosts: 1, Succeeded: 1}, {Wave: 2, Hosts: 1, Reverted: 1}},
			Hosts: []report.Host{{Host: "host-01", Wave: 1, State: deploy.Succeeded, From: "1", To: "2"},
				{Host: "host-02", Wave: 2, State: deploy.Reverted, From: "1"}},
			Timeline: []report.Event{{Action: actCreated}, {Action: actStarted}, {Action: actCompleted}}}
	}
	before := map[string]string{"host-01": "1", "host-02": "1"}
	wantErr(t, checkReport(good(), st, "abc", before), "")
	for _, tc := range []struct {
		name    string
		spoil   func(r *report.Report)
		wantErr string
	}{
		{"another payload", func(r *report.Report) { r.Artifact.PayloadSHA256 = "def" }, "the file released was abc"},
		{"a wave miscounted", func(r *report.Report) { r.Waves[1].Reverted, r.Waves[1].Succeeded = 0, 1 }, "wave 2: report says"},
		{"a host's state", func(r *report.Report) { r.Hosts[1].State = deploy.Succeeded }, "host-02 succeeded in wave 2"},
		{"a host's origin", func(r *report.Report) { r.Hosts[0].From = "0" }, "came from \"0\""},
		{"no completion", func(r *report.Report) { r.Timeline = r.Timeline[:2] }, "lacks rollout.completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.spoil(r)
			wantErr(t, checkReport(r, st, "abc", before), tc.wantErr)
		})
	}
}

func TestCheckNoStartAfterTrip(t *testing.T) {
	st := &api.RolloutStatus{Rollout: &api.Rollout{ID: "r-7", Targets: []string{"a", "b", "c"}, Plan: deploy.Plan{MaxParallel: 2, MaxFailures: deploy.Threshold{Count: 1}}},
		Hosts: []*api.Deployment{dep("a", "instructed", 1.0, "reverted", 3.0), dep("b", "instructed", 2.0, "reverted", 4.0), dep("c")}}
	trip := []api.AuditEntry{{Subject: "r-7", Action: actThreshold, Time: at(4)}}
	wantErr(t, checkNoStartAfterTrip(st, trip), "")
	st.Hosts[2] = dep("c", "instructed", 5.0, "succeeded", 6.0)
	wantErr(t, checkNoStartAfterTrip(st, trip), "started after the trip")
	wantErr(t, checkNoStartAfterTrip(st, nil), "no rollout.failed_threshold entry")
}
