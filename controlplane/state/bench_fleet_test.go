package state

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Benchmarks of what a large fleet costs the state machine: a check-in's
// read, the blocking-query fan-out when a wave starts, and the commands
// every agent sends (enrollment, inventory). The fleet simulator
// (`drover bench fleet`) measures the same paths end to end.

// fleetOf is a store of n hosts (labels env=prod) in one running rollout of
// a single wave without max_parallel, none of them started yet.
func fleetOf(b *testing.B, n int) (*harness, string, []string) {
	b.Helper()
	h := newHarness(b)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("host-%05d", i)
	}
	h.addHosts(map[string]string{"env": "prod"}, ids...)
	r := h.addRollout(h.addRelease("web", "2.0.0"), nil, "100%", 0)
	return h, r, ids
}

// BenchmarkDesiredFor measures one check-in's read of a host's desired
// state (with its watch set, as a blocking query takes it), in a store of
// 10,000 hosts whose every host is instructed.
func BenchmarkDesiredFor(b *testing.B) {
	h, r, ids := fleetOf(b, 10000)
	h.start(r, 0, ids...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ws := memdb.NewWatchSet()
		if d := h.store.DesiredFor(ws, ids[i%len(ids)]); len(d.Deployments) != 1 {
			b.Fatalf("%d deployments; want 1", len(d.Deployments))
		}
		i++
	}
}

// BenchmarkDesiredFanout measures the blocking-query fan-out of a wave's
// start: n hosts wait on their desired state (one goroutine each, as the
// servers' long polls do); one engine decision instructs them all; the
// time is until every waiter has woken and read its new desired state.
func BenchmarkDesiredFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				h, r, ids := fleetOf(b, n)
				step := entry(b, CmdRolloutStep, "", h.now.Add(time.Second), h.stepBody(r, 0, "continue", ids...))
				var ready, woke sync.WaitGroup
				ready.Add(n)
				woke.Add(n)
				for _, id := range ids {
					go func() {
						defer woke.Done()
						ws := memdb.NewWatchSet()
						before := h.store.DesiredFor(ws, id).Index
						ready.Done()
						if err := ws.WatchCtx(context.Background()); err != nil {
							b.Error(err)
							return
						}
						if h.store.DesiredFor(nil, id).Index == before {
							b.Errorf("host %s woke without a change", id)
						}
					}()
				}
				ready.Wait()
				b.StartTimer()
				h.index++
				if res := h.store.Apply(h.index, step); res.Err != nil {
					b.Fatal(res.Err)
				}
				woke.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/host")
		})
	}
}

// BenchmarkApplyRolloutStepWave measures the engine decision that starts
// a whole wave of 10,000 hosts at once.
func BenchmarkApplyRolloutStepWave(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		h, r, ids := fleetOf(b, n)
		step := entry(b, CmdRolloutStep, "", h.now.Add(time.Second), h.stepBody(r, 0, "continue", ids...))
		h.index++
		b.StartTimer()
		if res := h.store.Apply(h.index, step); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkApplyEnroll measures enrolling one more host into a store of
// 10,000.
func BenchmarkApplyEnroll(b *testing.B) {
	h, _, _ := fleetOf(b, 10000)
	const tok = "bench-token"
	h.must(CmdTokenCreate, tokenBody(tok, 1<<30, map[string]string{"env": "prod"}, h.now.Add(24*time.Hour)))
	at := h.now.Add(time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.index++
		data := entry(b, CmdEnroll, "", at, enrollBody(tok, fmt.Sprintf("new-%07d", i)))
		if res := h.store.Apply(h.index, data); res.Err != nil {
			b.Fatal(res.Err)
		}
		i++
	}
}

// BenchmarkApplyInventory measures recording one host's changed
// inventory of about 7 KB (100 packages) in a store of 10,000 hosts.
func BenchmarkApplyInventory(b *testing.B) {
	h, _, ids := fleetOf(b, 10000)
	at := h.now.Add(time.Second)
	// Two versions of 64 hosts' inventories, applied in turn, so that
	// every entry changes the host it names.
	const hosts = 64
	var entries [2][hosts][]byte
	for v := range entries {
		for i := range hosts {
			raw, err := json.Marshal(map[string]any{"HostName": ids[i], "CollectedAt": at, "Packages": benchPackages(100, i+v)})
			if err != nil {
				b.Fatal(err)
			}
			entries[v][i] = entry(b, CmdInventory, "", at, Inventory{Host: ids[i], System: raw, Digest: sha(string(raw))})
		}
	}
	b.SetBytes(int64(len(entries[0][0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.index++
		if res := h.store.Apply(h.index, entries[(i/hosts)%2][i%hosts]); res.Err != nil {
			b.Fatal(res.Err)
		}
		i++
	}
}

// benchPackages lists n OS packages, their versions varied by seed.
func benchPackages(n, seed int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		out[i] = map[string]string{"Name": fmt.Sprintf("pkg-%04d", i), "Version": fmt.Sprintf("%d.%d.%d-1", 1+i%7, i%13, seed%3), "Manager": "dpkg"}
	}
	return out
}

// BenchmarkApplyRolloutStart measures starting a rollout of 10,000 hosts
// in one wave: the readiness review the state machine runs first (hosts
// online, conflicts, freezes, windows and its forecast, back-out).
func BenchmarkApplyRolloutStart(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("host-%05d", i)
		}
		h.addHosts(map[string]string{"env": "prod"}, ids...)
		id := h.must(CmdRolloutCreate, RolloutCreate{Release: h.addRelease("web", "2.0.0"), Plan: plan(b, "100%", 0)}).ID
		start := entry(b, CmdRolloutStart, "", h.now.Add(time.Second), RolloutStart{Rollout: id})
		h.index++
		b.StartTimer()
		if res := h.store.Apply(h.index, start); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkEngineInputs measures what the rollout engine reads for each
// decision on a rollout of 10,000 hosts (their deployments, and what holds
// each), which it does again after every change to any of them.
func BenchmarkEngineInputs(b *testing.B) {
	h, r, _ := fleetOf(b, 10000)
	rollout := h.rollout(r)
	now := h.now.Add(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		ws := memdb.NewWatchSet()
		deps := h.store.RolloutHosts(ws, rollout)
		held, _ := h.store.StartLimits(ws, rollout, deps, now)
		if len(held) != len(deps) {
			b.Fatalf("%d hosts, %d held flags", len(deps), len(held))
		}
	}
}
