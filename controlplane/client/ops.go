package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// Typed calls for the operator's API. Each is one Do.

// PushBlob uploads a payload file and returns its digest once a quorum of
// servers holds it.
func (c *Client) PushBlob(ctx context.Context, path string) (*api.BlobResponse, error) {
	digest, size, err := artifacts.DigestFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out api.BlobResponse
	_, err = c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathBlobs + digest, Body: f, Size: size}, &out)
	return &out, err
}

// CreateRelease records a signed manifest.
func (c *Client) CreateRelease(ctx context.Context, manifest []byte, sigs [][]byte) (*api.Created, error) {
	var out api.Created
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: api.PathReleases,
		JSON: api.ReleaseRequest{Manifest: manifest, Signatures: sigs}}, &out)
	return &out, err
}

// SetTrust sets an application's trust policy.
func (c *Client) SetTrust(ctx context.Context, p artifacts.Policy) error {
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
func (c *Client) Hosts(ctx context.Context) ([]*api.Host, error) {
	var out []*api.Host
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathHosts}, &out)
	return out, err
}

// Export streams the inventory export in format to w.
func (c *Client) Export(ctx context.Context, format string, w io.Writer) error {
	resp, err := c.Send(ctx, Request{Method: http.MethodGet, Path: api.PathExport + "?format=" + url.QueryEscape(format)})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}
