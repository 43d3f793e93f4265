package state

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/inventory"
)

// Environments, lifecycles and release evidence.
//
// An environment is a named host filter. A lifecycle orders environments
// for its applications: a rollout into stage k is ready only when the
// release completed a rollout in stage k-1, has soaked there for that
// stage's soak time, and passed its verification jobs (GateLifecycle,
// GateEvidence). A rollout's stage is the environment it names or, when it
// names none, the latest stage any of its targets belongs to — so that
// targeting production hosts by label does not slip past the lifecycle.
//
// When a rollout completes in a stage with verification jobs, a JobRun is
// created for each job and designated host; the host's agent runs it and
// reports (CmdJobResult). Runs are the release's evidence.

// Gates added by lifecycles and provenance.
const (
	GateLifecycle  = "lifecycle"
	GateEvidence   = "evidence"
	GateProvenance = "provenance"
)

// Audit actions of this file.
const (
	AuditEnvSet          = "env.set"
	AuditEnvDelete       = "env.deleted"
	AuditLifecycleSet    = "lifecycle.set"
	AuditLifecycleDelete = "lifecycle.deleted"
	AuditJobStarted      = "verification.started"
	AuditJobResult       = "verification.result"
	AuditProvenance      = "payload.provenance"
)

// jobGrace is how long after its timeout a job without a result counts as
// failed: the agent may be down, or its report on the way.
const jobGrace = 5 * time.Minute

func (w *writer) envSet(b EnvSet) *api.Error {
	e := b.Env
	if err := e.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "environment: %v", err)
	}
	e.CreatedBy, e.UpdatedAt = w.cmd.Actor, w.cmd.Time
	if old, _ := w.first(tabEnvs, e.Name).(*api.Environment); old != nil {
		e.Meta = old.Meta
	}
	w.meta(&e.Meta)
	w.insert(tabEnvs, &e)
	w.audit(AuditEnvSet, "env/"+e.Name, "hosts where %s", e.Where)
	return nil
}

func (w *writer) envDelete(b EnvDelete) *api.Error {
	old := w.first(tabEnvs, b.Name)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "environment %s does not exist", b.Name)
	}
	for _, l := range w.lifecycles() {
		if l.Stage(b.Name) >= 0 {
			return api.Errorf(api.CodeConflict, "environment %s is a stage of lifecycle %s: change or delete the lifecycle first", b.Name, l.Name)
		}
	}
	if err := w.tx.Delete(tabEnvs, old); err != nil {
		panic(err)
	}
	w.touch(tabEnvs)
	w.audit(AuditEnvDelete, "env/"+b.Name, "")
	return nil
}

func (w *writer) lifecycleSet(b LifecycleSet) *api.Error {
	l := b.Lifecycle
	if err := l.Validate(); err != nil {
		return api.Errorf(api.CodeInvalid, "lifecycle: %v", err)
	}
	for _, s := range l.Stages {
		if w.first(tabEnvs, s.Env) == nil {
			return api.Errorf(api.CodeInvalid, "lifecycle %s: environment %s does not exist; create it first (drover env create %s --where ...)", l.Name, s.Env, s.Env)
		}
	}
	for _, other := range w.lifecycles() {
		if other.Name == l.Name {
			continue
		}
		for _, app := range l.Apps {
			if slices.Contains(other.Apps, app) {
				return api.Errorf(api.CodeConflict, "lifecycle %s already governs %s: an application follows one lifecycle", other.Name, app)
			}
		}
	}
	l.CreatedBy, l.UpdatedAt = w.cmd.Actor, w.cmd.Time
	if old, _ := w.first(tabLifecycles, l.Name).(*api.Lifecycle); old != nil {
		l.Meta = old.Meta
	}
	w.meta(&l.Meta)
	w.insert(tabLifecycles, &l)
	w.audit(AuditLifecycleSet, "lifecycle/"+l.Name, "for %s: %s", strings.Join(l.Apps, ", "), l.Describe())
	return nil
}

func (w *writer) lifecycleDelete(b LifecycleDelete) *api.Error {
	old := w.first(tabLifecycles, b.Name)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "lifecycle %s does not exist", b.Name)
	}
	if err := w.tx.Delete(tabLifecycles, old); err != nil {
		panic(err)
	}
	w.touch(tabLifecycles)
	w.audit(AuditLifecycleDelete, "lifecycle/"+b.Name, "")
	return nil
}

func (w reader) lifecycles() []*api.Lifecycle {
	it, err := w.tx.Get(tabLifecycles, "id")
	if err != nil {
		panic(err)
	}
	var out []*api.Lifecycle
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*api.Lifecycle))
	}
	return out
}

// lifecycleOf is the lifecycle governing app: the one naming it, else one
// naming "*"; nil if none.
func (w reader) lifecycleOf(app string) *api.Lifecycle {
	var any *api.Lifecycle
	for _, l := range w.lifecycles() {
		if l.Governs(app) {
			return l
		}
		if l.Governs(artifacts.AnyApp) {
			any = l
		}
	}
	return any
}

// envHosts narrows hosts to those of environment name.
func (w reader) envHosts(name string, hosts []*api.Host) ([]*api.Host, *api.Error) {
	e, _ := w.first(tabEnvs, name).(*api.Environment)
	if e == nil {
		return nil, api.Errorf(api.CodeNotFound, "environment %s does not exist", name)
	}
	where, err := inventory.ParseWhere(e.Where)
	if err != nil {
		panic(fmt.Sprintf("state: environment %s holds a bad filter: %v", name, err)) // validated when set
	}
	return slices.DeleteFunc(hosts, func(h *api.Host) bool { return !where.Match(attributes(h)) }), nil
}

// stageOf is the environment a rollout of app to hosts deploys into: env
// when given, else the latest stage of app's lifecycle that holds any of
// the hosts ("" when none does, or no lifecycle governs app).
func (w reader) stageOf(app, env string, hosts []*api.Host) string {
	if env != "" {
		return env
	}
	l := w.lifecycleOf(app)
	if l == nil {
		return ""
	}
	for i := len(l.Stages) - 1; i >= 0; i-- {
		in, _ := w.envHosts(l.Stages[i].Env, slices.Clone(hosts))
		if len(in) > 0 {
			return l.Stages[i].Env
		}
	}
	return ""
}

// lifecycleGates adds the lifecycle and evidence gates of a rollout of rel
// into environment env at time now.
func (w reader) lifecycleGates(rel *api.Release, env string, now time.Time, gate func(string, bool, string, ...any)) {
	l := w.lifecycleOf(rel.App)
	switch {
	case l == nil:
		gate(GateLifecycle, true, "no lifecycle governs %s", rel.App)
		gate(GateEvidence, true, "no lifecycle, so no verification jobs")
		return
	case env == "":
		gate(GateLifecycle, true, "no target host is in an environment of lifecycle %s (%s)", l.Name, l.Describe())
		gate(GateEvidence, true, "no lifecycle stage, so no verification jobs")
		return
	}
	k := l.Stage(env)
	switch {
	case k < 0:
		gate(GateLifecycle, false, "environment %s is not a stage of lifecycle %s (%s), which governs %s", env, l.Name, l.Describe(), rel.App)
		gate(GateEvidence, true, "not a stage of the lifecycle")
		return
	case k == 0:
		gate(GateLifecycle, true, "%s is the first stage of lifecycle %s", env, l.Name)
		gate(GateEvidence, true, "the first stage needs no evidence")
		return
	}
	prev := l.Stages[k-1]
	done := w.completedIn(rel.ID, prev.Env)
	switch {
	case done == nil:
		gate(GateLifecycle, false, "release %s has not completed in %s, the stage before %s in lifecycle %s (%s): roll it out there first (drover rollout create %s --env %s)",
			rel.ID, prev.Env, env, l.Name, l.Describe(), rel.ID, prev.Env)
	case now.Before(done.EndedAt.Add(time.Duration(prev.Soak))):
		gate(GateLifecycle, false, "release %s completed in %s at %s (rollout %s) but has soaked %s of the %s required; ready at %s",
			rel.ID, prev.Env, done.EndedAt.UTC().Format(timeFormat), done.ID, now.Sub(done.EndedAt).Round(time.Minute),
			time.Duration(prev.Soak), done.EndedAt.Add(time.Duration(prev.Soak)).UTC().Format(timeFormat))
	default:
		gate(GateLifecycle, true, "completed in %s at %s (rollout %s) and soaked %s", prev.Env, done.EndedAt.UTC().Format(timeFormat), done.ID, time.Duration(prev.Soak))
	}
	if len(prev.Verify) == 0 {
		gate(GateEvidence, true, "stage %s declares no verification jobs", prev.Env)
		return
	}
	if done == nil {
		gate(GateEvidence, false, "no verification in %s yet: its %d job(s) run when a rollout completes there", prev.Env, len(prev.Verify))
		return
	}
	var failed, waiting, passed []string
	for _, run := range w.jobRuns(done.ID) {
		at := run.Job + " on " + run.Host
		switch {
		case run.State == api.JobPassed:
			passed = append(passed, at)
		case run.State == api.JobFailed:
			failed = append(failed, fmt.Sprintf("%s (%s)", at, jobFailure(run)))
		case now.After(run.CreatedAt.Add(run.Timeout + jobGrace)):
			failed = append(failed, at+" (no result within its timeout "+run.Timeout.String()+")")
		default:
			waiting = append(waiting, at)
		}
	}
	switch {
	case len(failed) > 0:
		gate(GateEvidence, false, "verification in %s failed: %s", prev.Env, strings.Join(failed, "; "))
	case len(waiting) > 0:
		gate(GateEvidence, false, "verification in %s still running: %s", prev.Env, strings.Join(waiting, ", "))
	case len(passed) == 0:
		gate(GateEvidence, false, "rollout %s in %s ran no verification job (no designated host among its targets)", done.ID, prev.Env)
	default:
		gate(GateEvidence, true, "verification in %s passed: %s", prev.Env, strings.Join(passed, ", "))
	}
}

func jobFailure(run *api.JobRun) string {
	if run.Error != "" {
		return run.Error
	}
	msg := fmt.Sprintf("exit %d", run.ExitCode)
	if j := run.JUnit; j != nil && j.Failures+j.Errors > 0 {
		msg += fmt.Sprintf(", %d of %d test(s) failed", j.Failures+j.Errors, j.Tests)
	}
	return msg
}

// provenanceGate checks the release's provenance against its trust policy.
func provenanceGate(policy artifacts.Policy, m *artifacts.Manifest, gate func(string, bool, string, ...any)) {
	if err := policy.CheckProvenance(m.Provenance); err != nil {
		gate(GateProvenance, false, "%v", err)
		return
	}
	switch p := m.Provenance; {
	case policy.Provenance != nil:
		gate(GateProvenance, true, "built by %s from %s at %s, as the trust policy requires", p.Builder, p.Repository, p.SourceCommit)
	case p != nil && p.Builder != "":
		gate(GateProvenance, true, "built by %s (the trust policy requires no provenance)", p.Builder)
	default:
		gate(GateProvenance, true, "the trust policy requires no provenance")
	}
}

// completedIn is the latest completed rollout of release into env.
func (w reader) completedIn(release, env string) *api.Rollout {
	it, err := w.tx.Get(tabRollouts, "state", api.RolloutCompleted)
	if err != nil {
		panic(err)
	}
	var out *api.Rollout
	for obj := it.Next(); obj != nil; obj = it.Next() {
		r := obj.(*api.Rollout)
		if r.Kind == api.KindRelease && r.Release == release && r.Env == env && (out == nil || r.EndedAt.After(out.EndedAt)) {
			out = r
		}
	}
	return out
}

// jobRuns lists the verification job runs of a rollout.
func (w reader) jobRuns(rollout string) []*api.JobRun {
	it, err := w.tx.Get(tabJobs, "id_prefix", rollout+"/")
	if err != nil {
		panic(err)
	}
	var out []*api.JobRun
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*api.JobRun))
	}
	return out
}

// startVerification creates the verification job runs of a rollout that
// just completed in a lifecycle stage.
func (w *writer) startVerification(r *api.Rollout) {
	if r.Env == "" || r.Kind != api.KindRelease {
		return
	}
	l := w.lifecycleOf(r.App)
	if l == nil || l.Stage(r.Env) < 0 {
		return
	}
	var targets []*api.Host
	for _, id := range r.Targets {
		if h, _ := w.first(tabHosts, id).(*api.Host); h != nil {
			targets = append(targets, h)
		}
	}
	for _, job := range l.Stages[l.Stage(r.Env)].Verify {
		hosts := targets[:min(1, len(targets))]
		if job.Hosts != "" {
			where, _ := inventory.ParseWhere(job.Hosts) // validated when the lifecycle was set
			hosts = slices.DeleteFunc(slices.Clone(targets), func(h *api.Host) bool { return !where.Match(attributes(h)) })
		}
		timeout := time.Duration(job.Timeout)
		if timeout == 0 {
			timeout = api.DefaultJobTimeout
		}
		for _, h := range hosts {
			run := &api.JobRun{ID: r.ID + "/" + job.Name + "/" + h.ID, Rollout: r.ID, Release: r.Release, Env: r.Env, Job: job.Name,
				Host: h.ID, Command: job.Command, Timeout: timeout, State: api.JobPending, CreatedAt: w.cmd.Time}
			w.meta(&run.Meta)
			w.insert(tabJobs, run)
			w.audit(AuditJobStarted, r.ID, "%s on %s in %s", job.Name, h.ID, r.Env)
		}
	}
}

// provenanceSet attaches a build provenance statement to the payload it is
// about. Parsing is a pure function of the bytes, so every server agrees.
func (w *writer) provenanceSet(b ProvenanceSet) *api.Error {
	old, _ := w.first(tabPayloads, b.Payload).(*api.Payload)
	if old == nil {
		return api.Errorf(api.CodeNotFound, "payload %s is not registered: push it first", b.Payload)
	}
	prov, err := artifacts.ParseProvenance(b.Statement)
	if err == nil {
		err = prov.Check(b.Payload)
	}
	if err != nil {
		return api.Errorf(api.CodeInvalid, "%v", err)
	}
	p := *old
	p.Provenance = b.Statement
	w.meta(&p.Meta)
	w.insert(tabPayloads, &p)
	w.audit(AuditProvenance, "payload/"+b.Payload, "built by %s from %s at %s (statement sha256:%s)", prov.Builder, prov.Repository, prov.Commit, prov.Statement)
	return nil
}

func (w *writer) jobResult(b JobResult) *api.Error {
	old, _ := w.first(tabJobs, b.Report.ID).(*api.JobRun)
	if old == nil || old.Host != b.Host {
		return api.Errorf(api.CodeNotFound, "verification job %s is not for host %s", b.Report.ID, b.Host)
	}
	if old.State != api.JobPending {
		return nil // a retried report
	}
	run := *old
	run.JobResult, run.EndedAt = b.Report.JobResult, w.cmd.Time
	run.State = api.JobFailed
	if run.ExitCode == 0 && run.Error == "" && (run.JUnit == nil || run.JUnit.Failures+run.JUnit.Errors == 0) {
		run.State = api.JobPassed
	}
	w.meta(&run.Meta)
	w.insert(tabJobs, &run)
	w.audit(AuditJobResult, run.Rollout, "%s on %s in %s: %s after %s", run.Job, run.Host, run.Env, run.State, run.Duration.Round(time.Millisecond))
	return nil
}
