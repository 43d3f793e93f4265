package e2e

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/report"
	"github.com/drover-dev/drover/deploy"
)

// scenarios are the eight, in order.
var scenarios = []scenario{
	{"waves", "1. a rollout in waves completes", scenarioWaves},
}

// scenarioWaves: a rollout in waves 1, 50%, 100% over the twelve hosts
// completes with no fault; every agent's current release is the new one,
// and the post-release report says what happened.
func scenarioWaves(s *scenarioRun) {
	c, ctx := s.c, s.ctx
	v := nextVersion()
	sum, err := c.release(ctx, releaseSpec{Version: v})
	s.must(err, "releasing "+v)
	id, err := c.createRollout(ctx, v, plan{Waves: "1,50%,100%", MaxParallel: 3})
	s.must(err, "creating the rollout")
	s.note("rollout %s of %s@%s started", id, app, v)
	rec := c.record(ctx, 500*time.Millisecond, id)
	w := c.startWrites(ctx, "waves")
	st, err := rec.waitEnded(ctx, id, 5*time.Minute)
	s.must(err, "waiting for the rollout")
	s.note("rollout %s is %s", id, st.Rollout.State)
	finals := s.verify(rec, w)
	final := finals[id]
	s.check("the rollout completed", final.Rollout.State, stateIs(final.Rollout, api.RolloutCompleted))
	disks, err := c.readFleet(ctx)
	s.must(err, "reading the hosts' disks")
	var notNew []string
	for _, a := range c.agents {
		if got := disks[a.Name].Current; got != v {
			notNew = append(notNew, fmt.Sprintf("%s runs %q", a.Name, got))
		}
	}
	var err2 error
	if len(notNew) > 0 {
		err2 = fmt.Errorf("not on %s: %v", v, notNew)
	}
	s.check("every agent's current link points at the new release", fmt.Sprintf("%d hosts on %s", len(c.agents)-len(notNew), v), err2)
	rep, err := c.report(ctx, id)
	s.must(err, "reading the report")
	s.check("the post-release report matches what happened", fmt.Sprintf("%d waves, %d hosts, payload %.12s", len(rep.Waves), len(rep.Hosts), sum),
		checkReport(rep, final, sum, s.before))
}

// stateIs checks a rollout's state.
func stateIs(r *api.Rollout, want string) error {
	if r.State != want {
		return fmt.Errorf("rollout %s is %s (%s), not %s", r.ID, r.State, r.Reason, want)
	}
	return nil
}

// checkReport compares a post-release report with the rollout's final
// record and what the scenario knows: the payload's digest computed on
// this machine, each host's version before.
func checkReport(rep *report.Report, st *api.RolloutStatus, payloadSHA string, before map[string]string) error {
	var errs []error
	r := st.Rollout
	if rep.Rollout != r.ID || rep.State != r.State || rep.Release != r.Release {
		errs = append(errs, fmt.Errorf("report of %s (%s, %s), rollout %s (%s, %s)", rep.Rollout, rep.Release, rep.State, r.ID, r.Release, r.State))
	}
	if rep.Artifact.PayloadSHA256 != payloadSHA {
		errs = append(errs, fmt.Errorf("report names payload %s, the file released was %s", rep.Artifact.PayloadSHA256, payloadSHA))
	}
	if len(rep.Waves) != len(r.Sizes) {
		errs = append(errs, fmt.Errorf("report has %d waves, the rollout %d", len(rep.Waves), len(r.Sizes)))
	}
	for i, w := range rep.Waves {
		if i >= len(r.Sizes) {
			break
		}
		size := r.Sizes[i]
		if i > 0 {
			size -= r.Sizes[i-1]
		}
		count := map[deploy.HostState]int{}
		for _, d := range st.Hosts {
			if d.Wave == i {
				count[d.State]++
			}
		}
		if w.Hosts != size || w.Succeeded != count[deploy.Succeeded] || w.Reverted != count[deploy.Reverted] ||
			w.Failed != count[deploy.Failed] || w.Skipped != count[deploy.Skipped] {
			errs = append(errs, fmt.Errorf("wave %d: report says %d hosts, %d succeeded, %d reverted, %d failed, %d skipped; the rollout has %d hosts: %v",
				w.Wave, w.Hosts, w.Succeeded, w.Reverted, w.Failed, w.Skipped, size, count))
		}
	}
	byHost := map[string]*api.Deployment{}
	for _, d := range st.Hosts {
		byHost[d.Host] = d
	}
	if len(rep.Hosts) != len(st.Hosts) {
		errs = append(errs, fmt.Errorf("report lists %d hosts, the rollout has %d", len(rep.Hosts), len(st.Hosts)))
	}
	for _, h := range rep.Hosts {
		d := byHost[h.Host]
		switch {
		case d == nil:
			errs = append(errs, fmt.Errorf("report lists %s, not a target", h.Host))
		case h.State != d.State || h.Wave != d.Wave+1:
			errs = append(errs, fmt.Errorf("report: %s %s in wave %d; rollout: %s in wave %d", h.Host, h.State, h.Wave, d.State, d.Wave+1))
		case h.From != before[h.Host]:
			errs = append(errs, fmt.Errorf("report: %s came from %q; it ran %q before", h.Host, h.From, before[h.Host]))
		case h.State == deploy.Succeeded && h.To != r.Version:
			errs = append(errs, fmt.Errorf("report: %s went to %q, not %s", h.Host, h.To, r.Version))
		}
	}
	var actions []string
	for _, e := range rep.Timeline {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{actCreated, actStarted} {
		if !slices.Contains(actions, want) {
			errs = append(errs, fmt.Errorf("report's timeline lacks %s: %v", want, actions))
		}
	}
	if r.State == api.RolloutCompleted && !slices.Contains(actions, actCompleted) {
		errs = append(errs, fmt.Errorf("report's timeline lacks %s: %v", actCompleted, actions))
	}
	return errors.Join(errs...)
}
