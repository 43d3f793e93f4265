package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/report"
)

// AuditAbout returns the audit entries about one subject.
func (c *Client) AuditAbout(ctx context.Context, subject string) ([]api.AuditEntry, error) {
	var out api.AuditPage
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathAudit + "?subject=" + url.QueryEscape(subject)}, &out)
	return out.Entries, err
}

// Report builds the post-release review of a rollout.
func (c *Client) Report(ctx context.Context, id string, now time.Time) (*report.Report, error) {
	var in report.Input
	var err error
	if in.Rollout, _, err = c.Rollout(ctx, id, 0, ""); err != nil {
		return nil, err
	}
	var rel api.Release
	if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: api.PathReleases + "/" + url.PathEscape(in.Rollout.Rollout.Release)}, &rel); err != nil {
		return nil, err
	}
	in.Release = &rel
	lineage, err := c.Lineage(ctx, rel.ID)
	if err != nil {
		return nil, err
	}
	in.Evidence = lineage.Evidence
	if in.Audit, err = c.AuditAbout(ctx, id); err != nil {
		return nil, err
	}
	if rb := in.Rollout.Rollout.RollbackID; rb != "" {
		if in.Rollback, _, err = c.Rollout(ctx, rb, 0, ""); err != nil {
			return nil, err
		}
		if in.RollbackAudit, err = c.AuditAbout(ctx, rb); err != nil {
			return nil, err
		}
	}
	rep := report.Build(in, now)
	return &rep, nil
}
