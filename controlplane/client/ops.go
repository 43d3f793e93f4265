package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"aead.dev/minisign"
	"github.com/drover-dev/drover/artifacts/chunks"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// Typed calls for the operator's API. Each is one Do.

// Upload sends a payload file to the cluster in one pass: it cuts the
// file into chunks and, a batch at a time, asks which chunks the servers
// lack and uploads those (compressed, several at once) while it goes on
// cutting; then it registers the payload, acknowledged once a quorum of
// servers holds every chunk. A new version of a payload therefore costs
// only its new chunks.
func (c *Client) Upload(ctx context.Context, path, format string) (*api.PayloadResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	up := c.newUploader(ctx)
	var (
		list  chunks.List
		batch []pending
		bytes int64
	)
	flush := func() error {
		err := up.offer(batch)
		batch, bytes = nil, 0
		return err
	}
	sha, size, err := chunks.Split(f, func(ref chunks.Ref, data []byte) error {
		list = append(list, ref)
		batch = append(batch, pending{ref: ref, data: slices.Clone(data)})
		if bytes += ref.Size; bytes >= uploadBatchBytes {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	uploaded, uerr := up.wait()
	if err == nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("cannot upload %s: %w", path, err)
	}
	var out api.PayloadResponse
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: api.PathPayloads,
		JSON: api.PayloadRequest{SHA256: sha, Size: size, Format: format, List: list.Encode()}}, &out); err != nil {
		return nil, err
	}
	out.Uploaded = uploaded
	return &out, nil
}

const (
	// uploadParallel is how many chunks are in flight at once.
	uploadParallel = 12
	// uploadBatchBytes is how much payload is cut before the servers are
	// asked which of its chunks they lack.
	uploadBatchBytes = 16 << 20
)

type pending struct {
	ref  chunks.Ref
	data []byte
}

// uploader compresses and uploads chunks on uploadParallel goroutines.
// Batches of cut chunks queue up (uploadQueue of them) for a dispatcher
// that asks the servers which they lack and hands those to the workers, so
// cutting the file never waits for the network unless the queue is full.
type uploader struct {
	c        *Client
	ctx      context.Context
	cancel   context.CancelFunc
	batches  chan []pending
	jobs     chan pending
	dispatch sync.WaitGroup
	wg       sync.WaitGroup
	sent     map[string]bool // chunks queued already, so each goes once
	mu       sync.Mutex
	err      error
	uploaded int64
}

// uploadQueue is how many batches may wait for the dispatcher.
const uploadQueue = 4

func (c *Client) newUploader(ctx context.Context) *uploader {
	ctx, cancel := context.WithCancel(ctx)
	u := &uploader{c: c, ctx: ctx, cancel: cancel, batches: make(chan []pending, uploadQueue),
		jobs: make(chan pending, uploadParallel), sent: map[string]bool{}}
	for range uploadParallel {
		u.wg.Add(1)
		go u.work()
	}
	u.dispatch.Add(1)
	go func() {
		defer u.dispatch.Done()
		defer close(u.jobs)
		for b := range u.batches {
			if u.dispatchBatch(b) != nil {
				for range u.batches { // drain, so offer never blocks
				}
				return
			}
		}
	}()
	return u
}

func (u *uploader) work() {
	defer u.wg.Done()
	for j := range u.jobs {
		body := chunks.Compress(j.data)
		path := api.PathChunks + j.ref.SHA256 + "?size=" + strconv.FormatInt(j.ref.Size, 10)
		if _, err := u.c.Do(u.ctx, Request{Method: http.MethodPut, Path: path, Body: bytes.NewReader(body), Size: int64(len(body))}, nil); err != nil {
			u.fail(fmt.Errorf("chunk %s: %w", j.ref.SHA256, err))
			continue
		}
		u.mu.Lock()
		u.uploaded += int64(len(body))
		u.mu.Unlock()
	}
}

func (u *uploader) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
		u.cancel()
	}
}

// offer queues a batch for the dispatcher.
func (u *uploader) offer(batch []pending) error {
	if len(batch) == 0 {
		return nil
	}
	select {
	case u.batches <- batch:
		return nil
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
}

// dispatchBatch hands the workers the chunks of batch the servers lack.
func (u *uploader) dispatchBatch(batch []pending) error {
	refs := make([]chunks.Ref, len(batch))
	for i, p := range batch {
		refs[i] = p.ref
	}
	var missing api.ChunkList
	if _, err := u.c.Do(u.ctx, Request{Method: http.MethodPost, Path: api.PathChunksMissing, JSON: api.ChunkList{Chunks: refs}}, &missing); err != nil {
		u.fail(err)
		return err
	}
	need := map[string]bool{}
	for _, ref := range missing.Chunks {
		need[ref.SHA256] = true
	}
	for _, p := range batch {
		if !need[p.ref.SHA256] || u.sent[p.ref.SHA256] {
			continue
		}
		u.sent[p.ref.SHA256] = true
		select {
		case u.jobs <- p:
		case <-u.ctx.Done():
			return u.ctx.Err()
		}
	}
	return nil
}

// wait waits for the uploads and returns the compressed bytes sent.
func (u *uploader) wait() (int64, error) {
	close(u.batches)
	u.dispatch.Wait()
	u.wg.Wait()
	u.cancel()
	return u.uploaded, u.err
}

// Chunk downloads one chunk, compressed as the server stores it.
func (c *Client) Chunk(ctx context.Context, ref chunks.Ref, avoid map[string]bool) (data []byte, server string, err error) {
	resp, err := c.Send(ctx, Request{Method: http.MethodGet, Path: api.PathChunks + ref.SHA256 + "?size=" + strconv.FormatInt(ref.Size, 10), Avoid: avoid})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	server = resp.Request.URL.Scheme + "://" + resp.Request.URL.Host
	limit := int64(chunks.MaxCompressedSize)
	data, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("chunk %s from %s: more than %d bytes", ref.SHA256, server, limit)
	}
	return data, server, err
}

// CreateRelease records a signed manifest.
func (c *Client) CreateRelease(ctx context.Context, manifest []byte, sigs [][]byte) (*api.Created, error) {
	var out api.Created
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: api.PathReleases,
		JSON: api.ReleaseRequest{Manifest: manifest, Signatures: sigs}}, &out)
	return &out, err
}

// SetTrust sets an application's first trust policy, or rotates it.
func (c *Client) SetTrust(ctx context.Context, p artifacts.SignedPolicy) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathTrust, JSON: p}, nil)
	return err
}

// CreateRollout starts a rollout and returns its ID and the Raft index
// that created it (pass it to Rollout to read your own write from any
// server).
func (c *Client) CreateRollout(ctx context.Context, req api.RolloutRequest) (*api.Created, error) {
	var out api.Created
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: api.PathRollouts, JSON: req}, &out)
	return &out, err
}

// Rollout returns a rollout and its hosts. With index > 0 it blocks until
// something newer than index exists or wait passes; a server that has not
// yet applied the rollout's creation waits for it the same way.
func (c *Client) Rollout(ctx context.Context, id string, index uint64, wait string) (*api.RolloutStatus, uint64, error) {
	q := url.Values{}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", wait)
	}
	var out api.RolloutStatus
	idx, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathRollouts + "/" + url.PathEscape(id) + "?" + q.Encode()}, &out)
	return &out, idx, err
}

// ControlRollout pauses or resumes a rollout.
func (c *Client) ControlRollout(ctx context.Context, id, action, reason string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: api.PathRollouts + "/" + url.PathEscape(id) + "/control",
		JSON: api.RolloutControlRequest{Action: action, Reason: reason}}, nil)
	return err
}

// Hosts lists the enrolled hosts.
func (c *Client) Hosts(ctx context.Context, q HostQuery) ([]*api.Host, error) {
	var out []*api.Host
	path := api.PathHosts
	if v := q.values(); len(v) > 0 {
		path += "?" + v.Encode()
	}
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path}, &out)
	return out, err
}

// Host returns one host with its configuration history.
func (c *Client) Host(ctx context.Context, id string) (*api.HostDetail, error) {
	var out api.HostDetail
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathHosts + "/" + url.PathEscape(id)}, &out)
	return &out, err
}

// HostQuery selects hosts for the host list and the inventory export.
type HostQuery struct {
	Where string    // inventory.ParseWhere syntax; "" selects every host
	Since time.Time // hosts whose configuration or status changed after; zero = all
	// RunningCommit selects hosts running a release built from this source
	// commit (a prefix of 7 or more hex digits).
	RunningCommit string
}

func (q HostQuery) values() url.Values {
	v := url.Values{}
	if q.Where != "" {
		v.Set("where", q.Where)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.RunningCommit != "" {
		v.Set("running_commit", q.RunningCommit)
	}
	return v
}

// Export streams the inventory export in format (csv, jsonl or
// servicenow) of the hosts q selects to w.
func (c *Client) Export(ctx context.Context, format string, q HostQuery, w io.Writer) error {
	v := q.values()
	v.Set("format", format)
	resp, err := c.Send(ctx, Request{Method: http.MethodGet, Path: api.PathExport + "?" + v.Encode()})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// fillProvenance copies the build provenance of m's payload, when one was
// attached (drover artifact push --provenance), into m, which is then
// signed: the signature binds the statement (by its SHA-256) to the
// release.
func (c *Client) fillProvenance(ctx context.Context, m *artifacts.Manifest) error {
	var p api.Payload
	if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathPayloads + "/" + m.Payload.SHA256}, &p); err != nil {
		return err
	}
	if len(p.Provenance) == 0 {
		return nil
	}
	prov, err := artifacts.ParseProvenance(p.Provenance)
	if err != nil {
		return fmt.Errorf("the payload's provenance: %w", err)
	}
	m.Provenance = &artifacts.Provenance{Builder: prov.Builder, BuildType: prov.BuildType, Repository: prov.Repository,
		SourceCommit: prov.Commit, BuildID: prov.BuildID, Statement: prov.Statement}
	return nil
}

// Release publishes a release in one go: it uploads the payload at
// payloadPath, completes m's payload description from it, signs the
// manifest with key, and records the release. It returns the manifest as
// signed.
func (c *Client) Release(ctx context.Context, m artifacts.Manifest, payloadPath string, key minisign.PrivateKey) (*artifacts.Manifest, error) {
	payload, _, err := artifacts.DescribePayload(payloadPath)
	if err != nil {
		return nil, err
	}
	m.Payload = payload
	if _, err := c.Upload(ctx, payloadPath, payload.Format); err != nil {
		return nil, fmt.Errorf("cannot upload payload: %w", err)
	}
	if err := c.fillProvenance(ctx, &m); err != nil {
		return nil, err
	}
	body, err := m.Canonical()
	if err != nil {
		return nil, err
	}
	if _, err := c.CreateRelease(ctx, body, [][]byte{artifacts.Sign(key, body, "release "+m.ID())}); err != nil {
		return nil, err
	}
	return &m, nil
}
