package e2e

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// The history checker: pure functions over what a scenario recorded — the
// rollouts as observed while they ran, their final records, the audit
// trail, and what each host's own disk says. Each returns what it measured
// and an error naming the first violation. They use their own ordering of
// host states (from docs/architecture.md), not drover's code.

// rank orders host states: a host only ever moves up, and 7 is final.
var rank = map[deploy.HostState]int{
	deploy.Pending: 0, deploy.Instructed: 1, deploy.Downloading: 2, deploy.Staged: 3,
	deploy.WaitingForWindow: 4, deploy.Activating: 5, deploy.Probation: 6,
	deploy.Succeeded: 7, deploy.Reverted: 7, deploy.Failed: 7, deploy.Skipped: 7,
}

func final(s deploy.HostState) bool    { return rank[s] == 7 }
func inFlight(s deploy.HostState) bool { return s != deploy.Pending && !final(s) }

// limitOf is a rollout's max_parallel, the whole target set when 0.
func limitOf(r *api.Rollout) int {
	if r.Plan.MaxParallel > 0 {
		return r.Plan.MaxParallel
	}
	return len(r.Targets)
}

// checkParallel sweeps the committed state histories of a rollout's hosts:
// a host is in flight from its first transition out of pending (its start,
// a decision of the leader) to its first final state. It returns the most
// hosts ever in flight at once, an error if that exceeds limit. At equal
// times a host ending is counted before one starting: the start was
// decided on the state the end had committed.
func checkParallel(deps []*api.Deployment, limit int) (int, error) {
	type event struct {
		at    time.Time
		delta int
		host  string
	}
	var events []event
	for _, d := range deps {
		var start, end time.Time
		for _, tr := range d.History {
			if start.IsZero() && tr.State != deploy.Pending && tr.State != deploy.Skipped {
				start = tr.At
			}
			if end.IsZero() && final(tr.State) {
				end = tr.At
			}
		}
		if start.IsZero() {
			continue // never started
		}
		events = append(events, event{start, +1, d.Host})
		if !end.IsZero() {
			events = append(events, event{end, -1, d.Host})
		}
	}
	sort.SliceStable(events, func(i, j int) bool {
		if !events[i].at.Equal(events[j].at) {
			return events[i].at.Before(events[j].at)
		}
		return events[i].delta < events[j].delta
	})
	running, peak := 0, 0
	var inflight []string
	for _, e := range events {
		running += e.delta
		if e.delta > 0 {
			inflight = append(inflight, e.host)
		} else {
			inflight = slices.DeleteFunc(inflight, func(h string) bool { return h == e.host })
		}
		if running > peak {
			peak = running
		}
		if running > limit {
			return peak, fmt.Errorf("%d hosts in flight at %s (max_parallel %d): %s",
				running, e.at.Format(time.RFC3339Nano), limit, strings.Join(inflight, ", "))
		}
	}
	return peak, nil
}

// checkSnapshots checks every observation of a rollout: never more hosts
// in flight than limit, and each host's state only moving up and never
// leaving a final state. It returns the peak observed.
func checkSnapshots(snaps []snapshot, limit int) (int, error) {
	last := map[string]deploy.HostState{}
	peak := 0
	for _, s := range snaps {
		n := 0
		for _, d := range s.Status.Hosts {
			if inFlight(d.State) {
				n++
			}
			prev, seen := last[d.Host]
			switch {
			case !seen:
			case final(prev) && d.State != prev:
				return peak, fmt.Errorf("host %s left final state %s for %s (observed at %s)", d.Host, prev, d.State, s.At.Format(time.RFC3339Nano))
			case rank[d.State] < rank[prev]:
				return peak, fmt.Errorf("host %s went back from %s to %s (observed at %s)", d.Host, prev, d.State, s.At.Format(time.RFC3339Nano))
			}
			last[d.Host] = d.State
		}
		peak = max(peak, n)
		if n > limit {
			return peak, fmt.Errorf("%d hosts in flight observed at %s (max_parallel %d):%s", n, s.At.Format(time.RFC3339Nano), limit, hostStates(&s.Status))
		}
	}
	return peak, nil
}

// checkOnce checks each host's committed history: every state at most
// once, in rising order, at non-decreasing times, one start, one end, and
// the end matching the host's state. A host applied twice would show a
// second start or a state repeated.
func checkOnce(deps []*api.Deployment) error {
	for _, d := range deps {
		prev := -1
		var at time.Time
		for i, tr := range d.History {
			r, ok := rank[tr.State]
			switch {
			case !ok:
				return fmt.Errorf("host %s: unknown state %q in its history", d.Host, tr.State)
			case r <= prev:
				return fmt.Errorf("host %s: %s after %s in its history: a state repeated or went back", d.Host, tr.State, d.History[i-1].State)
			case tr.At.Before(at):
				return fmt.Errorf("host %s: %s recorded at %s, before the state it follows", d.Host, tr.State, tr.At.Format(time.RFC3339Nano))
			}
			prev, at = r, tr.At
		}
		if n := len(d.History); n > 0 && d.History[n-1].State != d.State {
			return fmt.Errorf("host %s is %s but its history ends with %s", d.Host, d.State, d.History[n-1].State)
		}
		if len(d.History) == 0 && d.State != deploy.Pending {
			return fmt.Errorf("host %s is %s with no history", d.Host, d.State)
		}
	}
	return nil
}

// Audit actions the checker reads (docs/rollouts.md names them).
const (
	actCreated    = "rollout.created"
	actStarted    = "rollout.started"
	actPromoted   = "rollout.wave_promoted"
	actCompleted  = "rollout.completed"
	actPaused     = "rollout.paused"
	actThreshold  = "rollout.failed_threshold"
	actAborted    = "rollout.aborted"
	actRollingBk  = "rollout.rolling_back"
	actRolledBack = "rollout.rolled_back"
	actReverted   = "rollout.hosts_reverted"
)

// checkChain checks that the audit trail is one unbroken chain: sequence
// numbers 1..n, each entry naming the hash of the one before, Raft indexes
// never going back. (drover audit verify also recomputes the hashes.)
func checkChain(entries []api.AuditEntry) error {
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			return fmt.Errorf("entry %d has sequence number %d", i+1, e.Seq)
		}
		if i > 0 && e.Prev != entries[i-1].Hash {
			return fmt.Errorf("entry %d does not name the hash of entry %d", e.Seq, e.Seq-1)
		}
		if i > 0 && e.Index < entries[i-1].Index { // one command may append several entries
			return fmt.Errorf("entry %d has Raft index %d, before entry %d's %d", e.Seq, e.Index, e.Seq-1, entries[i-1].Index)
		}
	}
	return nil
}

// checkDecisions checks the decisions recorded about one rollout: created
// and started once, each wave promoted at most once and in order, at most
// one ending, and no decision of the rollout engine after it ended. Two
// leaders deciding at once would show a duplicate here. It returns how
// many entries it read.
func checkDecisions(entries []api.AuditEntry, r *api.Rollout) (int, error) {
	count := map[string]int{}
	lastWave := 1
	ended := ""
	n := 0
	for _, e := range entries {
		if e.Subject != r.ID {
			continue
		}
		n++
		count[e.Action]++
		if ended != "" && strings.HasPrefix(e.Actor, "engine@") {
			return n, fmt.Errorf("entry %d: the engine decided %s after the rollout was %s", e.Seq, e.Action, ended)
		}
		switch e.Action {
		case actPromoted:
			var wave, of int
			if _, err := fmt.Sscanf(e.Detail, "wave %d of %d", &wave, &of); err != nil {
				return n, fmt.Errorf("entry %d: cannot read the wave of %q", e.Seq, e.Detail)
			}
			if wave != lastWave+1 {
				return n, fmt.Errorf("entry %d: wave %d promoted after wave %d", e.Seq, wave, lastWave)
			}
			lastWave = wave
		case actCompleted, actAborted, actRolledBack:
			ended = e.Action
		}
	}
	for _, a := range []string{actStarted, actCompleted, actAborted, actRollingBk, actRolledBack} {
		if count[a] > 1 {
			return n, fmt.Errorf("%s recorded %d times", a, count[a])
		}
	}
	if r.Kind != api.KindRollback && count[actCreated] != 1 {
		return n, fmt.Errorf("%s recorded %d times", actCreated, count[actCreated])
	}
	if count[actStarted] != 1 {
		return n, fmt.Errorf("%s recorded %d times", actStarted, count[actStarted])
	}
	if r.State == api.RolloutCompleted && lastWave != len(r.Sizes) {
		return n, fmt.Errorf("completed after promoting to wave %d of %d", lastWave, len(r.Sizes))
	}
	return n, nil
}

// hostOutcome is everything known about one host after a scenario.
type hostOutcome struct {
	Host   string
	Before string // current version before the scenario (its disk)
	After  string // current version after it (its disk)
	Known  string // the version the control plane says it runs
	// Main is its deployment in the scenario's rollout, Rollback in that
	// rollout's rollback; nil if not a target.
	Main, Rollback *api.Deployment
	// Activations lists the versions activated during the scenario, from
	// the host's own record.
	Activations []string
}

// expected is the version a host must run after a scenario, from its
// final states: the new version if it succeeded and was not rolled back,
// else the one it ran before.
func (o hostOutcome) expected() (string, error) {
	v := o.Before
	if d := o.Main; d != nil {
		switch d.State {
		case deploy.Succeeded:
			v = d.Version
		case deploy.Reverted, deploy.Skipped, deploy.Pending:
		case deploy.Failed:
			v = d.Current // the host said where it stands; it must agree with its disk
		default:
			return "", fmt.Errorf("host %s is still %s", o.Host, d.State)
		}
	}
	if d := o.Rollback; d != nil {
		switch d.State {
		case deploy.Succeeded:
			v = d.Version
		case deploy.Reverted, deploy.Skipped, deploy.Pending:
		case deploy.Failed:
			v = d.Current
		default:
			return "", fmt.Errorf("host %s is still %s in the rollback", o.Host, d.State)
		}
	}
	return v, nil
}

// checkHosts accounts for every host's version: what its disk says must be
// what its final states imply and what the control plane believes, and
// the new version was activated at most once (exactly once if it
// succeeded), never on a host that did not start.
func checkHosts(outcomes []hostOutcome) error {
	var errs []error
	for _, o := range outcomes {
		want, err := o.expected()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o.After != want {
			errs = append(errs, fmt.Errorf("host %s runs %q on disk; its final states imply %q (before %q%s)", o.Host, o.After, want, o.Before, describe(o)))
		}
		if o.Known != o.After {
			errs = append(errs, fmt.Errorf("host %s runs %q on disk but the control plane says %q", o.Host, o.After, o.Known))
		}
		if d := o.Main; d != nil && final(d.State) && d.State != deploy.Skipped && d.Current != "" && o.Rollback == nil && d.Current != o.After {
			errs = append(errs, fmt.Errorf("host %s reported %q as %s but runs %q", o.Host, d.Current, d.State, o.After))
		}
		if d := o.Main; d != nil {
			n := 0
			for _, v := range o.Activations {
				if v == d.Version {
					n++
				}
			}
			switch {
			case n > 1:
				errs = append(errs, fmt.Errorf("host %s activated %s %d times", o.Host, d.Version, n))
			case d.State == deploy.Succeeded && n != 1:
				errs = append(errs, fmt.Errorf("host %s succeeded with %s but activated it %d times", o.Host, d.Version, n))
			case (d.State == deploy.Skipped || d.State == deploy.Pending) && n != 0:
				errs = append(errs, fmt.Errorf("host %s never started but activated %s", o.Host, d.Version))
			}
		}
	}
	return errors.Join(errs...)
}

func describe(o hostOutcome) string {
	s := ""
	if o.Main != nil {
		s += fmt.Sprintf(", %s in %s", o.Main.State, o.Main.Rollout)
	}
	if o.Rollback != nil {
		s += fmt.Sprintf(", %s in %s", o.Rollback.State, o.Rollback.Rollout)
	}
	return s
}

// checkWrites checks that every acknowledged write exists.
func checkWrites(acked []string, present map[string]bool) error {
	var lost []string
	for _, name := range acked {
		if !present[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%d acknowledged write(s) lost: %s", len(lost), strings.Join(lost, ", "))
	}
	return nil
}

// checkNoDecisionsBy checks that no audit entry was made by actor at or
// after a time: a server cut off from its peers commits nothing.
func checkNoDecisionsBy(entries []api.AuditEntry, actor string, from, to time.Time) error {
	for _, e := range entries {
		if e.Actor == actor && !e.Time.Before(from) && e.Time.Before(to) {
			return fmt.Errorf("entry %d (%s %s) committed by %s at %s, while it was cut off", e.Seq, e.Action, e.Subject, actor, e.Time.Format(time.RFC3339Nano))
		}
	}
	return nil
}
