package state

import (
	"slices"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// addCert appends a certificate to a list and drops the ones expired at now.
func addCert(certs []api.IssuedCert, c api.IssuedCert, now time.Time) []api.IssuedCert {
	out := []api.IssuedCert{}
	for _, old := range certs {
		if old.NotAfter.After(now) && old.Serial != c.Serial {
			out = append(out, old)
		}
	}
	return append(out, c)
}

// certIssued records a renewal of an agent's certificate or a new
// operator certificate.
func (w *writer) certIssued(b CertIssued) *api.Error {
	if b.Cert.Serial == "" {
		return api.Errorf(api.CodeInvalid, "certificate serial required")
	}
	switch b.Kind {
	case "agent":
		old, _ := w.first(tabHosts, b.Name).(*api.Host)
		if old == nil {
			return api.Errorf(api.CodeNotFound, "host %s is not enrolled", b.Name)
		}
		h := *old
		h.Certs = addCert(h.Certs, b.Cert, w.cmd.Time)
		w.meta(&h.Meta)
		w.insert(tabHosts, &h)
	case "operator":
		op := &api.Operator{Name: b.Name, Role: b.Role, IssuedBy: w.cmd.Actor, CreatedAt: w.cmd.Time}
		if old, _ := w.first(tabOperators, b.Name).(*api.Operator); old != nil {
			*op = *old
			op.Role = b.Role
		}
		op.Certs = addCert(op.Certs, b.Cert, w.cmd.Time)
		w.meta(&op.Meta)
		w.insert(tabOperators, op)
		w.audit(AuditOperatorIssue, "operator/"+b.Name, "role %s, certificate %s until %s", b.Role, b.Cert.Serial, b.Cert.NotAfter.UTC().Format(timeFormat))
	default:
		return api.Errorf(api.CodeInvalid, "kind %q: allowed values are agent, operator", b.Kind)
	}
	return nil
}

// revokeCerts revokes certificates of subject that have not expired.
func (w *writer) revokeCerts(certs []api.IssuedCert, subject, reason string) {
	for _, c := range certs {
		if !c.NotAfter.After(w.cmd.Time) {
			continue
		}
		r := &api.Revocation{Serial: c.Serial, Subject: subject, Reason: reason, By: w.cmd.Actor, At: w.cmd.Time, NotAfter: c.NotAfter}
		w.meta(&r.Meta)
		w.insert(tabRevocations, r)
	}
}

func (w *writer) revokeOperator(b Revoke) *api.Error {
	op, _ := w.first(tabOperators, b.Operator).(*api.Operator)
	if op == nil {
		return api.Errorf(api.CodeNotFound, "operator %s does not exist", b.Operator)
	}
	w.revokeCerts(op.Certs, "operator/"+op.Name, b.Reason)
	if err := w.tx.Delete(tabOperators, op); err != nil {
		panic(err)
	}
	w.touch(tabOperators)
	w.audit(AuditOperatorRevoke, "operator/"+op.Name, "%s", b.Reason)
	return nil
}

// decommission removes a host: its certificates are revoked, and its part
// in any active rollout is marked skipped.
func (w *writer) decommission(b Decommission) *api.Error {
	h, _ := w.first(tabHosts, b.Host).(*api.Host)
	if h == nil {
		return api.Errorf(api.CodeNotFound, "host %s is not enrolled", b.Host)
	}
	w.revokeCerts(h.Certs, "agent/"+h.ID, b.Reason)
	it, err := w.tx.Get(tabDeployments, "host", h.ID)
	if err != nil {
		panic(err)
	}
	var open []*api.Deployment
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if d := obj.(*api.Deployment); !d.State.Final() {
			open = append(open, d)
		}
	}
	for _, old := range open {
		w.setHost(old, deploy.Skipped, "host decommissioned")
	}
	if err := w.tx.Delete(tabHosts, h); err != nil {
		panic(err)
	}
	w.touch(tabHosts)
	w.dropHistory(h.ID)
	w.audit(AuditHostDecommision, "host/"+h.ID, "%s", b.Reason)
	return nil
}

// approve records a sign-off. Separation of duties: the operator who
// created a release cannot approve it, and nobody approves twice.
func (w *writer) approve(b Approve) *api.Error {
	old, _ := w.first(tabReleases, b.Release).(*api.Release)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "release %s does not exist", b.Release)
	}
	if old.CreatedBy == w.cmd.Actor {
		return api.Errorf(api.CodeForbidden, "%s created release %s and cannot approve it: another approver must", w.cmd.Actor, b.Release)
	}
	if slices.ContainsFunc(old.Approvals, func(a api.Approval) bool { return a.By == w.cmd.Actor }) {
		return api.Errorf(api.CodeConflict, "%s already approved release %s", w.cmd.Actor, b.Release)
	}
	r := *old
	r.Approvals = append(slices.Clone(old.Approvals), api.Approval{By: w.cmd.Actor, At: w.cmd.Time, Comment: b.Comment})
	w.meta(&r.Meta)
	w.insert(tabReleases, &r)
	w.audit(AuditReleaseApprove, r.ID, "%s", b.Comment)
	return nil
}

// pruneRevocations drops revocations of certificates expired at now.
func (w *writer) pruneRevocations(now time.Time) {
	it, err := w.tx.Get(tabRevocations, "id")
	if err != nil {
		panic(err)
	}
	var old []any
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if !obj.(*api.Revocation).NotAfter.After(now) {
			old = append(old, obj)
		}
	}
	for _, obj := range old {
		_ = w.tx.Delete(tabRevocations, obj)
	}
}

func (w *writer) windowSet(b WindowSet) *api.Error {
	if err := b.Window.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	win := &api.Window{Window: b.Window}
	if old, _ := w.first(tabWindows, b.Window.Name).(*api.Window); old != nil {
		win.Meta = old.Meta
	}
	w.meta(&win.Meta)
	w.insert(tabWindows, win)
	w.audit(AuditWindowSet, "window/"+win.Name, "%s for %v in %s on %s", win.Schedule, win.Duration, win.TimeZone, formatSelector(win.Selector))
	return nil
}

func (w *writer) windowDelete(b WindowDelete) *api.Error {
	old, _ := w.first(tabWindows, b.Name).(*api.Window)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "window %s does not exist", b.Name)
	}
	if err := w.tx.Delete(tabWindows, old); err != nil {
		panic(err)
	}
	w.touch(tabWindows)
	w.audit(AuditWindowDelete, "window/"+b.Name, "")
	return nil
}
