// Package deploy is the rollout domain: plans, waves, failure thresholds,
// host states and the decision of what a rollout does next. It is pure and
// deterministic — no clock, no I/O — so that the control plane's leader can
// run it over committed state and any server would decide the same.
package deploy

import "errors"

// ErrInvalidPlan is returned for a plan that breaks a rule; the message
// names the field and the allowed values.
var ErrInvalidPlan = errors.New("invalid rollout plan")
