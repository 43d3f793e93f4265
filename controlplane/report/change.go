package report

import (
	"fmt"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// ChangeRecord is a finished rollout as a CMDB's change module files it:
// what changed on which hosts, when, and who asked for and approved it.
type ChangeRecord struct {
	Number           string         `json:"number"` // the rollout id
	ShortDescription string         `json:"short_description"`
	State            string         `json:"state"`      // always "closed": only finished rollouts have one
	CloseCode        string         `json:"close_code"` // successful, successful_issues or unsuccessful
	CloseNotes       string         `json:"close_notes"`
	RequestedBy      string         `json:"requested_by"`
	ImplementedBy    string         `json:"implemented_by,omitempty"`
	Approvals        []api.Approval `json:"approvals"`
	PlannedStart     *time.Time     `json:"planned_start,omitempty"`
	PlannedEnd       *time.Time     `json:"planned_end,omitempty"`
	StartDate        *time.Time     `json:"start_date,omitempty"`
	EndDate          *time.Time     `json:"end_date,omitempty"`
	Release          string         `json:"release"`
	Artifact         Artifact       `json:"artifact"`
	BackoutPlan      string         `json:"backout_plan"`
	// Backout is the rollback that was carried out, if one was.
	Backout      *ChangeBackout `json:"backout,omitempty"`
	AffectedCIs  []ChangeCI     `json:"affected_cis"`
	Deviations   []string       `json:"deviations"`
	GeneratedAt  time.Time      `json:"generated_at"`
	ReportFormat string         `json:"report_format"` // "drover.change/v1"
}

// ChangeCI is one host the change touched.
type ChangeCI struct {
	Host   string           `json:"host"`
	From   string           `json:"from,omitempty"`
	To     string           `json:"to,omitempty"` // the version it runs now
	Result deploy.HostState `json:"result"`
	Start  *time.Time       `json:"start,omitempty"`
	End    *time.Time       `json:"end,omitempty"`
	Reason string           `json:"reason,omitempty"`
}

// ChangeBackout is the back-out that was carried out.
type ChangeBackout struct {
	Rollout     string     `json:"rollout"`
	State       string     `json:"state"`
	End         *time.Time `json:"end,omitempty"`
	AffectedCIs []ChangeCI `json:"affected_cis"`
}

// ErrNotFinished is returned for a rollout that has not ended yet.
var ErrNotFinished = fmt.Errorf("the rollout has not finished: a change record is filed once it completes, is aborted or is rolled back")

// Change derives the change record from a finished rollout's report.
func Change(rep Report) (*ChangeRecord, error) {
	switch rep.State {
	case api.RolloutCompleted, api.RolloutAborted, api.RolloutRolledBack:
	default:
		return nil, ErrNotFinished
	}
	hosts := changeCIs(rep.Hosts)
	c := &ChangeRecord{
		Number:           rep.Rollout,
		ShortDescription: fmt.Sprintf("Deploy %s to %d host(s) in %d wave(s)", rep.Release, len(hosts), len(rep.Waves)),
		State:            "closed",
		RequestedBy:      rep.CreatedBy,
		ImplementedBy:    rep.StartedBy,
		Approvals:        rep.Approvals,
		PlannedStart:     when(rep.Plan.NotBefore),
		PlannedEnd:       when(rep.Plan.Deadline),
		StartDate:        when(rep.StartedAt),
		EndDate:          when(rep.EndedAt),
		Release:          rep.Release,
		Artifact:         rep.Artifact,
		BackoutPlan:      backoutPlan(rep.Plan),
		AffectedCIs:      hosts,
		Deviations:       rep.Deviations,
		GeneratedAt:      rep.GeneratedAt,
		ReportFormat:     "drover.change/v1",
	}
	var bad int
	for _, h := range hosts {
		if h.Result != deploy.Succeeded {
			bad++
		}
	}
	switch {
	case rep.State == api.RolloutCompleted && bad == 0:
		c.CloseCode, c.CloseNotes = "successful", fmt.Sprintf("%d of %d host(s) updated", len(hosts), len(hosts))
	case rep.State == api.RolloutCompleted:
		c.CloseCode, c.CloseNotes = "successful_issues", fmt.Sprintf("%d of %d host(s) updated; %d did not (see affected_cis)", len(hosts)-bad, len(hosts), bad)
	default:
		c.CloseCode, c.CloseNotes = "unsuccessful", fmt.Sprintf("rollout %s: %s", rep.State, rep.Reason)
	}
	if rb := rep.Rollback; rb != nil {
		c.Backout = &ChangeBackout{Rollout: rb.Rollout, State: rb.State, End: when(rb.EndedAt), AffectedCIs: changeCIs(rb.Hosts)}
	}
	return c, nil
}

func changeCIs(hosts []Host) []ChangeCI {
	out := []ChangeCI{}
	for _, h := range hosts {
		if h.State == deploy.Pending {
			continue // never touched
		}
		out = append(out, ChangeCI{Host: h.Host, From: h.From, To: h.To, Result: h.State, Start: when(h.Start), End: when(h.End), Reason: h.Reason})
	}
	return out
}

func backoutPlan(p deploy.Plan) string {
	if p.OnFailure == deploy.OnFailureRollback {
		return "automatic: when the failure threshold trips, every updated host is taken back to the version it ran, in waves"
	}
	return "manual: when the failure threshold trips the rollout pauses; `drover rollout rollback` takes every updated host back to the version it ran, in waves; failing hosts revert themselves"
}

func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
