// Package agent is drover-agent: it enrolls a host with the control plane,
// long-polls any server for the host's desired state, and applies each
// release it is told to install — verify the signed manifest against its own
// trust policy, download and check the payload, unpack it beside the
// running version, switch atomically, run the health checks, and commit or
// switch back — writing every step to a journal on disk before acting, so
// that a crash at any point ends on the old version or the new one.
//
// Layout of an agent's directory (its "host"):
//
//	agent.json                 name and servers, written at enrollment
//	tls/ca.crt                 the cluster CA
//	tls/current -> gen-N/      agent.key and agent.crt in use (renewed in place)
//	trust.json                 the trust policies this agent accepts
//	journal.json               apply in progress, results, undelivered reports
//	cache/SHA256               downloaded payloads
//	apps/NAME/releases/VERSION unpacked releases
//	apps/NAME/current          symlink to the active release
//
// The agent updates itself through the same pipeline: a release of the
// reserved application drover-agent carries its binary, which replaces the
// running one (see selfupdate.go and docs/agent-update.md).
package agent

import "errors"

// Errors of the agent.
var (
	// ErrNotEnrolled: the directory has no identity; run enroll first.
	ErrNotEnrolled = errors.New("agent is not enrolled")
	// ErrUntrusted: a release whose signatures the agent's policy rejects.
	ErrUntrusted = errors.New("release refused")
	// ErrRestart: the agent's binary was replaced (or restored) and the
	// process must start it: re-execute it, or exit for the service
	// manager to start it again.
	ErrRestart = errors.New("the agent binary changed; restart it")
)
