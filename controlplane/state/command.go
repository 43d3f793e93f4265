package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// CmdType says which body a Command carries. Values are part of the Raft
// log format: never renumber, only append.
type CmdType uint8

// Command types.
const (
	CmdTokenCreate CmdType = iota + 1
	CmdEnroll
	CmdTrustSet
	CmdPayloadRegister
	CmdReleaseCreate
	CmdRolloutCreate
	CmdRolloutStep
	CmdAgentReport
	CmdInventory
	CmdRolloutControl
	CmdHostStatus
	CmdCertIssued
	CmdRevoke
	CmdDecommission
	CmdApprove
	CmdWindowSet
	CmdWindowDelete
	CmdRolloutStart
	CmdFreezeSet
	CmdFreezeDelete
	CmdSettingsSet
	CmdWebhookAck
	CmdEnvSet
	CmdEnvDelete
	CmdLifecycleSet
	CmdLifecycleDelete
	CmdJobResult
	CmdProvenance
)

func (t CmdType) String() string {
	names := [...]string{"", "token-create", "enroll", "trust-set", "payload-register", "release-create",
		"rollout-create", "rollout-step", "agent-report", "inventory", "rollout-control", "host-status",
		"cert-issued", "revoke", "decommission", "approve", "window-set", "window-delete",
		"rollout-start", "freeze-set", "freeze-delete", "settings-set", "webhook-ack",
		"env-set", "env-delete", "lifecycle-set", "lifecycle-delete", "job-result", "provenance"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("cmd-%d", uint8(t))
}

// bodyOf returns a pointer to a new, empty body of the command's type, or
// nil for an unknown type.
func bodyOf(t CmdType) any {
	switch t {
	case CmdTokenCreate:
		return new(TokenCreate)
	case CmdEnroll:
		return new(Enroll)
	case CmdTrustSet:
		return new(TrustSet)
	case CmdPayloadRegister:
		return new(PayloadRegister)
	case CmdReleaseCreate:
		return new(ReleaseCreate)
	case CmdRolloutCreate:
		return new(RolloutCreate)
	case CmdRolloutStep:
		return new(RolloutStep)
	case CmdAgentReport:
		return new(AgentReport)
	case CmdInventory:
		return new(Inventory)
	case CmdRolloutControl:
		return new(RolloutControl)
	case CmdHostStatus:
		return new(HostStatus)
	case CmdCertIssued:
		return new(CertIssued)
	case CmdRevoke:
		return new(Revoke)
	case CmdDecommission:
		return new(Decommission)
	case CmdApprove:
		return new(Approve)
	case CmdWindowSet:
		return new(WindowSet)
	case CmdWindowDelete:
		return new(WindowDelete)
	case CmdRolloutStart:
		return new(RolloutStart)
	case CmdFreezeSet:
		return new(FreezeSet)
	case CmdFreezeDelete:
		return new(FreezeDelete)
	case CmdSettingsSet:
		return new(SettingsSet)
	case CmdWebhookAck:
		return new(WebhookAck)
	case CmdEnvSet:
		return new(EnvSet)
	case CmdEnvDelete:
		return new(EnvDelete)
	case CmdLifecycleSet:
		return new(LifecycleSet)
	case CmdLifecycleDelete:
		return new(LifecycleDelete)
	case CmdJobResult:
		return new(JobResult)
	case CmdProvenance:
		return new(ProvenanceSet)
	}
	return nil
}

// Command is one entry of the Raft log: a type byte followed by this
// envelope as JSON.
type Command struct {
	Type CmdType `json:"-"`
	// Key makes the command safe to retry: a second command with the same
	// key returns the first one's result and changes nothing.
	Key string `json:"key,omitempty"`
	// Time is stamped by the leader when it proposes the command; Apply
	// uses it instead of a clock.
	Time time.Time `json:"time"`
	// Actor is the identity of the caller, for the record.
	Actor string          `json:"actor"`
	Body  json.RawMessage `json:"body"`
}

// NewCommand builds a command with body encoded as JSON.
func NewCommand(t CmdType, actor, key string, body any) (*Command, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s command: %w", t, err)
	}
	return &Command{Type: t, Key: key, Actor: actor, Body: b}, nil
}

// Encode returns the bytes to append to the Raft log.
func (c *Command) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(c.Type)}, b...), nil
}

// DecodeCommand reverses Encode.
func DecodeCommand(data []byte) (*Command, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("command too short (%d bytes)", len(data))
	}
	var c Command
	if err := json.Unmarshal(data[1:], &c); err != nil {
		return nil, fmt.Errorf("cannot decode command: %w", err)
	}
	c.Type = CmdType(data[0])
	return &c, nil
}

// Check verifies that a command received from another server has a known
// type and a body that decodes. The state machine panics on an entry it
// cannot decode, so nothing unchecked may reach the log.
func (c *Command) Check() error {
	body := bodyOf(c.Type)
	if body == nil {
		return fmt.Errorf("unknown command type %d", c.Type)
	}
	if err := json.Unmarshal(c.Body, body); err != nil {
		return fmt.Errorf("bad %s body: %w", c.Type, err)
	}
	return nil
}

// Result is what applying a command produced.
type Result struct {
	Index uint64     `json:"index"`
	ID    string     `json:"id,omitempty"` // of the object created, when there is one
	Err   *api.Error `json:"error,omitempty"`
}

// Command bodies.
type (
	// TokenCreate registers a join token.
	TokenCreate struct {
		ID         string            `json:"id"`
		SecretHash string            `json:"secret_hash"`
		Labels     map[string]string `json:"labels,omitempty"`
		ExpiresAt  time.Time         `json:"expires_at"`
		Uses       int               `json:"uses"`
		Host       string            `json:"host,omitempty"` // if set, the only name that may enroll
	}
	// Enroll consumes one use of a token and registers a host.
	Enroll struct {
		TokenID    string         `json:"token_id"`
		SecretHash string         `json:"secret_hash"`
		Host       string         `json:"host"`
		KeyPin     string         `json:"key_pin"`
		Cert       api.IssuedCert `json:"cert"`
	}
	// CertIssued records a certificate issued to an existing agent
	// (renewal) or to an operator.
	CertIssued struct {
		Kind string         `json:"kind"` // agent | operator
		Name string         `json:"name"`
		Role string         `json:"role,omitempty"` // operators
		Cert api.IssuedCert `json:"cert"`
	}
	// Revoke revokes every unexpired certificate of an operator.
	Revoke struct {
		Operator string `json:"operator"`
		Reason   string `json:"reason"`
	}
	// Decommission removes a host and revokes its certificates.
	Decommission struct {
		Host   string `json:"host"`
		Reason string `json:"reason"`
	}
	// WindowSet creates or replaces a maintenance window.
	WindowSet struct {
		Window deploy.Window `json:"window"`
	}
	// WindowDelete removes a maintenance window.
	WindowDelete struct {
		Name string `json:"name"`
	}
	// Approve records an approver's sign-off on a release.
	Approve struct {
		Release string `json:"release"`
		Comment string `json:"comment,omitempty"`
	}
	// TrustSet sets the trust policy of an application that has none
	// (serial 1), or rotates it: then Policy must carry the signatures of
	// the current version's keys (artifacts.SignedPolicy.VerifySuccessor).
	TrustSet struct {
		Policy artifacts.SignedPolicy `json:"policy"`
	}
	// PayloadRegister records a payload's chunk list and servers that
	// hold every chunk durably (the first registration, or another server
	// that completed its copy).
	PayloadRegister struct {
		SHA256  string   `json:"sha256"`
		Size    int64    `json:"size"`
		Format  string   `json:"format"`
		List    []byte   `json:"list"`
		Holders []string `json:"holders"`
	}
	// ReleaseCreate records a signed release.
	ReleaseCreate struct {
		Manifest   []byte   `json:"manifest"`
		Signatures [][]byte `json:"signatures"`
	}
	// RolloutCreate plans a release going out to the hosts matching
	// Selector. The rollout is pending until started (RolloutStart), or
	// queued behind the rollouts it conflicts with when Queue is set.
	// Override, set only for an admin, lets it be scheduled in a freeze.
	RolloutCreate struct {
		Release  string            `json:"release"`
		Env      string            `json:"env,omitempty"` // deploy into this environment (its hosts only)
		Selector map[string]string `json:"selector,omitempty"`
		Where    string            `json:"where,omitempty"` // an inventory.Where over labels and facts
		Plan     deploy.Plan       `json:"plan"`
		Queue    bool              `json:"queue,omitempty"`
		Override string            `json:"override,omitempty"`
	}
	// RolloutStart starts a pending rollout (an operator) or a queued one
	// whose predecessors have ended (the engine), if every readiness gate
	// passes; Override, set only for an admin, starts it despite failed
	// gates and is recorded.
	RolloutStart struct {
		Rollout  string `json:"rollout"`
		Override string `json:"override,omitempty"`
	}
	// RolloutStep is one decision of the rollout engine. ExpectIndex is the
	// rollout's ModifyIndex the decision was based on: a decision made on
	// stale state (say by a deposed leader) is refused.
	RolloutStep struct {
		Rollout     string         `json:"rollout"`
		ExpectIndex uint64         `json:"expect_index"`
		Start       []string       `json:"start,omitempty"`
		TimedOut    []string       `json:"timed_out,omitempty"` // hosts that made no progress within the host timeout
		Wave        int            `json:"wave"`
		WaveDone    bool           `json:"wave_done,omitempty"`
		Outcome     deploy.Outcome `json:"outcome"`
		Reason      string         `json:"reason,omitempty"`
		Tripped     bool           `json:"tripped,omitempty"` // a failure threshold tripped
	}
	// RolloutControl is an operator's decision on a rollout.
	RolloutControl struct {
		Rollout string `json:"rollout"`
		Action  string `json:"action"` // pause | resume | promote | abort | rollback
		Reason  string `json:"reason,omitempty"`
	}
	// EnvSet creates or replaces an environment.
	EnvSet struct {
		Env api.Environment `json:"env"`
	}
	// EnvDelete removes an environment no lifecycle uses.
	EnvDelete struct {
		Name string `json:"name"`
	}
	// LifecycleSet creates or replaces a lifecycle.
	LifecycleSet struct {
		Lifecycle api.Lifecycle `json:"lifecycle"`
	}
	// LifecycleDelete removes a lifecycle.
	LifecycleDelete struct {
		Name string `json:"name"`
	}
	// JobResult records what an agent reports of a verification job.
	JobResult struct {
		Host   string        `json:"host"`
		Report api.JobReport `json:"report"`
	}
	// ProvenanceSet attaches an in-toto statement to a payload it is about.
	ProvenanceSet struct {
		Payload   string `json:"payload"`
		Statement []byte `json:"statement"`
	}
	// FreezeSet creates or replaces a change freeze.
	FreezeSet struct {
		Freeze deploy.Freeze `json:"freeze"`
	}
	// FreezeDelete ends a change freeze by removing it.
	FreezeDelete struct {
		Name string `json:"name"`
	}
	// SettingsSet replaces the cluster's change-management settings.
	SettingsSet struct {
		Settings api.Settings `json:"settings"`
	}
	// WebhookAck records that a webhook received every event up to Seq.
	WebhookAck struct {
		URL string `json:"url"`
		Seq uint64 `json:"seq"`
	}
	// AgentReport is a host telling how its part of a rollout goes.
	AgentReport struct {
		Host    string           `json:"host"`
		Rollout string           `json:"rollout"`
		State   deploy.HostState `json:"state"`
		Reason  string           `json:"reason,omitempty"`
		Output  string           `json:"output,omitempty"`
		Current string           `json:"current,omitempty"`
	}
	// HostStatus records liveness transitions decided by the leader.
	HostStatus struct {
		Up   []string `json:"up,omitempty"`
		Down []string `json:"down,omitempty"`
	}
	// Inventory replaces a host's inventory.
	Inventory struct {
		Host   string          `json:"host"`
		System json.RawMessage `json:"system"`
		Digest string          `json:"digest"`
	}
)
