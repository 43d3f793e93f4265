package state

import (
	"crypto/subtle"
	"encoding/json"
	"maps"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

func (w *writer) tokenCreate(b TokenCreate) *api.Error {
	if b.ID == "" || b.SecretHash == "" || b.Uses < 1 {
		return api.Errorf(api.CodeInvalid, "token: id, secret hash and uses (1 or more) are required")
	}
	if w.first(tabTokens, b.ID) != nil {
		return api.Errorf(api.CodeConflict, "token %s already exists", b.ID)
	}
	t := &api.Token{ID: b.ID, SecretHash: b.SecretHash, Labels: b.Labels, ExpiresAt: b.ExpiresAt,
		UsesLeft: b.Uses, Host: b.Host, CreatedBy: w.cmd.Actor, CreatedAt: w.cmd.Time}
	w.meta(&t.Meta)
	w.insert(tabTokens, t)
	w.audit(AuditTokenCreate, "token/"+t.ID, "labels %s, %d use(s), until %s", formatSelector(t.Labels), t.UsesLeft, t.ExpiresAt.UTC().Format(timeFormat))
	return nil
}

// enroll checks the token and registers the host. Retrying an enrollment
// that already succeeded (same host, same token, same key) succeeds again
// without spending another use of the token.
func (w *writer) enroll(b Enroll) *api.Error {
	tok, _ := w.first(tabTokens, b.TokenID).(*api.Token)
	if tok == nil || subtle.ConstantTimeCompare([]byte(tok.SecretHash), []byte(b.SecretHash)) != 1 {
		return api.Errorf(api.CodeForbidden, "join token is not valid")
	}
	if old, _ := w.first(tabHosts, b.Host).(*api.Host); old != nil {
		if old.TokenID != b.TokenID || old.KeyPin != b.KeyPin {
			return api.Errorf(api.CodeConflict, "host %s is already enrolled; decommission it before enrolling it again", b.Host)
		}
		h := *old
		h.Certs = addCert(h.Certs, b.Cert, w.cmd.Time)
		w.meta(&h.Meta)
		w.insert(tabHosts, &h)
		return nil
	}
	if tok.Host != "" && tok.Host != b.Host {
		return api.Errorf(api.CodeForbidden, "join token %s was granted to host %s, not %s", tok.ID, tok.Host, b.Host)
	}
	if !w.cmd.Time.Before(tok.ExpiresAt) {
		return api.Errorf(api.CodeForbidden, "join token %s expired at %s", tok.ID, tok.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if tok.UsesLeft < 1 {
		return api.Errorf(api.CodeForbidden, "join token %s has been used up", tok.ID)
	}
	t := *tok
	t.UsesLeft--
	w.meta(&t.Meta)
	w.insert(tabTokens, &t)
	h := &api.Host{ID: b.Host, Labels: maps.Clone(tok.Labels), TokenID: tok.ID, KeyPin: b.KeyPin,
		Certs: []api.IssuedCert{b.Cert}, EnrolledAt: w.cmd.Time, Status: api.HostUp, StatusSince: w.cmd.Time}
	w.meta(&h.Meta)
	w.insert(tabHosts, h)
	return nil
}

// inventory replaces a host's inventory and records in its history the
// configuration facts that changed (see history.go).
func (w *writer) inventory(b Inventory) *api.Error {
	old, _ := w.first(tabHosts, b.Host).(*api.Host)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "host %s is not enrolled", b.Host)
	}
	if old.InventoryDigest == b.Digest {
		return nil
	}
	var sys inventory.System
	if err := json.Unmarshal(b.System, &sys); err != nil {
		return api.Errorf(api.CodeInvalid, "inventory of host %s: %v", b.Host, err)
	}
	h := *old
	w.recordChanges(&h, &sys)
	h.Inventory, h.InventoryDigest, h.InventoryAt = b.System, b.Digest, w.cmd.Time
	w.meta(&h.Meta)
	w.insert(tabHosts, &h)
	return nil
}

// agentReport moves a host's deployment forward. Reports may be delivered
// twice or late; one that does not advance the state changes nothing.
func (w *writer) agentReport(b AgentReport) *api.Error {
	old, _ := w.first(tabHosts, b.Host).(*api.Host)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "host %s is not enrolled", b.Host)
	}
	if !b.State.Known() || b.State == deploy.Pending || b.State == deploy.Instructed {
		return api.Errorf(api.CodeInvalid, "state %q cannot be reported by an agent", b.State)
	}
	d, _ := w.first(tabDeployments, b.Rollout+"/"+b.Host).(*api.Deployment)
	if d == nil {
		return api.Errorf(api.CodeNotFound, "host %s is not part of rollout %s", b.Host, b.Rollout)
	}
	if d.State == deploy.Pending {
		return api.Errorf(api.CodeConflict, "host %s has not been instructed in rollout %s yet", b.Host, b.Rollout)
	}
	// Checked before the host is touched: a late report carries the version
	// the host ran back then, and must not overwrite a newer one.
	if !d.State.Advances(b.State) {
		return nil
	}
	h := *old
	h.LastReport = w.cmd.Time
	if b.Current != "" && h.Releases[d.App] != b.Current {
		h.Releases = maps.Clone(h.Releases)
		if h.Releases == nil {
			h.Releases = map[string]string{}
		}
		h.Releases[d.App] = b.Current
	}
	w.meta(&h.Meta)
	w.insert(tabHosts, &h)
	nd := *w.setHost(d, b.State, b.Reason)
	nd.Output = b.Output
	if b.Current != "" {
		nd.Current = b.Current
	}
	w.insert(tabDeployments, &nd)
	if b.State.Failure() {
		w.audit(AuditHostsReverted, b.Rollout, "%s %s: %s", b.Host, b.State, b.Reason)
	}
	return nil
}

// hostStatus applies the leader's liveness decisions. Unknown hosts (say,
// decommissioned since) are skipped.
func (w *writer) hostStatus(b HostStatus) *api.Error {
	set := func(ids []string, status string) {
		for _, id := range ids {
			old, _ := w.first(tabHosts, id).(*api.Host)
			if old == nil || old.Status == status {
				continue
			}
			h := *old
			h.Status, h.StatusSince = status, w.cmd.Time
			w.meta(&h.Meta)
			w.insert(tabHosts, &h)
		}
	}
	set(b.Up, api.HostUp)
	set(b.Down, api.HostDown)
	return nil
}
