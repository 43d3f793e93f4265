package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

func TestChangeRecord(t *testing.T) {
	start := time.Date(2030, 5, 6, 22, 0, 0, 0, time.UTC)
	rep := Report{
		Rollout: "r-7", Release: "web@2.0.0", State: api.RolloutCompleted, CreatedBy: "operator/dora (deployer)",
		StartedBy: "operator/dora (deployer)", StartedAt: start, EndedAt: start.Add(time.Hour),
		Approvals: []api.Approval{{By: "operator/ann (approver)", At: start.Add(-time.Hour)}},
		Waves:     []Wave{{Wave: 1}, {Wave: 2}},
		Hosts: []Host{
			{Host: "h1", State: deploy.Succeeded, From: "1.0.0", To: "2.0.0", Start: start, End: start.Add(time.Minute)},
			{Host: "h2", State: deploy.Reverted, From: "1.0.0", To: "1.0.0", Reason: "health check failed"},
			{Host: "h3", State: deploy.Pending},
		},
		Deviations: []string{},
	}
	c, err := Change(rep)
	if err != nil {
		t.Fatal(err)
	}
	if c.Number != "r-7" || c.CloseCode != "successful_issues" || len(c.AffectedCIs) != 2 || c.Approvals[0].By != "operator/ann (approver)" {
		t.Errorf("change record = %+v", c)
	}
	if !strings.Contains(c.CloseNotes, "1 of 2 host(s) updated; 1 did not") || c.StartDate == nil || !c.StartDate.Equal(start) || c.PlannedStart != nil {
		t.Errorf("close notes %q, start %v, planned start %v", c.CloseNotes, c.StartDate, c.PlannedStart)
	}
	if !strings.HasPrefix(c.BackoutPlan, "manual") {
		t.Errorf("back-out plan of a pause-on-failure rollout: %q", c.BackoutPlan)
	}

	rep.Hosts = rep.Hosts[:1]
	if c, _ := Change(rep); c.CloseCode != "successful" {
		t.Errorf("all hosts updated: close code %q", c.CloseCode)
	}

	rep.State, rep.Reason = api.RolloutRolledBack, "failure threshold tripped"
	rep.Plan.OnFailure = deploy.OnFailureRollback
	rep.Rollback = &Report{Rollout: "r-9", State: api.RolloutCompleted, Hosts: []Host{{Host: "h1", State: deploy.Succeeded, From: "2.0.0", To: "1.0.0"}}}
	c, _ = Change(rep)
	if c.CloseCode != "unsuccessful" || c.Backout == nil || c.Backout.Rollout != "r-9" || c.Backout.AffectedCIs[0].To != "1.0.0" || !strings.HasPrefix(c.BackoutPlan, "automatic") {
		t.Errorf("rolled back: %+v, backout %+v", c, c.Backout)
	}

	rep.State = api.RolloutRunning
	if _, err := Change(rep); !errors.Is(err, ErrNotFinished) {
		t.Errorf("running rollout: err = %v; want ErrNotFinished", err)
	}
}
