package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// A server whose data directory is full or unwritable must not hold
// leadership or take writes: Raft would fail to append (raft-wal creates
// each log segment whole, so the failure comes at a segment boundary),
// and blobs could not be stored. The disk watch checks the directory
// every few seconds — free space against MinFreeBytes and a small
// write-fsync-remove probe — and while it fails the server refuses writes
// with a message that says why (clients then use another server) and
// hands leadership to another server.

const diskCheckEvery = 2 * time.Second

type diskWatch struct {
	problem atomic.Pointer[string] // nil while the directory is fine
}

// checkDisk returns a description of what is wrong with dir, or "".
func checkDisk(dir string, minFree uint64) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Sprintf("cannot inspect data directory %s: %v", dir, err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < minFree {
		return fmt.Sprintf("data directory %s has %d MiB free, less than the %d MiB required (min_free_bytes); free some space",
			dir, free>>20, minFree>>20)
	}
	probe := filepath.Join(dir, ".write-probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write([]byte("drover"))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		os.Remove(probe)
	}
	if err != nil {
		return fmt.Sprintf("data directory %s is not writable: %v", dir, err)
	}
	return ""
}

// watchDisk runs the check until ctx ends.
func (s *Server) watchDisk(ctx context.Context) {
	t := time.NewTicker(diskCheckEvery)
	defer t.Stop()
	for {
		problem := checkDisk(s.cfg.DataDir, s.cfg.MinFreeBytes)
		old := s.disk.problem.Load()
		switch {
		case problem != "" && old == nil:
			s.log.Error("refusing writes and leadership", "reason", problem)
			s.metrics.diskOK.Set(0)
		case problem == "" && old != nil:
			s.log.Info("data directory usable again; accepting writes")
			s.metrics.diskOK.Set(1)
		}
		if problem == "" {
			s.disk.problem.Store(nil)
		} else {
			s.disk.problem.Store(&problem)
			if s.IsLeader() {
				if err := s.raft.raft.LeadershipTransfer().Error(); err != nil {
					s.log.Warn("cannot hand over leadership", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// diskError is the error writes get while the data directory is unusable.
func (s *Server) diskError() error {
	if p := s.disk.problem.Load(); p != nil {
		return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("server %s cannot accept writes: %s", s.cfg.ID, *p)}
	}
	return nil
}
