package deploy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// predictBySorting is Predict's slot assignment done the plain way (sort
// every slot's free time before each host), kept as the reference the
// heap-based Predict must agree with.
func predictBySorting(in ForecastInput) []WaveForecast {
	var out []WaveForecast
	t, lo := in.Start, 0
	for w, hi := range in.Sizes {
		n := hi - lo
		slots := in.Plan.MaxParallel
		if slots == 0 || slots > n {
			slots = max(n, 1)
		}
		free := make([]time.Time, slots)
		for i := range free {
			free[i] = t
		}
		end := t
		for h := lo; h < hi; h++ {
			slices.SortFunc(free, func(a, b time.Time) int { return a.Compare(b) })
			var windows []Window
			if h < len(in.Windows) {
				windows = in.Windows[h]
			}
			start, _, ok := NextStart(windows, free[0])
			if !ok {
				return out
			}
			free[0] = start.Add(in.ApplyTime)
			if free[0].After(end) {
				end = free[0]
			}
		}
		out = append(out, WaveForecast{Wave: w + 1, Hosts: n, Start: t, End: end})
		t, lo = end.Add(in.Plan.BakeTime), hi
	}
	return out
}

// TestForecastSlots: with random plans, max_parallel and maintenance
// windows on some hosts, Predict assigns hosts to slots exactly as the
// reference does.
func TestForecastSlots(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	afternoon := Window{Name: "a", Schedule: "FREQ=DAILY;BYHOUR=14", Duration: 10 * time.Minute}
	nightly := Window{Name: "n", Schedule: "FREQ=DAILY;BYHOUR=2", Duration: time.Hour}
	for i := range 200 {
		w, _ := ParseWaves([]string{"100%", "1,50%,100%", "1,10%,50%,100%"}[i%3])
		hosts := 1 + rnd.IntN(60)
		in := ForecastInput{Plan: Plan{Waves: w, MaxParallel: rnd.IntN(8), BakeTime: time.Duration(rnd.IntN(3)) * time.Minute},
			Sizes: w.Sizes(hosts), Start: t0, ApplyTime: time.Duration(1+rnd.IntN(20)) * time.Minute, Windows: make([][]Window, hosts)}
		for h := range in.Windows {
			switch rnd.IntN(4) {
			case 0:
				in.Windows[h] = []Window{afternoon}
			case 1:
				in.Windows[h] = []Window{nightly}
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			f := Predict(in)
			if f.Reason != "" {
				t.Fatalf("Predict: %s", f.Reason)
			}
			if got, want := f.Waves, predictBySorting(in); !reflect.DeepEqual(got, want) {
				t.Fatalf("Predict(%+v) waves = %+v; want %+v", in.Plan, got, want)
			}
		})
	}
}
