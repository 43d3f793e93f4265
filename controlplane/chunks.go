package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/state"
	"github.com/drover-dev/drover/pki"
)

// Payload bytes never go through Raft. A client uploads the chunks a
// payload needs (asking first which the servers lack); each chunk is stored
// by the server that receives it and copied to the other servers, and is
// acknowledged once a quorum of voters holds it. Registering the payload
// then checks that a quorum holds every chunk (filling any gap) and commits
// the chunk list with those servers. Agents fetch chunks from any server;
// a server that lacks one, or finds its copy corrupt, fetches it from
// another and checks its digest.

// maxCompressedChunk bounds a compressed chunk in a request.
const maxCompressedChunk = chunks.MaxCompressedSize

// verifiedFor is how long a chunk verified when served is trusted without
// hashing it again.
const verifiedFor = 10 * time.Minute

type chunkServer struct {
	store    *chunks.Store
	mu       sync.Mutex
	verified map[string]time.Time
}

func openChunkServer(dataDir string) (*chunkServer, error) {
	st, err := chunks.OpenStore(filepath.Join(dataDir, "chunks"))
	if err != nil {
		return nil, err
	}
	return &chunkServer{store: st, verified: map[string]time.Time{}}, nil
}

func chunkRef(r *http.Request) (chunks.Ref, error) {
	d := r.PathValue("digest")
	if err := artifacts.ValidateDigest(d); err != nil {
		return chunks.Ref{}, api.Errorf(api.CodeInvalid, "digest: %v", err)
	}
	size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || size < 1 || size > chunks.MaxSize {
		return chunks.Ref{}, api.Errorf(api.CodeInvalid, "size: the chunk's uncompressed size (1-%d) is required", chunks.MaxSize)
	}
	return chunks.Ref{SHA256: d, Size: size}, nil
}

// chunkBuffers recycles request buffers: a fresh 4 MiB slice per chunk
// would cost the zeroing and the garbage collection of every byte uploaded.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, maxCompressedChunk); return &b }}

// readChunkBody reads a compressed chunk of the request's declared length.
// The caller gives the buffer back with release once nothing refers to it.
func readChunkBody(r *http.Request) (body []byte, release func(), err error) {
	if r.ContentLength <= 0 || r.ContentLength > maxCompressedChunk {
		return nil, nil, api.Errorf(api.CodeInvalid, "Content-Length must be set, between 1 and %d", maxCompressedChunk)
	}
	buf := chunkBuffers.Get().(*[]byte)
	release = func() { chunkBuffers.Put(buf) }
	body = (*buf)[:r.ContentLength]
	if _, err := io.ReadFull(r.Body, body); err != nil {
		release()
		return nil, nil, api.Errorf(api.CodeInvalid, "chunk body shorter than its Content-Length: %v", err)
	}
	return body, release, nil
}

// putChunk stores an uploaded chunk and copies it to the other servers.
func (s *Server) putChunk(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	ref, err := chunkRef(r)
	if err != nil {
		return err
	}
	body, release, err := readChunkBody(r)
	if err != nil {
		return err
	}
	defer release() // after the copies to the peers, which this waits for
	// Store here and copy to the peers at the same time: the request waits
	// for the slower of the two, not for both in turn.
	voters := max(s.voters(), 1)
	quorum := voters/2 + 1
	peers := make(chan int, 1)
	go func() { peers <- s.replicateChunk(r.Context(), ref, body) }()
	if err := s.storeChunk(body, ref); err != nil {
		<-peers
		return err
	}
	if holders := 1 + <-peers; holders < quorum {
		return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf(
			"only %d server(s) hold chunk %s, a quorum of the %d voters (%d) is needed; retry when more servers are up", holders, ref.SHA256, voters, quorum)}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// putLocalChunk receives a copy from another server. That server
// verified the chunk; it is stored as it is, and checked again before this
// server first serves it (verifiedChunk).
func (s *Server) putLocalChunk(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	ref, err := chunkRef(r)
	if err != nil {
		return err
	}
	body, release, err := readChunkBody(r)
	if err != nil {
		return err
	}
	defer release()
	if err := s.diskError(); err != nil {
		return err
	}
	if err := s.chunks.store.PutUnverified(body, ref); err != nil {
		return fmt.Errorf("cannot store chunk %s: %w", ref.SHA256, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) storeChunk(compressed []byte, ref chunks.Ref) error {
	if err := s.diskError(); err != nil {
		return err
	}
	err := s.chunks.store.PutCompressed(compressed, ref)
	switch {
	case errors.Is(err, chunks.ErrCorrupt), errors.Is(err, chunks.ErrTooLarge):
		return api.Errorf(api.CodeInvalid, "chunk %s: %v", ref.SHA256, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EDQUOT):
		return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("server %s cannot store chunk %s: %v", s.cfg.ID, ref.SHA256, err)}
	case err != nil:
		return fmt.Errorf("cannot store chunk %s: %w", ref.SHA256, err)
	}
	return nil
}

// replicateChunk copies a chunk to every other live server in parallel
// and returns how many now hold it.
func (s *Server) replicateChunk(ctx context.Context, ref chunks.Ref, compressed []byte) int {
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	for _, p := range s.members.alive() {
		if p.ID == s.cfg.ID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.sendChunk(ctx, p, ref, compressed); err != nil {
				s.log.Warn("chunk replication failed", "chunk", ref.SHA256, "peer", p.ID, "err", err)
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n
}

func (s *Server) sendChunk(ctx context.Context, p member, ref chunks.Ref, compressed []byte) error {
	u := peerURL(p) + api.PathInternalChunks + ref.SHA256 + "?size=" + strconv.FormatInt(ref.Size, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(compressed))
	if err != nil {
		return err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// missingChunks answers which of the listed chunks this server lacks.
func (s *Server) missingChunks(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var req api.ChunkList
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Chunks) > chunks.MaxChunks {
		return api.Errorf(api.CodeInvalid, "at most %d chunks per request", chunks.MaxChunks)
	}
	out := api.ChunkList{Chunks: []chunks.Ref{}}
	for _, ref := range req.Chunks {
		if !s.chunks.store.Has(ref.SHA256) {
			out.Chunks = append(out.Chunks, ref)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// getChunk serves a chunk, compressed as stored. A chunk is checked
// against its digest before it is first served (and again every
// verifiedFor); a missing or corrupt chunk is fetched from another server
// first, which also repairs this server's copy.
func (s *Server) getChunk(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	ref, err := chunkRef(r)
	if err != nil {
		return err
	}
	data, err := s.verifiedChunk(r.Context(), ref, true)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zstd")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, err = w.Write(data)
	return err
}

// getLocalChunk serves this server's own verified copy to another server.
func (s *Server) getLocalChunk(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	ref, err := chunkRef(r)
	if err != nil {
		return err
	}
	data, err := s.verifiedChunk(r.Context(), ref, false)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zstd")
	_, err = w.Write(data)
	return err
}

// verifiedChunk returns the compressed bytes of a chunk whose copy here
// has been checked against its digest. With repair, a missing or corrupt
// copy is replaced from another server.
func (s *Server) verifiedChunk(ctx context.Context, ref chunks.Ref, repair bool) ([]byte, error) {
	data, err := s.chunks.store.GetCompressed(ref.SHA256)
	if err == nil && !s.chunks.fresh(ref.SHA256) {
		if _, verr := chunks.Decompress(data, ref); verr != nil {
			s.log.Error("stored chunk is corrupt; repairing it from another server", "chunk", ref.SHA256, "err", verr)
			s.metrics.chunkRepairs.Inc()
			_ = s.chunks.store.Remove(ref.SHA256)
			data, err = nil, chunks.ErrCorrupt
		} else {
			s.chunks.markVerified(ref.SHA256)
		}
	}
	if err == nil {
		return data, nil
	}
	if !repair || (!errors.Is(err, chunks.ErrNotFound) && !errors.Is(err, chunks.ErrCorrupt)) {
		if errors.Is(err, chunks.ErrNotFound) || errors.Is(err, chunks.ErrCorrupt) {
			return nil, api.Errorf(api.CodeNotFound, "chunk %s is not stored on server %s", ref.SHA256, s.cfg.ID)
		}
		return nil, err
	}
	if err := s.fetchChunk(ctx, ref); err != nil {
		return nil, err
	}
	s.chunks.markVerified(ref.SHA256)
	return s.chunks.store.GetCompressed(ref.SHA256)
}

func (c *chunkServer) fresh(digest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.verified[digest]
	return ok && time.Since(t) < verifiedFor
}

func (c *chunkServer) markVerified(digest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verified[digest] = time.Now()
	if len(c.verified) > 100_000 {
		c.verified = map[string]time.Time{digest: time.Now()}
	}
}

// fetchChunk copies a chunk from another live server, verified.
func (s *Server) fetchChunk(ctx context.Context, ref chunks.Ref) error {
	var errs []error
	for _, p := range s.members.alive() {
		if p.ID == s.cfg.ID {
			continue
		}
		err := s.fetchChunkFrom(ctx, p, ref)
		if err == nil {
			s.log.Info("chunk fetched from peer", "chunk", ref.SHA256, "peer", p.ID)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
	}
	return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("chunk %s: no server could provide it: %v", ref.SHA256, errors.Join(errs...))}
}

func (s *Server) fetchChunkFrom(ctx context.Context, p member, ref chunks.Ref) error {
	u := peerURL(p) + api.PathInternalChunks + ref.SHA256 + "?size=" + strconv.FormatInt(ref.Size, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCompressedChunk+1))
	if err != nil {
		return err
	}
	if len(body) > maxCompressedChunk {
		return chunks.ErrTooLarge
	}
	return s.chunks.store.PutCompressed(body, ref)
}

// registerPayload records a payload once a quorum of servers holds every
// chunk, copying chunks to servers that lack them.
func (s *Server) registerPayload(w http.ResponseWriter, r *http.Request, caller pki.Identity) error {
	var req api.PayloadRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	list, err := chunks.DecodeList(req.List)
	if err != nil {
		return api.Errorf(api.CodeInvalid, "list: %v", err)
	}
	if missing := s.chunks.store.Missing(list); len(missing) > 0 {
		return api.Errorf(api.CodeInvalid, "server %s lacks %d of the payload's chunks (first %s); upload them first", s.cfg.ID, len(missing), missing[0].SHA256)
	}
	holders := s.payloadHolders(r.Context(), list)
	voters := max(s.voters(), 1)
	if quorum := voters/2 + 1; len(holders) < quorum {
		return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf(
			"only %d server(s) hold every chunk, a quorum of the %d voters (%d) is needed; retry when more servers are up", len(holders), voters, quorum)}
	}
	res, err := result(s.command(r, caller, state.CmdPayloadRegister, state.PayloadRegister{
		SHA256: req.SHA256, Size: req.Size, Format: req.Format, List: req.List, Holders: holders}))
	if err != nil {
		return err
	}
	s.log.Info("payload registered", "payload", req.SHA256, "size", req.Size, "chunks", len(list), "holders", holders)
	return writeJSON(w, http.StatusCreated, api.PayloadResponse{SHA256: req.SHA256, Size: req.Size, Chunks: list.Digest(),
		Count: len(list), Holders: holders, Index: res.Index})
}

// payloadHolders returns the servers holding every chunk of list, this one
// first. Peers missing chunks are completed, fewest missing first, only
// as far as a quorum needs: anti-entropy completes the others later.
func (s *Server) payloadHolders(ctx context.Context, list chunks.List) []string {
	type peerGap struct {
		m       member
		missing []chunks.Ref
	}
	var (
		mu   sync.Mutex
		gaps []peerGap
		wg   sync.WaitGroup
	)
	holders := []string{s.cfg.ID}
	for _, p := range s.members.alive() {
		if p.ID == s.cfg.ID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			missing, err := s.peerMissing(ctx, p, list)
			if err != nil {
				s.log.Warn("cannot ask a server which chunks it lacks", "peer", p.ID, "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(missing) == 0 {
				holders = append(holders, p.ID)
			} else {
				gaps = append(gaps, peerGap{p, missing})
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(gaps, func(a, b peerGap) int { return len(a.missing) - len(b.missing) })
	quorum := max(s.voters(), 1)/2 + 1
	for _, g := range gaps {
		if len(holders) >= quorum {
			break
		}
		if err := s.sendChunks(ctx, g.m, g.missing); err != nil {
			s.log.Warn("cannot complete a server's copy of the payload", "peer", g.m.ID, "err", err)
			continue
		}
		holders = append(holders, g.m.ID)
	}
	return holders
}

// sendChunks copies chunks this server holds to a peer.
func (s *Server) sendChunks(ctx context.Context, p member, missing []chunks.Ref) error {
	for _, ref := range missing {
		data, err := s.chunks.store.GetCompressed(ref.SHA256)
		if err != nil {
			return err
		}
		if err := s.sendChunk(ctx, p, ref, data); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) peerMissing(ctx context.Context, p member, list chunks.List) ([]chunks.Ref, error) {
	body, err := json.Marshal(api.ChunkList{Chunks: list})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peerURL(p)+api.PathInternalChunksMissing, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	var out api.ChunkList
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
		return nil, err
	}
	return out.Chunks, nil
}

func (s *Server) listPayloads(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	var out []*api.Payload
	err := s.blocking(w, r, func(ws memdb.WatchSet) (index uint64) {
		out, index = s.store.Payloads(ws)
		return index
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) getPayload(w http.ResponseWriter, r *http.Request, _ pki.Identity) error {
	digest, err := url.PathUnescape(r.PathValue("digest"))
	if err != nil || artifacts.ValidateDigest(digest) != nil {
		return api.Errorf(api.CodeInvalid, "digest: a lower-case hex SHA-256 is required")
	}
	p, ok := s.store.Payload(digest)
	if !ok {
		return api.Errorf(api.CodeNotFound, "payload %s has not been uploaded", digest)
	}
	return writeJSON(w, http.StatusOK, p)
}
