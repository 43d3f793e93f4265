package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/drover-dev/drover/deploy"
)

const benchHosts = 1000

// benchFleet is a store with benchHosts hosts in one running rollout of a
// single wave with no max_parallel, none of them started yet.
func benchFleet(b *testing.B) (*harness, string, []string) {
	b.Helper()
	h := newHarness(b)
	ids := make([]string, benchHosts)
	for i := range ids {
		ids[i] = fmt.Sprintf("host-%04d", i)
	}
	h.addHosts(map[string]string{"env": "prod"}, ids...)
	r := h.addRollout(h.addRelease("web", "2.0.0"), nil, "100%", 0)
	return h, r, ids
}

// benchReports returns a store whose benchHosts hosts are all instructed,
// and the entries of every report that moves one of them forward: each host
// through downloading, staged, activating, probation and succeeded.
func benchReports(b *testing.B) (*harness, [][]byte) {
	b.Helper()
	h, r, ids := benchFleet(b)
	h.start(r, 0, ids...)
	var entries [][]byte
	at := h.now.Add(time.Second)
	for _, st := range []deploy.HostState{deploy.Downloading, deploy.Staged, deploy.Activating, deploy.Probation, deploy.Succeeded} {
		current := "1.0.0"
		if st == deploy.Probation || st == deploy.Succeeded {
			current = "2.0.0"
		}
		for _, id := range ids {
			entries = append(entries, entry(b, CmdAgentReport, "", at, reportBody(id, r, st, current)))
		}
	}
	return h, entries
}

// BenchmarkApplyAgentReport measures applying one agent report that moves
// a host forward, on a store of 1,000 hosts in a running rollout.
func BenchmarkApplyAgentReport(b *testing.B) {
	h, entries := benchReports(b)
	next := 0
	for b.Loop() {
		if next == len(entries) { // every host succeeded: start over
			b.StopTimer()
			h, entries = benchReports(b)
			next = 0
			b.StartTimer()
		}
		h.index++
		if res := h.store.Apply(h.index, entries[next]); res.Err != nil {
			b.Fatal(res.Err)
		}
		next++
	}
}

// benchSteps returns a store of benchHosts hosts in a rollout none of
// which is started, and the entries of the engine's decisions that start
// them one at a time, each based on the rollout as the previous one left it.
func benchSteps(b *testing.B) (*harness, [][]byte) {
	b.Helper()
	h, r, ids := benchFleet(b)
	expect := h.rollout(r).ModifyIndex
	at := h.now.Add(time.Second)
	entries := make([][]byte, len(ids))
	for i, id := range ids {
		entries[i] = entry(b, CmdRolloutStep, "", at, RolloutStep{Rollout: r, ExpectIndex: expect, Start: []string{id}, Outcome: deploy.Continue})
		expect = h.index + uint64(i) + 1 // the index this entry will be applied at
	}
	return h, entries
}

// BenchmarkApplyRolloutStep measures applying one engine decision that
// starts one host, on a store of 1,000 hosts in a running rollout.
func BenchmarkApplyRolloutStep(b *testing.B) {
	h, entries := benchSteps(b)
	next := 0
	for b.Loop() {
		if next == len(entries) { // every host started: start over
			b.StopTimer()
			h, entries = benchSteps(b)
			next = 0
			b.StartTimer()
		}
		h.index++
		if res := h.store.Apply(h.index, entries[next]); res.Err != nil {
			b.Fatal(res.Err)
		}
		next++
	}
}
