package state

import (
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// defaultRollbackWaves are the waves of a rollback whose rollout had a
// single wave: a rollback is never all at once.
const defaultRollbackWaves = "1,50%,100%"

// rollback backs out r (a copy of the committed rollout, written here):
// r becomes rolling-back and its pending hosts are skipped; once no host
// is in flight, a rollback rollout takes every host that ended on r's
// version back to the version it ran before, in waves. Until then the
// engine keeps deciding on r, and calls here again when the last host in
// flight has finished.
func (w *writer) rollback(r *api.Rollout, reason string) *api.Error {
	deps := w.deployments(r)
	if r.State != api.RolloutRollingBack {
		r.State, r.Reason, r.UpdatedAt = api.RolloutRollingBack, reason, w.cmd.Time
		for i, d := range deps {
			if d.State == deploy.Pending {
				deps[i] = w.setHost(d, deploy.Skipped, "the rollout is being rolled back")
			}
		}
		w.audit(AuditRollbackStart, r.ID, "%s", reason)
	}
	inFlight := 0
	for _, d := range deps {
		if d.State.InFlight() {
			inFlight++
		}
	}
	if inFlight > 0 || r.RollbackID != "" {
		w.meta(&r.Meta)
		w.insert(tabRollouts, r)
		return nil
	}
	var back []*api.Deployment
	var skipped []string
	for _, d := range deps {
		if d.State != deploy.Succeeded {
			continue
		}
		host, _ := w.first(tabHosts, d.Host).(*api.Host)
		switch {
		case host == nil || host.Releases[r.App] != r.Version:
			skipped = append(skipped, d.Host+" (no longer runs "+r.Version+")")
		case d.From == "":
			skipped = append(skipped, d.Host+" (first install: no previous version)")
		case w.first(tabReleases, r.App+"@"+d.From) == nil:
			skipped = append(skipped, d.Host+" (previous version "+d.From+" is not a release)")
		default:
			back = append(back, d)
		}
	}
	if len(skipped) > 0 {
		r.Reason += "; not taken back: " + strings.Join(skipped, ", ")
	}
	if len(back) == 0 {
		w.endRollout(r, api.RolloutRolledBack, r.Reason+"; no host to take back")
		w.audit(AuditRolledBack, r.ID, "no host to take back")
		return nil
	}
	targets := make([]string, len(back))
	for i, d := range back {
		targets[i] = d.Host
	}
	// Rollouts queued after r wait until the rollback has ended.
	skip := append([]string{r.ID}, w.queuedAfter(r.ID)...)
	if cs := w.conflicts(targets, w.cmd.Time, time.Time{}, skip...); len(cs) > 0 {
		return api.Errorf(api.CodeConflict, "cannot roll back %s: it conflicts with %s", r.ID, joinStrings(cs))
	}
	plan := deploy.Plan{Waves: r.Plan.Waves, MaxParallel: r.Plan.MaxParallel, MaxFailures: r.Plan.MaxFailures,
		OnFailure: deploy.OnFailurePause, HostTimeout: r.Plan.HostTimeout}
	if len(plan.Waves.Sizes(len(targets))) < 2 {
		plan.Waves, _ = deploy.ParseWaves(defaultRollbackWaves)
	}
	rb := &api.Rollout{
		ID: "r-" + strconv.FormatUint(w.index, 10), Kind: api.KindRollback, Release: r.Release, App: r.App, Version: r.Version,
		Plan: plan, Targets: targets, Sizes: plan.Waves.Sizes(len(targets)), State: api.RolloutRunning, RollbackOf: r.ID,
		CreatedBy: w.cmd.Actor, CreatedAt: w.cmd.Time, StartedBy: w.cmd.Actor, StartedAt: w.cmd.Time, UpdatedAt: w.cmd.Time,
	}
	w.meta(&rb.Meta)
	w.insert(tabRollouts, rb)
	wave := 0
	for i, old := range back {
		for i >= rb.Sizes[wave] {
			wave++
		}
		d := &api.Deployment{ID: rb.ID + "/" + old.Host, Rollout: rb.ID, Host: old.Host, Wave: wave, App: r.App,
			Version: old.From, Release: r.App + "@" + old.From, State: deploy.Pending, UpdatedAt: w.cmd.Time}
		w.meta(&d.Meta)
		w.insert(tabDeployments, d)
	}
	r.RollbackID = rb.ID
	w.meta(&r.Meta)
	w.insert(tabRollouts, r)
	w.audit(AuditRolloutStart, rb.ID, "rollback of %s: %d host(s) back to their previous release, waves %s", r.ID, len(targets), plan.Waves)
	return nil
}

// endRollout writes r in a final state.
func (w *writer) endRollout(r *api.Rollout, state, reason string) {
	r.State, r.Reason, r.EndedAt, r.UpdatedAt = state, reason, w.cmd.Time, w.cmd.Time
	w.meta(&r.Meta)
	w.insert(tabRollouts, r)
}

// endRolledBack settles the rollout that rollback rb backs out, when rb
// ends: rolled back when rb completed, aborted when rb was aborted.
func (w *writer) endRolledBack(rb *api.Rollout, state, reason string) {
	orig, _ := w.first(tabRollouts, rb.RollbackOf).(*api.Rollout)
	if orig == nil || orig.State != api.RolloutRollingBack {
		return
	}
	o := *orig
	w.endRollout(&o, state, reason)
	if state == api.RolloutRolledBack {
		w.audit(AuditRolledBack, o.ID, "%s", reason)
	} else {
		w.audit(AuditRolloutAbort, o.ID, "%s", reason)
	}
}

// rolloutControl applies an operator's decision.
func (w *writer) rolloutControl(b RolloutControl) *api.Error {
	old, _ := w.first(tabRollouts, b.Rollout).(*api.Rollout)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "rollout %s does not exist", b.Rollout)
	}
	refuse := func(allowed string) *api.Error {
		return api.Errorf(api.CodeConflict, "rollout %s is %s; %s applies only to a rollout that is %s", old.ID, old.State, b.Action, allowed)
	}
	r := *old
	r.UpdatedAt = w.cmd.Time
	why := b.Reason
	switch b.Action {
	case "pause":
		if old.State != api.RolloutRunning {
			return refuse("running")
		}
		if why == "" {
			why = "paused by " + w.cmd.Actor
		}
		r.State, r.Reason = api.RolloutPaused, why
		w.audit(AuditRolloutPause, r.ID, "%s", why)
	case "resume":
		if old.State != api.RolloutPaused {
			return refuse("paused")
		}
		r.State, r.Reason = api.RolloutRunning, why
		w.audit(AuditRolloutResume, r.ID, "%s", why)
	case "promote":
		if old.State != api.RolloutRunning && old.State != api.RolloutPaused {
			return refuse("running or paused")
		}
		if old.Wave >= len(old.Sizes)-1 {
			return api.Errorf(api.CodeConflict, "rollout %s is in its last wave: there is nothing to promote", old.ID)
		}
		deps := w.deployments(old)
		if !allFinal(deps[:old.Sizes[old.Wave]]) {
			return api.Errorf(api.CodeConflict, "rollout %s: wave %d has hosts still in progress; promote when it has finished", old.ID, old.Wave+1)
		}
		r.Promoted = max(r.Promoted, old.Wave+1)
		w.audit(AuditRolloutPromote, r.ID, "wave %d may start. %s", old.Wave+2, why)
	case "abort":
		if !old.Active() || old.State == api.RolloutRollingBack {
			return refuse("pending, queued, running or paused")
		}
		for _, d := range w.deployments(old) {
			if d.State == deploy.Pending {
				w.setHost(d, deploy.Skipped, "the rollout was aborted")
			}
		}
		if why == "" {
			why = "aborted by " + w.cmd.Actor
		}
		w.endRollout(&r, api.RolloutAborted, why)
		w.audit(AuditRolloutAbort, r.ID, "%s", why)
		if r.Kind == api.KindRollback {
			w.endRolledBack(&r, api.RolloutAborted, "its rollback "+r.ID+" was aborted: "+why)
		}
		return nil
	case "rollback":
		switch {
		case old.Kind == api.KindRollback:
			return api.Errorf(api.CodeConflict, "rollout %s is itself a rollback; to go forward again, create a new rollout", old.ID)
		case old.State == api.RolloutPending || old.State == api.RolloutQueued:
			return api.Errorf(api.CodeConflict, "rollout %s never started: nothing to roll back; abort it instead", old.ID)
		case old.State == api.RolloutRollingBack || old.State == api.RolloutRolledBack:
			return api.Errorf(api.CodeConflict, "rollout %s is already %s", old.ID, old.State)
		}
		if why == "" {
			why = "rolled back by " + w.cmd.Actor
		}
		return w.rollback(&r, why)
	default:
		return api.Errorf(api.CodeInvalid, "action %q: allowed values are pause, resume, promote, abort, rollback", b.Action)
	}
	w.meta(&r.Meta)
	w.insert(tabRollouts, &r)
	return nil
}
