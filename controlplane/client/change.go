package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

func rolloutPath(id, sub string) string { return api.PathRollouts + "/" + url.PathEscape(id) + sub }

// StartRollout starts a pending rollout; override (admins only) starts it
// despite failed readiness gates, for the reason given.
func (c *Client) StartRollout(ctx context.Context, id, override string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: rolloutPath(id, "/start"), JSON: api.RolloutStartRequest{Override: override}}, nil)
	return err
}

// ReviewPlan runs the readiness review of a rollout not yet created.
func (c *Client) ReviewPlan(ctx context.Context, req api.RolloutRequest) (*api.Review, error) {
	var out api.Review
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: api.PathReadiness, JSON: req}, &out)
	return &out, err
}

// ReviewRollout runs the readiness review of a created rollout, now.
func (c *Client) ReviewRollout(ctx context.Context, id string) (*api.Review, error) {
	var out api.Review
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: rolloutPath(id, "/readiness")}, &out)
	return &out, err
}

// Rollouts lists every rollout.
func (c *Client) Rollouts(ctx context.Context) ([]*api.Rollout, error) {
	var out []*api.Rollout
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathRollouts}, &out)
	return out, err
}

// Freezes lists the change freezes.
func (c *Client) Freezes(ctx context.Context) ([]*api.Freeze, error) {
	var out []*api.Freeze
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathFreezes}, &out)
	return out, err
}

// SetFreeze creates or replaces a change freeze.
func (c *Client) SetFreeze(ctx context.Context, f deploy.Freeze) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathFreezes + "/" + url.PathEscape(f.Name), JSON: f}, nil)
	return err
}

// DeleteFreeze ends a change freeze.
func (c *Client) DeleteFreeze(ctx context.Context, name string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: api.PathFreezes + "/" + url.PathEscape(name)}, nil)
	return err
}

// Windows lists the maintenance windows.
func (c *Client) Windows(ctx context.Context) ([]*api.Window, error) {
	var out []*api.Window
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathWindows}, &out)
	return out, err
}

// Settings returns the change-management settings (webhook secrets
// redacted).
func (c *Client) Settings(ctx context.Context) (*api.Settings, error) {
	var out api.Settings
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathSettings}, &out)
	return &out, err
}

// SetSettings replaces the change-management settings.
func (c *Client) SetSettings(ctx context.Context, s api.Settings) error {
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: api.PathSettings, JSON: s}, nil)
	return err
}

// Audit returns up to limit audit entries after sequence number after.
func (c *Client) Audit(ctx context.Context, after uint64, limit int) (*api.AuditPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var out api.AuditPage
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathAudit + "?" + q.Encode()}, &out)
	return &out, err
}

// AuditAll returns the whole audit trail, page by page, and checks that it
// reached the head the server announced.
func (c *Client) AuditAll(ctx context.Context) ([]api.AuditEntry, error) {
	var all []api.AuditEntry
	var head uint64
	for {
		page, err := c.Audit(ctx, uint64(len(all)), 10000)
		if err != nil {
			return nil, err
		}
		head = max(head, page.Head)
		all = append(all, page.Entries...)
		if len(page.Entries) == 0 || uint64(len(all)) >= head {
			break
		}
	}
	if uint64(len(all)) < head {
		return all, fmt.Errorf("the server announced %d audit entries but returned %d", head, len(all))
	}
	return all, nil
}

// Calendar writes the schedule as iCalendar to w.
func (c *Client) Calendar(ctx context.Context, w io.Writer) error {
	resp, err := c.Send(ctx, Request{Method: http.MethodGet, Path: api.PathCalendar})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, io.LimitReader(resp.Body, maxResponseBytes))
	return err
}
