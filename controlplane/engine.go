package controlplane

import (
	"context"
	"log/slog"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/deploy"
)

// engineIdle is how long the engine sleeps when nothing changes; it wakes
// at once on any change to a running rollout or its hosts.
const engineIdle = 5 * time.Second

// runEngine drives every running rollout while this server leads. It reads
// committed state, decides with deploy.Decide, and writes each decision
// through Raft; the state machine re-checks every limit, so a decision made
// on a stale view is refused rather than applied. A new leader resumes from
// whatever was committed, with nothing to hand over.
func (s *Server) runEngine(ctx context.Context) {
	log := s.log.With("component", "rollout")
	// The new leader's state must include every entry committed by the old
	// one before it decides anything.
	if err := s.raft.raft.Barrier(applyTimeout).Error(); err != nil {
		log.Warn("engine not started: barrier failed", "err", err)
		return
	}
	log.Info("rollout engine started")
	defer log.Info("rollout engine stopped")
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		now := s.clock.Now()
		wake := now.Add(engineIdle)
		for _, r := range s.store.RunningRollouts(ws) {
			if at := s.step(log, ws, r, now); !at.IsZero() && at.Before(wake) {
				wake = at
			}
		}
		for _, r := range s.store.QueuedRollouts(ws) {
			s.startQueued(log, ws, r)
		}
		wctx, cancel := context.WithTimeout(ctx, max(wake.Sub(now), 10*time.Millisecond))
		_ = ws.WatchCtx(wctx)
		cancel()
	}
}

// step makes and commits one decision for one rollout, and says when to
// decide again if nothing changes before then.
func (s *Server) step(log *slog.Logger, ws memdb.WatchSet, r *api.Rollout, now time.Time) time.Time {
	hosts := s.store.RolloutHosts(ws, r)
	if len(hosts) != len(r.Targets) {
		return time.Time{} // state is being restored; the next wake-up sees all of it
	}
	p := deploy.Progress{Plan: r.Plan, Sizes: r.Sizes, Wave: r.Wave, Now: now, WaveDoneAt: r.WaveDoneAt, Promoted: r.Promoted,
		RollingBack: r.State == api.RolloutRollingBack,
		Hosts:       make([]deploy.HostState, len(hosts)), Updated: make([]time.Time, len(hosts))}
	for i, d := range hosts {
		p.Hosts[i], p.Updated[i] = d.State, d.UpdatedAt
	}
	p.Held, p.Budget = s.store.StartLimits(ws, r, hosts, now)
	d := deploy.Decide(p)
	if d.Empty(p) {
		return d.Wake
	}
	step := state.RolloutStep{Rollout: r.ID, ExpectIndex: r.ModifyIndex, Wave: d.Wave, WaveDone: d.WaveDone, Outcome: d.Outcome, Reason: d.Reason, Tripped: d.Tripped}
	for _, i := range d.Start {
		step.Start = append(step.Start, hosts[i].Host)
	}
	for _, i := range d.TimedOut {
		step.TimedOut = append(step.TimedOut, hosts[i].Host)
	}
	if s.engineWrite(log, r.ID, state.CmdRolloutStep, step) {
		log.Info("rollout step", "rollout", r.ID, "wave", d.Wave+1, "started", step.Start, "timed_out", step.TimedOut, "outcome", d.Outcome, "reason", d.Reason)
	}
	return d.Wake
}

// startQueued starts a queued rollout once every rollout it waits for has
// ended. The state machine runs its readiness review; if a gate fails the
// rollout becomes pending for an operator to decide.
func (s *Server) startQueued(log *slog.Logger, ws memdb.WatchSet, r *api.Rollout) {
	for _, id := range r.After {
		prev, ok := s.store.Rollout(ws, id)
		if ok && !prev.Terminal() {
			return
		}
	}
	if s.engineWrite(log, r.ID, state.CmdRolloutStart, state.RolloutStart{Rollout: r.ID}) {
		log.Info("queued rollout's turn", "rollout", r.ID, "after", r.After)
	}
}

// engineWrite commits one engine command while this server leads.
func (s *Server) engineWrite(log *slog.Logger, rollout string, typ state.CmdType, body any) bool {
	cmd, err := state.NewCommand(typ, "engine@"+s.cfg.ID, "", body)
	if err != nil {
		log.Warn("cannot encode decision", "rollout", rollout, "err", err)
		return false
	}
	if !s.IsLeader() {
		return false
	}
	res, err := s.applyLocal(cmd)
	switch {
	case err != nil:
		log.Warn("decision not committed", "rollout", rollout, "err", err)
	case res.Err != nil:
		log.Warn("decision refused", "rollout", rollout, "err", res.Err)
	default:
		s.metrics.engineRuns.Inc()
		return true
	}
	return false
}
