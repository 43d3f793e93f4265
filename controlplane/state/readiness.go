package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

// Readiness gates, in the order a review lists them.
const (
	GateSignatures   = "signatures"
	GateApprovals    = "approvals"
	GateHosts        = "hosts"
	GateWindows      = "windows"
	GateConflicts    = "conflicts"
	GateFreeze       = "freeze"
	GateBackout      = "back-out"
	GateHealthChecks = "health-checks"
	// GateProvenance, GateLifecycle and GateEvidence: lifecycle.go.
)

func failedGates(gates []api.Gate) []string {
	var out []string
	for _, g := range gates {
		if !g.OK {
			out = append(out, g.Name)
		}
	}
	return out
}

// ApplyEstimate is what a forecast assumes one host's apply takes: a
// minute to download, stage and activate, plus the release's minimum
// healthy time.
func ApplyEstimate(m *artifacts.Manifest) time.Duration {
	d := time.Minute
	if m.Probation != nil {
		d += time.Duration(m.Probation.MinHealthyTime)
	}
	return d
}

// schedule is the period in which a rollout may change its hosts: from its
// not_before (or its creation) to its deadline; open-ended (zero) without
// a deadline.
func schedule(p deploy.Plan, created time.Time) (from, to time.Time) {
	from = created
	if p.NotBefore.After(from) {
		from = p.NotBefore
	}
	return from, p.Deadline
}

func describeSchedule(from, to time.Time) string {
	if to.IsZero() {
		return "from " + from.UTC().Format(timeFormat) + ", open-ended"
	}
	return "from " + from.UTC().Format(timeFormat) + " to " + to.UTC().Format(timeFormat)
}

// release returns a release and its parsed manifest.
func (w reader) release(id string) (*api.Release, *artifacts.Manifest, *api.Error) {
	rel, _ := w.first(tabReleases, id).(*api.Release)
	if rel == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, "release %s does not exist", id)
	}
	m, err := artifacts.ParseManifest(rel.Manifest)
	if err != nil {
		panic(fmt.Sprintf("state: release %s holds a manifest that does not parse: %v", id, err)) // checked at creation
	}
	return rel, m, nil
}

// targets resolves a selector over labels and a filter over labels and
// inventory facts, narrowed by the release's own target labels (a rollout
// never instructs a host the signed manifest excludes), to the matching
// hosts in ID order.
func (w reader) targets(m *artifacts.Manifest, sel map[string]string, whereText string) ([]*api.Host, *api.Error) {
	where, err := inventory.ParseWhere(whereText)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalid, "%v", err)
	}
	selector := maps.Clone(sel)
	if m.Targets != nil {
		for k, v := range m.Targets.Labels {
			if have, ok := selector[k]; ok && have != v {
				return nil, api.Errorf(api.CodeInvalid, "selector %s=%s contradicts release %s, which is for %s=%s", k, have, m.ID(), k, v)
			}
			if selector == nil {
				selector = map[string]string{}
			}
			selector[k] = v
		}
	}
	it, err := w.tx.Get(tabHosts, "id")
	if err != nil {
		panic(err)
	}
	var hosts []*api.Host
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if h := obj.(*api.Host); deploy.MatchLabels(h.Labels, selector) && (where.IsZero() || where.Match(attributes(h))) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		if !where.IsZero() {
			return nil, api.Errorf(api.CodeInvalid, "no enrolled host matches the selector %s where %s", formatSelector(selector), where)
		}
		return nil, api.Errorf(api.CodeInvalid, "no enrolled host matches the selector %s", formatSelector(selector))
	}
	return hosts, nil
}

// attributes are what a filter tests about a host: its labels and the
// facts of its last inventory (none if it has not sent one).
func attributes(h *api.Host) map[string]string {
	var sys *inventory.System
	if len(h.Inventory) > 0 {
		sys = new(inventory.System)
		if json.Unmarshal(h.Inventory, sys) != nil {
			sys = nil // validated when stored; never happens
		}
	}
	return inventory.Attributes(h.Labels, sys)
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

func hostIDs(hosts []*api.Host) []string {
	ids := make([]string, len(hosts))
	for i, h := range hosts {
		ids[i] = h.ID
	}
	return ids
}

// conflict is another active rollout that changes some of the same hosts
// in an overlapping period.
type conflict struct {
	rollout *api.Rollout
	hosts   []string
}

func (c conflict) String() string {
	from, to := schedule(c.rollout.Plan, c.rollout.CreatedAt)
	return fmt.Sprintf("rollout %s (%s, %s, %s) on %s", c.rollout.ID, c.rollout.Release, c.rollout.State, describeSchedule(from, to), listHosts(c.hosts))
}

// conflicts finds the active rollouts, other than those in skip, that hold
// any of hosts in a period overlapping [from, to).
func (w reader) conflicts(hosts []string, from, to time.Time, skip ...string) []conflict {
	byRollout := map[string]*conflict{}
	var order []string
	for _, h := range hosts {
		it, err := w.tx.Get(tabDeployments, "host", h)
		if err != nil {
			panic(err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			d := obj.(*api.Deployment)
			if slices.Contains(skip, d.Rollout) {
				continue
			}
			c := byRollout[d.Rollout]
			if c == nil {
				r, _ := w.first(tabRollouts, d.Rollout).(*api.Rollout)
				if r == nil || !r.Active() {
					continue
				}
				if rf, rt := schedule(r.Plan, r.CreatedAt); !deploy.Overlap(rf, rt, from, to) {
					continue
				}
				c = &conflict{rollout: r}
				byRollout[r.ID] = c
				order = append(order, r.ID)
			}
			c.hosts = append(c.hosts, h)
		}
	}
	out := make([]conflict, len(order))
	for i, id := range order {
		out[i] = *byRollout[id]
	}
	return out
}

// freezeHit is a freeze that covers some hosts of a rollout.
type freezeHit struct {
	freeze deploy.Freeze
	hosts  []string
}

func (f freezeHit) String() string {
	return fmt.Sprintf("freeze %s (%s to %s: %s) on %s", f.freeze.Name, f.freeze.Start.UTC().Format(timeFormat),
		f.freeze.End.UTC().Format(timeFormat), f.freeze.Reason, listHosts(f.hosts))
}

// frozen finds the freezes that a rollout scheduled over [from, to) runs
// into: with a deadline, every freeze overlapping the period; without one,
// only a freeze in force when the rollout may start (a later freeze holds
// its hosts while it lasts, and the rollout waits).
func (w reader) frozen(hosts []*api.Host, from, to time.Time) []freezeHit {
	it, err := w.tx.Get(tabFreezes, "id")
	if err != nil {
		panic(err)
	}
	var out []freezeHit
	for obj := it.Next(); obj != nil; obj = it.Next() {
		f := obj.(*api.Freeze).Freeze
		if to.IsZero() && !f.Active(from) || !to.IsZero() && !f.Overlaps(from, to) {
			continue
		}
		hit := freezeHit{freeze: f}
		for _, h := range hosts {
			if f.Applies(h.Labels) {
				hit.hosts = append(hit.hosts, h.ID)
			}
		}
		if len(hit.hosts) > 0 {
			out = append(out, hit)
		}
	}
	return out
}

// listHosts names up to five hosts and counts the rest.
func listHosts(hosts []string) string {
	if len(hosts) <= 5 {
		return strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(hosts[:5], ", "), len(hosts)-5)
}

// plannedRollout is what a review looks at.
type plannedRollout struct {
	rel     *api.Release
	m       *artifacts.Manifest
	hosts   []*api.Host
	plan    deploy.Plan
	self    string    // the rollout's ID, once created
	after   []string  // rollouts it is queued after (not conflicts)
	created time.Time // when it was (or would be) created
	by      string    // who created it (their approvals do not count)
	env     string    // the lifecycle environment it deploys into, if any
}

// review runs every readiness gate at time now.
func (w reader) review(p plannedRollout, now time.Time) api.Review {
	targets := hostIDs(p.hosts)
	rv := api.Review{Release: p.rel.ID, Targets: targets, Sizes: p.plan.Waves.Sizes(len(targets))}
	gate := func(name string, ok bool, format string, args ...any) {
		rv.Gates = append(rv.Gates, api.Gate{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}

	policy, ok := artifacts.PolicyFor(w.trustPolicies(), p.rel.App)
	if !ok {
		gate(GateSignatures, false, "no trust policy covers %s", p.rel.App)
	} else if err := policy.Verify(p.rel.Manifest, p.rel.Signatures); err != nil {
		gate(GateSignatures, false, "%v", err)
	} else {
		gate(GateSignatures, true, "%d signature(s); the trust policy needs %d of its %d key(s)", len(p.rel.Signatures), policy.Threshold, len(policy.Keys))
	}

	need, rule := w.approvalsNeeded(p.hosts)
	var have []string
	for _, a := range p.rel.Approvals {
		if a.By != p.by && a.By != p.rel.CreatedBy && !slices.Contains(have, a.By) {
			have = append(have, a.By)
		}
	}
	switch {
	case need == 0:
		gate(GateApprovals, true, "no approval rule covers these hosts (%d approval(s) given)", len(have))
	case len(have) >= need:
		gate(GateApprovals, true, "%d of %d approval(s) needed by rule %s: %s", len(have), need, rule, strings.Join(have, ", "))
	default:
		gate(GateApprovals, false, "%d of %d approval(s) needed by rule %s; approvers other than the creators run: drover release approve %s", len(have), need, rule, p.rel.ID)
	}

	var down []string
	for _, h := range p.hosts {
		if h.Status != api.HostUp {
			down = append(down, h.ID)
		}
	}
	if len(down) > 0 {
		gate(GateHosts, false, "%d of %d target host(s) offline: %s", len(down), len(p.hosts), listHosts(down))
	} else {
		gate(GateHosts, true, "%d target host(s), all online", len(p.hosts))
	}

	windows := w.windows()
	in := deploy.ForecastInput{Plan: p.plan, Sizes: rv.Sizes, Start: now, ApplyTime: ApplyEstimate(p.m)}
	if p.plan.NotBefore.After(now) {
		in.Start = p.plan.NotBefore
	}
	for _, h := range p.hosts {
		in.Windows = append(in.Windows, HostWindows(windows, h.Labels))
	}
	rv.Forecast = deploy.Predict(in)
	switch {
	case rv.Forecast.Reason != "":
		gate(GateWindows, false, "%s", rv.Forecast.Reason)
	case p.plan.Deadline.IsZero():
		gate(GateWindows, true, "no deadline; expected to finish by %s", rv.Forecast.End.UTC().Format(timeFormat))
	default:
		gate(GateWindows, true, "expected to finish by %s, before the deadline %s", rv.Forecast.End.UTC().Format(timeFormat), p.plan.Deadline.UTC().Format(timeFormat))
	}

	from, to := schedule(p.plan, p.created)
	// Neither the rollouts this one is queued after, nor those queued after
	// it, conflict: the queue orders them.
	skip := append([]string{p.self}, p.after...)
	if p.self != "" {
		skip = append(skip, w.queuedAfter(p.self)...)
	}
	if cs := w.conflicts(targets, from, to, skip...); len(cs) > 0 {
		gate(GateConflicts, false, "overlaps %s", joinStrings(cs))
	} else {
		gate(GateConflicts, true, "no other change holds these hosts %s", describeSchedule(from, to))
	}

	if hits := w.frozen(p.hosts, from, to); len(hits) > 0 {
		gate(GateFreeze, false, "inside %s", joinStrings(hits))
	} else {
		gate(GateFreeze, true, "no freeze covers these hosts %s", describeSchedule(from, to))
	}

	var first, missing, back []string
	for _, h := range p.hosts {
		switch cur := h.Releases[p.rel.App]; {
		case cur == "":
			first = append(first, h.ID)
		case w.first(tabReleases, p.rel.App+"@"+cur) == nil:
			missing = append(missing, h.ID+" ("+cur+")")
		default:
			if !slices.Contains(back, cur) {
				back = append(back, cur)
			}
		}
	}
	switch {
	case len(missing) > 0:
		gate(GateBackout, false, "%d host(s) run a version of %s that is not a release here, so nothing to go back to: %s", len(missing), p.rel.App, listHosts(missing))
	case len(first) > 0:
		gate(GateBackout, true, "%d host(s) go back to %s; %d first install(s) have no previous version (%s)", len(p.hosts)-len(first), orNone(back), len(first), listHosts(first))
	default:
		gate(GateBackout, true, "every host can go back to %s", strings.Join(back, ", "))
	}

	if n := len(p.m.HealthChecks); n > 0 {
		gate(GateHealthChecks, true, "%d health check(s) in the release", n)
	} else {
		gate(GateHealthChecks, false, "release %s declares no health check: a broken release would be committed", p.rel.ID)
	}
	provenanceGate(policy, p.m, gate)
	w.lifecycleGates(p.rel, p.env, now, gate)
	return rv
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

func joinStrings[T fmt.Stringer](items []T) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.String()
	}
	return strings.Join(parts, "; ")
}

// approvalsNeeded is the most approvals any settings rule asks for these
// hosts, and that rule.
func (w reader) approvalsNeeded(hosts []*api.Host) (int, string) {
	need, which := 0, ""
	for _, rule := range w.settings().Approvals {
		if rule.Count <= need {
			continue
		}
		for _, h := range hosts {
			if deploy.MatchLabels(h.Labels, rule.Selector) {
				need, which = rule.Count, formatSelector(rule.Selector)
				break
			}
		}
	}
	return need, which
}

func (w reader) windows() []*api.Window {
	it, err := w.tx.Get(tabWindows, "id")
	if err != nil {
		panic(err)
	}
	var out []*api.Window
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*api.Window))
	}
	return out
}

// settings returns the cluster's settings (zero if never set).
func (w reader) settings() api.Settings {
	if row, _ := w.first(tabSettings, settingsID).(*settingsRow); row != nil {
		return row.Settings
	}
	return api.Settings{}
}

func (w reader) trustPolicies() []artifacts.Policy {
	it, err := w.tx.Get(tabTrust, "id")
	if err != nil {
		panic(err)
	}
	var out []artifacts.Policy
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*api.TrustPolicy).Policy)
	}
	return out
}

// ReviewPlan reviews a rollout that has not been created, at time now.
func (s *Store) ReviewPlan(release string, selector map[string]string, where, env string, plan deploy.Plan, by string, now time.Time) (api.Review, error) {
	if err := plan.Validate(); err != nil {
		return api.Review{}, api.Errorf(api.CodeInvalid, "%v", err)
	}
	r := reader{s.read(nil)}
	rel, m, aerr := r.release(release)
	if aerr != nil {
		return api.Review{}, aerr
	}
	hosts, aerr := r.targets(m, selector, where)
	if aerr != nil {
		return api.Review{}, aerr
	}
	if env != "" {
		if hosts, aerr = r.envHosts(env, hosts); aerr != nil {
			return api.Review{}, aerr
		}
	}
	return r.review(plannedRollout{rel: rel, m: m, hosts: hosts, plan: plan, created: now, by: by, env: r.stageOf(rel.App, env, hosts)}, now), nil
}

// ReviewRollout reviews an existing rollout at time now.
func (s *Store) ReviewRollout(id string, now time.Time) (api.Review, error) {
	r := reader{s.read(nil)}
	ro, _ := r.first(tabRollouts, id).(*api.Rollout)
	if ro == nil {
		return api.Review{}, api.Errorf(api.CodeNotFound, "rollout %s does not exist", id)
	}
	p, aerr := r.planned(ro)
	if aerr != nil {
		return api.Review{}, aerr
	}
	return r.review(p, now), nil
}

// planned returns what a review of an existing rollout looks at.
func (w reader) planned(ro *api.Rollout) (plannedRollout, *api.Error) {
	rel, m, err := w.release(ro.Release)
	if err != nil {
		return plannedRollout{}, err
	}
	p := plannedRollout{rel: rel, m: m, plan: ro.Plan, self: ro.ID, after: ro.After, created: ro.CreatedAt, by: ro.CreatedBy, env: ro.Env}
	for _, id := range ro.Targets {
		if h, _ := w.first(tabHosts, id).(*api.Host); h != nil {
			p.hosts = append(p.hosts, h)
		} else {
			p.hosts = append(p.hosts, &api.Host{ID: id, Status: "decommissioned"})
		}
	}
	return p, nil
}

// queuedAfter returns the rollouts queued after rollout id.
func (w reader) queuedAfter(id string) []string {
	it, err := w.tx.Get(tabRollouts, "state", api.RolloutQueued)
	if err != nil {
		panic(err)
	}
	var out []string
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if q := obj.(*api.Rollout); slices.Contains(q.After, id) {
			out = append(out, q.ID)
		}
	}
	return out
}
