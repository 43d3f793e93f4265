package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/pki"
)

// applyTimeout bounds how long a write waits for a leader and a commit.
const applyTimeout = 15 * time.Second

// errUnavailable means the write may or may not have been committed; the
// caller should retry with the same idempotency key.
var errUnavailable = &api.Error{Code: api.CodeUnavailable, Message: "no leader could commit the write in time; retry with the same Idempotency-Key"}

// write proposes a command and returns its result. On this server, if it
// leads; otherwise it forwards the command to the leader. A command without
// an idempotency key gets one here, so that the forwarding retries below
// can never apply it twice.
func (s *Server) write(ctx context.Context, cmd *state.Command) (state.Result, error) {
	if cmd.Key == "" {
		cmd.Key = newKey()
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		changed := s.leader.wait() // before the attempt, so no change is missed
		res, err := s.writeOnce(ctx, cmd)
		if err == nil {
			s.awaitApplied(ctx, res.Index)
			return res, nil
		}
		s.log.Debug("write attempt failed", "cmd", cmd.Type, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return state.Result{}, errUnavailable
		case <-changed:
		case <-time.After(backoff(attempt)):
		}
	}
}

// awaitApplied waits, briefly, until this server's state has applied
// index: a write forwarded to the leader is committed there first, and the
// handler that made it often reads its effect next (an enrollment returns
// the host's labels), so it must read at least what it wrote.
func (s *Server) awaitApplied(ctx context.Context, index uint64) {
	for wait := time.Millisecond; s.store.AppliedIndex() < index && ctx.Err() == nil; wait = min(2*wait, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<min(attempt, 5), time.Second)
}

func (s *Server) writeOnce(ctx context.Context, cmd *state.Command) (state.Result, error) {
	if s.IsLeader() {
		return s.applyLocal(cmd)
	}
	_, leaderID := s.raft.raft.LeaderWithID()
	if leaderID == "" {
		return state.Result{}, errors.New("no leader known")
	}
	leader, ok := s.members.lookup(string(leaderID))
	if !ok {
		return state.Result{}, fmt.Errorf("leader %s is not in the server pool yet", leaderID)
	}
	return s.forward(ctx, leader, cmd)
}

// applyLocal stamps the leader's time into the command and proposes it.
func (s *Server) applyLocal(cmd *state.Command) (state.Result, error) {
	start := time.Now()
	defer s.metrics.observeWrite(cmd.Type.String(), start)
	cmd.Time = s.clock.Now().UTC()
	data, err := cmd.Encode()
	if err != nil {
		return state.Result{}, err
	}
	f := s.raft.raft.Apply(data, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			// Maybe committed: the retry with the same key finds out.
			return state.Result{}, err
		}
		return state.Result{}, fmt.Errorf("raft apply: %w", err)
	}
	res, ok := f.Response().(state.Result)
	if !ok {
		return state.Result{}, fmt.Errorf("raft apply returned %T", f.Response())
	}
	return res, nil
}

// forward sends an encoded command to the leader's internal endpoint.
func (s *Server) forward(ctx context.Context, leader member, cmd *state.Command) (state.Result, error) {
	data, err := cmd.Encode()
	if err != nil {
		return state.Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(leader)+api.PathInternalApply, bytes.NewReader(data))
	if err != nil {
		return state.Result{}, err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return state.Result{}, fmt.Errorf("forward to leader %s: %w", leader.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return state.Result{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return state.Result{}, fmt.Errorf("leader %s answered %s: %s", leader.ID, resp.Status, bytes.TrimSpace(body))
	}
	var res state.Result
	if err := json.Unmarshal(body, &res); err != nil {
		return state.Result{}, fmt.Errorf("leader %s sent a bad result: %w", leader.ID, err)
	}
	return res, nil
}

// internalApply proposes a command forwarded by another server. It
// answers 503 when this server is not (or no longer) the leader, so that
// the sender retries where the leader is now.
func (s *Server) internalApply(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxCommandBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxCommandBytes {
		return api.Errorf(api.CodeInvalid, "command larger than %d bytes", maxCommandBytes)
	}
	cmd, err := state.DecodeCommand(data)
	if err == nil {
		err = cmd.Check()
	}
	if err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	if !s.IsLeader() {
		return errUnavailable
	}
	res, err := s.applyLocal(cmd)
	if err != nil {
		return &api.Error{Code: api.CodeUnavailable, Message: err.Error()}
	}
	return writeJSON(w, http.StatusOK, res)
}

// maxCommandBytes bounds one forwarded command (the largest is an
// inventory, bounded at 4 MiB, plus its envelope).
const maxCommandBytes = 5 << 20

// result turns a state result into a handler error, or nil.
func result(res state.Result, err error) (state.Result, error) {
	if err != nil {
		return res, err
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
