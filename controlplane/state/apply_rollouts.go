package state

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/artifacts"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// rolloutCreate resolves the selector to a fixed, ordered target set and
// refuses a rollout that would give a host two active changes at once.
func (w *writer) rolloutCreate(b RolloutCreate) (string, *api.Error) {
	rel, _ := w.first(tabReleases, b.Release).(*api.Release)
	if rel == nil {
		return "", api.Errorf(api.CodeNotFound, "release %s does not exist", b.Release)
	}
	if err := b.Plan.Validate(); err != nil {
		return "", api.Errorf(api.CodeInvalid, "%v", err)
	}
	// The release's own target labels narrow the selector: a rollout never
	// instructs a host the signed manifest excludes.
	selector := maps.Clone(b.Selector)
	if m, err := artifacts.ParseManifest(rel.Manifest); err == nil && m.Targets != nil {
		for k, v := range m.Targets.Labels {
			if have, ok := selector[k]; ok && have != v {
				return "", api.Errorf(api.CodeInvalid, "selector %s=%s contradicts release %s, which is for %s=%s", k, have, rel.ID, k, v)
			}
			if selector == nil {
				selector = map[string]string{}
			}
			selector[k] = v
		}
	}
	targets := w.matchingHosts(selector)
	if len(targets) == 0 {
		return "", api.Errorf(api.CodeInvalid, "no enrolled host matches the selector %s", formatSelector(selector))
	}
	if err := w.checkOneChangePerHost(targets); err != nil {
		return "", err
	}
	r := &api.Rollout{
		ID: "r-" + strconv.FormatUint(w.index, 10), Release: rel.ID, App: rel.App, Version: rel.Version,
		Selector: b.Selector, Plan: b.Plan, Targets: targets, Sizes: b.Plan.Waves.Sizes(len(targets)),
		State: api.RolloutRunning, CreatedBy: w.cmd.Actor, CreatedAt: w.cmd.Time, UpdatedAt: w.cmd.Time,
	}
	w.meta(&r.Meta)
	w.insert(tabRollouts, r)
	wave := 0
	for i, h := range targets {
		for i >= r.Sizes[wave] {
			wave++
		}
		d := &api.Deployment{ID: r.ID + "/" + h, Rollout: r.ID, Host: h, Wave: wave, App: rel.App,
			Version: rel.Version, Release: rel.ID, State: deploy.Pending, UpdatedAt: w.cmd.Time}
		w.meta(&d.Meta)
		w.insert(tabDeployments, d)
	}
	return r.ID, nil
}

func (w *writer) matchingHosts(selector map[string]string) []string {
	it, err := w.tx.Get(tabHosts, "id")
	if err != nil {
		panic(err)
	}
	var ids []string
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if h := obj.(*api.Host); MatchLabels(h.Labels, selector) {
			ids = append(ids, h.ID)
		}
	}
	return ids // in ID order: memdb iterates its index in order
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

func formatSelector(sel map[string]string) string {
	if len(sel) == 0 {
		return "(all hosts)"
	}
	parts := make([]string, 0, len(sel))
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (w *writer) checkOneChangePerHost(targets []string) *api.Error {
	busy := map[string][]string{} // rollout -> hosts
	var order []string
	for _, h := range targets {
		it, err := w.tx.Get(tabDeployments, "host", h)
		if err != nil {
			panic(err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			d := obj.(*api.Deployment)
			r, _ := w.first(tabRollouts, d.Rollout).(*api.Rollout)
			if r != nil && r.Active() {
				if busy[r.ID] == nil {
					order = append(order, r.ID)
				}
				busy[r.ID] = append(busy[r.ID], h)
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	var parts []string
	for _, id := range order {
		parts = append(parts, fmt.Sprintf("rollout %s holds %s", id, strings.Join(busy[id], ", ")))
	}
	return api.Errorf(api.CodeConflict, "hosts already have an active change (%s); wait for it to complete or pause and finish it first", strings.Join(parts, "; "))
}

// deployments returns a rollout's deployments in target order.
func (w *writer) deployments(r *api.Rollout) []*api.Deployment {
	out := make([]*api.Deployment, len(r.Targets))
	for i, h := range r.Targets {
		d, _ := w.first(tabDeployments, r.ID+"/"+h).(*api.Deployment)
		if d == nil {
			panic(fmt.Sprintf("state: rollout %s lost its deployment for %s", r.ID, h))
		}
		out[i] = d
	}
	return out
}

// rolloutStep applies a decision of the rollout engine after checking it
// again against committed state, so that no decision — stale, duplicated or
// wrong — can start a host twice, start one outside its wave, or exceed
// max_parallel.
func (w *writer) rolloutStep(b RolloutStep) *api.Error {
	old, _ := w.first(tabRollouts, b.Rollout).(*api.Rollout)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "rollout %s does not exist", b.Rollout)
	}
	if old.ModifyIndex != b.ExpectIndex {
		return api.Errorf(api.CodeConflict, "rollout %s changed (index %d, decision based on %d)", old.ID, old.ModifyIndex, b.ExpectIndex)
	}
	if old.State != api.RolloutRunning {
		return api.Errorf(api.CodeConflict, "rollout %s is %s", old.ID, old.State)
	}
	if b.Wave < old.Wave || b.Wave >= len(old.Sizes) {
		return api.Errorf(api.CodeInvalid, "rollout %s: wave %d out of range", old.ID, b.Wave)
	}
	deps := w.deployments(old)
	// A wave is promoted, and a rollout completes, only over final hosts.
	if b.Wave > old.Wave && !allFinal(deps[:old.Sizes[b.Wave-1]]) {
		return api.Errorf(api.CodeConflict, "rollout %s: wave %d cannot start before wave %d has finished", old.ID, b.Wave+1, b.Wave)
	}
	if b.Outcome == deploy.Complete && !allFinal(deps) {
		return api.Errorf(api.CodeConflict, "rollout %s cannot complete while hosts are unfinished", old.ID)
	}
	index := map[string]int{}
	inFlight := 0
	for i, d := range deps {
		index[d.Host] = i
		if d.State.InFlight() {
			inFlight++
		}
	}
	limit := old.Plan.MaxParallel
	if limit == 0 {
		limit = len(deps)
	}
	for _, h := range b.Start {
		i, ok := index[h]
		switch {
		case !ok:
			return api.Errorf(api.CodeInvalid, "rollout %s: host %s is not a target", old.ID, h)
		case deps[i].State != deploy.Pending:
			return api.Errorf(api.CodeConflict, "rollout %s: host %s was already started", old.ID, h)
		case i >= old.Sizes[b.Wave]:
			return api.Errorf(api.CodeInvalid, "rollout %s: host %s is not in wave %d", old.ID, h, b.Wave+1)
		}
		inFlight++
		if inFlight > limit {
			return api.Errorf(api.CodeConflict, "rollout %s: starting %s would exceed max_parallel %d", old.ID, h, limit)
		}
		d := *deps[i]
		d.State, d.StartedAt, d.UpdatedAt = deploy.Instructed, w.cmd.Time, w.cmd.Time
		w.meta(&d.Meta)
		w.insert(tabDeployments, &d)
		deps[i] = &d // so that the same host listed twice is refused as already started
	}
	r := *old
	r.Wave, r.UpdatedAt = b.Wave, w.cmd.Time
	switch b.Outcome {
	case deploy.Continue:
	case deploy.Pause:
		r.State, r.Reason = api.RolloutPaused, b.Reason
	case deploy.Complete:
		r.State, r.Reason = api.RolloutCompleted, b.Reason
	default:
		return api.Errorf(api.CodeInvalid, "rollout %s: unknown outcome %q", old.ID, b.Outcome)
	}
	w.meta(&r.Meta)
	w.insert(tabRollouts, &r)
	return nil
}

func (w *writer) rolloutControl(b RolloutControl) *api.Error {
	old, _ := w.first(tabRollouts, b.Rollout).(*api.Rollout)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "rollout %s does not exist", b.Rollout)
	}
	r := *old
	switch {
	case b.Action == "pause" && old.State == api.RolloutRunning:
		r.State, r.Reason = api.RolloutPaused, "paused by "+w.cmd.Actor
	case b.Action == "resume" && old.State == api.RolloutPaused:
		r.State, r.Reason = api.RolloutRunning, ""
	case b.Action == "pause" || b.Action == "resume":
		return api.Errorf(api.CodeConflict, "rollout %s is %s; cannot %s it", old.ID, old.State, b.Action)
	default:
		return api.Errorf(api.CodeInvalid, "action %q: allowed values are pause, resume", b.Action)
	}
	if b.Reason != "" {
		r.Reason = b.Reason
	}
	r.UpdatedAt = w.cmd.Time
	w.meta(&r.Meta)
	w.insert(tabRollouts, &r)
	return nil
}

func allFinal(deps []*api.Deployment) bool {
	for _, d := range deps {
		if !d.State.Final() {
			return false
		}
	}
	return true
}
