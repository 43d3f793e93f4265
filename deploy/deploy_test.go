package deploy

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseWavesAndSizes(t *testing.T) {
	tests := []struct {
		in    string
		total int
		want  []int
	}{
		{"1,50%,100%", 5, []int{1, 3, 5}},
		{"1,50%,100%", 3, []int{1, 2, 3}},
		{"1,10%,50%,100%", 1000, []int{1, 100, 500, 1000}},
		{"10%", 5, []int{1, 5}},         // rounded up to one host, then the rest
		{"1,2,3", 2, []int{1, 2}},       // counts capped at the target set
		{"1,1%,100%", 50, []int{1, 50}}, // 1% of 50 rounds up to 1: same as the first wave, dropped
		{"100%", 0, nil},                // nothing to do
		{"5,100%", 3, []int{3}},         // first wave already everything
		{"1,50%,100%", 1, []int{1}},
	}
	for _, tt := range tests {
		w, err := ParseWaves(tt.in)
		if err != nil {
			t.Fatalf("ParseWaves(%q): %v", tt.in, err)
		}
		if got := w.Sizes(tt.total); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseWaves(%q).Sizes(%d) = %v; want %v", tt.in, tt.total, got, tt.want)
		}
		if w.String() != tt.in {
			t.Errorf("String() = %q; want %q", w.String(), tt.in)
		}
	}
}

func TestParseWavesErrors(t *testing.T) {
	for _, in := range []string{"", "0", "-1", "101%", "0%", "x", "50%,10%", "3,2", "1,,2", "1.5"} {
		if _, err := ParseWaves(in); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("ParseWaves(%q) error = %v; want ErrInvalidPlan", in, err)
		}
	}
}

func TestThreshold(t *testing.T) {
	tests := []struct {
		in    string
		total int
		want  int
	}{
		{"0", 10, 0}, {"3", 10, 3}, {"10%", 10, 1}, {"10%", 9, 0}, {"50%", 5, 2}, {"100%", 4, 4},
	}
	for _, tt := range tests {
		th, err := ParseThreshold(tt.in)
		if err != nil {
			t.Fatalf("ParseThreshold(%q): %v", tt.in, err)
		}
		if got := th.Allowed(tt.total); got != tt.want {
			t.Errorf("%q.Allowed(%d) = %d; want %d", tt.in, tt.total, got, tt.want)
		}
	}
	for _, in := range []string{"-1", "101%", "x", "1.5%"} {
		if _, err := ParseThreshold(in); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("ParseThreshold(%q) error = %v; want ErrInvalidPlan", in, err)
		}
	}
}

func TestStateAdvances(t *testing.T) {
	tests := []struct {
		from, to HostState
		want     bool
	}{
		{Pending, Instructed, true},
		{Instructed, Downloading, true},
		{Probation, Succeeded, true},
		{Activating, Reverted, true},
		{Instructed, Failed, true},
		{Succeeded, Reverted, false}, // never leaves a final state
		{Probation, Downloading, false},
		{Downloading, Downloading, false},
		{Instructed, "bogus", false},
	}
	for _, tt := range tests {
		if got := tt.from.Advances(tt.to); got != tt.want {
			t.Errorf("%s.Advances(%s) = %v; want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func hosts(s ...HostState) []HostState { return s }

func TestDecide(t *testing.T) {
	plan := func(maxPar int, th Threshold) Plan {
		return Plan{Waves: Waves{{Count: 1}, {Percent: 50}, {Percent: 100}}, MaxParallel: maxPar, MaxFailures: th}
	}
	const P, I, S, R, D = Pending, Instructed, Succeeded, Reverted, Downloading
	tests := []struct {
		name string
		p    Progress
		want Decision
	}{
		{"first wave starts one host",
			Progress{Plan: plan(0, Threshold{}), Sizes: []int{1, 3, 5}, Wave: 0, Hosts: hosts(P, P, P, P, P)},
			Decision{Start: []int{0}, Wave: 0, Outcome: Continue}},
		{"waits while the first host is in flight",
			Progress{Plan: plan(0, Threshold{}), Sizes: []int{1, 3, 5}, Wave: 0, Hosts: hosts(D, P, P, P, P)},
			Decision{Wave: 0, Outcome: Continue}},
		{"promotes and starts the second wave",
			Progress{Plan: plan(0, Threshold{}), Sizes: []int{1, 3, 5}, Wave: 0, Hosts: hosts(S, P, P, P, P)},
			Decision{Start: []int{1, 2}, Wave: 1, Outcome: Continue}},
		{"max_parallel limits starts, counting hosts in flight",
			Progress{Plan: plan(2, Threshold{}), Sizes: []int{1, 3, 5}, Wave: 2, Hosts: hosts(S, S, I, P, P)},
			Decision{Start: []int{3}, Wave: 2, Outcome: Continue}},
		{"a failure beyond the threshold pauses and starts nothing",
			Progress{Plan: plan(0, Threshold{}), Sizes: []int{1, 3, 5}, Wave: 1, Hosts: hosts(S, R, P, P, P)},
			Decision{Wave: 1, Outcome: Pause, Tripped: true, Reason: "failure threshold exceeded: 1 host(s) failed, 0 allowed (max_failures 0)"}},
		{"a failure within the threshold goes on",
			Progress{Plan: plan(0, Threshold{Count: 1}), Sizes: []int{1, 3, 5}, Wave: 1, Hosts: hosts(S, R, S, P, P)},
			Decision{Start: []int{3, 4}, Wave: 2, Outcome: Continue}},
		{"in-flight hosts are not failures",
			Progress{Plan: plan(0, Threshold{}), Sizes: []int{1, 3, 5}, Wave: 1, Hosts: hosts(S, I, D, P, P)},
			Decision{Wave: 1, Outcome: Continue}},
		{"complete when the last wave is final",
			Progress{Plan: plan(0, Threshold{Percent: 50}), Sizes: []int{1, 3, 5}, Wave: 2, Hosts: hosts(S, S, R, S, S)},
			Decision{Wave: 2, Outcome: Complete, Reason: "all 5 host(s) done, 1 failed"}},
		{"no targets completes at once",
			Progress{Plan: plan(0, Threshold{}), Sizes: nil, Wave: 0, Hosts: nil},
			Decision{Wave: 0, Outcome: Complete, Reason: "no target hosts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestDecideNeverExceedsLimits runs whole rollouts where every started host
// immediately finishes, and checks the invariants at every step.
func TestDecideNeverExceedsLimits(t *testing.T) {
	for _, total := range []int{1, 2, 7, 50} {
		for _, maxPar := range []int{0, 1, 3} {
			w, _ := ParseWaves("1,10%,50%,100%")
			p := Progress{Plan: Plan{Waves: w, MaxParallel: maxPar}, Sizes: w.Sizes(total), Hosts: make([]HostState, total)}
			for i := range p.Hosts {
				p.Hosts[i] = Pending
			}
			for step := 0; ; step++ {
				if step > 10*total+10 {
					t.Fatalf("total %d max %d: no completion", total, maxPar)
				}
				d := Decide(p)
				if d.Outcome == Complete {
					break
				}
				if maxPar > 0 && len(d.Start) > maxPar {
					t.Fatalf("started %d > max_parallel %d", len(d.Start), maxPar)
				}
				for _, i := range d.Start {
					if i >= p.Sizes[d.Wave] {
						t.Fatalf("started host %d outside wave %d (size %d)", i, d.Wave, p.Sizes[d.Wave])
					}
					if p.Hosts[i] != Pending {
						t.Fatalf("host %d started twice", i)
					}
					p.Hosts[i] = Succeeded
				}
				p.Wave = d.Wave
			}
		}
	}
}
