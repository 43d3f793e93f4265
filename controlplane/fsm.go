package controlplane

import (
	"io"

	"github.com/hashicorp/raft"

	"github.com/drover-dev/drover/controlplane/state"
)

// fsm adapts the state store to raft.FSM. Raft calls Apply, Snapshot and
// Restore from one goroutine; Persist runs on another, concurrently with
// Apply, which is safe because a state.Snapshot is an immutable copy.
type fsm struct {
	store *state.Store
}

// Apply returns a state.Result, which reaches the caller of raft.Apply
// through ApplyFuture.Response.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.store.Apply(l.Index, l.Data)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{f.store.Snapshot()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.store.Restore(rc)
}

type fsmSnapshot struct{ snap *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
