package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/pki"
)

// Payload bytes never go through Raft. An upload is written to this
// server's blob store, copied to the other servers, and recorded in the
// replicated state — with the servers that hold it — only once a quorum
// holds a durable copy; only then is it acknowledged.

func blobDigest(r *http.Request) (string, error) {
	d := r.PathValue("digest")
	if err := artifacts.ValidateDigest(d); err != nil {
		return "", api.Errorf(api.CodeInvalid, "digest: %v", err)
	}
	return d, nil
}

func declaredSize(r *http.Request) (int64, error) {
	if r.ContentLength <= 0 || r.ContentLength > artifacts.MaxPayloadBytes {
		return 0, api.Errorf(api.CodeInvalid, "Content-Length must be set, between 1 and %d", int64(artifacts.MaxPayloadBytes))
	}
	return r.ContentLength, nil
}

// putBlob stores an operator's upload and replicates it to a quorum.
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	digest, err := blobDigest(r)
	if err != nil {
		return err
	}
	size, err := declaredSize(r)
	if err != nil {
		return err
	}
	if err := s.storeBlob(r.Body, digest, size); err != nil {
		return err
	}
	holders := s.replicateBlob(r.Context(), digest, size)
	voters := max(s.voters(), 1)
	if quorum := voters/2 + 1; len(holders) < quorum {
		return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf(
			"only %d server(s) hold the payload, a quorum of the %d voters (%d) is needed; retry when more servers are up", len(holders), voters, quorum)}
	}
	if _, err := result(s.command(r, caller, state.CmdBlobRegister, state.BlobRegister{Digest: digest, Size: size, Holders: holders})); err != nil {
		return err
	}
	s.log.Info("blob stored", "digest", digest, "size", size, "holders", holders)
	return writeJSON(w, http.StatusCreated, api.BlobResponse{Digest: digest, Size: size, Holders: holders})
}

func (s *Server) storeBlob(body io.Reader, digest string, size int64) error {
	if err := s.diskError(); err != nil {
		return err
	}
	err := s.blobs.Put(body, digest, size)
	switch {
	case errors.Is(err, artifacts.ErrDigestMismatch), errors.Is(err, artifacts.ErrTooLarge):
		return api.Errorf(api.CodeInvalid, "%v", err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EDQUOT):
		return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("server %s cannot store the payload: %v", s.cfg.ID, err)}
	case err != nil:
		return fmt.Errorf("cannot store blob %s: %w", digest, err)
	}
	return nil
}

// replicateBlob copies a local blob to every other server in parallel and
// returns the servers that now hold it durably, this one included.
func (s *Server) replicateBlob(ctx context.Context, digest string, size int64) []string {
	var (
		mu      sync.Mutex
		holders = []string{s.cfg.ID}
		wg      sync.WaitGroup
	)
	for _, p := range s.members.alive() {
		if p.ID == s.cfg.ID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.sendBlob(ctx, p, digest, size); err != nil {
				s.log.Warn("blob replication failed", "digest", digest, "peer", p.ID, "err", err)
				return
			}
			mu.Lock()
			holders = append(holders, p.ID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return holders
}

func (s *Server) sendBlob(ctx context.Context, p member, digest string, size int64) error {
	f, _, err := s.blobs.Open(digest)
	if err != nil {
		return err
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, peerURL(p)+api.PathInternalBlobs+digest, f)
	if err != nil {
		return err
	}
	req.ContentLength = size
	resp, err := s.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return nil
}

// putLocalBlob receives a copy from another server.
func (s *Server) putLocalBlob(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	digest, err := blobDigest(r)
	if err != nil {
		return err
	}
	size, err := declaredSize(r)
	if err != nil {
		return err
	}
	if err := s.storeBlob(r.Body, digest, size); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getBlob serves a payload, fetching it first from a server that holds it
// when this one does not (it was down during the upload, say). Ranges are
// supported, so an interrupted download resumes.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	digest, err := blobDigest(r)
	if err != nil {
		return err
	}
	if !s.blobs.Has(digest) {
		if err := s.fetchBlob(r.Context(), digest); err != nil {
			return err
		}
	}
	return s.serveLocalBlob(w, r, digest)
}

func (s *Server) getLocalBlob(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	digest, err := blobDigest(r)
	if err != nil {
		return err
	}
	return s.serveLocalBlob(w, r, digest)
}

func (s *Server) serveLocalBlob(w http.ResponseWriter, r *http.Request, digest string) error {
	f, _, err := s.blobs.Open(digest)
	if errors.Is(err, artifacts.ErrNotFound) {
		return api.Errorf(api.CodeNotFound, "blob %s is not stored on server %s", digest, s.cfg.ID)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", strconv.Quote(digest))
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// fetchBlob copies a blob from a server recorded as holding it, checking
// its digest on the way in.
func (s *Server) fetchBlob(ctx context.Context, digest string) error {
	b, ok := s.store.Blob(digest)
	if !ok {
		return api.Errorf(api.CodeNotFound, "blob %s was never uploaded", digest)
	}
	var errs []error
	for _, holder := range b.Holders {
		p, ok := s.members.lookup(holder)
		if !ok || !p.Alive() || holder == s.cfg.ID {
			continue
		}
		err := s.fetchBlobFrom(ctx, p, digest, b.Size)
		if err == nil {
			s.log.Info("blob fetched from peer", "digest", digest, "peer", p.ID)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
	}
	return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("blob %s: no server could provide it: %v", digest, errors.Join(errs...))}
}

func (s *Server) fetchBlobFrom(ctx context.Context, p member, digest string, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL(p)+api.PathInternalBlobs+digest, nil)
	if err != nil {
		return err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return s.blobs.Put(resp.Body, digest, size)
}
