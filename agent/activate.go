package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

// Probation defaults, for a release that says nothing.
const (
	defaultHealthyDeadline  = 5 * time.Minute
	defaultCheckInterval    = 2 * time.Second
	defaultUnreachableAfter = 2 * time.Minute
	// confirmPreviousFor bounds how long a reverted-to release may take
	// to pass its checks.
	confirmPreviousFor = time.Minute
)

func (a *Agent) env(app, version string) checkEnv {
	return checkEnv{App: app, Version: version, ReleaseDir: a.files.release(app, version), Host: a.name, HostDir: a.cfg.Dir}
}

// activate runs the release's pre-activation hook, switches
// apps/NAME/current to it, runs its activation hooks, and puts it on
// probation. A failing pre-activation hook changes nothing; anything
// failing after the switch reverts.
func (a *Agent) activate(ctx context.Context, rec *applyRecord, m *artifacts.Manifest) error {
	env := a.env(rec.App, rec.Version)
	var hooks artifacts.Hooks
	if m.Hooks != nil {
		hooks = *m.Hooks
	}
	if err := runHook(ctx, "pre-activate hook", hooks.PreActivate, env); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return a.fail(ctx, rec, err.Error(), outputOf(err))
	}
	if err := a.setStep(ctx, rec, stepActivating, deploy.Activating); err != nil {
		return err
	}
	a.failpoint("activating")
	if err := a.files.switchCurrent(rec.App, rec.Version); err != nil {
		return a.revert(ctx, rec, fmt.Sprintf("activation failed: %v", err), "")
	}
	a.failpoint("switched")
	for _, h := range []struct {
		what string
		hook *artifacts.Hook
	}{{"activate hook", hooks.Activate}, {"post-activate hook", hooks.PostActivate}} {
		if err := runHook(ctx, h.what, h.hook, env); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the journal reverts on restart
			}
			return a.revert(ctx, rec, err.Error(), outputOf(err))
		}
	}
	rec.ActivatedAt = a.cfg.Clock.Now()
	if err := a.setStep(ctx, rec, stepProbation, deploy.Probation); err != nil {
		return err
	}
	a.failpoint("probation")
	return a.probation(ctx, rec, m)
}

// probationSettings fills in the defaults.
func probationSettings(m *artifacts.Manifest) artifacts.Probation {
	p := artifacts.Probation{}
	if m.Probation != nil {
		p = *m.Probation
	}
	if p.HealthyDeadline == 0 {
		p.HealthyDeadline = artifacts.Duration(defaultHealthyDeadline)
	}
	if p.Interval == 0 {
		p.Interval = artifacts.Duration(defaultCheckInterval)
	}
	if p.UnreachableAfter == 0 {
		p.UnreachableAfter = artifacts.Duration(defaultUnreachableAfter)
	}
	if p.Unreachable == "" {
		p.Unreachable = artifacts.UnreachableRevert
	}
	return p
}

// probation runs the health checks until the release has passed every one
// of them continuously for MinHealthyTime (commit), or the healthy
// deadline passes (revert). A check that fails after passing starts the
// healthy time again. The dead-man's switch: if no server can be reached
// for UnreachableAfter, the release is reverted (or, as the release says,
// kept waiting for a server, or accepted on its checks).
func (a *Agent) probation(ctx context.Context, rec *applyRecord, m *artifacts.Manifest) error {
	p := probationSettings(m)
	env := a.env(rec.App, rec.Version)
	deadline := rec.ActivatedAt.Add(time.Duration(p.HealthyDeadline))
	var healthySince time.Time
	var lastFailure error
	for {
		now := a.cfg.Clock.Now()
		results, err := runChecks(ctx, m.HealthChecks, env, a.cfg.Clock.Now)
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: probation starts again on restart
		}
		a.journal.LastChecks = results
		switch {
		case err != nil:
			healthySince, lastFailure = time.Time{}, err
		case healthySince.IsZero():
			healthySince = now
		}
		unreachable := now.Sub(a.contact()) >= time.Duration(p.UnreachableAfter)
		healthy := err == nil && now.Sub(healthySince) >= time.Duration(p.MinHealthyTime)
		switch {
		case unreachable && p.Unreachable == artifacts.UnreachableRevert:
			return a.revert(ctx, rec, fmt.Sprintf("no server reachable for %v after activation (dead-man's switch)", time.Duration(p.UnreachableAfter)), "")
		case healthy && !(unreachable && p.Unreachable == artifacts.UnreachableWait):
			return a.commit(ctx, rec)
		case now.After(deadline) && !healthy:
			reason := fmt.Sprintf("not healthy within %v of activation", time.Duration(p.HealthyDeadline))
			if p.MinHealthyTime > 0 {
				reason = fmt.Sprintf("not healthy for %v within %v of activation", time.Duration(p.MinHealthyTime), time.Duration(p.HealthyDeadline))
			}
			if lastFailure != nil {
				reason += ": " + lastFailure.Error()
			}
			return a.revert(ctx, rec, reason, outputOf(lastFailure))
		}
		a.ping(ctx)
		sleep(ctx, time.Duration(p.Interval))
	}
}

// commit keeps the new release.
func (a *Agent) commit(ctx context.Context, rec *applyRecord) error {
	a.log.Info("release committed", "rollout", rec.Rollout, "app", rec.App, "version", rec.Version)
	if err := a.files.prune(rec.App, a.cfg.KeepReleases, rec.Version, rec.Previous); err != nil {
		a.log.Warn("cannot remove old releases", "err", err)
	}
	if err := a.pruneCache(); err != nil {
		a.log.Warn("cannot prune the chunk cache", "err", err)
	}
	a.lastInventory = time.Time{} // collect again: the releases changed
	return a.finish(ctx, rec.Rollout, deploy.Succeeded, "", "", rec.Version)
}

// revert switches back to the previous release, runs its activation hook
// and confirms it is healthy, and reports reverted with the reason. If the
// previous release cannot be made healthy either, the agent reports failed
// and halts: it leaves the host alone until an operator clears it.
func (a *Agent) revert(ctx context.Context, rec *applyRecord, reason, output string) error {
	rec.Reason, rec.Output = reason, output
	if err := a.setStep(ctx, rec, stepReverting, ""); err != nil {
		return err
	}
	a.failpoint("reverting")
	a.log.Warn("reverting", "rollout", rec.Rollout, "app", rec.App, "to", rec.Previous, "reason", reason)
	if err := a.files.switchCurrent(rec.App, rec.Previous); err != nil {
		return a.halt(ctx, rec, fmt.Sprintf("%s; and switching back to %q failed: %v", reason, rec.Previous, err))
	}
	if rec.Previous != "" {
		prev, err := a.loadManifest(rec.App, rec.Previous)
		if err != nil {
			a.log.Warn("no manifest of the previous release; its hooks and checks are skipped", "version", rec.Previous, "err", err)
		} else if err := a.confirmHealthy(ctx, rec.App, rec.Previous, prev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return a.halt(ctx, rec, fmt.Sprintf("%s; and the previous release %s is not healthy either: %v", reason, rec.Previous, err))
		}
	}
	return a.finish(ctx, rec.Rollout, deploy.Reverted, reason, output, rec.Previous)
}

// confirmHealthy runs a reverted-to release's activation hook, then its
// checks until they pass or confirmPreviousFor passes.
func (a *Agent) confirmHealthy(ctx context.Context, app, version string, m *artifacts.Manifest) error {
	env := a.env(app, version)
	if m.Hooks != nil {
		if err := runHook(ctx, "activate hook", m.Hooks.Activate, env); err != nil {
			return err
		}
	}
	deadline := a.cfg.Clock.Now().Add(confirmPreviousFor)
	interval := time.Duration(probationSettings(m).Interval)
	for {
		results, err := runChecks(ctx, m.HealthChecks, env, a.cfg.Clock.Now)
		a.journal.LastChecks = results
		if err == nil || ctx.Err() != nil || a.cfg.Clock.Now().After(deadline) {
			return err
		}
		sleep(ctx, interval)
	}
}

// halt reports failed and stops the agent from touching the host.
func (a *Agent) halt(ctx context.Context, rec *applyRecord, reason string) error {
	a.log.Error("HOST NEEDS AN OPERATOR: neither release is healthy; the agent will not touch it until drover-agent clear-halt", "rollout", rec.Rollout, "reason", reason)
	a.journal.Halted = reason
	current, _ := a.files.Current(rec.App)
	return a.finish(ctx, rec.Rollout, deploy.Failed, reason, rec.Output, current)
}

// fail reports a failure that left the host on the version it runs.
func (a *Agent) fail(ctx context.Context, rec *applyRecord, reason, output string) error {
	current, _ := a.files.Current(rec.App)
	return a.finish(ctx, rec.Rollout, deploy.Failed, reason, output, current)
}

// setStep records the step durably, then reports it (if state is set).
func (a *Agent) setStep(ctx context.Context, rec *applyRecord, step string, state deploy.HostState) error {
	rec.Step = step
	a.journal.Active = rec
	if err := a.journal.save(a.files.journal()); err != nil {
		return err
	}
	if state != "" {
		a.report(ctx, api.Report{Rollout: rec.Rollout, State: state, Current: rec.Previous})
	}
	return nil
}

// finish records the outcome of a rollout on this host and reports it.
func (a *Agent) finish(ctx context.Context, rollout string, state deploy.HostState, reason, output, current string) error {
	a.countApply(string(state))
	a.journal.finish(rollout, string(state))
	a.report(ctx, api.Report{Rollout: rollout, State: state, Reason: reason, Output: output, Current: current})
	debug.FreeOSMemory() // downloads and unpacking leave large buffers behind
	return nil
}

// recover deals with an apply that a crash interrupted. While downloading
// or verifying nothing changed: the attempt is forgotten and the
// instruction, still desired, starts again (the chunk cache keeps what was
// fetched). A staged or waiting release stays staged. During activation the
// switch may or may not have happened: revert. During probation the new
// release is active: run its checks again from the start. During a revert:
// finish it.
func (a *Agent) recover(ctx context.Context) error {
	rec := a.journal.Active
	if rec == nil {
		return nil
	}
	a.log.Warn("resuming interrupted apply", "rollout", rec.Rollout, "step", rec.Step)
	switch rec.Step {
	case stepActivating:
		return a.revert(ctx, rec, "agent restarted during activation", "")
	case stepProbation:
		m, err := artifacts.ParseManifest(rec.Manifest)
		if err != nil {
			return a.revert(ctx, rec, fmt.Sprintf("agent restarted during probation and cannot re-check: %v", err), "")
		}
		rec.ActivatedAt = a.cfg.Clock.Now()
		return a.probation(ctx, rec, m)
	case stepReverting:
		return a.revert(ctx, rec, rec.Reason, rec.Output)
	case stepStaged, stepWaiting:
		return nil
	default:
		a.journal.Active = nil
		return a.journal.save(a.files.journal())
	}
}

// saveManifest keeps an installed release's verified manifest, for its
// hooks and checks when the agent later switches back to it.
func (a *Agent) saveManifest(m *artifacts.Manifest, body []byte) error {
	dir := filepath.Join(a.cfg.Dir, "manifests")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return pki.WriteFileAtomic(filepath.Join(dir, m.ID()+".json"), body, 0o600)
}

func (a *Agent) loadManifest(app, version string) (*artifacts.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(a.cfg.Dir, "manifests", app+"@"+version+".json"))
	if err != nil {
		return nil, err
	}
	return artifacts.ParseManifest(b)
}

func outputOf(err error) string {
	var cf *checkFailure
	if errors.As(err, &cf) {
		return cf.Output
	}
	return ""
}

// failpoint kills the agent, as a power cut would, when DROVER_FAILPOINT
// names this point. The crash tests use it to stop the agent at every step
// of an apply; it does nothing otherwise.
func (a *Agent) failpoint(name string) {
	if os.Getenv("DROVER_FAILPOINT") == name {
		a.log.Warn("failpoint reached: killing the agent", "failpoint", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
