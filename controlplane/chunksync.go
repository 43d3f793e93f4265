package controlplane

import (
	"context"
	"time"

	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/controlplane/state"
)

// Anti-entropy and garbage collection of chunks, on every server. Every
// Chunks.AntiEntropyEvery, a server fetches from its peers any chunk of a
// registered payload it lacks (checking each digest) and, once it holds a
// payload whole, records itself as a holder. Every Chunks.GCEvery it
// removes chunks that no registered payload references and that are older
// than Chunks.GCGrace (so that an upload in progress, whose payload is not
// registered yet, keeps its chunks).

func (s *Server) syncChunks(ctx context.Context) {
	sync := time.NewTicker(s.cfg.Chunks.AntiEntropyEvery)
	defer sync.Stop()
	gc := time.NewTicker(s.cfg.Chunks.GCEvery)
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sync.C:
			s.antiEntropy(ctx)
		case <-gc.C:
			s.collectChunks()
		}
	}
}

// antiEntropy completes this server's copy of every registered payload.
func (s *Server) antiEntropy(ctx context.Context) {
	payloads, _ := s.store.Payloads(nil)
	for _, p := range payloads {
		list, err := chunks.DecodeList(p.List)
		if err != nil {
			continue
		}
		missing := s.chunks.store.Missing(list)
		complete := true
		for _, ref := range missing {
			if ctx.Err() != nil {
				return
			}
			if err := s.fetchChunk(ctx, ref); err != nil {
				s.log.Warn("anti-entropy: cannot fetch chunk", "payload", p.SHA256, "chunk", ref.SHA256, "err", err)
				complete = false
				break
			}
		}
		if !complete || containsString(p.Holders, s.cfg.ID) {
			continue
		}
		cmd, err := state.NewCommand(state.CmdPayloadRegister, "anti-entropy@"+s.cfg.ID, "", state.PayloadRegister{
			SHA256: p.SHA256, Size: p.Size, Format: p.Format, List: p.List, Holders: []string{s.cfg.ID}})
		if err == nil {
			_, err = result(s.write(ctx, cmd))
		}
		if err != nil {
			s.log.Warn("anti-entropy: cannot record this server as a holder", "payload", p.SHA256, "err", err)
			continue
		}
		s.log.Info("anti-entropy: payload complete here", "payload", p.SHA256, "fetched", len(missing))
	}
}

// collectChunks removes chunks no registered payload references.
func (s *Server) collectChunks() {
	referenced := map[string]bool{}
	payloads, _ := s.store.Payloads(nil)
	for _, p := range payloads {
		list, err := chunks.DecodeList(p.List)
		if err != nil {
			return // never collect on a view we cannot read whole
		}
		for _, ref := range list {
			referenced[ref.SHA256] = true
		}
	}
	removed := 0
	cutoff := time.Now().Add(-s.cfg.Chunks.GCGrace)
	_ = s.chunks.store.Walk(func(digest string, modTime time.Time) error {
		if !referenced[digest] && modTime.Before(cutoff) {
			if err := s.chunks.store.Remove(digest); err == nil {
				removed++
			}
		}
		return nil
	})
	if removed > 0 {
		s.log.Info("removed unreferenced chunks", "count", removed)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
