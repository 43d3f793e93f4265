package agent

// The new binary's probation: it must reach a server and pass the
// release's checks by its deadlines, or put the previous binary back.

import (
	"context"
	"fmt"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// confirmFlushTimeout bounds one attempt to deliver reports during
// probation, so that an unreachable network cannot hold the agent past
// its deadline.
const confirmFlushTimeout = 10 * time.Second

// resumeSelfUpdate runs first in Run. A new binary on probation (Boot left
// the journal at "swapped") confirms itself here. An apply of SelfApp
// interrupted between its journal steps without a self-update record —
// which the agent never writes — is reported reverted, the binary
// untouched.
func (a *Agent) resumeSelfUpdate(ctx context.Context) error {
	hangIfBuiltTo(a.cfg.Dir)
	if buildFault != "" && faultIn(a.cfg.Dir) == faultNoServer {
		a.client.SetServers([]string{"https://127.0.0.1:1"})
	}
	s, rec := a.journal.SelfUpdate, a.journal.Active
	if s == nil {
		if rec != nil && rec.App == SelfApp && (rec.Step == stepActivating || rec.Step == stepProbation || rec.Step == stepReverting) {
			current, _ := a.files.Current(SelfApp)
			return a.finish(ctx, rec.Rollout, deploy.Reverted, "the agent restarted during its self-update, before the swap; the binary was not replaced", "", current)
		}
		return nil
	}
	self, err := runningDigest()
	if err != nil || a.cfg.SelfUpdate.Binary == "" || s.Step != selfSwapped || self != s.NewSHA256 {
		return fmt.Errorf("a self-update of the agent is in progress (step %s); drover-agent run settles it (agent.Boot) before the agent starts", s.Step)
	}
	u := a.updater()
	if u.active() == nil {
		return u.restore(self, "the journal lost the apply record of the self-update")
	}
	return a.confirmSelfUpdate(ctx, s, rec, self)
}

// confirmSelfUpdate is the probation of a new binary: it queues a
// probation report and delivers its reports; once a server took them it
// runs the release's health checks until they pass for min_healthy_time,
// then commits. Not reaching a server by s.ReachBy, or not healthy by
// s.HealthyBy, restores the previous binary (ErrRestart).
func (a *Agent) confirmSelfUpdate(ctx context.Context, s *selfUpdateState, rec *applyRecord, self string) error {
	log := a.log.With("rollout", rec.Rollout, "app", SelfApp, "version", rec.Version)
	u := a.updater()
	m, err := artifacts.ParseManifest(rec.Manifest)
	if err != nil {
		return u.restore(self, fmt.Sprintf("the journal holds a bad manifest: %v", err))
	}
	p := probationSettings(m)
	env := a.env(SelfApp, rec.Version)
	a.failpoint("self-booted")
	// As for any release, Current stays the previous version until commit.
	a.journal.Outbox = append(a.journal.Outbox, api.Report{Rollout: rec.Rollout, State: deploy.Probation, Current: rec.Previous})
	if err := a.journal.save(a.files.journal()); err != nil {
		return err
	}
	var healthySince time.Time
	var lastFailure error
	for {
		a.flushWithin(ctx, confirmFlushTimeout)
		if ctx.Err() != nil {
			return ctx.Err() // the next start goes on (and counts as one)
		}
		now := a.cfg.Clock.Now()
		if !s.Reached && len(a.journal.Outbox) == 0 {
			s.Reached = true
			if err := a.journal.save(a.files.journal()); err != nil {
				return err
			}
			log.Info("the new agent binary reached a server")
		}
		if s.Reached {
			results, err := runChecks(ctx, m.HealthChecks, env, a.cfg.Clock.Now)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.journal.LastChecks = results
			switch {
			case err != nil:
				healthySince, lastFailure = time.Time{}, err
			case healthySince.IsZero():
				healthySince = now
			}
			if err == nil && now.Sub(healthySince) >= time.Duration(p.MinHealthyTime) {
				return a.commitSelfUpdate(ctx, rec)
			}
		}
		switch {
		case !s.Reached && now.After(s.ReachBy):
			return u.restore(self, fmt.Sprintf("the new agent binary did not reach a server within %v of the swap", s.ReachBy.Sub(s.SwappedAt)))
		case now.After(s.HealthyBy):
			reason := fmt.Sprintf("the new agent binary was not healthy within %v of the swap", s.HealthyBy.Sub(s.SwappedAt))
			if lastFailure != nil {
				reason += ": " + lastFailure.Error()
			}
			return u.restore(self, reason)
		}
		sleep(ctx, time.Duration(p.Interval))
	}
}

// flushWithin delivers queued reports, giving up after d.
func (a *Agent) flushWithin(ctx context.Context, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	a.flushOutbox(ctx)
}

// commitSelfUpdate keeps the new binary; the previous one stays at
// .NAME.old.
func (a *Agent) commitSelfUpdate(ctx context.Context, rec *applyRecord) error {
	a.log.Info("new agent binary confirmed", "rollout", rec.Rollout, "version", rec.Version, "agent_version", a.cfg.Version)
	a.journal.SelfUpdate = nil
	if err := a.files.prune(SelfApp, a.cfg.KeepReleases, rec.Version, rec.Previous); err != nil {
		a.log.Warn("cannot remove old releases", "err", err)
	}
	if err := a.pruneCache(); err != nil {
		a.log.Warn("cannot prune the chunk cache", "err", err)
	}
	a.lastInventory = time.Time{} // the agent's version changed
	return a.finish(ctx, rec.Rollout, deploy.Succeeded, "", "", rec.Version)
}
