package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/pki"
)

// Host liveness never costs a Raft write per check-in. Every server notes
// the check-ins it serves; followers forward them to the leader in
// batches; the leader alone decides, and writes only transitions (up to
// down, down to up), batched into one command. A new leader knows no
// check-in times, so it gives every host a full HostDownAfter from the
// start of its term before marking anyone down.

const (
	checkinFlush   = 5 * time.Second
	livenessPeriod = 5 * time.Second
	maxStatusBatch = 1000
)

type liveness struct {
	mu      sync.Mutex
	seen    map[string]time.Time // last check-in known here
	pending map[string]time.Time // not yet forwarded to the leader
}

func newLiveness() *liveness {
	return &liveness{seen: map[string]time.Time{}, pending: map[string]time.Time{}}
}

func (l *liveness) checkin(host string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.seen[host]) {
		l.seen[host] = t
	}
	if t.After(l.pending[host]) {
		l.pending[host] = t
	}
}

func (l *liveness) drain() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.pending
	l.pending = map[string]time.Time{}
	return out
}

// merge takes check-ins forwarded by another server.
func (l *liveness) merge(batch map[string]time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for h, t := range batch {
		if t.After(l.seen[h]) {
			l.seen[h] = t
		}
	}
}

func (l *liveness) last(host string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[host]
}

// noteCheckin records that a host's agent reached this server.
func (s *Server) noteCheckin(host string) {
	s.live.checkin(host, s.clock.Now())
	s.metrics.checkins.Inc()
}

// forwardCheckins sends this server's check-ins to the leader every few
// seconds. A batch that cannot be delivered is kept for the next try.
func (s *Server) forwardCheckins(ctx context.Context) {
	t := time.NewTicker(checkinFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch := s.live.drain()
		if len(batch) == 0 || s.IsLeader() {
			continue
		}
		if err := s.sendCheckins(ctx, batch); err != nil {
			s.log.Debug("cannot forward check-ins; keeping them", "hosts", len(batch), "err", err)
			s.live.mu.Lock()
			for h, t := range batch {
				if t.After(s.live.pending[h]) {
					s.live.pending[h] = t
				}
			}
			s.live.mu.Unlock()
		}
	}
}

func (s *Server) sendCheckins(ctx context.Context, batch map[string]time.Time) error {
	_, leaderID := s.raft.raft.LeaderWithID()
	leader, ok := s.members.lookup(string(leaderID))
	if !ok {
		return fmt.Errorf("no leader known")
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(leader)+api.PathInternalCheckins, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("leader answered %s", resp.Status)
	}
	return nil
}

// receiveCheckins merges another server's batch of check-ins.
func (s *Server) receiveCheckins(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var batch map[string]time.Time
	if err := readJSON(r, &batch); err != nil {
		return err
	}
	s.live.merge(batch)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// monitorLiveness runs on the leader and writes host up/down transitions.
func (s *Server) monitorLiveness(ctx context.Context) {
	termStart := s.clock.Now()
	t := time.NewTicker(livenessPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.live.merge(s.live.drain()) // the leader's own check-ins
		up, down := s.livenessChanges(termStart, s.clock.Now())
		for len(up)+len(down) > 0 {
			n := min(len(down), maxStatusBatch)
			m := min(len(up), maxStatusBatch-n)
			body := state.HostStatus{Down: down[:n], Up: up[:m]}
			down, up = down[n:], up[m:]
			cmd, err := state.NewCommand(state.CmdHostStatus, "liveness@"+s.cfg.ID, "", body)
			if err == nil {
				_, err = result(s.applyLocal(cmd))
			}
			if err != nil {
				s.log.Warn("cannot record host status", "err", err)
				break
			}
			s.log.Info("host status changed", "up", body.Up, "down", body.Down)
		}
	}
}

// livenessChanges lists hosts to mark up and down at now.
func (s *Server) livenessChanges(termStart, now time.Time) (up, down []string) {
	hosts, _ := s.store.Hosts(nil)
	for _, h := range hosts {
		seen := s.live.last(h.ID)
		switch {
		case h.Status != api.HostDown && now.Sub(maxTime(seen, termStart)) > s.cfg.HostDownAfter:
			down = append(down, h.ID)
		case h.Status == api.HostDown && seen.After(h.StatusSince):
			up = append(up, h.ID)
		}
	}
	return up, down
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
