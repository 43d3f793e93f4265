package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/pki"
)

// Downloads. The agent keeps a cache of chunks (cache/chunks, compressed,
// each verified against its digest on the way in), so a new version costs
// only the chunks it does not share with what is already here, and an
// interrupted download resumes where it stopped. Chunks come from any
// server, several at once; a server that sends a corrupt chunk is avoided
// for that chunk. Every chunk has a deadline proportional to its size, so
// a server that trickles bytes (TUF's slow-retrieval attack) cannot hold
// an apply forever.

// downloadParallel is how many chunks are fetched at once.
const downloadParallel = 4

// fetchChunks makes sure every chunk of list is in the cache.
func (a *Agent) fetchChunks(ctx context.Context, list chunks.List) error {
	missing := a.cache.Missing(list)
	if len(missing) == 0 {
		return nil
	}
	jobs := make(chan chunks.Ref)
	errs := make(chan error, len(missing))
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(downloadParallel, len(missing)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range jobs {
				if err := a.fetchChunk(ctx, ref); err != nil {
					errs <- err
					cancel()
				}
			}
		}()
	}
feed:
	for _, ref := range missing {
		select {
		case jobs <- ref:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	a.log.Info("chunks downloaded", "count", len(missing), "of", len(list))
	return ctx.Err()
}

// fetchChunk downloads one chunk into the cache, trying another server
// when one sends bytes that do not match the digest.
func (a *Agent) fetchChunk(ctx context.Context, ref chunks.Ref) error {
	avoid := map[string]bool{}
	var lastErr error
	for len(avoid) < len(a.client.Servers()) {
		deadline := a.cfg.DownloadGrace + time.Duration(float64(ref.Size)/float64(a.cfg.DownloadMinRate)*float64(time.Second))
		cctx, cancel := context.WithTimeout(ctx, deadline)
		data, server, err := a.client.Chunk(cctx, ref, avoid)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("chunk %s: download slower than %d KiB/s", ref.SHA256, a.cfg.DownloadMinRate>>10)
			}
			return fmt.Errorf("cannot download chunk %s: %w", ref.SHA256, err)
		}
		err = a.cache.PutCompressed(data, ref)
		if err == nil {
			a.downloaded.Add(int64(len(data)))
			return nil
		}
		if !errors.Is(err, chunks.ErrCorrupt) && !errors.Is(err, chunks.ErrTooLarge) {
			return fmt.Errorf("cannot store chunk %s: %w", ref.SHA256, err)
		}
		a.log.Warn("server sent a corrupt chunk; trying another", "server", server, "chunk", ref.SHA256, "err", err)
		avoid[server] = true
		lastErr = err
	}
	return fmt.Errorf("chunk %s: every server sent bad data: %w", ref.SHA256, lastErr)
}

// saveList keeps a release's chunk list, so that its chunks stay cached
// while the release is on disk.
func (a *Agent) saveList(m *artifacts.Manifest, list chunks.List) error {
	dir := filepath.Join(a.files.cache(), "lists")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return pki.WriteFileAtomic(filepath.Join(dir, m.ID()), list.Encode(), 0o600)
}

// pruneCache drops chunk lists of releases no longer on disk and the
// chunks no remaining list uses.
func (a *Agent) pruneCache() error {
	dir := filepath.Join(a.files.cache(), "lists")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, e := range entries {
		app, version, ok := strings.Cut(e.Name(), "@")
		if !ok || !a.installed(app, version) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		list, err := chunks.DecodeList(b)
		if err != nil {
			_ = os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		for _, ref := range list {
			keep[ref.SHA256] = true
		}
	}
	return a.cache.Walk(func(digest string, _ time.Time) error {
		if !keep[digest] {
			return a.cache.Remove(digest)
		}
		return nil
	})
}
