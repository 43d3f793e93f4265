package deploy

import (
	"container/heap"
	"fmt"
	"time"
)

// ForecastInput is what a forecast needs to know.
type ForecastInput struct {
	Plan  Plan
	Sizes []int
	// Windows are each target's maintenance windows (none: any time).
	Windows [][]Window
	// Start is when the rollout may start (now, or not_before).
	Start time.Time
	// ApplyTime is the expected time of one host's apply: download,
	// activation and probation.
	ApplyTime time.Duration
}

// WaveForecast is one wave's expected course.
type WaveForecast struct {
	Wave  int       `json:"wave"` // 1-based
	Hosts int       `json:"hosts"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Forecast says when each wave is expected to finish and whether the
// rollout fits its deadline.
type Forecast struct {
	Waves        []WaveForecast `json:"waves"`
	End          time.Time      `json:"end"`
	FitsDeadline bool           `json:"fits_deadline"`
	Reason       string         `json:"reason,omitempty"`
}

// Predict simulates a rollout: within each wave hosts start as early as
// their windows and max_parallel allow (a host starts only inside one of
// its windows, before the cutoff), each takes ApplyTime, and the next wave
// starts a bake time after the last host of this one finishes. Manual
// promotion is assumed to be immediate, and every host to succeed.
func Predict(in ForecastInput) Forecast {
	var f Forecast
	t := in.Start
	lo := 0
	for w, hi := range in.Sizes {
		n := hi - lo
		slots := in.Plan.MaxParallel
		if slots == 0 || slots > n {
			slots = max(n, 1)
		}
		free := make(slotHeap, slots) // when each slot is free: all equal, so a heap
		for i := range free {
			free[i] = t
		}
		end := t
		for h := lo; h < hi; h++ {
			var windows []Window
			if h < len(in.Windows) {
				windows = in.Windows[h]
			}
			start, _, ok := NextStart(windows, free[0])
			if !ok {
				f.Reason = fmt.Sprintf("a host of wave %d has no maintenance window that ever opens", w+1)
				return f
			}
			finish := start.Add(in.ApplyTime)
			free[0] = finish // the earliest free slot is taken
			heap.Fix(&free, 0)
			if finish.After(end) {
				end = finish
			}
		}
		f.Waves = append(f.Waves, WaveForecast{Wave: w + 1, Hosts: n, Start: t, End: end})
		t = end.Add(in.Plan.BakeTime)
		lo = hi
	}
	f.End = t.Add(-in.Plan.BakeTime)
	if len(f.Waves) == 0 {
		f.End = in.Start
	}
	f.FitsDeadline = in.Plan.Deadline.IsZero() || !f.End.After(in.Plan.Deadline)
	if !f.FitsDeadline {
		f.Reason = fmt.Sprintf("expected to finish at %s, after the deadline %s", f.End.UTC().Format(time.RFC3339), in.Plan.Deadline.UTC().Format(time.RFC3339))
	}
	return f
}

// slotHeap is a min-heap of the times at which max_parallel's slots are
// free: taking the earliest is O(log slots), so a wave of thousands of
// hosts without max_parallel is forecast in milliseconds.
type slotHeap []time.Time

func (s slotHeap) Len() int           { return len(s) }
func (s slotHeap) Less(i, j int) bool { return s[i].Before(s[j]) }
func (s slotHeap) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *slotHeap) Push(x any)        { *s = append(*s, x.(time.Time)) }
func (s *slotHeap) Pop() any {
	old := *s
	x := old[len(old)-1]
	*s = old[:len(old)-1]
	return x
}
