package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseGoBench(t *testing.T) {
	out := []byte(`goos: linux
pkg: github.com/drover-dev/drover/controlplane/state
BenchmarkDesiredFor-2             	   60000	     20121 ns/op	    1568 B/op	      49 allocs/op
BenchmarkDesiredFanout/hosts=1000-2 	       5	  45612959 ns/op	     45613 ns/host
pkg: github.com/drover-dev/drover/artifacts/chunks
BenchmarkSplit-2   	      10	 101000000 ns/op	 664.45 MB/s
PASS
ok  	github.com/drover-dev/drover/artifacts/chunks	3.1s
`)
	got := parseGoBench(out)
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks; want 3: %+v", len(got), got)
	}
	if g := got[0]; g.Pkg != "controlplane/state" || g.Name != "DesiredFor" || g.NsPerOp != 20121 || g.Metrics["allocs/op"] != 49 {
		t.Errorf("first = %+v; want controlplane/state DesiredFor 20121 ns/op, 49 allocs/op", g)
	}
	if g := got[1]; g.Name != "DesiredFanout/hosts=1000" || g.Metrics["ns/host"] != 45613 {
		t.Errorf("second = %+v; want the sub-benchmark with its custom metric", g)
	}
	if g := got[2]; g.Pkg != "artifacts/chunks" || g.Metrics["MB/s"] != 664.45 {
		t.Errorf("third = %+v; want artifacts/chunks with MB/s", g)
	}
}

// TestRender: targets are judged against the figures, the previous run's
// figures stand beside them, contention is called out, and a run with
// fewer agents than the target says so.
func TestRender(t *testing.T) {
	fleet := func(agents int, p99 float64) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"agents": agents, "hold": map[string]any{"p99_ms": p99},
			"waves": []map[string]any{{"hosts": 1000, "p99_ms": 2500.0}}})
		return b
	}
	prev := &Results{Machine: Machine{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Cores: 2}, Fleet: fleet(10000, 30)}
	cur := &Results{Machine: Machine{Date: time.Now(), Cores: 2, OthersCPU: 60}, Fleet: fleet(2000, 12),
		GoBench: []GoBench{{Pkg: "deploy", Name: "Predict", NsPerOp: 6.4e6}}, Errors: []string{"drover bench rollout: exit status 1"}}
	md := render(cur, prev)
	for _, want := range []string{
		"| Idle check-in latency p99, 10,000 agents | ≤ 25 ms | 12 ms (2000 agents) | yes | 30 ms |",
		"| Instruction latency p99, 1,000-host wave | ≤ 2 s | 2.50 s | **no** |",
		"**Contention:** other processes used 60 %",
		"drover bench rollout: exit status 1",
		"| deploy | Predict | 6.40 ms |",
		"2026-01-02 03:04",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if md := render(&Results{Machine: Machine{Cores: 2, OthersCPU: 2}}, nil); strings.Contains(md, "Contention") {
		t.Error("a quiet run is reported as contended")
	}
}

func TestOthersCPU(t *testing.T) {
	t0 := time.Now()
	a := cpuSample{at: t0, busy: 10 * time.Second, ours: 4 * time.Second}
	// 10 s on this machine's cores; 6 s busy, 2 s of it ours.
	b := cpuSample{at: t0.Add(10 * time.Second), busy: 16 * time.Second, ours: 6 * time.Second}
	want := 400.0 / float64(10*runtime.NumCPU())
	if got := othersCPU(a, b); got < want-0.1 || got > want+0.1 {
		t.Errorf("othersCPU = %v; want %v %% (4 s of others' CPU over 10 s)", got, want)
	}
}
