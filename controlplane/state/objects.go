package state

import (
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
)

// idempotent records the result of a command that carried an idempotency
// key, so that a retry returns the first outcome instead of acting twice.
type idempotent struct {
	Key    string    `json:"key"`
	Result Result    `json:"result"`
	Time   time.Time `json:"time"`
}

// trustVersion is one version of an application's trust policy, kept so
// that an agent that was offline during rotations can follow the chain.
type trustVersion struct {
	ID     string                 `json:"id"` // app/serial, zero-padded
	App    string                 `json:"app"`
	Policy artifacts.SignedPolicy `json:"policy"`
}

// tableIndex is the last Raft index that changed a table.
type tableIndex struct {
	Table string `json:"table"`
	Index uint64 `json:"index"`
}

// settingsRow holds the cluster's one Settings object.
type settingsRow struct {
	ID       string       `json:"id"` // always settingsID
	Settings api.Settings `json:"settings"`
}

const settingsID = "cluster"

// auditRow is one audit entry, keyed by its zero-padded sequence number so
// that the table iterates in order.
type auditRow struct {
	ID      string         `json:"id"`
	Subject string         `json:"subject"`
	Entry   api.AuditEntry `json:"entry"`
}

// webhookCursor is the last audit entry a webhook received.
type webhookCursor struct {
	URL string `json:"url"`
	Seq uint64 `json:"seq"`
}
