// Package report builds the post-release review of a rollout from the
// replicated record — the rollout, its hosts' histories, its release and
// its audit entries — as data (JSON) or Markdown.
package report

import (
	"fmt"
	"slices"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// Input is what a report is built from.
type Input struct {
	Rollout  *api.RolloutStatus
	Release  *api.Release
	Audit    []api.AuditEntry   // entries about the rollout, in order
	Rollback *api.RolloutStatus // the rollout's rollback, if it had one
	// RollbackAudit are the entries about the rollback.
	RollbackAudit []api.AuditEntry
	// Evidence are the verification jobs the rollout ran (lifecycles).
	Evidence []*api.JobRun
}

// Report is the post-release review.
type Report struct {
	Rollout     string         `json:"rollout"`
	Kind        string         `json:"kind"`
	Release     string         `json:"release"`
	Env         string         `json:"env,omitempty"` // the lifecycle environment
	State       string         `json:"state"`
	Reason      string         `json:"reason,omitempty"`
	CreatedBy   string         `json:"created_by"`
	CreatedAt   time.Time      `json:"created_at"`
	StartedBy   string         `json:"started_by,omitempty"`
	StartedAt   time.Time      `json:"started_at,omitempty"`
	EndedAt     time.Time      `json:"ended_at,omitempty"`
	Duration    string         `json:"duration,omitempty"`
	Artifact    Artifact       `json:"artifact"`
	Approvals   []api.Approval `json:"approvals"`
	PromotedBy  []string       `json:"promoted_by,omitempty"`
	Plan        deploy.Plan    `json:"plan"`
	Waves       []Wave         `json:"waves"`
	Hosts       []Host         `json:"hosts"`
	Timeline    []Event        `json:"timeline"`
	Deviations  []string       `json:"deviations"`
	Evidence    []Evidence     `json:"evidence,omitempty"`
	Rollback    *Report        `json:"rollback,omitempty"`
	GeneratedAt time.Time      `json:"generated_at"`
}

// Artifact identifies what was deployed.
type Artifact struct {
	PayloadSHA256 string `json:"payload_sha256"`
	PayloadSize   int64  `json:"payload_size"`
	ChunkList     string `json:"chunk_list_sha256"`
	Signatures    int    `json:"signatures"`
	SourceCommit  string `json:"source_commit,omitempty"`
	BuildID       string `json:"build_id,omitempty"`
	Builder       string `json:"builder,omitempty"`
}

// Wave is one wave's outcome.
type Wave struct {
	Wave       int       `json:"wave"` // 1-based
	Hosts      int       `json:"hosts"`
	Succeeded  int       `json:"succeeded"`
	Reverted   int       `json:"reverted"`
	Failed     int       `json:"failed"`
	Skipped    int       `json:"skipped"`
	Unfinished int       `json:"unfinished"`
	Start      time.Time `json:"start,omitempty"`
	End        time.Time `json:"end,omitempty"`
	Duration   string    `json:"duration,omitempty"`
	WindowWait string    `json:"window_wait"` // summed over its hosts
}

// Host is one host's part.
type Host struct {
	Host       string           `json:"host"`
	Wave       int              `json:"wave"` // 1-based
	State      deploy.HostState `json:"state"`
	From       string           `json:"from,omitempty"`
	To         string           `json:"to,omitempty"`
	Start      time.Time        `json:"start,omitempty"`
	End        time.Time        `json:"end,omitempty"`
	Duration   string           `json:"duration,omitempty"`
	WindowWait string           `json:"window_wait"`
	Reason     string           `json:"reason,omitempty"`
}

// Evidence is the result of one verification job on one host.
type Evidence struct {
	Job      string            `json:"job"`
	Host     string            `json:"host"`
	State    string            `json:"state"`
	ExitCode int               `json:"exit_code"`
	Duration string            `json:"duration,omitempty"`
	JUnit    *api.JUnitSummary `json:"junit,omitempty"`
	Output   string            `json:"output,omitempty"`
}

// Event is one line of the timeline.
type Event struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
}

// Build makes the report at time now.
func Build(in Input, now time.Time) Report {
	r := in.Rollout.Rollout
	rep := Report{Rollout: r.ID, Kind: r.Kind, Release: r.Release, Env: r.Env, State: r.State, Reason: r.Reason,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, StartedBy: r.StartedBy, StartedAt: r.StartedAt, EndedAt: r.EndedAt,
		Plan: r.Plan, Approvals: []api.Approval{}, Deviations: []string{}, GeneratedAt: now}
	if !r.StartedAt.IsZero() && !r.EndedAt.IsZero() {
		rep.Duration = r.EndedAt.Sub(r.StartedAt).Round(time.Second).String()
	}
	if in.Release != nil {
		rep.Approvals = append(rep.Approvals, in.Release.Approvals...)
		rep.Artifact.Signatures = len(in.Release.Signatures)
		if m, err := artifacts.ParseManifest(in.Release.Manifest); err == nil {
			rep.Artifact.PayloadSHA256, rep.Artifact.PayloadSize, rep.Artifact.ChunkList = m.Payload.SHA256, m.Payload.Size, m.Payload.Chunks
			if p := m.Provenance; p != nil {
				rep.Artifact.SourceCommit, rep.Artifact.BuildID, rep.Artifact.Builder = p.SourceCommit, p.BuildID, p.Builder
			}
		}
	}
	rep.Hosts = hosts(in.Rollout.Hosts, now)
	rep.Waves = waves(r, in.Rollout.Hosts, now)
	for _, e := range in.Audit {
		rep.Timeline = append(rep.Timeline, Event{Time: e.Time, Actor: e.Actor, Action: e.Action, Detail: e.Detail})
		if e.Action == "rollout.promoted" {
			rep.PromotedBy = append(rep.PromotedBy, e.Actor)
		}
	}
	rep.Deviations = deviations(r, in.Rollout.Hosts, in.Audit)
	for _, run := range in.Evidence {
		if run.Rollout != r.ID {
			continue
		}
		ev := Evidence{Job: run.Job, Host: run.Host, State: run.State, ExitCode: run.ExitCode, JUnit: run.JUnit, Output: run.Output}
		if run.State != api.JobPending {
			ev.Duration = run.Duration.Round(time.Millisecond).String()
		}
		rep.Evidence = append(rep.Evidence, ev)
	}
	if in.Rollback != nil {
		rb := Build(Input{Rollout: in.Rollback, Release: in.Release, Audit: in.RollbackAudit}, now)
		rep.Rollback = &rb
	}
	return rep
}

// windowWait sums the time a host spent waiting for its maintenance window.
func windowWait(d *api.Deployment, now time.Time) time.Duration {
	var total time.Duration
	for i, t := range d.History {
		if t.State != deploy.WaitingForWindow {
			continue
		}
		end := now
		if i+1 < len(d.History) {
			end = d.History[i+1].At
		}
		total += end.Sub(t.At)
	}
	return total
}

// finishedAt is when a host reached its final state (zero if it has not).
func finishedAt(d *api.Deployment) time.Time {
	if !d.State.Final() {
		return time.Time{}
	}
	if n := len(d.History); n > 0 {
		return d.History[n-1].At
	}
	return d.UpdatedAt
}

func hosts(deps []*api.Deployment, now time.Time) []Host {
	out := make([]Host, 0, len(deps))
	for _, d := range deps {
		h := Host{Host: d.Host, Wave: d.Wave + 1, State: d.State, From: d.From, To: d.Current, Start: d.StartedAt,
			End: finishedAt(d), WindowWait: windowWait(d, now).Round(time.Second).String(), Reason: d.Reason}
		if !h.Start.IsZero() && !h.End.IsZero() {
			h.Duration = h.End.Sub(h.Start).Round(time.Second).String()
		}
		out = append(out, h)
	}
	return out
}

func waves(r *api.Rollout, deps []*api.Deployment, now time.Time) []Wave {
	out := make([]Wave, len(r.Sizes))
	var wait = make([]time.Duration, len(r.Sizes))
	for i := range out {
		out[i].Wave = i + 1
	}
	for _, d := range deps {
		if d.Wave >= len(out) {
			continue
		}
		w := &out[d.Wave]
		w.Hosts++
		switch d.State {
		case deploy.Succeeded:
			w.Succeeded++
		case deploy.Reverted:
			w.Reverted++
		case deploy.Failed:
			w.Failed++
		case deploy.Skipped:
			w.Skipped++
		default:
			w.Unfinished++
		}
		if s := d.StartedAt; !s.IsZero() && (w.Start.IsZero() || s.Before(w.Start)) {
			w.Start = s
		}
		if e := finishedAt(d); !e.IsZero() && e.After(w.End) && d.State != deploy.Skipped {
			w.End = e
		}
		wait[d.Wave] += windowWait(d, now)
	}
	for i := range out {
		w := &out[i]
		if w.Unfinished > 0 {
			w.End = time.Time{}
		}
		if !w.Start.IsZero() && !w.End.IsZero() {
			w.Duration = w.End.Sub(w.Start).Round(time.Second).String()
		}
		w.WindowWait = wait[i].Round(time.Second).String()
	}
	return out
}

// deviations lists where the rollout departed from its plan.
func deviations(r *api.Rollout, deps []*api.Deployment, audit []api.AuditEntry) []string {
	out := []string{}
	for _, o := range r.Overrides {
		out = append(out, fmt.Sprintf("%s overrode gate(s) %v at %s: %s", o.By, o.Gates, o.At.UTC().Format(time.RFC3339), o.Reason))
	}
	for _, e := range audit {
		switch e.Action {
		case "rollout.paused", "rollout.failed_threshold", "rollout.hosts_timed_out", "rollout.aborted",
			"rollout.rolling_back", "rollout.queued", "rollout.promoted":
			out = append(out, fmt.Sprintf("%s %s by %s: %s", e.Time.UTC().Format(time.RFC3339), e.Action, e.Actor, e.Detail))
		}
	}
	var skipped []string
	for _, d := range deps {
		if d.State == deploy.Skipped {
			skipped = append(skipped, d.Host+" ("+d.Reason+")")
		}
	}
	if len(skipped) > 0 {
		out = append(out, fmt.Sprintf("%d host(s) skipped: %v", len(skipped), skipped))
	}
	if !r.Plan.Deadline.IsZero() && (r.EndedAt.IsZero() || r.EndedAt.After(r.Plan.Deadline)) && r.State != api.RolloutPending {
		out = append(out, "the deadline "+r.Plan.Deadline.UTC().Format(time.RFC3339)+" was not met")
	}
	return slices.Clip(out)
}
