package deploy

import "fmt"

// Outcome is what a rollout as a whole should be after a decision.
type Outcome string

// Outcomes of Decide.
const (
	Continue Outcome = "continue" // keep running
	Pause    Outcome = "pause"    // stop starting hosts; an operator decides
	Complete Outcome = "complete" // every target succeeded
)

// Progress is a rollout's committed state, as the decision needs it.
type Progress struct {
	Plan  Plan
	Sizes []int       // cumulative wave sizes, from Waves.Sizes
	Wave  int         // index of the current wave
	Hosts []HostState // one per target, in target order; wave w is Hosts[:Sizes[w]]
}

// Decision is what the rollout engine should write next.
type Decision struct {
	Start   []int   // indexes into Hosts of hosts to instruct now
	Wave    int     // the current wave after this decision
	Outcome Outcome // the rollout's state after this decision
	Reason  string  // why, when Outcome is Pause or Complete
}

// Empty reports whether the decision changes nothing.
func (d Decision) Empty(p Progress) bool {
	return len(d.Start) == 0 && d.Wave == p.Wave && d.Outcome == Continue
}

// Decide computes the next step of a running rollout. It is a pure function
// of the committed progress, so a new leader that reads the same state makes
// the same decision, and applying a decision twice is harmless.
//
// The order of the rules matters: the failure threshold is checked before
// anything is started, so a tripped threshold never starts another host;
// a wave is promoted only when every host in it is final and none failed
// beyond the threshold.
func Decide(p Progress) Decision {
	d := Decision{Wave: p.Wave, Outcome: Continue}
	total := len(p.Hosts)
	if total == 0 || len(p.Sizes) == 0 {
		d.Outcome, d.Reason = Complete, "no target hosts"
		return d
	}
	failed, inFlight := 0, 0
	for _, s := range p.Hosts {
		if s.Failure() {
			failed++
		}
		if s.InFlight() {
			inFlight++
		}
	}
	if allowed := p.Plan.MaxFailures.Allowed(total); failed > allowed {
		d.Outcome = Pause
		d.Reason = fmt.Sprintf("failure threshold exceeded: %d host(s) failed, %d allowed (max_failures %s)", failed, allowed, p.Plan.MaxFailures)
		return d
	}
	// Promote through every wave whose hosts are all final.
	for d.Wave < len(p.Sizes) && allFinal(p.Hosts[:p.Sizes[d.Wave]]) {
		if d.Wave == len(p.Sizes)-1 {
			d.Outcome, d.Reason = Complete, fmt.Sprintf("all %d host(s) done, %d failed", total, failed)
			return d
		}
		d.Wave++
	}
	limit := p.Plan.MaxParallel
	if limit == 0 {
		limit = total
	}
	for i := 0; i < p.Sizes[d.Wave] && inFlight < limit; i++ {
		if p.Hosts[i] == Pending {
			d.Start = append(d.Start, i)
			inFlight++
		}
	}
	return d
}

func allFinal(hosts []HostState) bool {
	for _, s := range hosts {
		if !s.Final() {
			return false
		}
	}
	return true
}
