package deploy

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPredict measures the readiness review's forecast of a rollout
// of n hosts without windows, in one wave without max_parallel (every
// host its own slot, the worst case) and in waves 1,10%,50%,100% with
// max_parallel 200. The state machine runs it when a rollout starts.
func BenchmarkPredict(b *testing.B) {
	for _, tc := range []struct {
		waves       string
		maxParallel int
	}{{"100%", 0}, {"1,10%,50%,100%", 200}} {
		for _, n := range []int{1000, 10000} {
			w, err := ParseWaves(tc.waves)
			if err != nil {
				b.Fatal(err)
			}
			in := ForecastInput{Plan: Plan{Waves: w, MaxParallel: tc.maxParallel}, Sizes: w.Sizes(n),
				Start: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ApplyTime: time.Minute}
			b.Run(fmt.Sprintf("waves=%s/max_parallel=%d/hosts=%d", tc.waves, tc.maxParallel, n), func(b *testing.B) {
				for b.Loop() {
					if f := Predict(in); len(f.Waves) != len(w) {
						b.Fatalf("%d waves forecast; want %d", len(f.Waves), len(w))
					}
				}
			})
		}
	}
}

// BenchmarkDecide measures one engine decision on a rollout of 10,000
// hosts in one wave: with every host pending (the wave's start), and with
// half of them succeeded and the rest in flight (what the engine decides
// after each report).
func BenchmarkDecide(b *testing.B) {
	const n = 10000
	w, err := ParseWaves("100%")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		state func(i int) HostState
	}{
		{"pending", func(int) HostState { return Pending }},
		{"half-done", func(i int) HostState {
			if i%2 == 0 {
				return Succeeded
			}
			return Downloading
		}},
	} {
		p := Progress{Plan: Plan{Waves: w}, Sizes: w.Sizes(n), Now: now, Hosts: make([]HostState, n), Updated: make([]time.Time, n), Held: make([]bool, n)}
		for i := range p.Hosts {
			p.Hosts[i], p.Updated[i] = tc.state(i), now
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Decide(p)
			}
		})
	}
}
