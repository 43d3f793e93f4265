package state

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/drover-dev/drover/controlplane/api"
)

// Audit actions. Webhooks are sent for the rollout events among them.
const (
	AuditReleaseCreate   = "release.created"
	AuditReleaseApprove  = "release.approved"
	AuditRolloutCreate   = "rollout.created"
	AuditRolloutQueue    = "rollout.queued"
	AuditRolloutStart    = "rollout.started"
	AuditRolloutOverride = "rollout.override"
	AuditWavePromoted    = "rollout.wave_promoted"
	AuditRolloutPromote  = "rollout.promoted" // by an operator
	AuditRolloutPause    = "rollout.paused"
	AuditRolloutResume   = "rollout.resumed"
	AuditThreshold       = "rollout.failed_threshold"
	AuditHostsReverted   = "rollout.hosts_reverted"
	AuditHostsTimedOut   = "rollout.hosts_timed_out"
	AuditRolloutAbort    = "rollout.aborted"
	AuditRollbackStart   = "rollout.rolling_back"
	AuditRolledBack      = "rollout.rolled_back"
	AuditRolloutComplete = "rollout.completed"
	AuditFreezeSet       = "freeze.set"
	AuditFreezeDelete    = "freeze.deleted"
	AuditWindowSet       = "window.set"
	AuditWindowDelete    = "window.deleted"
	AuditSettingsSet     = "settings.set"
	AuditTrustSet        = "trust.set"
	AuditOperatorIssue   = "operator.issued"
	AuditOperatorRevoke  = "operator.revoked"
	AuditHostDecommision = "host.decommissioned"
	AuditTokenCreate     = "token.created"
)

// audit appends an entry to the hash-chained audit trail. It is part of the
// command's transaction: a refused command leaves no entry.
func (w *writer) audit(action, subject, format string, args ...any) {
	e := api.AuditEntry{Seq: 1, Index: w.index, Time: w.cmd.Time, Actor: w.cmd.Actor, Action: action, Subject: subject}
	if format != "" {
		e.Detail = fmt.Sprintf(format, args...)
	}
	last, err := w.tx.Last(tabAudit, "id")
	if err != nil {
		panic(err)
	}
	if last != nil {
		prev := last.(*auditRow).Entry
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	e.Hash = e.ComputeHash()
	w.insert(tabAudit, &auditRow{ID: auditID(e.Seq), Subject: subject, Entry: e})
}

func auditID(seq uint64) string { return fmt.Sprintf("%020d", seq) }

func (w *writer) freezeSet(b FreezeSet) *api.Error {
	f := b.Freeze
	if err := f.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	obj := &api.Freeze{Freeze: f, CreatedBy: w.cmd.Actor}
	if old, _ := w.first(tabFreezes, f.Name).(*api.Freeze); old != nil {
		obj.Meta = old.Meta
	}
	w.meta(&obj.Meta)
	w.insert(tabFreezes, obj)
	w.audit(AuditFreezeSet, "freeze/"+f.Name, "%s to %s on %s: %s", f.Start.UTC().Format(timeFormat), f.End.UTC().Format(timeFormat), formatSelector(f.Selector), f.Reason)
	return nil
}

func (w *writer) freezeDelete(b FreezeDelete) *api.Error {
	old := w.first(tabFreezes, b.Name)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "freeze %s does not exist", b.Name)
	}
	if err := w.tx.Delete(tabFreezes, old); err != nil {
		panic(err)
	}
	w.touch(tabFreezes)
	w.audit(AuditFreezeDelete, "freeze/"+b.Name, "")
	return nil
}

// Bounds on settings.
const (
	maxApprovalRules = 64
	maxApprovals     = 16
	maxWebhooks      = 16
)

func (w *writer) settingsSet(b SettingsSet) *api.Error {
	s := b.Settings
	if err := validateSettings(s); err != nil {
		return err
	}
	s.Meta = api.Meta{}
	if old, _ := w.first(tabSettings, settingsID).(*settingsRow); old != nil {
		s.Meta = old.Settings.Meta
	}
	w.meta(&s.Meta)
	w.insert(tabSettings, &settingsRow{ID: settingsID, Settings: s})
	// A new webhook hears of events from now on, not the whole history.
	head := uint64(0)
	if last, _ := w.tx.Last(tabAudit, "id"); last != nil {
		head = last.(*auditRow).Entry.Seq
	}
	for _, h := range s.Webhooks {
		if w.first(tabCursors, h.URL) == nil {
			w.insert(tabCursors, &webhookCursor{URL: h.URL, Seq: head})
		}
	}
	var hooks []string
	for _, h := range s.Webhooks {
		hooks = append(hooks, h.URL) // never the secret
	}
	w.audit(AuditSettingsSet, "settings", "budget %s; %d approval rule(s); webhooks %v", formatBudget(s.Budget), len(s.Approvals), hooks)
	return nil
}

func validateSettings(s api.Settings) *api.Error {
	if b := s.Budget; b != nil && (b.Label == "" || len(b.Label) > 63 || b.Max < 1) {
		return api.Errorf(api.CodeInvalid, "budget: a label (such as site or rack) and a max of 1 or more hosts are required")
	}
	if len(s.Approvals) > maxApprovalRules {
		return api.Errorf(api.CodeInvalid, "approvals: at most %d rules", maxApprovalRules)
	}
	for i, r := range s.Approvals {
		if r.Count < 1 || r.Count > maxApprovals {
			return api.Errorf(api.CodeInvalid, "approvals[%d].count: between 1 and %d", i, maxApprovals)
		}
	}
	if len(s.Webhooks) > maxWebhooks {
		return api.Errorf(api.CodeInvalid, "webhooks: at most %d", maxWebhooks)
	}
	var seen []string
	for i, h := range s.Webhooks {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(h.URL) > 1024 {
			return api.Errorf(api.CodeInvalid, "webhooks[%d].url: an http or https URL of at most 1024 bytes", i)
		}
		if len(h.Secret) < 16 || len(h.Secret) > 256 {
			return api.Errorf(api.CodeInvalid, "webhooks[%d].secret: 16 to 256 bytes", i)
		}
		if slices.Contains(seen, h.URL) {
			return api.Errorf(api.CodeInvalid, "webhooks[%d].url: %s is listed twice", i, h.URL)
		}
		seen = append(seen, h.URL)
		if len(h.Events) > 64 {
			return api.Errorf(api.CodeInvalid, "webhooks[%d].events: at most 64", i)
		}
	}
	return nil
}

func formatBudget(b *api.Budget) string {
	if b == nil {
		return "none"
	}
	return fmt.Sprintf("%d host(s) per %s", b.Max, b.Label)
}

// webhookAck moves a webhook's cursor forward (never back: acks may be
// retried or arrive out of order).
func (w *writer) webhookAck(b WebhookAck) *api.Error {
	if b.URL == "" {
		return api.Errorf(api.CodeInvalid, "webhook URL required")
	}
	old, _ := w.first(tabCursors, b.URL).(*webhookCursor)
	if old != nil && old.Seq >= b.Seq {
		return nil
	}
	w.insert(tabCursors, &webhookCursor{URL: b.URL, Seq: b.Seq})
	return nil
}

// touch records a change to a table that had no insert (a delete).
func (w *writer) touch(table string) {
	if err := w.tx.Insert(tabIndex, &tableIndex{Table: table, Index: w.index}); err != nil {
		panic(err)
	}
}

const timeFormat = "2006-01-02 15:04Z07:00"
