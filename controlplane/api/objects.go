package api

import (
	"encoding/json"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/deploy"
)

// Meta is carried by every object: the Raft indexes of its creation and of
// its last change.
type Meta struct {
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Host is an enrolled machine.
type Host struct {
	ID      string            `json:"id"`
	Labels  map[string]string `json:"labels,omitempty"`
	TokenID string            `json:"token_id"`
	KeyPin  string            `json:"key_pin"` // SHA-256 of the agent's public key
	// Certs are the certificates issued to the host's agent that have not
	// expired yet (enrollment and renewals); decommissioning revokes them.
	Certs      []IssuedCert `json:"certs,omitempty"`
	EnrolledAt time.Time    `json:"enrolled_at"`
	// Status is up or down, as the leader last decided from check-ins.
	Status      string    `json:"status"`
	StatusSince time.Time `json:"status_since"`
	LastReport  time.Time `json:"last_report,omitempty"`
	// Releases is what the agent last said it runs: application -> version.
	Releases map[string]string `json:"releases,omitempty"`
	// Inventory is the agent's last inventory (inventory.System, as JSON).
	Inventory       json.RawMessage `json:"inventory,omitempty"`
	InventoryDigest string          `json:"inventory_digest,omitempty"`
	InventoryAt     time.Time       `json:"inventory_at,omitempty"`
	// ChangedAt is when the host's configuration last changed (see
	// inventory.Configuration); InventoryAt moves with free space too.
	ChangedAt time.Time `json:"changed_at,omitempty"`
	// DriftAt is when a change that no rollout made was last seen.
	DriftAt time.Time `json:"drift_at,omitempty"`
	Meta
}

// HostDetail is one host with its configuration history, oldest first.
type HostDetail struct {
	Host    *Host         `json:"host"`
	History []*HostChange `json:"history"`
}

// HostChange is one entry of a host's configuration history: the facts
// that changed from one inventory it reported to the next.
type HostChange struct {
	ID   string    `json:"id"` // host/raft index, zero-padded to sort
	Host string    `json:"host"`
	At   time.Time `json:"at"`
	// Initial marks the host's first inventory; Facts counts its facts,
	// which are not listed as changes.
	Initial bool         `json:"initial,omitempty"`
	Facts   int          `json:"facts,omitempty"`
	Changes []FactChange `json:"changes,omitempty"`
	// Omitted counts changes left out beyond the first MaxHostChanges.
	Omitted int `json:"omitted,omitempty"`
	// Drift is set when a change was made by no rollout.
	Drift bool `json:"drift,omitempty"`
	Meta
}

// MaxHostChanges bounds the changes one history entry lists.
const MaxHostChanges = 2000

// FactChange is one changed fact and the rollout that made it; an empty
// Rollout is drift.
type FactChange struct {
	Fact    string `json:"fact"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Rollout string `json:"rollout,omitempty"`
}

// IssuedCert is one certificate the cluster issued.
type IssuedCert struct {
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
}

// Operator is a person (or a tool) with an operator certificate.
type Operator struct {
	Name      string       `json:"name"`
	Role      string       `json:"role"`
	Certs     []IssuedCert `json:"certs,omitempty"`
	IssuedBy  string       `json:"issued_by"`
	CreatedAt time.Time    `json:"created_at"`
	Meta
}

// Revocation is a certificate that must no longer be accepted. It is kept
// until the certificate would have expired anyway.
type Revocation struct {
	Serial   string    `json:"serial"`
	Subject  string    `json:"subject"` // e.g. agent/web-1
	Reason   string    `json:"reason"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	NotAfter time.Time `json:"not_after"`
	Meta
}

// Approval is an approver's sign-off on a release.
type Approval struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Window is a maintenance window held in the replicated state.
type Window struct {
	deploy.Window
	Meta
}

// Host statuses.
const (
	HostUp   = "up"
	HostDown = "down"
)

// Token is a join token, stored by the hash of its secret only.
type Token struct {
	ID         string            `json:"id"`
	SecretHash string            `json:"secret_hash"`
	Labels     map[string]string `json:"labels,omitempty"`
	ExpiresAt  time.Time         `json:"expires_at"`
	UsesLeft   int               `json:"uses_left"`
	Host       string            `json:"host,omitempty"` // the only name that may enroll, if set
	CreatedBy  string            `json:"created_by"`
	CreatedAt  time.Time         `json:"created_at"`
	Meta
}

// Payload is a release payload held by the servers as chunks (its bytes
// are not here): its chunk list, and which servers hold every chunk.
type Payload struct {
	SHA256  string   `json:"sha256"`
	Size    int64    `json:"size"`
	Format  string   `json:"format"`
	Chunks  string   `json:"chunks"`  // SHA-256 of List, as a signed manifest names it
	List    []byte   `json:"list"`    // the chunk list, chunks.List.Encode()
	Holders []string `json:"holders"` // servers holding a durable copy of every chunk
	// Provenance is the in-toto statement about this payload's build, as
	// given to drover artifact push --provenance (see ParseProvenance).
	Provenance []byte `json:"provenance,omitempty"`
	Meta
}

// Release is a signed manifest: the exact signed bytes and their signatures.
type Release struct {
	ID         string     `json:"id"` // name@version
	App        string     `json:"app"`
	Version    string     `json:"version"`
	Manifest   []byte     `json:"manifest"`
	Signatures [][]byte   `json:"signatures"`
	Payload    string     `json:"payload"` // SHA-256 of the payload
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	Approvals  []Approval `json:"approvals,omitempty"`
	Meta
}

// Rollout states. A rollout holds its hosts (one change per host) while
// pending, queued, running, paused or rolling back.
const (
	RolloutPending     = "pending"      // created; not started (a readiness gate failed, or asked so)
	RolloutQueued      = "queued"       // starts when the rollout it follows ends
	RolloutRunning     = "running"      // hosts are being updated (or wait for not_before)
	RolloutPaused      = "paused"       // no host starts until resumed
	RolloutCompleted   = "completed"    // every target is done
	RolloutAborted     = "aborted"      // stopped for good; pending hosts skipped
	RolloutRollingBack = "rolling-back" // its rollback rollout runs
	RolloutRolledBack  = "rolled-back"  // its rollback rollout completed
)

// Rollout kinds.
const (
	KindRelease  = "release"  // a release going out
	KindRollback = "rollback" // hosts of another rollout going back, each to its previous release
)

// Rollout is one release going out to a fixed, ordered set of hosts (or,
// for a rollback, hosts going back to what they ran before).
type Rollout struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Release  string            `json:"release"` // for a rollback: the release being backed out
	App      string            `json:"app"`
	Version  string            `json:"version"`
	Selector map[string]string `json:"selector,omitempty"`
	Where    string            `json:"where,omitempty"` // filter over labels and inventory facts
	// Env is the lifecycle environment the rollout deploys into: the one
	// asked for, or the latest stage whose hosts it targets.
	Env     string      `json:"env,omitempty"`
	Plan    deploy.Plan `json:"plan"`
	Targets []string    `json:"targets"` // host IDs in rollout order
	Sizes   []int       `json:"sizes"`   // cumulative wave sizes
	Wave    int         `json:"wave"`
	// WaveDoneAt is when the current wave finished; its bake time counts
	// from it. Promoted is the highest wave an operator let start.
	WaveDoneAt time.Time `json:"wave_done_at,omitempty"`
	Promoted   int       `json:"promoted,omitempty"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	// After names the rollouts a queued one waits for.
	After []string `json:"after,omitempty"`
	// RollbackOf / RollbackID link a rollback and the rollout it backs out.
	RollbackOf string `json:"rollback_of,omitempty"`
	RollbackID string `json:"rollback_id,omitempty"`
	// Gates are the readiness review of the last start attempt; Overrides
	// record an admin starting despite failed gates.
	Gates     []Gate     `json:"gates,omitempty"`
	Overrides []Override `json:"overrides,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	StartedBy string     `json:"started_by,omitempty"`
	StartedAt time.Time  `json:"started_at,omitempty"`
	EndedAt   time.Time  `json:"ended_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
	Meta
}

// Active reports whether the rollout holds its hosts.
func (r *Rollout) Active() bool {
	switch r.State {
	case RolloutPending, RolloutQueued, RolloutRunning, RolloutPaused, RolloutRollingBack:
		return true
	}
	return false
}

// Terminal reports whether the rollout is over for good.
func (r *Rollout) Terminal() bool {
	switch r.State {
	case RolloutCompleted, RolloutAborted, RolloutRolledBack:
		return true
	}
	return false
}

// Gate is one item of a readiness review.
type Gate struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Override records an admin starting a rollout despite failed gates or a
// freeze.
type Override struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Gates  []string  `json:"gates"` // the gates that had failed
}

// Transition is a host's state change, for the post-release review.
type Transition struct {
	State deploy.HostState `json:"state"`
	At    time.Time        `json:"at"`
}

// Deployment is one host in one rollout.
type Deployment struct {
	ID      string           `json:"id"` // rollout/host
	Rollout string           `json:"rollout"`
	Host    string           `json:"host"`
	Wave    int              `json:"wave"`
	App     string           `json:"app"`
	Version string           `json:"version"`
	Release string           `json:"release"`
	State   deploy.HostState `json:"state"`
	Reason  string           `json:"reason,omitempty"`
	Output  string           `json:"output,omitempty"` // tail of the failing check's output
	// From is the version the host ran when it was instructed: what a
	// rollback takes it back to.
	From string `json:"from,omitempty"`
	// Current is the version the host reported it runs after this step.
	Current   string       `json:"current,omitempty"`
	StartedAt time.Time    `json:"started_at,omitempty"`
	UpdatedAt time.Time    `json:"updated_at"`
	History   []Transition `json:"history,omitempty"`
	Meta
}

// Freeze is a change freeze held in the replicated state.
type Freeze struct {
	deploy.Freeze
	CreatedBy string `json:"created_by"`
	Meta
}

// Settings are cluster-wide change-management rules.
type Settings struct {
	// Budget caps hosts changing at once per failure domain (the value of
	// a label, such as site or rack) across all rollouts.
	Budget *Budget `json:"budget,omitempty"`
	// Approvals: a rollout whose targets include a host matching a rule
	// needs at least that many approvals of its release.
	Approvals []ApprovalRule `json:"approvals,omitempty"`
	// Webhooks receive rollout events.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	Meta
}

// Budget is a change budget per failure domain.
type Budget struct {
	Label string `json:"label"`
	Max   int    `json:"max"`
}

// ApprovalRule requires approvals for changes to some hosts.
type ApprovalRule struct {
	Selector map[string]string `json:"selector,omitempty"`
	Count    int               `json:"count"`
}

// Webhook is an endpoint told about rollout events, with an HMAC-SHA256
// signature of each body by Secret.
type Webhook struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Events []string `json:"events,omitempty"` // audit actions to send; empty: all rollout events
}

// AuditEntry is one decision, in an append-only chain: each entry's Hash
// covers its content and the previous entry's hash, so an altered or
// missing entry breaks the chain.
type AuditEntry struct {
	Seq     uint64    `json:"seq"`
	Index   uint64    `json:"index"` // Raft index of the command
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`  // e.g. rollout.start
	Subject string    `json:"subject"` // e.g. r-42
	Detail  string    `json:"detail,omitempty"`
	Prev    string    `json:"prev"`
	Hash    string    `json:"hash"`
}

// TrustPolicy is the current version of an application's trust policy.
type TrustPolicy struct {
	artifacts.SignedPolicy
	Meta
}
