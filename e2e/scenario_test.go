package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// scenario is one of the scenarios.
type scenario struct {
	name  string // subtest name
	title string
	run   func(s *scenarioRun)
}

// TestScenarios runs the scenarios in order on one cluster, each from a
// clean state: every container running and attached, no rollout active,
// every agent idle. Run one with -run 'TestScenarios/NAME'.
func TestScenarios(t *testing.T) {
	c := sharedCluster(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := &scenarioRun{t: t, c: c, ctx: suite.ctx, name: sc.name, title: sc.title}
			suite.mu.Lock()
			suite.summaries = append(suite.summaries, s)
			suite.mu.Unlock()
			defer s.finish()
			resetStart := time.Now()
			if err := c.reset(s.ctx); err != nil {
				t.Fatalf("cannot reset the cluster before the scenario: %v", err)
			}
			s.baseline()
			s.reset = time.Since(resetStart)
			s.start = time.Now()
			sc.run(s)
		})
	}
}

// scenarioRun is one scenario in progress: what it injected and what it
// checked, for its summary.
type scenarioRun struct {
	t     *testing.T
	c     *cluster
	ctx   context.Context
	name  string
	title string

	start, end time.Time
	reset      time.Duration
	faults     []string
	checks     []result
	failed     bool
	ran        bool

	before   map[string]string // host -> version on disk before the scenario
	acts     map[string]int    // host -> activations recorded before it
	payloads map[string]string // version -> SHA-256 of its payload file
}

// release records a release and keeps its payload's digest for the
// report check.
func (s *scenarioRun) release(r releaseSpec) {
	sum, err := s.c.release(s.ctx, r)
	s.must(err, "releasing "+r.Version)
	if s.payloads == nil {
		s.payloads = map[string]string{}
	}
	s.payloads[r.Version] = sum
}

// result is one invariant checked.
type result struct {
	Name, Detail string
	Err          error
}

// versions are the application's versions, rising through the run.
var versions atomic.Int32

func nextVersion() string { return fmt.Sprintf("1.%d.0", versions.Add(1)) }

// fault records a fault injected (or its effect observed), with the time
// since the scenario started.
func (s *scenarioRun) fault(format string, args ...any) {
	msg := fmt.Sprintf("+%.1fs ", time.Since(s.start).Seconds()) + fmt.Sprintf(format, args...)
	s.faults = append(s.faults, msg)
	s.t.Log("fault: " + msg)
}

// note logs progress.
func (s *scenarioRun) note(format string, args ...any) {
	s.t.Logf("+%.1fs %s", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

// check records an invariant; a violation fails the scenario.
func (s *scenarioRun) check(name, detail string, err error) {
	s.checks = append(s.checks, result{Name: name, Detail: detail, Err: err})
	if err != nil {
		s.t.Errorf("invariant violated: %s: %v", name, err)
		return
	}
	s.t.Logf("ok: %s (%s)", name, detail)
}

// must stops the scenario on a failure of the harness or of a step that
// everything after it depends on.
func (s *scenarioRun) must(err error, what string) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

// finish records the outcome and, on failure, shows the end of each
// server's log.
func (s *scenarioRun) finish() {
	s.end = time.Now()
	s.ran = !s.start.IsZero()
	s.failed = s.t.Failed()
	if !s.failed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range s.c.servers {
		out := containerLogs(ctx, n.Container, "", "25")
		s.t.Logf("the end of %s's log:\n%s", n.Name, out)
	}
}

// baseline records each host's version and activations before the
// scenario.
func (s *scenarioRun) baseline() {
	disks, err := s.c.readFleet(s.ctx)
	s.must(err, "reading the hosts' disks")
	s.before, s.acts = map[string]string{}, map[string]int{}
	for name, h := range disks {
		s.before[name], s.acts[name] = h.Current, len(h.Activations)
	}
}

// verify stops the recorder and the writes, waits for every agent to be
// idle, and checks the invariants every scenario shares: the audit chain;
// for each rollout recorded, max_parallel (in the committed histories and
// in every observation), states moving only forward, each host started
// and ended once, each decision recorded once and in order; every host's
// version accounted for; every acknowledged write present. It returns the
// final records of the rollouts, by ID.
func (s *scenarioRun) verify(rec *recorder, w *writes) map[string]*api.RolloutStatus {
	c, ctx := s.c, s.ctx
	var acked, unacked []string
	if w != nil {
		acked, unacked = w.stop()
	}
	rec.stop()
	s.must(c.waitAgentsIdle(ctx, 3*time.Minute), "agents did not become idle")
	ids := rec.followed()
	finals := map[string]*api.RolloutStatus{}
	for _, id := range ids {
		st, err := c.rollout(ctx, id)
		s.must(err, "reading rollout "+id)
		finals[id] = st
	}
	audit, err := c.audit(ctx)
	s.must(err, "reading the audit trail")
	s.check("the audit trail is one chain", fmt.Sprintf("%d entries", len(audit)), checkChain(audit))
	out, err := c.cli(ctx, c.viewer, "audit", "verify")
	s.check("drover audit verify", strings.TrimSpace(out), err)
	for _, id := range ids {
		st := finals[id]
		limit := limitOf(st.Rollout)
		peak, err := checkParallel(st.Hosts, limit)
		s.check("max_parallel never exceeded in "+id+"'s committed history",
			fmt.Sprintf("peak %d of %d, %d hosts, %s", peak, limit, len(st.Hosts), st.Rollout.State), err)
		snaps := rec.snapshots(id)
		peak, err = checkSnapshots(snaps, limit)
		s.check("max_parallel and forward-only states in every observation of "+id,
			fmt.Sprintf("%d observations, peak %d", len(snaps), peak), err)
		s.check("each host of "+id+" started and ended at most once", fmt.Sprintf("%d histories", len(st.Hosts)), checkOnce(st.Hosts))
		n, err := checkDecisions(audit, st.Rollout)
		s.check("decisions about "+id+" recorded once and in order", fmt.Sprintf("%d entries", n), err)
	}
	for _, id := range ids {
		st := finals[id]
		if st.Rollout.Kind == api.KindRollback {
			continue // its report is part of its rollout's
		}
		rep, err := c.report(ctx, id)
		s.must(err, "reading the report of "+id)
		s.check("the post-release report of "+id+" matches what happened",
			fmt.Sprintf("%d waves, %d hosts, %s", len(rep.Waves), len(rep.Hosts), rep.State),
			checkReport(rep, st, s.payloads[st.Rollout.Version], s.before))
	}
	if len(ids) > 0 {
		outcomes, err := s.outcomes(finals[ids[0]], finals)
		s.must(err, "reading the hosts' outcomes")
		s.check("every host's version accounted for (its disk, its final state, the control plane)",
			fmt.Sprintf("%d hosts", len(outcomes)), checkHosts(outcomes))
	}
	if w != nil {
		present, err := c.freezes(ctx)
		s.must(err, "listing freezes")
		s.check("no acknowledged write lost", fmt.Sprintf("%d acknowledged, %d not", len(acked), len(unacked)), checkWrites(acked, present))
	}
	return finals
}

// outcomes gathers every host's outcome after the rollout main (and its
// rollback): its disk, its activations, the control plane's view. It waits
// until the control plane's view agrees with the disks, or a minute passes
// (then checkHosts names the disagreement).
func (s *scenarioRun) outcomes(main *api.RolloutStatus, finals map[string]*api.RolloutStatus) ([]hostOutcome, error) {
	c, ctx := s.c, s.ctx
	var rb *api.RolloutStatus
	if id := main.Rollout.RollbackID; id != "" {
		rb = finals[id]
		if rb == nil {
			var err error
			if rb, err = c.rollout(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	disks, err := c.readFleet(ctx)
	if err != nil {
		return nil, err
	}
	disk := map[string]string{}
	for name, h := range disks {
		disk[name] = h.Current
	}
	known := map[string]string{}
	_ = waitFor(ctx, time.Minute, "the control plane to agree with the hosts' disks", func() (bool, error) {
		hosts, err := c.hosts(ctx)
		if err != nil {
			return false, err
		}
		agree := true
		for _, h := range hosts {
			known[h.ID] = h.Releases[app]
			agree = agree && known[h.ID] == disk[h.ID]
		}
		return agree, nil
	})
	var out []hostOutcome
	for _, a := range c.agents {
		acts := disks[a.Name].Activations
		o := hostOutcome{Host: a.Name, Before: s.before[a.Name], After: disk[a.Name], Known: known[a.Name],
			Activations: acts[min(s.acts[a.Name], len(acts)):]}
		for _, d := range main.Hosts {
			if d.Host == a.Name {
				o.Main = d
			}
		}
		if rb != nil {
			for _, d := range rb.Hosts {
				if d.Host == a.Name {
					o.Rollback = d
				}
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// reset brings the cluster back to a clean state between scenarios.
func (c *cluster) reset(ctx context.Context) error {
	for _, n := range append(append([]*node{}, c.servers...), c.agents...) {
		if err := c.restore(ctx, n); err != nil {
			return err
		}
	}
	if err := c.waitHealthy(ctx, 3*time.Minute); err != nil {
		return err
	}
	if err := c.endActiveRollouts(ctx); err != nil {
		return err
	}
	// Remove the markers that break a version's health check, and let a
	// halted agent act again.
	script := fmt.Sprintf("rm -f %[1]s/fail-*; if drover-agent status --dir %[1]s | grep -q HALTED; then drover-agent clear-halt --dir %[1]s; fi", agentDir)
	if err := c.eachAgent(func(a *node) error {
		_, err := c.exec(ctx, a, time.Minute, "sh", "-c", script)
		return err
	}); err != nil {
		return err
	}
	if err := c.waitHosts(ctx, 3*time.Minute); err != nil {
		return err
	}
	return c.waitAgentsIdle(ctx, 3*time.Minute)
}

// endActiveRollouts aborts every rollout that is not over and waits for
// rollbacks in progress to finish.
func (c *cluster) endActiveRollouts(ctx context.Context) error {
	return waitFor(ctx, 3*time.Minute, "no active rollout", func() (bool, error) {
		var rollouts []*api.Rollout
		if err := c.readJSON(ctx, c.viewer, time.Minute, &rollouts, "rollout", "list"); err != nil {
			return false, err
		}
		active := 0
		for _, r := range rollouts {
			switch r.State {
			case api.RolloutPending, api.RolloutQueued, api.RolloutRunning, api.RolloutPaused:
				active++
				if _, err := c.cli(ctx, c.admin, "rollout", "abort", r.ID, "--reason", "e2e: reset between scenarios"); err != nil {
					return false, err
				}
			case api.RolloutRollingBack:
				active++
			}
		}
		return active == 0, fmt.Errorf("%d rollouts active", active)
	})
}

// waitAgentsIdle waits until no agent is applying anything or holds a
// report it has not delivered.
func (c *cluster) waitAgentsIdle(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, "every agent idle with its reports delivered", func() (bool, error) {
		disks, err := c.readFleet(ctx)
		if err != nil {
			return false, err
		}
		var busy []string
		for _, a := range c.agents {
			if !disks[a.Name].idle() {
				busy = append(busy, a.Name)
			}
		}
		return len(busy) == 0, fmt.Errorf("busy: %s", strings.Join(busy, ", "))
	})
}

// printSummary writes every scenario's summary: faults injected,
// invariants checked, time taken.
func printSummary(w io.Writer) {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	if len(suite.summaries) == 0 {
		return
	}
	fmt.Fprintf(w, "\n=== drover e2e summary (run %s) ===\n", suite.run)
	fmt.Fprintf(w, "%-4s  %-56s %8s %7s %8s\n", "", "scenario", "time", "faults", "checks")
	var total time.Duration
	for _, s := range suite.summaries {
		status := "PASS"
		switch {
		case !s.ran:
			status = "SKIP"
		case s.failed:
			status = "FAIL"
		}
		took := time.Duration(0)
		if s.ran {
			took = s.end.Sub(s.start)
		}
		total += took + s.reset
		ok := 0
		for _, c := range s.checks {
			if c.Err == nil {
				ok++
			}
		}
		fmt.Fprintf(w, "%-4s  %-56s %8s %7d %4d/%-3d\n", status, s.title, took.Round(time.Second), len(s.faults), ok, len(s.checks))
	}
	fmt.Fprintf(w, "scenarios took %v (with resets between them)\n", total.Round(time.Second))
	for _, s := range suite.summaries {
		fmt.Fprintf(w, "\n--- %s (%s; reset before it %v)\n", s.title, s.name, s.reset.Round(time.Second))
		if len(s.faults) == 0 {
			fmt.Fprintln(w, "  faults: none")
		}
		for _, f := range s.faults {
			fmt.Fprintf(w, "  fault  %s\n", f)
		}
		for _, c := range s.checks {
			mark := "ok  "
			if c.Err != nil {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s   %s: %s\n", mark, c.Name, c.Detail)
			if c.Err != nil {
				fmt.Fprintf(w, "         %v\n", c.Err)
			}
		}
	}
}

// inState lists a rollout's hosts in one of the states.
func inState(st *api.RolloutStatus, states ...string) []*api.Deployment {
	var out []*api.Deployment
	for _, d := range st.Hosts {
		if slices.Contains(states, string(d.State)) {
			out = append(out, d)
		}
	}
	return out
}
