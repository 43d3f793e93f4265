package deploy

import (
	"fmt"
	"time"
)

// Outcome is what a rollout as a whole should be after a decision.
type Outcome string

// Outcomes of Decide.
const (
	Continue Outcome = "continue" // keep running
	Pause    Outcome = "pause"    // stop starting hosts; an operator decides
	Complete Outcome = "complete" // every target is done
	Rollback Outcome = "rollback" // threshold tripped under on_failure: rollback
)

// Progress is a rollout's committed state, as the decision needs it.
type Progress struct {
	Plan  Plan
	Sizes []int       // cumulative wave sizes, from Waves.Sizes
	Wave  int         // index of the current wave
	Hosts []HostState // one per target, in target order; wave w is Hosts[:Sizes[w]]
	// Now is the leader's time; it is stamped into the decision's command.
	Now time.Time
	// WaveDoneAt is when the current wave finished (zero until then); the
	// bake time counts from it.
	WaveDoneAt time.Time
	// Promoted is how many waves an operator has let start (by drover
	// rollout promote): wave w may start without waiting when Promoted > w-1.
	Promoted int
	// Updated is when each host last made progress (for host timeouts).
	Updated []time.Time
	// Held marks hosts that may not start now: inside a change freeze, or
	// over their failure domain's change budget (see Budget).
	Held []bool
	// Budget, when set, caps hosts in flight per failure domain across
	// every rollout.
	Budget *BudgetState
	// RollingBack: the rollout is being backed out. Nothing starts; once
	// no host is in flight the decision is Rollback, so that the rollback
	// covers every host that ended on the new version.
	RollingBack bool
}

// BudgetState is a change budget as a decision sees it: the failure domain
// of each target, and how many hosts of each domain are in flight across
// every rollout (this one included).
type BudgetState struct {
	Max      int
	Domains  []string       // per target; "" = not in any domain
	InFlight map[string]int // per domain
}

// Decision is what the rollout engine should write next.
type Decision struct {
	Start    []int   // indexes into Hosts of hosts to instruct now
	TimedOut []int   // indexes of hosts that made no progress in time: failed
	Wave     int     // the current wave after this decision
	WaveDone bool    // the current wave has just finished: record the time
	Outcome  Outcome // the rollout's state after this decision
	Reason   string  // why, when Outcome is Pause, Complete or Rollback
	Tripped  bool    // a failure threshold tripped (Outcome is Pause or Rollback)
	// Wake is when to decide again even if nothing changes (the end of a
	// bake time, not_before, the deadline); zero if not needed.
	Wake time.Time
}

// Empty reports whether the decision changes nothing.
func (d Decision) Empty(p Progress) bool {
	return len(d.Start) == 0 && len(d.TimedOut) == 0 && d.Wave == p.Wave && !d.WaveDone && d.Outcome == Continue
}

func (d *Decision) wakeAt(t time.Time) {
	if !t.IsZero() && (d.Wake.IsZero() || t.Before(d.Wake)) {
		d.Wake = t
	}
}

// Decide computes the next step of a running rollout. It is a pure function
// of the committed progress and the leader's time, so a new leader that
// reads the same state makes the same decision, and applying a decision
// twice is harmless.
//
// The order of the rules matters:
//  1. hosts that made no progress within the host timeout (not counting
//     waiting for a window) fail;
//  2. the failure thresholds are checked before anything is started, so a
//     tripped threshold never starts another host;
//  3. a missed deadline pauses;
//  4. a wave is promoted only when every host in it is final and its bake
//     time has passed (or an operator promoted it, which also ends the
//     bake), and, with manual promotion, only when an operator promoted it;
//  5. hosts start in target order, within the wave, max_parallel, the
//     change budget of their failure domain, and outside freezes — and not
//     before not_before.
func Decide(p Progress) Decision {
	d := Decision{Wave: p.Wave, Outcome: Continue}
	total := len(p.Hosts)
	if total == 0 || len(p.Sizes) == 0 {
		d.Outcome, d.Reason = Complete, "no target hosts"
		return d
	}
	hosts := append([]HostState(nil), p.Hosts...)
	for i, s := range hosts {
		if s.InFlight() && s != WaitingForWindow && i < len(p.Updated) && !p.Updated[i].IsZero() {
			limit := p.Updated[i].Add(p.Plan.hostTimeout())
			if !p.Now.Before(limit) {
				d.TimedOut = append(d.TimedOut, i)
				hosts[i] = Failed
			} else {
				d.wakeAt(limit)
			}
		}
	}
	failed, inFlight := count(hosts, HostState.Failure), count(hosts, HostState.InFlight)
	if p.RollingBack {
		if inFlight == 0 {
			d.Outcome, d.Reason = Rollback, "no host in flight: back out the updated hosts"
		}
		return d
	}
	if reason := thresholdTripped(p, hosts, failed); reason != "" {
		d.Outcome, d.Reason, d.Tripped = Pause, reason, true
		if p.Plan.OnFailure == OnFailureRollback {
			d.Outcome = Rollback
		}
		return d
	}
	if !p.Plan.Deadline.IsZero() && !p.Now.Before(p.Plan.Deadline) {
		d.Outcome = Pause
		d.Reason = fmt.Sprintf("deadline %s passed with the rollout unfinished", p.Plan.Deadline.UTC().Format(time.RFC3339))
		return d
	}
	d.wakeAt(p.Plan.Deadline)
	// Promote through every wave whose hosts are all final.
	doneAt := p.WaveDoneAt
	for d.Wave < len(p.Sizes) && allFinal(hosts[:p.Sizes[d.Wave]]) {
		if d.Wave == len(p.Sizes)-1 {
			d.Outcome, d.Reason = Complete, fmt.Sprintf("all %d host(s) done, %d failed", total, failed)
			return d
		}
		if doneAt.IsZero() {
			d.WaveDone, doneAt = true, p.Now
		}
		promoted := p.Promoted > d.Wave // an operator's promote also ends the bake
		if bakeEnd := doneAt.Add(p.Plan.BakeTime); p.Now.Before(bakeEnd) && !promoted {
			d.wakeAt(bakeEnd)
			return d
		}
		if p.Plan.ManualPromote && !promoted {
			return d // waits for `drover rollout promote`
		}
		d.Wave++
		d.WaveDone, doneAt = false, time.Time{}
	}
	if p.Now.Before(p.Plan.NotBefore) {
		d.wakeAt(p.Plan.NotBefore)
		return d
	}
	limit := p.Plan.MaxParallel
	if limit == 0 {
		limit = total
	}
	var budget map[string]int
	if p.Budget != nil {
		budget = map[string]int{}
		for k, v := range p.Budget.InFlight {
			budget[k] = v
		}
	}
	for i := 0; i < p.Sizes[d.Wave] && inFlight < limit; i++ {
		if hosts[i] != Pending || (i < len(p.Held) && p.Held[i]) {
			continue
		}
		if budget != nil && p.Budget.Domains[i] != "" {
			dom := p.Budget.Domains[i]
			if budget[dom] >= p.Budget.Max {
				continue
			}
			budget[dom]++
		}
		d.Start = append(d.Start, i)
		inFlight++
	}
	return d
}

// thresholdTripped checks the whole-rollout and per-wave thresholds and
// says which tripped, or "".
func thresholdTripped(p Progress, hosts []HostState, failed int) string {
	if allowed := p.Plan.MaxFailures.Allowed(len(hosts)); failed > allowed {
		return fmt.Sprintf("failure threshold exceeded: %d host(s) failed, %d allowed (max_failures %s)", failed, allowed, p.Plan.MaxFailures)
	}
	if t := p.Plan.WaveMaxFailures; t != nil {
		lo := 0
		if p.Wave > 0 {
			lo = p.Sizes[p.Wave-1]
		}
		wave := hosts[lo:p.Sizes[p.Wave]]
		if n, allowed := count(wave, HostState.Failure), t.Allowed(len(wave)); n > allowed {
			return fmt.Sprintf("wave %d failure threshold exceeded: %d of its %d host(s) failed, %d allowed (wave_max_failures %s)",
				p.Wave+1, n, len(wave), allowed, t)
		}
	}
	return ""
}

func count(hosts []HostState, pred func(HostState) bool) int {
	n := 0
	for _, s := range hosts {
		if pred(s) {
			n++
		}
	}
	return n
}

func allFinal(hosts []HostState) bool {
	for _, s := range hosts {
		if !s.Final() {
			return false
		}
	}
	return true
}
