package api

import (
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/deploy"
)

// Endpoint paths. Every path is served over mutual TLS; the enrollment pair
// (CA and Enroll) is the only one that accepts a client without a
// certificate, because enrolling is how an agent gets one.
const (
	PathCA                    = "/v1/ca"
	PathEnroll                = "/v1/enroll"
	PathDesired               = "/v1/agent/desired"
	PathRenew                 = "/v1/agent/renew"
	PathOperators             = "/v1/operators"
	PathReport                = "/v1/agent/report"
	PathInventory             = "/v1/agent/inventory"
	PathJobReport             = "/v1/agent/job"
	PathChunks                = "/v1/chunks/" // + sha256 hex ?size=N
	PathChunksMissing         = "/v1/chunks/missing"
	PathPayloads              = "/v1/payloads"
	PathEnvironments          = "/v1/environments"
	PathLifecycles            = "/v1/lifecycles"
	PathReleases              = "/v1/releases"
	PathRollouts              = "/v1/rollouts"
	PathReadiness             = "/v1/readiness"
	PathAudit                 = "/v1/audit"
	PathFreezes               = "/v1/freezes"
	PathWindows               = "/v1/windows"
	PathSettings              = "/v1/settings"
	PathCalendar              = "/v1/calendar.ics"
	PathHosts                 = "/v1/hosts"
	PathTokens                = "/v1/tokens"
	PathTrust                 = "/v1/trust"
	PathExport                = "/v1/inventory/export"
	PathClusterStatus         = "/v1/cluster/status"
	PathInternalApply         = "/v1/internal/apply"
	PathInternalChunks        = "/v1/internal/chunks/" // + sha256 hex ?size=N
	PathInternalChunksMissing = "/v1/internal/chunks/missing"
	PathInternalHealth        = "/v1/internal/health"
	PathInternalCheckins      = "/v1/internal/checkins"
	PathMetrics               = "/metrics"
)

// Headers.
const (
	// HeaderIndex carries the Raft index a response reflects; pass it back
	// as ?index= to block until something newer exists.
	HeaderIndex = "X-Drover-Index"
	// HeaderIdempotencyKey makes a write safe to retry.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderLeader names the API address of the leader, when known.
	HeaderLeader = "X-Drover-Leader"
	// HeaderRead set to ReadLeader asks to be served by the leader: a
	// follower that knows the leader answers 421 Misdirected Request with
	// HeaderLeader, and the client asks the leader.
	HeaderRead = "X-Drover-Read"
	ReadLeader = "leader"
)

// EnrollRequest is an agent asking to join with a join token.
type EnrollRequest struct {
	Token string `json:"token"`
	Host  string `json:"host"`
	CSR   []byte `json:"csr"` // DER
}

// EnrollResponse carries the agent's certificate and what it must trust.
type EnrollResponse struct {
	Certificate []byte                   `json:"certificate"` // PEM
	CA          []byte                   `json:"ca"`          // PEM
	Trust       []artifacts.SignedPolicy `json:"trust,omitempty"`
	Labels      map[string]string        `json:"labels,omitempty"` // the host's labels, from its token
	Servers     []string                 `json:"servers"`
}

// RenewRequest asks for a new certificate for a new key.
type RenewRequest struct {
	CSR []byte `json:"csr"` // DER
}

// OperatorRequest asks for an operator certificate. The key is made where
// the operator will keep it; only its CSR travels.
type OperatorRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	TTL  string `json:"ttl,omitempty"` // Go duration; default 90 days
	CSR  []byte `json:"csr"`
}

// ApproveRequest approves a release.
type ApproveRequest struct {
	Comment string `json:"comment,omitempty"`
}

// DecommissionRequest removes a host.
type DecommissionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// RevokeRequest revokes an operator.
type RevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Instruction tells an agent to install one release for one rollout.
type Instruction struct {
	Rollout    string    `json:"rollout"`
	App        string    `json:"app"`
	Version    string    `json:"version"`
	Manifest   []byte    `json:"manifest"`   // the exact signed bytes
	Signatures [][]byte  `json:"signatures"` // .minisig files
	Chunks     []byte    `json:"chunks"`     // the payload's chunk list; its digest is in the manifest
	ExpiresAt  time.Time `json:"expires_at"` // an agent does not start an instruction after this
	// Windows are the host's maintenance windows: the agent activates only
	// inside one, before its cutoff. None: any time.
	Windows []deploy.Window `json:"windows,omitempty"`
}

// DesiredState is what an agent's long poll returns.
type DesiredState struct {
	Host         string        `json:"host"`
	Index        uint64        `json:"index"`
	Instructions []Instruction `json:"instructions"`
	// Trust is every version of every trust policy; an agent follows the
	// rotations from the version it pinned.
	Trust   []artifacts.SignedPolicy `json:"trust,omitempty"`
	Servers []string                 `json:"servers"`
	// Jobs are verification jobs the host is to run.
	Jobs []JobInstruction `json:"jobs,omitempty"`
}

// Report is an agent telling how its part of a rollout goes.
type Report struct {
	Rollout string           `json:"rollout"`
	State   deploy.HostState `json:"state"`
	Reason  string           `json:"reason,omitempty"`
	Output  string           `json:"output,omitempty"`
	Current string           `json:"current,omitempty"` // version the host runs now
}

// MaxReportOutput bounds the check output an agent sends.
const MaxReportOutput = 4096

// ReleaseRequest creates a release from a signed manifest.
type ReleaseRequest struct {
	Manifest   []byte   `json:"manifest"`
	Signatures [][]byte `json:"signatures"`
}

// RolloutRequest creates a rollout (and reviews a planned one).
type RolloutRequest struct {
	Release string `json:"release"`
	// Env deploys into a lifecycle environment: its hosts only, and the
	// lifecycle's gates apply.
	Env      string            `json:"env,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
	// Where filters the targets further over labels and inventory facts,
	// e.g. "os=debian,memory_gib>=8" (see inventory.ParseWhere).
	Where string      `json:"where,omitempty"`
	Plan  deploy.Plan `json:"plan"`
	// Queue: when the rollout conflicts with others, queue it after them
	// instead of refusing it.
	Queue bool `json:"queue,omitempty"`
	// Start: start it right away (if its readiness gates pass).
	Start bool `json:"start,omitempty"`
	// Override (admins only) schedules it inside a freeze and starts it
	// despite failed gates; the reason is recorded.
	Override string `json:"override,omitempty"`
}

// RolloutStartRequest starts a pending rollout.
type RolloutStartRequest struct {
	Override string `json:"override,omitempty"` // admins only: start despite failed gates, for this reason
}

// Rollout control actions.
const (
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionPromote  = "promote"
	ActionAbort    = "abort"
	ActionRollback = "rollback"
)

// RolloutControlRequest is an operator's decision on a rollout.
type RolloutControlRequest struct {
	Action string `json:"action"` // one of the Action constants
	Reason string `json:"reason,omitempty"`
}

// Review is the readiness review of a rollout, planned or created: each
// gate with its reason, and the forecast the windows gate is based on.
type Review struct {
	Release  string          `json:"release"`
	Targets  []string        `json:"targets"`
	Sizes    []int           `json:"sizes"`
	Gates    []Gate          `json:"gates"`
	Forecast deploy.Forecast `json:"forecast"`
}

// Failed returns the names of the gates that failed.
func (r Review) Failed() []string {
	var out []string
	for _, g := range r.Gates {
		if !g.OK {
			out = append(out, g.Name)
		}
	}
	return out
}

// AuditPage is a run of audit entries; Head is the sequence number of the
// last entry in the whole trail.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Head    uint64       `json:"head"`
}

// RolloutStatus is a rollout with its hosts.
type RolloutStatus struct {
	Rollout *Rollout      `json:"rollout"`
	Hosts   []*Deployment `json:"hosts"`
}

// TokenRequest asks for a join token.
type TokenRequest struct {
	Labels map[string]string `json:"labels,omitempty"`
	TTL    string            `json:"ttl"` // Go duration, e.g. "24h"
	Uses   int               `json:"uses"`
	Host   string            `json:"host,omitempty"` // grant the token to this host name only
}

// TokenResponse carries a join token; the secret is shown only here.
type TokenResponse struct {
	Token     string `json:"token"`
	ID        string `json:"id"`
	ExpiresAt string `json:"expires_at"`
}

// Created is the answer to a write that made an object.
type Created struct {
	ID    string `json:"id,omitempty"`
	Index uint64 `json:"index"`
}

// ChunkList asks about, or answers with, a list of chunks.
type ChunkList struct {
	Chunks []chunks.Ref `json:"chunks"`
}

// PayloadRequest registers an uploaded payload.
type PayloadRequest struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Format string `json:"format"`
	List   []byte `json:"list"` // chunks.List.Encode()
}

// PayloadResponse acknowledges a payload held durably by a quorum.
type PayloadResponse struct {
	SHA256  string   `json:"sha256"`
	Size    int64    `json:"size"`
	Chunks  string   `json:"chunks"` // the chunk list's digest, for the manifest
	Count   int      `json:"count"`
	Holders []string `json:"holders"`
	Index   uint64   `json:"index"`
	// Uploaded is filled by the client: the compressed bytes it sent.
	Uploaded int64 `json:"uploaded,omitempty"`
}

// ServerHealth is one server's own view of Raft.
type ServerHealth struct {
	ID           string `json:"id"`
	State        string `json:"state"` // Leader, Follower, Candidate
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// ServerStatus is one server as the cluster status shows it.
type ServerStatus struct {
	ID       string        `json:"id"`
	API      string        `json:"api"`
	Raft     string        `json:"raft"`
	Suffrage string        `json:"suffrage"` // voter, non-voter, none (in gossip only)
	Gossip   string        `json:"gossip"`   // alive, suspect, failed, left, unknown
	Leader   bool          `json:"leader"`
	Lag      uint64        `json:"lag"` // entries behind the leader's log
	Health   *ServerHealth `json:"health,omitempty"`
}

// ClusterStatus is the answer of PathClusterStatus.
type ClusterStatus struct {
	Leader     string         `json:"leader"`
	Term       uint64         `json:"term"`
	AnsweredBy string         `json:"answered_by"`
	Servers    []ServerStatus `json:"servers"`
}
