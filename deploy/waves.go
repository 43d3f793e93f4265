package deploy

import (
	"fmt"
	"strconv"
	"strings"
)

// Step is one wave as the operator wrote it: a host count or a percentage
// of the target set. Waves are cumulative: each includes the ones before.
type Step struct {
	Count   int `json:"count,omitempty"`
	Percent int `json:"percent,omitempty"`
}

func (s Step) String() string {
	if s.Percent > 0 {
		return strconv.Itoa(s.Percent) + "%"
	}
	return strconv.Itoa(s.Count)
}

// Waves is the list of steps of a plan.
type Waves []Step

func (w Waves) String() string {
	parts := make([]string, len(w))
	for i, s := range w {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// ParseWaves reads "1,10%,50%,100%". Counts are at least 1, percentages
// 1-100, and the steps must not shrink where they can be compared (two
// counts, or two percentages).
func ParseWaves(s string) (Waves, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: waves: empty; write a list such as 1,10%%,50%%,100%%", ErrInvalidPlan)
	}
	parts := strings.Split(s, ",")
	if len(parts) > 32 {
		return nil, fmt.Errorf("%w: waves: at most 32, got %d", ErrInvalidPlan, len(parts))
	}
	var w Waves
	for _, p := range parts {
		p = strings.TrimSpace(p)
		step, err := parseStep(p)
		if err != nil {
			return nil, err
		}
		w = append(w, step)
	}
	return w, w.Validate()
}

func parseStep(p string) (Step, error) {
	if pct, ok := strings.CutSuffix(p, "%"); ok {
		n, err := strconv.Atoi(pct)
		if err != nil || n < 1 || n > 100 {
			return Step{}, fmt.Errorf("%w: waves: %q: a percentage must be 1%%-100%%", ErrInvalidPlan, p)
		}
		return Step{Percent: n}, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 1_000_000 {
		return Step{}, fmt.Errorf("%w: waves: %q: must be a host count (1 or more) or a percentage such as 50%%", ErrInvalidPlan, p)
	}
	return Step{Count: n}, nil
}

// Validate checks that each step is well formed and that comparable steps
// do not shrink.
func (w Waves) Validate() error {
	if len(w) == 0 {
		return fmt.Errorf("%w: waves: need at least one wave", ErrInvalidPlan)
	}
	lastCount, lastPct := 0, 0
	for i, s := range w {
		switch {
		case (s.Count > 0) == (s.Percent > 0):
			return fmt.Errorf("%w: waves[%d]: exactly one of count and percent must be set", ErrInvalidPlan, i)
		case s.Percent > 100:
			return fmt.Errorf("%w: waves[%d]: %d%% is more than 100%%", ErrInvalidPlan, i, s.Percent)
		case s.Count > 0 && s.Count < lastCount, s.Percent > 0 && s.Percent < lastPct:
			return fmt.Errorf("%w: waves[%d]: %s is smaller than an earlier wave; waves are cumulative", ErrInvalidPlan, i, s)
		}
		lastCount, lastPct = max(lastCount, s.Count), max(lastPct, s.Percent)
	}
	return nil
}

// Sizes turns the steps into cumulative host counts for a target set of
// total hosts. A percentage is rounded up, to at least one host; a count
// is capped at total; a step no larger than the one before is dropped; the
// last wave always takes every remaining host. The result is strictly
// increasing and ends at total (empty when total is 0).
func (w Waves) Sizes(total int) []int {
	var sizes []int
	last := 0
	for _, s := range w {
		n := s.Count
		if s.Percent > 0 {
			n = max(1, (s.Percent*total+99)/100)
		}
		n = min(n, total)
		if n > last {
			sizes = append(sizes, n)
			last = n
		}
	}
	if total > last {
		sizes = append(sizes, total)
	}
	return sizes
}
