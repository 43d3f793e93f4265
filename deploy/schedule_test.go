package deploy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func progress(states ...HostState) Progress {
	w, _ := ParseWaves("1,50%,100%")
	return Progress{Plan: Plan{Waves: w}, Sizes: w.Sizes(len(states)), Hosts: states, Now: t0}
}

func TestDecideOverTime(t *testing.T) {
	const P, I, S, R, D, W = Pending, Instructed, Succeeded, Reverted, Downloading, WaitingForWindow
	tests := []struct {
		name  string
		setup func(p *Progress)
		want  Decision
	}{
		{"bake time: wave done, waits, wakes at its end",
			func(p *Progress) { p.Plan.BakeTime = time.Minute; p.Hosts = hosts(S, P, P, P, P) },
			Decision{Wave: 0, WaveDone: true, Outcome: Continue, Wake: t0.Add(time.Minute)}},
		{"bake time over: promotes",
			func(p *Progress) {
				p.Plan.BakeTime = time.Minute
				p.Hosts = hosts(S, P, P, P, P)
				p.WaveDoneAt = t0.Add(-2 * time.Minute)
			},
			Decision{Start: []int{1, 2}, Wave: 1, Outcome: Continue}},
		{"manual promotion: waits for the operator",
			func(p *Progress) { p.Plan.ManualPromote = true; p.Hosts = hosts(S, P, P, P, P) },
			Decision{Wave: 0, WaveDone: true, Outcome: Continue}},
		{"manual promotion: promoted",
			func(p *Progress) {
				p.Plan.ManualPromote = true
				p.Promoted = 1
				p.WaveDoneAt = t0
				p.Hosts = hosts(S, P, P, P, P)
			},
			Decision{Start: []int{1, 2}, Wave: 1, Outcome: Continue}},
		{"promote ends the bake time",
			func(p *Progress) {
				p.Plan.BakeTime = time.Hour
				p.Promoted = 1
				p.WaveDoneAt = t0
				p.Hosts = hosts(S, P, P, P, P)
			},
			Decision{Start: []int{1, 2}, Wave: 1, Outcome: Continue}},
		{"rolling back: waits for hosts in flight",
			func(p *Progress) { p.RollingBack = true; p.Hosts = hosts(R, S, D, P, P); p.Wave = 1 },
			Decision{Wave: 1, Outcome: Continue}},
		{"rolling back: nothing in flight, back out",
			func(p *Progress) { p.RollingBack = true; p.Hosts = hosts(R, S, S, P, P); p.Wave = 1 },
			Decision{Wave: 1, Outcome: Rollback, Reason: "no host in flight: back out the updated hosts"}},
		{"rolling back: a stuck host times out first",
			func(p *Progress) {
				p.RollingBack = true
				p.Hosts = hosts(R, D, P, P, P)
				p.Updated = []time.Time{{}, t0.Add(-DefaultHostTimeout)}
			},
			Decision{TimedOut: []int{1}, Wave: 0, Outcome: Rollback, Reason: "no host in flight: back out the updated hosts"}},
		{"not_before: nothing starts, wakes then",
			func(p *Progress) { p.Plan.NotBefore = t0.Add(time.Hour); p.Hosts = hosts(P, P, P, P, P) },
			Decision{Wave: 0, Outcome: Continue, Wake: t0.Add(time.Hour)}},
		{"deadline passed: pauses",
			func(p *Progress) { p.Plan.Deadline = t0; p.Hosts = hosts(S, D, P, P, P); p.Wave = 1 },
			Decision{Wave: 1, Outcome: Pause, Reason: "deadline 2026-06-01T10:00:00Z passed with the rollout unfinished"}},
		{"host without progress times out and trips the threshold",
			func(p *Progress) {
				p.Hosts = hosts(D, P, P, P, P)
				p.Updated = []time.Time{t0.Add(-DefaultHostTimeout)}
			},
			Decision{TimedOut: []int{0}, Wave: 0, Outcome: Pause, Tripped: true, Reason: "failure threshold exceeded: 1 host(s) failed, 0 allowed (max_failures 0)"}},
		{"a host waiting for its window never times out",
			func(p *Progress) {
				p.Hosts = hosts(W, P, P, P, P)
				p.Updated = []time.Time{t0.Add(-24 * time.Hour)}
			},
			Decision{Wave: 0, Outcome: Continue}},
		{"on_failure rollback",
			func(p *Progress) { p.Plan.OnFailure = OnFailureRollback; p.Hosts = hosts(R, P, P, P, P) },
			Decision{Wave: 0, Outcome: Rollback, Tripped: true, Reason: "failure threshold exceeded: 1 host(s) failed, 0 allowed (max_failures 0)"}},
		{"per-wave threshold trips within the wave",
			func(p *Progress) {
				p.Plan.MaxFailures = Threshold{Count: 10}
				p.Plan.WaveMaxFailures = &Threshold{Percent: 40}
				p.Wave = 1
				p.Hosts = hosts(S, R, I, P, P) // wave 2 is hosts 1-2: 1 of 2 failed, 0 allowed (40% of 2 rounds down)
			},
			Decision{Wave: 1, Outcome: Pause, Tripped: true, Reason: "wave 2 failure threshold exceeded: 1 of its 2 host(s) failed, 0 allowed (wave_max_failures 40%)"}},
		{"frozen hosts are held",
			func(p *Progress) { p.Hosts = hosts(S, P, P, P, P); p.Wave = 1; p.Held = []bool{false, true, false} },
			Decision{Start: []int{2}, Wave: 1, Outcome: Continue}},
		{"change budget per failure domain",
			func(p *Progress) {
				p.Hosts = hosts(S, S, S, P, P)
				p.Wave = 2
				p.Budget = &BudgetState{Max: 1, Domains: []string{"a", "a", "b", "b", "b"}, InFlight: map[string]int{"b": 0}}
			},
			Decision{Start: []int{3}, Wave: 2, Outcome: Continue}},
		{"change budget already used by other rollouts",
			func(p *Progress) {
				p.Hosts = hosts(S, S, S, P, P)
				p.Wave = 2
				p.Budget = &BudgetState{Max: 2, Domains: []string{"a", "a", "b", "b", "b"}, InFlight: map[string]int{"b": 2}}
			},
			Decision{Wave: 2, Outcome: Continue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := progress(P, P, P, P, P)
			tt.setup(&p)
			if got := Decide(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestFreezeAndOverlap(t *testing.T) {
	f := Freeze{Name: "xmas", Start: t0, End: t0.Add(24 * time.Hour), Selector: map[string]string{"env": "prod"}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if !f.Active(t0) || f.Active(t0.Add(24*time.Hour)) || f.Active(t0.Add(-time.Second)) {
		t.Error("Active: [start, end)")
	}
	if !f.Applies(map[string]string{"env": "prod", "site": "x"}) || f.Applies(map[string]string{"env": "dev"}) {
		t.Error("Applies: selector")
	}
	cases := []struct {
		from, to time.Time
		want     bool
	}{
		{t0.Add(-time.Hour), t0, false},                         // ends as it starts
		{t0.Add(-time.Hour), t0.Add(time.Minute), true},         // runs into it
		{t0.Add(23 * time.Hour), time.Time{}, true},             // open-ended, starting inside
		{t0.Add(24 * time.Hour), t0.Add(25 * time.Hour), false}, // after
		{t0.Add(-48 * time.Hour), time.Time{}, true},            // open-ended, starting before
	}
	for _, c := range cases {
		if got := f.Overlaps(c.from, c.to); got != c.want {
			t.Errorf("Overlaps(%v, %v) = %v; want %v", c.from, c.to, got, c.want)
		}
	}
	if (Freeze{Name: "bad", Start: t0, End: t0}).Validate() == nil {
		t.Error("a freeze that ends as it starts was accepted")
	}
}

func TestForecast(t *testing.T) {
	w, _ := ParseWaves("1,50%,100%")
	plan := Plan{Waves: w, MaxParallel: 2, BakeTime: 10 * time.Minute}
	in := ForecastInput{Plan: plan, Sizes: w.Sizes(5), Start: t0, ApplyTime: 5 * time.Minute}
	f := Predict(in)
	// wave 1: 1 host, 10:00-10:05; bake to 10:15; wave 2: 2 hosts in
	// parallel 10:15-10:20; bake to 10:30; wave 3: 2 hosts 10:30-10:35.
	want := []WaveForecast{{1, 1, t0, t0.Add(5 * time.Minute)}, {2, 2, t0.Add(15 * time.Minute), t0.Add(20 * time.Minute)},
		{3, 2, t0.Add(30 * time.Minute), t0.Add(35 * time.Minute)}}
	if !reflect.DeepEqual(f.Waves, want) || !f.End.Equal(t0.Add(35*time.Minute)) || !f.FitsDeadline {
		t.Errorf("forecast = %+v; want waves %+v ending 10:35", f, want)
	}
	// With a window at 14:00 for the last wave's hosts and a deadline at
	// 12:00 the rollout does not fit.
	nightly := Window{Name: "n", Schedule: "FREQ=DAILY;BYHOUR=14", Duration: time.Hour}
	in.Windows = [][]Window{nil, nil, nil, {nightly}, {nightly}}
	in.Plan.Deadline = t0.Add(2 * time.Hour)
	f = Predict(in)
	if f.Waves[2].End != t0.Add(4*time.Hour+5*time.Minute) || f.FitsDeadline || !strings.Contains(f.Reason, "after the deadline") {
		t.Errorf("forecast with windows = %+v; want wave 3 ending 14:05 and a missed deadline", f)
	}
}
