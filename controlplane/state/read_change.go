package state

import (
	"github.com/drover-dev/drover/controlplane/api"
	memdb "github.com/hashicorp/go-memdb"
)

// Freezes returns every change freeze and the index of the last change.
func (s *Store) Freezes(ws memdb.WatchSet) ([]*api.Freeze, uint64) {
	return getAll[*api.Freeze](s, ws, tabFreezes, "id"), s.TableIndex(nil, tabFreezes)
}

// Settings returns the cluster's change-management settings, secrets
// included: never send them to a client as they are.
func (s *Store) Settings(ws memdb.WatchSet) api.Settings {
	if row, ok := getOne[*settingsRow](s, ws, tabSettings, settingsID); ok {
		return row.Settings
	}
	return api.Settings{}
}

// Audit returns the audit entries after sequence number after, in order,
// at most limit of them (0: all), and the index of the last change.
func (s *Store) Audit(ws memdb.WatchSet, after uint64, limit int) ([]api.AuditEntry, uint64) {
	tx := s.read(ws)
	it, err := tx.LowerBound(tabAudit, "id", auditID(after+1))
	if err != nil {
		panic(err)
	}
	var out []api.AuditEntry
	for obj := it.Next(); obj != nil && (limit == 0 || len(out) < limit); obj = it.Next() {
		out = append(out, obj.(*auditRow).Entry)
	}
	// A lower-bound iterator has no watch channel: watch the table's index.
	return out, s.TableIndex(ws, tabAudit)
}

// AuditFor returns the audit entries about one subject (a rollout ID, say),
// in order.
func (s *Store) AuditFor(ws memdb.WatchSet, subject string) []api.AuditEntry {
	var out []api.AuditEntry
	for _, row := range getAll[*auditRow](s, ws, tabAudit, "subject", subject) {
		out = append(out, row.Entry)
	}
	return out
}

// WebhookCursor returns the sequence number of the last audit entry a
// webhook received.
func (s *Store) WebhookCursor(url string) uint64 {
	if c, ok := getOne[*webhookCursor](s, nil, tabCursors, url); ok {
		return c.Seq
	}
	return 0
}

// AuditHead returns the sequence number of the last audit entry (0 if
// none).
func (s *Store) AuditHead() uint64 {
	last, err := s.read(nil).Last(tabAudit, "id")
	if err != nil {
		panic(err)
	}
	if last == nil {
		return 0
	}
	return last.(*auditRow).Entry.Seq
}
