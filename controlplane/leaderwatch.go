package controlplane

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// leaderWatch lets writes waiting for a leader wake the moment Raft
// learns of one, instead of polling: a write retried on a timer would add
// up to a whole back-off step to every failover.
type leaderWatch struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every leader change
}

func newLeaderWatch() *leaderWatch { return &leaderWatch{changed: make(chan struct{})} }

// wait returns a channel closed at the next leader change.
func (w *leaderWatch) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

func (w *leaderWatch) signal() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// observeLeader feeds the watch from Raft's leader observations until ctx
// ends.
func (s *Server) observeLeader(ctx context.Context) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.raft.RegisterObserver(obs)
	defer s.raft.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			s.leader.signal()
		}
	}
}
