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
	Meta
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

// Rollout states.
const (
	RolloutRunning   = "running"
	RolloutPaused    = "paused"
	RolloutCompleted = "completed"
)

// Rollout is one release going out to a fixed, ordered set of hosts.
type Rollout struct {
	ID        string            `json:"id"`
	Release   string            `json:"release"`
	App       string            `json:"app"`
	Version   string            `json:"version"`
	Selector  map[string]string `json:"selector,omitempty"`
	Plan      deploy.Plan       `json:"plan"`
	Targets   []string          `json:"targets"` // host IDs in rollout order
	Sizes     []int             `json:"sizes"`   // cumulative wave sizes
	Wave      int               `json:"wave"`
	State     string            `json:"state"`
	Reason    string            `json:"reason,omitempty"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Meta
}

// Active reports whether the rollout still holds its hosts.
func (r *Rollout) Active() bool { return r.State != RolloutCompleted }

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
	// Current is the version the host reported it runs after this step.
	Current   string    `json:"current,omitempty"`
	StartedAt time.Time `json:"started_at,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	Meta
}

// TrustPolicy is the current version of an application's trust policy.
type TrustPolicy struct {
	artifacts.SignedPolicy
	Meta
}
