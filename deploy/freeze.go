package deploy

import (
	"fmt"
	"time"
)

// Freeze is a period during which no change starts on the hosts it covers
// (its selector; empty: every host). An admin may override it for one
// rollout, with a reason that goes into the audit trail.
type Freeze struct {
	Name     string            `json:"name"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Selector map[string]string `json:"selector,omitempty"`
	Reason   string            `json:"reason,omitempty"`
}

// Validate checks the freeze.
func (f Freeze) Validate() error {
	if f.Name == "" || len(f.Name) > 63 {
		return fmt.Errorf("%w: freeze: name: 1-63 characters", ErrInvalidPlan)
	}
	if f.Start.IsZero() || !f.End.After(f.Start) {
		return fmt.Errorf("%w: freeze %s: end must be after start", ErrInvalidPlan, f.Name)
	}
	if len(f.Reason) > 1024 {
		return fmt.Errorf("%w: freeze %s: reason: at most 1024 bytes", ErrInvalidPlan, f.Name)
	}
	return nil
}

// Applies reports whether the freeze covers a host with labels.
func (f Freeze) Applies(labels map[string]string) bool { return MatchLabels(labels, f.Selector) }

// Active reports whether the freeze is in force at t.
func (f Freeze) Active(t time.Time) bool { return !t.Before(f.Start) && t.Before(f.End) }

// Overlaps reports whether the freeze overlaps the period [from, to); a zero
// to means open-ended.
func (f Freeze) Overlaps(from, to time.Time) bool { return Overlap(f.Start, f.End, from, to) }

// Overlap reports whether [aFrom, aTo) and [bFrom, bTo) share an instant;
// a zero end means open-ended.
func Overlap(aFrom, aTo, bFrom, bTo time.Time) bool {
	return (aTo.IsZero() || bFrom.Before(aTo)) && (bTo.IsZero() || aFrom.Before(bTo))
}

// MatchLabels reports whether labels has every key=value of selector.
func MatchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
