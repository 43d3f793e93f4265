package state

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// rolloutCreate plans a rollout: it resolves the selector to a fixed,
// ordered target set and refuses a rollout that would change a host that
// another active rollout changes in an overlapping period (unless queued
// after it), or one scheduled inside a freeze (unless an admin overrides).
// The rollout is pending until started, or queued.
func (w *writer) rolloutCreate(b RolloutCreate) (string, *api.Error) {
	rel, m, err := w.release(b.Release)
	if err != nil {
		return "", err
	}
	if err := b.Plan.Validate(); err != nil {
		return "", api.Errorf(api.CodeInvalid, "%v", err)
	}
	hosts, err := w.targets(m, b.Selector, b.Where)
	if err != nil {
		return "", err
	}
	if b.Env != "" {
		if hosts, err = w.envHosts(b.Env, hosts); err != nil {
			return "", err
		}
		if len(hosts) == 0 {
			return "", api.Errorf(api.CodeInvalid, "no host of environment %s matches the rollout's selector and filter", b.Env)
		}
	}
	targets := hostIDs(hosts)
	r := &api.Rollout{
		ID: "r-" + strconv.FormatUint(w.index, 10), Kind: api.KindRelease, Release: rel.ID, App: rel.App, Version: rel.Version,
		Selector: b.Selector, Where: b.Where, Env: w.stageOf(rel.App, b.Env, hosts), Plan: b.Plan, Targets: targets, Sizes: b.Plan.Waves.Sizes(len(targets)),
		State: api.RolloutPending, CreatedBy: w.cmd.Actor, CreatedAt: w.cmd.Time, UpdatedAt: w.cmd.Time,
	}
	from, to := schedule(b.Plan, w.cmd.Time)
	if cs := w.conflicts(targets, from, to); len(cs) > 0 {
		if !b.Queue {
			return "", api.Errorf(api.CodeConflict, "conflicts with %s: a host has one change at a time; add --queue to start after it, or schedule this rollout with not_before after its deadline", joinStrings(cs))
		}
		r.State = api.RolloutQueued
		for _, c := range cs {
			r.After = append(r.After, c.rollout.ID)
		}
	}
	if hits := w.frozen(hosts, from, to); len(hits) > 0 {
		if b.Override == "" {
			return "", api.Errorf(api.CodeConflict, "scheduled %s, inside %s; wait for the freeze to end, or an admin may override it with a reason", describeSchedule(from, to), joinStrings(hits))
		}
		r.Overrides = append(r.Overrides, api.Override{By: w.cmd.Actor, At: w.cmd.Time, Reason: b.Override, Gates: []string{GateFreeze}})
	}
	w.meta(&r.Meta)
	w.insert(tabRollouts, r)
	wave := 0
	for i, h := range targets {
		for i >= r.Sizes[wave] {
			wave++
		}
		d := &api.Deployment{ID: r.ID + "/" + h, Rollout: r.ID, Host: h, Wave: wave, App: rel.App,
			Version: rel.Version, Release: rel.ID, State: deploy.Pending, UpdatedAt: w.cmd.Time}
		w.meta(&d.Meta)
		w.insert(tabDeployments, d)
	}
	w.audit(AuditRolloutCreate, r.ID, "%s to %d host(s) (%s%s%s), waves %s, max_parallel %d, max_failures %s, on_failure %s",
		rel.ID, len(targets), formatSelector(b.Selector), whereSuffix(b.Where), envSuffix(r.Env), b.Plan.Waves, b.Plan.MaxParallel, b.Plan.MaxFailures, onFailure(b.Plan))
	if r.State == api.RolloutQueued {
		w.audit(AuditRolloutQueue, r.ID, "after %s", strings.Join(r.After, ", "))
	}
	if len(r.Overrides) > 0 {
		w.audit(AuditRolloutOverride, r.ID, "scheduled inside a freeze: %s", b.Override)
	}
	return r.ID, nil
}

func envSuffix(env string) string {
	if env == "" {
		return ""
	}
	return ", environment " + env
}

func onFailure(p deploy.Plan) string {
	if p.OnFailure == "" {
		return deploy.OnFailurePause
	}
	return p.OnFailure
}

// rolloutStart starts a pending rollout, or a queued one whose
// predecessors have ended, after a readiness review at the command's time.
// A failed gate refuses the start, unless an admin overrides it (recorded
// with the gates it overrode). A queued rollout whose gates fail when its
// turn comes becomes pending instead, for an operator to decide.
func (w *writer) rolloutStart(b RolloutStart) *api.Error {
	old, _ := w.first(tabRollouts, b.Rollout).(*api.Rollout)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "rollout %s does not exist", b.Rollout)
	}
	switch old.State {
	case api.RolloutPending:
	case api.RolloutQueued:
		for _, id := range old.After {
			if prev, _ := w.first(tabRollouts, id).(*api.Rollout); prev != nil && !prev.Terminal() {
				return api.Errorf(api.CodeConflict, "rollout %s is queued after %s, which is %s", old.ID, id, prev.State)
			}
		}
	default:
		return api.Errorf(api.CodeConflict, "rollout %s is %s; only a pending or queued rollout can be started", old.ID, old.State)
	}
	p, err := w.planned(old)
	if err != nil {
		return err
	}
	rv := w.review(p, w.cmd.Time)
	r := *old
	r.Gates, r.UpdatedAt = rv.Gates, w.cmd.Time
	failed := slices.DeleteFunc(failedGates(rv.Gates), func(g string) bool { return overridden(old, g) })
	switch {
	case len(failed) > 0 && b.Override != "":
		r.Overrides = append(slices.Clone(r.Overrides), api.Override{By: w.cmd.Actor, At: w.cmd.Time, Reason: b.Override, Gates: failed})
		w.audit(AuditRolloutOverride, r.ID, "started despite failed gate(s) %s: %s", strings.Join(failed, ", "), b.Override)
	case len(failed) > 0 && old.State == api.RolloutQueued:
		r.State, r.Reason = api.RolloutPending, "its turn came but readiness gate(s) failed: "+describeFailed(rv.Gates)
		w.meta(&r.Meta)
		w.insert(tabRollouts, &r)
		w.audit(AuditRolloutPause, r.ID, "%s", r.Reason)
		return nil
	case len(failed) > 0:
		return api.Errorf(api.CodeConflict, "rollout %s cannot start: %s. Fix them, or an admin may start it anyway with a recorded reason (--override)", old.ID, describeFailed(rv.Gates))
	}
	r.State, r.Reason = api.RolloutRunning, ""
	r.StartedBy, r.StartedAt = w.cmd.Actor, w.cmd.Time
	w.meta(&r.Meta)
	w.insert(tabRollouts, &r)
	w.audit(AuditRolloutStart, r.ID, "%s to %d host(s)", r.Release, len(r.Targets))
	return nil
}

// overridden reports whether an admin already overrode a gate of r.
func overridden(r *api.Rollout, gate string) bool {
	return slices.ContainsFunc(r.Overrides, func(o api.Override) bool { return slices.Contains(o.Gates, gate) })
}

func describeFailed(gates []api.Gate) string {
	var parts []string
	for _, g := range gates {
		if !g.OK {
			parts = append(parts, "gate "+g.Name+" failed: "+g.Detail)
		}
	}
	return strings.Join(parts, "; ")
}

// deployments returns a rollout's deployments in target order.
func (w *writer) deployments(r *api.Rollout) []*api.Deployment {
	out := make([]*api.Deployment, len(r.Targets))
	for i, h := range r.Targets {
		d, _ := w.first(tabDeployments, r.ID+"/"+h).(*api.Deployment)
		if d == nil {
			panic(fmt.Sprintf("state: rollout %s lost its deployment for %s", r.ID, h))
		}
		out[i] = d
	}
	return out
}

// setHost writes a deployment in a new state, with the transition in its
// history.
func (w *writer) setHost(old *api.Deployment, state deploy.HostState, reason string) *api.Deployment {
	d := *old
	if d.State != state {
		d.History = append(slices.Clone(old.History), api.Transition{State: state, At: w.cmd.Time})
	}
	d.State, d.Reason, d.UpdatedAt = state, reason, w.cmd.Time
	w.meta(&d.Meta)
	w.insert(tabDeployments, &d)
	return &d
}

// rolloutStep applies a decision of the rollout engine after checking it
// again against committed state, so that no decision — stale, duplicated or
// wrong — can start a host twice, start one outside its wave, exceed
// max_parallel or the change budget, start one inside a freeze, or fail a
// host that made progress.
func (w *writer) rolloutStep(b RolloutStep) *api.Error {
	old, _ := w.first(tabRollouts, b.Rollout).(*api.Rollout)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "rollout %s does not exist", b.Rollout)
	}
	if old.ModifyIndex != b.ExpectIndex {
		return api.Errorf(api.CodeConflict, "rollout %s changed (index %d, decision based on %d)", old.ID, old.ModifyIndex, b.ExpectIndex)
	}
	switch {
	case old.State == api.RolloutRunning:
	case old.State == api.RolloutRollingBack && old.RollbackID == "":
		if len(b.Start) > 0 || (b.Outcome != deploy.Continue && b.Outcome != deploy.Rollback) {
			return api.Errorf(api.CodeConflict, "rollout %s is rolling back: it starts no host", old.ID)
		}
	default:
		return api.Errorf(api.CodeConflict, "rollout %s is %s", old.ID, old.State)
	}
	if b.Wave < old.Wave || b.Wave >= len(old.Sizes) {
		return api.Errorf(api.CodeInvalid, "rollout %s: wave %d out of range", old.ID, b.Wave)
	}
	deps := w.deployments(old)
	index := map[string]int{}
	for i, d := range deps {
		index[d.Host] = i
	}
	if err := w.timeOut(old, deps, index, b.TimedOut); err != nil {
		return err
	}
	// A wave is promoted, and a rollout completes, only over final hosts.
	if b.Wave > old.Wave && !allFinal(deps[:old.Sizes[b.Wave-1]]) {
		return api.Errorf(api.CodeConflict, "rollout %s: wave %d cannot start before wave %d has finished", old.ID, b.Wave+1, b.Wave)
	}
	if b.Outcome == deploy.Complete && !allFinal(deps) {
		return api.Errorf(api.CodeConflict, "rollout %s cannot complete while hosts are unfinished", old.ID)
	}
	if err := w.startHosts(old, deps, index, b); err != nil {
		return err
	}
	r := *old
	r.Wave, r.UpdatedAt = b.Wave, w.cmd.Time
	switch {
	case b.Wave > old.Wave:
		r.WaveDoneAt = time.Time{}
		w.audit(AuditWavePromoted, r.ID, "wave %d of %d started", b.Wave+1, len(r.Sizes))
	case b.WaveDone:
		r.WaveDoneAt = w.cmd.Time
	}
	switch b.Outcome {
	case deploy.Continue:
	case deploy.Pause:
		r.State, r.Reason = api.RolloutPaused, b.Reason
		w.audit(pauseAction(b.Tripped), r.ID, "%s", b.Reason)
	case deploy.Complete:
		r.State, r.Reason, r.EndedAt = api.RolloutCompleted, b.Reason, w.cmd.Time
		w.audit(AuditRolloutComplete, r.ID, "%s", b.Reason)
		w.startVerification(&r)
		if r.Kind == api.KindRollback {
			w.endRolledBack(&r, api.RolloutRolledBack, "its rollback "+r.ID+" completed")
		}
	case deploy.Rollback:
		if b.Tripped {
			w.audit(AuditThreshold, r.ID, "%s", b.Reason)
		}
		return w.rollback(&r, b.Reason)
	default:
		return api.Errorf(api.CodeInvalid, "rollout %s: unknown outcome %q", old.ID, b.Outcome)
	}
	w.meta(&r.Meta)
	w.insert(tabRollouts, &r)
	return nil
}

// timeOut fails hosts that made no progress within the plan's host
// timeout, after checking that they really did not: a host waiting for its
// maintenance window never times out.
func (w *writer) timeOut(r *api.Rollout, deps []*api.Deployment, index map[string]int, hosts []string) *api.Error {
	timeout := r.Plan.HostTimeout
	if timeout == 0 {
		timeout = deploy.DefaultHostTimeout
	}
	for _, h := range hosts {
		i, ok := index[h]
		if !ok {
			return api.Errorf(api.CodeInvalid, "rollout %s: host %s is not a target", r.ID, h)
		}
		d := deps[i]
		if !d.State.InFlight() || d.State == deploy.WaitingForWindow || w.cmd.Time.Before(d.UpdatedAt.Add(timeout)) {
			return api.Errorf(api.CodeConflict, "rollout %s: host %s has not timed out (%s since %s)", r.ID, h, d.State, d.UpdatedAt.UTC().Format(time.RFC3339))
		}
		deps[i] = w.setHost(d, deploy.Failed, fmt.Sprintf("no progress for %v while %s", timeout, d.State))
	}
	if len(hosts) > 0 {
		w.audit(AuditHostsTimedOut, r.ID, "no progress for %v: %s", timeout, listHosts(hosts))
	}
	return nil
}

// startHosts instructs the hosts a decision starts.
func (w *writer) startHosts(r *api.Rollout, deps []*api.Deployment, index map[string]int, b RolloutStep) *api.Error {
	if len(b.Start) == 0 {
		return nil
	}
	inFlight := 0
	for _, d := range deps {
		if d.State.InFlight() {
			inFlight++
		}
	}
	limit := r.Plan.MaxParallel
	if limit == 0 {
		limit = len(deps)
	}
	if !w.cmd.Time.Before(r.Plan.Deadline) && !r.Plan.Deadline.IsZero() || w.cmd.Time.Before(r.Plan.NotBefore) {
		return api.Errorf(api.CodeConflict, "rollout %s: no host starts outside not_before and deadline", r.ID)
	}
	held := w.holds(r, w.cmd.Time)
	for _, h := range b.Start {
		i, ok := index[h]
		switch {
		case !ok:
			return api.Errorf(api.CodeInvalid, "rollout %s: host %s is not a target", r.ID, h)
		case deps[i].State != deploy.Pending:
			return api.Errorf(api.CodeConflict, "rollout %s: host %s was already started", r.ID, h)
		case i >= r.Sizes[b.Wave]:
			return api.Errorf(api.CodeInvalid, "rollout %s: host %s is not in wave %d", r.ID, h, b.Wave+1)
		}
		if why := held.check(h); why != "" {
			return api.Errorf(api.CodeConflict, "rollout %s: host %s cannot start: %s", r.ID, h, why)
		}
		inFlight++
		if inFlight > limit {
			return api.Errorf(api.CodeConflict, "rollout %s: starting %s would exceed max_parallel %d", r.ID, h, limit)
		}
		host, _ := w.first(tabHosts, h).(*api.Host)
		d := *deps[i]
		if host != nil {
			d.From = host.Releases[r.App]
		}
		d.StartedAt = w.cmd.Time
		deps[i] = w.setHost(&d, deploy.Instructed, "")
	}
	return nil
}

func allFinal(deps []*api.Deployment) bool {
	for _, d := range deps {
		if !d.State.Final() {
			return false
		}
	}
	return true
}

func pauseAction(tripped bool) string {
	if tripped {
		return AuditThreshold
	}
	return AuditRolloutPause
}

func whereSuffix(where string) string {
	if where == "" {
		return ""
	}
	return " where " + where
}
