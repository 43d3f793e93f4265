package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// What a rollout does when its failure threshold trips.
const (
	OnFailurePause    = "pause"    // stop starting hosts; an operator decides
	OnFailureRollback = "rollback" // take the updated hosts back, in waves
)

// DefaultHostTimeout is how long a host may go without progress (outside
// its maintenance window) before it counts as failed.
const DefaultHostTimeout = 30 * time.Minute

// Plan is how a rollout proceeds.
type Plan struct {
	Waves Waves `json:"waves"`
	// MaxParallel is the most hosts in flight at once; 0 means no limit
	// beyond the wave's size.
	MaxParallel int `json:"max_parallel,omitempty"`
	// MaxFailures is the failure threshold for the whole rollout; see
	// Threshold for exactly when it trips.
	MaxFailures Threshold `json:"max_failures"`
	// WaveMaxFailures, when set, is also a threshold within each wave: over
	// the hosts of the current wave, as a count or a percentage of them.
	WaveMaxFailures *Threshold `json:"wave_max_failures,omitempty"`
	// BakeTime is how long a finished wave runs before the next starts.
	BakeTime time.Duration `json:"bake_time,omitempty"`
	// ManualPromote: the next wave starts only on `drover rollout promote`
	// (after the bake time); otherwise waves follow automatically.
	ManualPromote bool `json:"manual_promote,omitempty"`
	// OnFailure is pause (default) or rollback.
	OnFailure string `json:"on_failure,omitempty"`
	// NotBefore: no host starts before this time.
	NotBefore time.Time `json:"not_before,omitempty"`
	// Deadline: the rollout pauses if not complete by then.
	Deadline time.Time `json:"deadline,omitempty"`
	// HostTimeout: a host that makes no progress this long — not counting
	// time waiting for its maintenance window — counts as failed. Default
	// DefaultHostTimeout.
	HostTimeout time.Duration `json:"host_timeout,omitempty"`
}

// Validate checks the plan.
func (p Plan) Validate() error {
	if err := p.Waves.Validate(); err != nil {
		return err
	}
	if p.MaxParallel < 0 {
		return fmt.Errorf("%w: max_parallel: must be 0 (no limit) or more, got %d", ErrInvalidPlan, p.MaxParallel)
	}
	if p.WaveMaxFailures != nil {
		if err := p.WaveMaxFailures.Validate(); err != nil {
			return fmt.Errorf("wave_%w", err)
		}
	}
	if p.BakeTime < 0 || p.BakeTime > 30*24*time.Hour {
		return fmt.Errorf("%w: bake_time: between 0 and 720h", ErrInvalidPlan)
	}
	switch p.OnFailure {
	case "", OnFailurePause, OnFailureRollback:
	default:
		return fmt.Errorf("%w: on_failure: %q: allowed values are pause, rollback", ErrInvalidPlan, p.OnFailure)
	}
	if !p.Deadline.IsZero() && !p.NotBefore.IsZero() && !p.Deadline.After(p.NotBefore) {
		return fmt.Errorf("%w: deadline: must be after not_before", ErrInvalidPlan)
	}
	if p.HostTimeout < 0 {
		return fmt.Errorf("%w: host_timeout: must be 0 (the default, %v) or more", ErrInvalidPlan, DefaultHostTimeout)
	}
	return p.MaxFailures.Validate()
}

func (p Plan) hostTimeout() time.Duration {
	if p.HostTimeout == 0 {
		return DefaultHostTimeout
	}
	return p.HostTimeout
}

// Threshold is a number of failed hosts tolerated, given as a count or as
// a percentage of the rollout's target set.
//
// It trips when the number of hosts that ended reverted or failed is
// greater than the number allowed (see Allowed). Hosts still in flight
// count neither as failed nor as healthy: when the threshold trips, no new
// host is started and those already in flight are left to finish, so the
// final failure count may exceed the threshold by at most the number of
// hosts that were in flight at that moment (fewer than MaxParallel).
type Threshold struct {
	Count   int `json:"count,omitempty"`
	Percent int `json:"percent,omitempty"`
}

// ParseThreshold reads "0", "3" or "10%".
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(pct)
		if err != nil || n < 0 || n > 100 {
			return Threshold{}, fmt.Errorf("%w: max_failures: %q: a percentage must be 0%%-100%%", ErrInvalidPlan, s)
		}
		return Threshold{Percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Threshold{}, fmt.Errorf("%w: max_failures: %q: must be a host count (0 or more) or a percentage such as 10%%", ErrInvalidPlan, s)
	}
	return Threshold{Count: n}, nil
}

func (t Threshold) String() string {
	if t.Percent > 0 {
		return strconv.Itoa(t.Percent) + "%"
	}
	return strconv.Itoa(t.Count)
}

// Validate checks the threshold.
func (t Threshold) Validate() error {
	if t.Count < 0 || t.Percent < 0 || t.Percent > 100 || (t.Count > 0 && t.Percent > 0) {
		return fmt.Errorf("%w: max_failures: a count of 0 or more, or a percentage 0%%-100%%", ErrInvalidPlan)
	}
	return nil
}

// Allowed is how many failed hosts a rollout of total hosts tolerates: the
// count, or the percentage of total rounded down.
func (t Threshold) Allowed(total int) int {
	if t.Percent > 0 {
		return t.Percent * total / 100
	}
	return t.Count
}
