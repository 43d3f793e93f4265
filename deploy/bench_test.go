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
