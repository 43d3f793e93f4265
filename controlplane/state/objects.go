package state

import "time"

// idempotent records the result of a command that carried an idempotency
// key, so that a retry returns the first outcome instead of acting twice.
type idempotent struct {
	Key    string    `json:"key"`
	Result Result    `json:"result"`
	Time   time.Time `json:"time"`
}

// tableIndex is the last Raft index that changed a table.
type tableIndex struct {
	Table string `json:"table"`
	Index uint64 `json:"index"`
}
