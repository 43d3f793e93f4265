package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/report"
	"github.com/drover-dev/drover/deploy"
)

// scenarios are the eight, in order.
var scenarios = []scenario{
	{"waves", "1. a rollout in waves completes", scenarioWaves},
	{"leader-killed", "2. the leader killed in the middle of a wave", scenarioLeaderKilled},
	{"leader-partitioned", "3. the leader partitioned away, then healed", scenarioLeaderPartitioned},
	{"agents-killed", "4. agents killed in the middle of an apply", scenarioAgentsKilled},
	{"server-paused", "5. the leader paused beyond the election timeout", scenarioServerPaused},
	{"rolling-restart", "6. a rolling restart of all three servers", scenarioRollingRestart},
	{"failing-checks", "7. health checks fail on some hosts: pause, rollback", scenarioFailingChecks},
	{"dead-mans-switch", "8. an agent cut off after activation reverts itself", scenarioDeadMansSwitch},
}

// scenarioWaves: a rollout in waves 1, 50%, 100% over the twelve hosts
// completes with no fault; every agent's current release is the new one,
// and the post-release report (checked in verify, as in every scenario)
// says what happened.
func scenarioWaves(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v})
	id, err := c.createRollout(ctx, v, plan{Waves: "1,50%,100%", MaxParallel: 3})
	s.must(err, "creating the rollout")
	s.note("rollout %s of %s@%s started", id, app, v)
	rec := c.record(ctx, 500*time.Millisecond, id)
	w := c.startWrites(ctx, "waves")
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.note("rollout %s is %s", id, st.Rollout.State)
	finals := s.verify(rec, w)
	final := finals[id]
	s.check("the rollout completed", final.Rollout.State, stateIs(final.Rollout, api.RolloutCompleted))
	disks, err := c.readFleet(ctx)
	s.must(err, "reading the hosts' disks")
	var notNew []string
	for _, a := range c.agents {
		if got := disks[a.Name].Current; got != v {
			notNew = append(notNew, fmt.Sprintf("%s runs %q", a.Name, got))
		}
	}
	var err2 error
	if len(notNew) > 0 {
		err2 = fmt.Errorf("not on %s: %v", v, notNew)
	}
	s.check("every agent's current link points at the new release", fmt.Sprintf("%d hosts on %s", len(c.agents)-len(notNew), v), err2)
}

// stateIs checks a rollout's state.
func stateIs(r *api.Rollout, want string) error {
	if r.State != want {
		return fmt.Errorf("rollout %s is %s (%s), not %s", r.ID, r.State, r.Reason, want)
	}
	return nil
}

// checkReport compares a post-release report with the rollout's final
// record and what the scenario knows: the payload's digest computed on
// this machine, each host's version before.
func checkReport(rep *report.Report, st *api.RolloutStatus, payloadSHA string, before map[string]string) error {
	var errs []error
	r := st.Rollout
	if rep.Rollout != r.ID || rep.State != r.State || rep.Release != r.Release {
		errs = append(errs, fmt.Errorf("report of %s (%s, %s), rollout %s (%s, %s)", rep.Rollout, rep.Release, rep.State, r.ID, r.Release, r.State))
	}
	if rep.Artifact.PayloadSHA256 != payloadSHA {
		errs = append(errs, fmt.Errorf("report names payload %s, the file released was %s", rep.Artifact.PayloadSHA256, payloadSHA))
	}
	if len(rep.Waves) != len(r.Sizes) {
		errs = append(errs, fmt.Errorf("report has %d waves, the rollout %d", len(rep.Waves), len(r.Sizes)))
	}
	for i, w := range rep.Waves {
		if i >= len(r.Sizes) {
			break
		}
		size := r.Sizes[i]
		if i > 0 {
			size -= r.Sizes[i-1]
		}
		count := map[deploy.HostState]int{}
		for _, d := range st.Hosts {
			if d.Wave == i {
				count[d.State]++
			}
		}
		if w.Hosts != size || w.Succeeded != count[deploy.Succeeded] || w.Reverted != count[deploy.Reverted] ||
			w.Failed != count[deploy.Failed] || w.Skipped != count[deploy.Skipped] {
			errs = append(errs, fmt.Errorf("wave %d: report says %d hosts, %d succeeded, %d reverted, %d failed, %d skipped; the rollout has %d hosts: %v",
				w.Wave, w.Hosts, w.Succeeded, w.Reverted, w.Failed, w.Skipped, size, count))
		}
	}
	byHost := map[string]*api.Deployment{}
	for _, d := range st.Hosts {
		byHost[d.Host] = d
	}
	if len(rep.Hosts) != len(st.Hosts) {
		errs = append(errs, fmt.Errorf("report lists %d hosts, the rollout has %d", len(rep.Hosts), len(st.Hosts)))
	}
	for _, h := range rep.Hosts {
		d := byHost[h.Host]
		switch {
		case d == nil:
			errs = append(errs, fmt.Errorf("report lists %s, not a target", h.Host))
		case h.State != d.State || h.Wave != d.Wave+1:
			errs = append(errs, fmt.Errorf("report: %s %s in wave %d; rollout: %s in wave %d", h.Host, h.State, h.Wave, d.State, d.Wave+1))
		case h.From != before[h.Host] && d.State != deploy.Pending && d.State != deploy.Skipped:
			errs = append(errs, fmt.Errorf("report: %s came from %q; it ran %q before", h.Host, h.From, before[h.Host]))
		case h.State == deploy.Succeeded && h.To != r.Version:
			errs = append(errs, fmt.Errorf("report: %s went to %q, not %s", h.Host, h.To, r.Version))
		}
	}
	var actions []string
	for _, e := range rep.Timeline {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{actCreated, actStarted} {
		if !slices.Contains(actions, want) {
			errs = append(errs, fmt.Errorf("report's timeline lacks %s: %v", want, actions))
		}
	}
	if r.State == api.RolloutCompleted && !slices.Contains(actions, actCompleted) {
		errs = append(errs, fmt.Errorf("report's timeline lacks %s: %v", actCompleted, actions))
	}
	return errors.Join(errs...)
}

// inFlightStates are the states of a host between its start and its end.
var inFlightStates = []string{"instructed", "downloading", "staged", "waiting-for-window", "activating", "probation"}

// finalIn counts a rollout's hosts of one wave (0-based) in a final state.
func finalIn(st *api.RolloutStatus, wave int) int {
	n := 0
	for _, d := range st.Hosts {
		if d.Wave == wave && final(d.State) {
			n++
		}
	}
	return n
}

// startedAfter lists the hosts whose start was committed after t.
func startedAfter(st *api.RolloutStatus, t time.Time) []string {
	var out []string
	for _, d := range st.Hosts {
		for _, tr := range d.History {
			if tr.State != deploy.Pending && tr.State != deploy.Skipped {
				if tr.At.After(t) {
					out = append(out, d.Host)
				}
				break
			}
		}
	}
	return out
}

// decisionsBy counts the audit entries about a rollout made by an actor.
func decisionsBy(entries []api.AuditEntry, subject, actor string) int {
	n := 0
	for _, e := range entries {
		if e.Subject == subject && e.Actor == actor {
			n++
		}
	}
	return n
}

// scenarioLeaderKilled: the leader is killed (docker kill: SIGKILL) while
// the second wave is under way. The rollout must go on under the new
// leader and complete, with no host beyond max_parallel at once, no host
// applied twice and no acknowledged write lost; the killed server, started
// again, catches up.
func scenarioLeaderKilled(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v, MinHealthy: 4 * time.Second})
	id, err := c.createRollout(ctx, v, plan{Waves: "2,100%", MaxParallel: 3})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 300*time.Millisecond, id)
	w := c.startWrites(ctx, "leader-killed")
	s.must(rec.waitFor(ctx, id, 3*time.Minute, "the second wave under way", func(st *api.RolloutStatus) bool {
		return st.Rollout.Wave == 1 && finalIn(st, 1) >= 1 && len(inState(st, inFlightStates...)) >= 2
	}), "waiting for the second wave")
	leader, err := c.waitLeader(ctx, time.Minute, "")
	s.must(err, "finding the leader")
	inflight := len(inState(rec.latest(id), inFlightStates...))
	s.must(c.kill(ctx, leader), "killing the leader")
	killed := time.Now()
	s.fault("docker kill %s (the leader) in wave 2 with %d host(s) in flight", leader.Name, inflight)
	next, err := c.waitLeader(ctx, time.Minute, leader.Name)
	s.must(err, "waiting for a new leader")
	s.fault("%s leads, %.1fs after the kill", next.Name, time.Since(killed).Seconds())
	s.must(rec.waitFor(ctx, id, 2*time.Minute, "a host started after the kill", func(st *api.RolloutStatus) bool {
		return len(startedAfter(st, killed)) > 0 || st.Rollout.State == api.RolloutCompleted
	}), "waiting for the new leader to start a host")
	s.must(c.start(ctx, leader), "starting the killed server again")
	s.fault("docker start %s", leader.Name)
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.note("rollout %s is %s", id, st.Rollout.State)
	finals := s.verify(rec, w)
	final := finals[id]
	s.check("the rollout completed", final.Rollout.State, stateIs(final.Rollout, api.RolloutCompleted))
	audit, err := c.audit(ctx)
	s.must(err, "reading the audit trail")
	after := startedAfter(final, killed)
	var resumed error
	if len(after) == 0 || decisionsBy(audit, id, "engine@"+next.Name) == 0 {
		resumed = fmt.Errorf("hosts started after the kill: %v; decisions by engine@%s: %d", after, next.Name, decisionsBy(audit, id, "engine@"+next.Name))
	}
	s.check("the new leader resumed the rollout", fmt.Sprintf("%d host(s) started after the kill; %d decision(s) by engine@%s",
		len(after), decisionsBy(audit, id, "engine@"+next.Name), next.Name), resumed)
	s.check("the killed server caught up", leader.Name, c.waitHealthy(ctx, 2*time.Minute))
}

// waveUnderWay waits until the second wave has a host done and two in
// flight: the middle of a wave.
func waveUnderWay(s *scenarioRun, rec *recorder, id string) {
	s.must(rec.waitFor(s.ctx, id, 3*time.Minute, "the second wave under way", func(st *api.RolloutStatus) bool {
		return st.Rollout.Wave == 1 && finalIn(st, 1) >= 1 && len(inState(st, inFlightStates...)) >= 2
	}), "waiting for the second wave")
}

// waitStepDown waits until a server's log, since a time, says it lost
// leadership, and returns when that was seen.
func waitStepDown(s *scenarioRun, n *node, since time.Time) time.Time {
	s.must(waitFor(s.ctx, 2*time.Minute, n.Name+" to step down", func() (bool, error) {
		return strings.Contains(s.c.logs(s.ctx, n, since), "lost leadership"), nil
	}), "waiting for the old leader to step down")
	return time.Now()
}

// scenarioLeaderPartitioned: the leader is disconnected from the network
// (docker network disconnect) in the middle of a wave. The others elect a
// leader and finish the rollout without it; the old leader steps down; the
// agents that were connected to it carry on through the others; once
// healed it rejoins as a follower. The old leader commits no decision while
// cut off, and no acknowledged write is lost.
func scenarioLeaderPartitioned(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v, MinHealthy: 4 * time.Second})
	id, err := c.createRollout(ctx, v, plan{Waves: "1,100%", MaxParallel: 3})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 300*time.Millisecond, id)
	w := c.startWrites(ctx, "partition")
	waveUnderWay(s, rec, id)
	leader, err := c.waitLeader(ctx, time.Minute, "")
	s.must(err, "finding the leader")
	attached, err := c.agentsConnectedTo(ctx, leader)
	s.must(err, "finding the agents connected to the leader")
	s.must(c.disconnect(ctx, leader), "cutting the leader off")
	cut := time.Now()
	s.fault("docker network disconnect %s (the leader) in wave 2; %d agent(s) had connections to it", leader.Name, len(attached))
	next, err := c.waitLeader(ctx, time.Minute, leader.Name)
	s.must(err, "waiting for a new leader")
	s.fault("%s leads, %.1fs after the cut", next.Name, time.Since(cut).Seconds())
	waitStepDown(s, leader, cut)
	s.fault("%s stepped down while cut off (its log: lost leadership)", leader.Name)
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.check("the rollout completed without the cut-off leader", st.Rollout.State, stateIs(st.Rollout, api.RolloutCompleted))
	after := startedAfter(st, cut)
	var failover error
	if len(after) == 0 {
		failover = fmt.Errorf("no host started after the cut")
	}
	s.check("agents went on through the other servers", fmt.Sprintf("%d host(s) started and finished after the cut; %d agent(s) had been connected to the old leader",
		len(after), len(attached)), failover)
	before, err := c.status(ctx)
	s.must(err, "reading the cluster status")
	s.must(c.connect(ctx, leader), "healing the partition")
	healed := time.Now()
	s.fault("docker network connect %s after %.1fs cut off", leader.Name, healed.Sub(cut).Seconds())
	s.check("the healed server rejoined as a follower of the new leader", leader.Name, c.waitHealthy(ctx, 2*time.Minute))
	now, err := c.status(ctx)
	s.must(err, "reading the cluster status")
	s.fault("after healing: leader %s, term %d (before healing: %s, term %d)", now.Leader, now.Term, before.Leader, before.Term)
	s.verify(rec, w)
	audit, err := c.audit(ctx)
	s.must(err, "reading the audit trail")
	s.check("no decision committed by the old leader while cut off",
		fmt.Sprintf("engine@%s between the cut and the heal, %.1fs", leader.Name, healed.Sub(cut).Seconds()),
		checkNoDecisionsBy(audit, "engine@"+leader.Name, cut, healed))
}

// scenarioAgentsKilled: agents are killed (docker kill: SIGKILL) at every
// step of an apply — while downloading, during activation (the activate
// hook takes 4s), on probation — and started again. Each must end on the
// old version or the new one, and the control plane must know which; the
// agents killed during activation must have resumed by reverting.
func scenarioAgentsKilled(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v, ActivateSleep: 4 * time.Second, MinHealthy: 3 * time.Second})
	id, err := c.createRollout(ctx, v, plan{Waves: "100%", MaxParallel: 4, MaxFailures: "100%"})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 200*time.Millisecond, id)
	w := c.startWrites(ctx, "agents-killed")
	// How many kills to land in each step.
	want := map[deploy.HostState]int{deploy.Activating: 3, deploy.Probation: 2, deploy.Downloading: 1, deploy.Instructed: 1}
	killedAt := map[string]deploy.HostState{}
	var restarts []chan error
	err = waitFor(ctx, 4*time.Minute, "agents to kill at every step", func() (bool, error) {
		st := rec.latest(id)
		if st == nil {
			return false, nil
		}
		for _, d := range st.Hosts {
			if want[d.State] == 0 || killedAt[d.Host] != "" {
				continue
			}
			a := c.agent(d.Host)
			if err := c.kill(ctx, a); err != nil {
				return false, err
			}
			want[d.State]--
			killedAt[d.Host] = d.State
			s.fault("docker kill %s while %s", a.Name, d.State)
			done := make(chan error, 1)
			restarts = append(restarts, done)
			go func() { done <- s.restartWhenDead(a) }()
		}
		left := 0
		for _, n := range want {
			left += n
		}
		return left == 0 || st.Rollout.State != api.RolloutRunning, fmt.Errorf("%d kills to go", left)
	})
	s.must(err, "killing agents")
	for _, done := range restarts {
		s.must(<-done, "starting a killed agent again")
	}
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.note("rollout %s is %s", id, st.Rollout.State)
	finals := s.verify(rec, w)
	final := finals[id]
	s.check("the rollout completed", final.Rollout.State, stateIs(final.Rollout, api.RolloutCompleted))
	disks, err := c.readFleet(ctx)
	s.must(err, "reading the hosts' disks")
	var errs []error
	resumedInActivation := 0
	for host, step := range killedAt {
		var d *api.Deployment
		for _, x := range final.Hosts {
			if x.Host == host {
				d = x
			}
		}
		got := disks[host].Current
		if got != v && got != s.before[host] {
			errs = append(errs, fmt.Errorf("%s runs %q: neither %q nor %q", host, got, s.before[host], v))
		}
		if d.Current != got {
			errs = append(errs, fmt.Errorf("%s runs %q but reported %q (%s)", host, got, d.Current, d.State))
		}
		for _, line := range strings.Split(c.logs(ctx, c.agent(host), s.start), "\n") {
			if strings.Contains(line, "resuming interrupted apply") && strings.Contains(line, "step=activating") {
				resumedInActivation++
			}
		}
		s.fault("%s, killed while %s: %s, runs %q", host, step, d.State, got)
	}
	s.check("each killed agent ended on the old or the new version, as reported", fmt.Sprintf("%d agents killed", len(killedAt)), errors.Join(errs...))
	var activation error
	if resumedInActivation == 0 {
		activation = fmt.Errorf("no killed agent was interrupted during activation")
	}
	s.check("agents killed during activation resumed by reverting", fmt.Sprintf("%d agent(s) resumed an interrupted activation", resumedInActivation), activation)
}

// restartWhenDead waits until a killed container has stopped, then starts
// it again.
func (s *scenarioRun) restartWhenDead(a *node) error {
	err := waitFor(s.ctx, time.Minute, a.Name+" to stop", func() (bool, error) {
		st, _, err := s.c.containerState(s.ctx, a)
		return err == nil && st != "running", err
	})
	if err != nil {
		return err
	}
	return s.c.start(s.ctx, a)
}

// scenarioServerPaused: the leader is frozen (docker pause) in the middle
// of a wave for at least 10 seconds, ten times the election timeout, then
// resumed. The others elect a leader and go on; the resumed server steps
// down and commits nothing it decided while frozen.
func scenarioServerPaused(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v, MinHealthy: 4 * time.Second})
	id, err := c.createRollout(ctx, v, plan{Waves: "1,100%", MaxParallel: 3})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 300*time.Millisecond, id)
	w := c.startWrites(ctx, "paused")
	waveUnderWay(s, rec, id)
	leader, err := c.waitLeader(ctx, time.Minute, "")
	s.must(err, "finding the leader")
	s.must(c.pause(ctx, leader), "pausing the leader")
	paused := time.Now()
	s.fault("docker pause %s (the leader) in wave 2", leader.Name)
	next, err := c.waitLeader(ctx, time.Minute, leader.Name)
	s.must(err, "waiting for a new leader")
	s.fault("%s leads, %.1fs after the pause", next.Name, time.Since(paused).Seconds())
	// Keep it frozen until the new leader has started a host, and at
	// least 10s: well past the election timeout (1s).
	s.must(rec.waitFor(ctx, id, 2*time.Minute, "the new leader to start a host", func(st *api.RolloutStatus) bool {
		return (len(startedAfter(st, paused)) > 0 || st.Rollout.State != api.RolloutRunning) && time.Since(paused) >= 10*time.Second
	}), "waiting for the new leader")
	s.must(c.unpause(ctx, leader), "resuming the paused leader")
	resumed := time.Now()
	s.fault("docker unpause %s after %.1fs", leader.Name, resumed.Sub(paused).Seconds())
	stepped := waitStepDown(s, leader, paused)
	s.fault("%s stepped down after it resumed (its log: lost leadership)", leader.Name)
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.check("the rollout completed", st.Rollout.State, stateIs(st.Rollout, api.RolloutCompleted))
	s.check("the resumed server caught up as a follower", leader.Name, c.waitHealthy(ctx, 2*time.Minute))
	s.verify(rec, w)
	audit, err := c.audit(ctx)
	s.must(err, "reading the audit trail")
	s.check("no decision committed by the frozen leader",
		fmt.Sprintf("engine@%s from the pause until it stepped down, %.1fs", leader.Name, stepped.Sub(paused).Seconds()),
		checkNoDecisionsBy(audit, "engine@"+leader.Name, paused, stepped))
}

// scenarioRollingRestart: every server is stopped (SIGTERM) and started
// again, one after the other, each once the cluster is whole again, while
// a rollout runs. The rollout completes with every invariant intact.
func scenarioRollingRestart(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v, MinHealthy: 5 * time.Second})
	id, err := c.createRollout(ctx, v, plan{Waves: "1,50%,100%", MaxParallel: 2})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 300*time.Millisecond, id)
	w := c.startWrites(ctx, "restart")
	s.must(rec.waitFor(ctx, id, 2*time.Minute, "a host in flight", func(st *api.RolloutStatus) bool {
		return len(inState(st, inFlightStates...)) > 0
	}), "waiting for the rollout to start")
	running := 0
	for _, srv := range c.servers {
		st, err := c.status(ctx)
		role := "a follower"
		if err == nil && st.Leader == srv.Name {
			role = "the leader"
		}
		if r := rec.latest(id); r != nil && r.Rollout.State == api.RolloutRunning {
			running++
		}
		s.must(c.stop(ctx, srv), "stopping "+srv.Name)
		s.fault("docker stop %s (%s)", srv.Name, role)
		s.must(c.start(ctx, srv), "starting "+srv.Name)
		s.fault("docker start %s", srv.Name)
		s.must(c.waitHealthy(ctx, 2*time.Minute), "waiting for "+srv.Name+" to catch up")
		s.note("%s caught up", srv.Name)
	}
	var during error
	if running != len(c.servers) {
		during = fmt.Errorf("the rollout was running at only %d of the %d restarts", running, len(c.servers))
	}
	s.check("every restart happened during the rollout", fmt.Sprintf("%d of %d", running, len(c.servers)), during)
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.check("the rollout completed", st.Rollout.State, stateIs(st.Rollout, api.RolloutCompleted))
	s.verify(rec, w)
}

// scenarioFailingChecks: a release whose health check fails on some hosts.
// With on_failure pause, those hosts revert, the threshold trips and the
// rollout pauses, starting no host after that. With on_failure rollback,
// the failing host reverts and every host that took the new release is
// taken back, in waves.
func scenarioFailingChecks(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	// Pause at the threshold.
	v1 := nextVersion()
	s.release(releaseSpec{Version: v1, MinHealthy: 2 * time.Second, HealthyDeadline: 8 * time.Second})
	broken := []*node{c.agents[4], c.agents[5]} // in the second wave
	for _, a := range broken {
		_, err := c.exec(ctx, a, 30*time.Second, "touch", agentDir+"/fail-"+v1)
		s.must(err, "breaking "+a.Name)
		s.fault("%s: its health check of %s will fail", a.Name, v1)
	}
	id, err := c.createRollout(ctx, v1, plan{Waves: "2,100%", MaxParallel: 3, MaxFailures: "1", OnFailure: "pause"})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 300*time.Millisecond, id)
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.check("the rollout paused at its failure threshold", st.Rollout.Reason, stateIs(st.Rollout, api.RolloutPaused))
	finals := s.verify(rec, nil)
	final := finals[id]
	audit, err := c.audit(ctx)
	s.must(err, "reading the audit trail")
	s.check("the broken hosts reverted with their check's output", hostNames(broken), checkReverted(final, broken, "this version is broken here"))
	s.check("no host started after the threshold tripped", "", checkNoStartAfterTrip(final, audit))
	s.must(c.cliErr(ctx, c.admin, "rollout", "abort", id, "--reason", "e2e: paused at its threshold"), "aborting the paused rollout")

	// Roll back at the threshold.
	s.baseline()
	v2 := nextVersion()
	s.release(releaseSpec{Version: v2, MinHealthy: 2 * time.Second, HealthyDeadline: 8 * time.Second})
	bad := c.agents[10] // in the last wave
	_, err = c.exec(ctx, bad, 30*time.Second, "touch", agentDir+"/fail-"+v2)
	s.must(err, "breaking "+bad.Name)
	s.fault("%s: its health check of %s will fail", bad.Name, v2)
	id2, err := c.createRollout(ctx, v2, plan{Waves: "1,50%,100%", MaxParallel: 3, MaxFailures: "0", OnFailure: "rollback"})
	s.must(err, "creating the second rollout")
	rec2 := c.record(ctx, 300*time.Millisecond, id2)
	st, err = rec2.waitEnded(ctx, id2, 6*time.Minute)
	s.must(err, "waiting for the second rollout to be rolled back")
	s.check("the rollout rolled back at its failure threshold", st.Rollout.Reason, stateIs(st.Rollout, api.RolloutRolledBack))
	finals = s.verify(rec2, nil)
	final = finals[id2]
	s.check("the broken host reverted with its check's output", bad.Name, checkReverted(final, []*node{bad}, "this version is broken here"))
	rb := finals[final.Rollout.RollbackID]
	var rbErr error
	switch {
	case rb == nil:
		rbErr = fmt.Errorf("no rollback rollout recorded (rollback_id %q)", final.Rollout.RollbackID)
	case rb.Rollout.State != api.RolloutCompleted:
		rbErr = fmt.Errorf("rollback %s is %s", rb.Rollout.ID, rb.Rollout.State)
	case len(rb.Rollout.Sizes) < 2:
		rbErr = fmt.Errorf("rollback %s took its %d hosts back in one wave", rb.Rollout.ID, len(rb.Hosts))
	}
	detail := ""
	if rb != nil {
		detail = fmt.Sprintf("%s took %d host(s) back in %d waves", rb.Rollout.ID, len(rb.Hosts), len(rb.Rollout.Sizes))
	}
	s.check("the rollback completed, in waves", detail, rbErr)
}

// checkReverted checks that hosts ended reverted with the check's output.
func checkReverted(st *api.RolloutStatus, hosts []*node, output string) error {
	var errs []error
	for _, a := range hosts {
		for _, d := range st.Hosts {
			if d.Host == a.Name && (d.State != deploy.Reverted || !strings.Contains(d.Output+d.Reason, output)) {
				errs = append(errs, fmt.Errorf("%s is %s (reason %q, output %q)", d.Host, d.State, d.Reason, d.Output))
			}
		}
	}
	return errors.Join(errs...)
}

// checkNoStartAfterTrip checks that no host of a rollout started after its
// failure threshold tripped (the audit entry of the trip), and that the
// failures exceed the threshold by fewer than max_parallel.
func checkNoStartAfterTrip(st *api.RolloutStatus, audit []api.AuditEntry) error {
	var trip time.Time
	for _, e := range audit {
		if e.Subject == st.Rollout.ID && e.Action == actThreshold {
			trip = e.Time
		}
	}
	if trip.IsZero() {
		return fmt.Errorf("no %s entry for %s", actThreshold, st.Rollout.ID)
	}
	if late := startedAfter(st, trip); len(late) > 0 {
		return fmt.Errorf("started after the trip at %s: %v", trip.Format(time.RFC3339Nano), late)
	}
	failed := len(inState(st, string(deploy.Reverted), string(deploy.Failed)))
	if limit := allowedFailures(st.Rollout.Plan.MaxFailures, len(st.Rollout.Targets)) + limitOf(st.Rollout) - 1; failed > limit {
		return fmt.Errorf("%d hosts failed; at most %d may (the threshold plus hosts in flight)", failed, limit)
	}
	return nil
}

// allowedFailures is a threshold over total hosts: a count, or a
// percentage rounded down (docs/rollouts.md).
func allowedFailures(t deploy.Threshold, total int) int {
	if t.Percent > 0 {
		return t.Percent * total / 100
	}
	return t.Count
}

func hostNames(nodes []*node) string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return strings.Join(out, ", ")
}

// scenarioDeadMansSwitch: a release whose probation lasts 25s, with
// unreachable_after 5s. One of three hosts is cut off from every server
// (docker network disconnect) once it has activated: it switches back by
// itself while cut off, and when it is connected again it reports the
// revert, with the dead-man's switch as the reason. The others commit.
func scenarioDeadMansSwitch(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	s.release(releaseSpec{Version: v, MinHealthy: 25 * time.Second, HealthyDeadline: 90 * time.Second, UnreachableAfter: 5 * time.Second})
	id, err := c.createRollout(ctx, v, plan{Waves: "100%", MaxParallel: 3, MaxFailures: "1", Where: "idx<=3"})
	s.must(err, "creating the rollout")
	rec := c.record(ctx, 300*time.Millisecond, id)
	w := c.startWrites(ctx, "deadman")
	target := c.agents[1]
	s.must(rec.waitFor(ctx, id, 3*time.Minute, target.Name+" on probation", func(st *api.RolloutStatus) bool {
		return len(inState(st, string(deploy.Probation))) > 0 && slices.ContainsFunc(st.Hosts, func(d *api.Deployment) bool {
			return d.Host == target.Name && d.State == deploy.Probation
		})
	}), "waiting for the host's probation")
	s.must(c.disconnect(ctx, target), "cutting the host off")
	cut := time.Now()
	s.fault("docker network disconnect %s while on probation with %s", target.Name, v)
	s.must(waitFor(ctx, time.Minute, target.Name+" to switch back by itself", func() (bool, error) {
		h, err := c.readHost(ctx, target)
		return err == nil && h.Current == s.before[target.Name], err
	}), "waiting for the dead-man's switch")
	s.fault("%s switched back to %q by itself, %.1fs after it was cut off", target.Name, s.before[target.Name], time.Since(cut).Seconds())
	var unknown error
	if st := rec.latest(id); st != nil {
		for _, d := range st.Hosts {
			if d.Host == target.Name && d.State != deploy.Probation {
				unknown = fmt.Errorf("the control plane has %s %s while it is cut off", d.Host, d.State)
			}
		}
	}
	s.check("the switch acted without any server", "the control plane still had it on probation", unknown)
	s.must(c.connect(ctx, target), "connecting the host again")
	s.fault("docker network connect %s after %.1fs", target.Name, time.Since(cut).Seconds())
	st, err := rec.waitEnded(ctx, id, 3*time.Minute)
	s.must(err, "waiting for the rollout")
	finals := s.verify(rec, w)
	final := finals[id]
	s.check("the rollout completed with one host reverted", final.Rollout.Reason, stateIs(st.Rollout, api.RolloutCompleted))
	s.check("the cut-off host reported the revert by the dead-man's switch", target.Name, checkReverted(final, []*node{target}, "dead-man's switch"))
	var others []error
	for _, d := range final.Hosts {
		if d.Host != target.Name && d.State != deploy.Succeeded {
			others = append(others, fmt.Errorf("%s is %s: %s", d.Host, d.State, d.Reason))
		}
	}
	s.check("the hosts that stayed connected committed", fmt.Sprintf("%d hosts", len(final.Hosts)-1), errors.Join(others...))
}
