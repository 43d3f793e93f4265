package state

import (
	"time"

	"github.com/drover-dev/drover/artifacts"
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
