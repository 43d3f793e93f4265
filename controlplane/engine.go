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
		for _, r := range s.store.RunningRollouts(ws) {
			s.step(log, r, s.store.RolloutHosts(ws, r))
		}
		wctx, cancel := context.WithTimeout(ctx, engineIdle)
		_ = ws.WatchCtx(wctx)
		cancel()
	}
}

// step makes and commits one decision for one rollout.
func (s *Server) step(log *slog.Logger, r *api.Rollout, hosts []*api.Deployment) {
	if len(hosts) != len(r.Targets) {
		return // state is being restored; the next wake-up sees all of it
	}
	p := deploy.Progress{Plan: r.Plan, Sizes: r.Sizes, Wave: r.Wave, Hosts: make([]deploy.HostState, len(hosts))}
	for i, d := range hosts {
		p.Hosts[i] = d.State
	}
	d := deploy.Decide(p)
	if d.Empty(p) {
		return
	}
	step := state.RolloutStep{Rollout: r.ID, ExpectIndex: r.ModifyIndex, Wave: d.Wave, Outcome: d.Outcome, Reason: d.Reason}
	for _, i := range d.Start {
		step.Start = append(step.Start, hosts[i].Host)
	}
	cmd, err := state.NewCommand(state.CmdRolloutStep, "engine@"+s.cfg.ID, "", step)
	if err != nil {
		log.Warn("cannot encode decision", "rollout", r.ID, "err", err)
		return
	}
	if !s.IsLeader() {
		return
	}
	res, err := s.applyLocal(cmd)
	switch {
	case err != nil:
		log.Warn("decision not committed", "rollout", r.ID, "err", err)
	case res.Err != nil:
		log.Warn("decision refused", "rollout", r.ID, "err", res.Err)
	default:
		s.metrics.engineRuns.Inc()
		log.Info("rollout step", "rollout", r.ID, "wave", d.Wave+1, "started", step.Start, "outcome", d.Outcome, "reason", d.Reason)
	}
}
