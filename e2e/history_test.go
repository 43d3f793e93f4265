package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// snapshot is one observation of a rollout: a consistent read of committed
// state at some index.
type snapshot struct {
	At     time.Time
	Status api.RolloutStatus
}

// recorder polls rollouts (and the rollbacks they start) through the CLI
// while a scenario runs, keeping every observation for the checker, and
// lets the scenario wait for a state to inject a fault at the right time.
type recorder struct {
	c      *cluster
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	follow   []string
	snaps    map[string][]snapshot
	polls    int
	failures int
}

// record starts polling the rollouts every interval.
func (c *cluster) record(ctx context.Context, interval time.Duration, ids ...string) *recorder {
	ctx, cancel := context.WithCancel(ctx)
	r := &recorder{c: c, cancel: cancel, done: make(chan struct{}), follow: ids, snaps: map[string][]snapshot{}}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			r.pollOnce(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
	return r
}

// pollOnce reads every followed rollout once.
func (r *recorder) pollOnce(ctx context.Context) {
	r.mu.Lock()
	ids := slices.Clone(r.follow)
	r.mu.Unlock()
	for _, id := range ids {
		out, err := r.c.cli(ctx, r.c.viewer, "rollout", "show", id, "-o", "json")
		var st api.RolloutStatus
		if err == nil {
			err = json.Unmarshal([]byte(out), &st)
		}
		r.mu.Lock()
		r.polls++
		if err != nil || st.Rollout == nil {
			r.failures++ // a server down or cut off: expected under faults
		} else {
			r.snaps[id] = append(r.snaps[id], snapshot{At: time.Now(), Status: st})
			if rb := st.Rollout.RollbackID; rb != "" && !slices.Contains(r.follow, rb) {
				r.follow = append(r.follow, rb)
			}
		}
		r.mu.Unlock()
	}
}

// stop ends the polling.
func (r *recorder) stop() {
	r.cancel()
	<-r.done
}

// latest is the newest observation of a rollout, or nil.
func (r *recorder) latest(id string) *api.RolloutStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.snaps[id]
	if len(s) == 0 {
		return nil
	}
	st := s[len(s)-1].Status
	return &st
}

// snapshots returns every observation of a rollout.
func (r *recorder) snapshots(id string) []snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.snaps[id])
}

// followed lists the rollouts recorded, rollbacks included.
func (r *recorder) followed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.follow)
}

// waitFor waits until the newest observation of a rollout satisfies cond.
func (r *recorder) waitFor(ctx context.Context, id string, timeout time.Duration, what string, cond func(*api.RolloutStatus) bool) error {
	return waitFor(ctx, timeout, what, func() (bool, error) {
		st := r.latest(id)
		if st == nil {
			return false, fmt.Errorf("rollout %s not observed yet", id)
		}
		return cond(st), fmt.Errorf("rollout %s is %s, wave %d; hosts %s", id, st.Rollout.State, st.Rollout.Wave+1, hostStates(st))
	})
}

// waitEnded waits until a rollout is completed, paused, aborted or rolled
// back: no longer moving by itself.
func (r *recorder) waitEnded(ctx context.Context, id string, timeout time.Duration) (*api.RolloutStatus, error) {
	err := r.waitFor(ctx, id, timeout, "rollout "+id+" to end", func(st *api.RolloutStatus) bool {
		switch st.Rollout.State {
		case api.RolloutCompleted, api.RolloutPaused, api.RolloutAborted, api.RolloutRolledBack:
			return true
		}
		return false
	})
	return r.latest(id), err
}

// hostStates summarises a rollout's hosts as "host-01=succeeded ...".
func hostStates(st *api.RolloutStatus) string {
	s := ""
	for _, d := range st.Hosts {
		s += fmt.Sprintf(" %s=%s", d.Host, d.State)
	}
	return s
}

// writes issues small idempotent writes — change freezes that cover no
// host, named PREFIX-N — one after another while faults run, and keeps
// which ones the cluster acknowledged (the CLI exited 0).
type writes struct {
	c      *cluster
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   []string
	unacked []string
}

// startWrites starts writing.
func (c *cluster) startWrites(ctx context.Context, prefix string) *writes {
	ctx, cancel := context.WithCancel(ctx)
	w := &writes{c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for n := 1; ctx.Err() == nil; n++ {
			name := fmt.Sprintf("%s-%03d", prefix, n)
			_, err := c.cli(ctx, c.admin, "freeze", "set", name, "--start", "2099-01-01T00:00:00Z",
				"--end", "2099-01-02T00:00:00Z", "--selector", "e2e-probe=none", "--reason", "e2e write "+name)
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, name)
			} else if ctx.Err() == nil {
				w.unacked = append(w.unacked, name)
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return w
}

// stop ends the writes and returns the acknowledged and the others.
func (w *writes) stop() (acked, unacked []string) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked), slices.Clone(w.unacked)
}

// freezes lists the names of the cluster's change freezes.
func (c *cluster) freezes(ctx context.Context) (map[string]bool, error) {
	var fs []*api.Freeze
	if err := c.readJSON(ctx, c.viewer, 2*time.Minute, &fs, "freeze", "list"); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, f := range fs {
		out[f.Name] = true
	}
	return out, nil
}
