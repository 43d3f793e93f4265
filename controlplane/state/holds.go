package state

import (
	"fmt"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	memdb "github.com/hashicorp/go-memdb"
)

// holds is what keeps a rollout's hosts from starting at one moment: a
// freeze in force (unless an admin overrode freezes for this rollout), the
// host being in flight in another rollout (one change per host, always),
// and the change budget of the host's failure domain across all rollouts.
type holds struct {
	reader
	rollout  string
	freezes  []deploy.Freeze
	budget   *api.Budget
	inFlight map[string]int // per failure domain, across every rollout
}

// holds gathers, once per decision, what holds r's hosts at now.
func (w reader) holds(r *api.Rollout, now time.Time) *holds {
	h := &holds{reader: w, rollout: r.ID, budget: w.settings().Budget}
	if !overridden(r, GateFreeze) {
		it, err := w.tx.Get(tabFreezes, "id")
		if err != nil {
			panic(err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if f := obj.(*api.Freeze).Freeze; f.Active(now) {
				h.freezes = append(h.freezes, f)
			}
		}
	}
	if h.budget != nil {
		h.inFlight = map[string]int{}
		for _, d := range w.inFlightDeployments() {
			if dom := w.domain(d.Host, h.budget.Label); dom != "" {
				h.inFlight[dom]++
			}
		}
	}
	return h
}

// inFlightDeployments returns every deployment in flight, in any rollout
// that may still have one (not completed, not rolled back).
func (w reader) inFlightDeployments() []*api.Deployment {
	var out []*api.Deployment
	for _, state := range []string{api.RolloutRunning, api.RolloutPaused, api.RolloutRollingBack, api.RolloutAborted} {
		it, err := w.tx.Get(tabRollouts, "state", state)
		if err != nil {
			panic(err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			dit, err := w.tx.Get(tabDeployments, "rollout", obj.(*api.Rollout).ID)
			if err != nil {
				panic(err)
			}
			for d := dit.Next(); d != nil; d = dit.Next() {
				if dep := d.(*api.Deployment); dep.State.InFlight() {
					out = append(out, dep)
				}
			}
		}
	}
	return out
}

func (w reader) domain(host, label string) string {
	if h, _ := w.first(tabHosts, host).(*api.Host); h != nil {
		return h.Labels[label]
	}
	return ""
}

// held says why host may not start now regardless of budget, or "".
func (h *holds) held(host string) string {
	hst, _ := h.first(tabHosts, host).(*api.Host)
	if hst == nil {
		return "it is no longer enrolled"
	}
	for _, f := range h.freezes {
		if f.Applies(hst.Labels) {
			return fmt.Sprintf("freeze %s is in force until %s", f.Name, f.End.UTC().Format(timeFormat))
		}
	}
	it, err := h.tx.Get(tabDeployments, "host", host)
	if err != nil {
		panic(err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if d := obj.(*api.Deployment); d.Rollout != h.rollout && d.State.InFlight() {
			return "it is in flight in rollout " + d.Rollout
		}
	}
	return ""
}

// check says why host may not start now, or "" — and then counts it
// against its failure domain's budget.
func (h *holds) check(host string) string {
	if why := h.held(host); why != "" {
		return why
	}
	if h.budget == nil {
		return ""
	}
	dom := h.domain(host, h.budget.Label)
	if dom == "" {
		return ""
	}
	if h.inFlight[dom] >= h.budget.Max {
		return fmt.Sprintf("the change budget of %s=%s (%d at once) is used up", h.budget.Label, dom, h.budget.Max)
	}
	h.inFlight[dom]++
	return ""
}

// StartLimits returns, for the engine's decision on a rollout at now,
// which of its pending hosts (deps, in target order) are held — frozen, or
// in flight elsewhere — and the change budget's state; ws is made to watch
// freezes and settings.
func (s *Store) StartLimits(ws memdb.WatchSet, r *api.Rollout, deps []*api.Deployment, now time.Time) ([]bool, *deploy.BudgetState) {
	getAll[*api.Freeze](s, ws, tabFreezes, "id")
	getAll[*settingsRow](s, ws, tabSettings, "id")
	h := reader{s.read(ws)}.holds(r, now)
	held := make([]bool, len(r.Targets))
	var budget *deploy.BudgetState
	if h.budget != nil {
		budget = &deploy.BudgetState{Max: h.budget.Max, Domains: make([]string, len(r.Targets)), InFlight: h.inFlight}
	}
	for i, d := range deps {
		if d.State != deploy.Pending {
			continue
		}
		held[i] = h.held(d.Host) != ""
		if budget != nil {
			budget.Domains[i] = h.domain(d.Host, h.budget.Label)
		}
	}
	return held, budget
}
