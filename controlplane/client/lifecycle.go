package client

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"github.com/drover-dev/drover/controlplane/api"
)

// Environments lists the environments.
func (c *Client) Environments(ctx context.Context) ([]*api.Environment, error) {
	var out []*api.Environment
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathEnvironments}, &out)
	return out, err
}

// SetEnvironment creates or replaces an environment.
func (c *Client) SetEnvironment(ctx context.Context, e api.Environment) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathEnvironments + "/" + url.PathEscape(e.Name), JSON: e}, nil)
	return err
}

// DeleteEnvironment removes an environment.
func (c *Client) DeleteEnvironment(ctx context.Context, name string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: api.PathEnvironments + "/" + url.PathEscape(name)}, nil)
	return err
}

// Lifecycles lists the lifecycles.
func (c *Client) Lifecycles(ctx context.Context) ([]*api.Lifecycle, error) {
	var out []*api.Lifecycle
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathLifecycles}, &out)
	return out, err
}

// SetLifecycle creates or replaces a lifecycle.
func (c *Client) SetLifecycle(ctx context.Context, l api.Lifecycle) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathLifecycles + "/" + url.PathEscape(l.Name), JSON: l}, nil)
	return err
}

// DeleteLifecycle removes a lifecycle.
func (c *Client) DeleteLifecycle(ctx context.Context, name string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: api.PathLifecycles + "/" + url.PathEscape(name)}, nil)
	return err
}

// Lineage traces a release from its source to the hosts running it.
func (c *Client) Lineage(ctx context.Context, release string) (*api.Lineage, error) {
	var out api.Lineage
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathReleases + "/" + url.PathEscape(release) + "/lineage"}, &out)
	return &out, err
}

// SetProvenance attaches an in-toto statement to the payload it is about.
func (c *Client) SetProvenance(ctx context.Context, payloadSHA256 string, statement []byte) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathPayloads + "/" + payloadSHA256 + "/provenance",
		Body: bytes.NewReader(statement), Size: int64(len(statement))}, nil)
	return err
}
