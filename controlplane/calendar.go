package controlplane

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

// calendarHorizon is how far ahead maintenance windows are listed, and how
// far back ended rollouts and freezes are kept, in the calendar feed.
const calendarHorizon = 30 * 24 * time.Hour

// calendar serves the change schedule as iCalendar: rollouts (planned,
// running and recently ended), maintenance windows for the coming month,
// and change freezes.
func (s *Server) calendar(w http.ResponseWriter, _ *http.Request, _ pki.Identity) error {
	now := s.clock.Now()
	var events []deploy.CalendarEvent
	rollouts, _ := s.store.Rollouts(nil)
	for _, r := range rollouts {
		if ev, ok := s.rolloutEvent(r, now); ok {
			events = append(events, ev)
		}
	}
	windows, _ := s.store.Windows(nil)
	for _, win := range windows {
		for _, occ := range win.Occurrences(now, now.Add(calendarHorizon)) {
			events = append(events, deploy.CalendarEvent{
				UID:     "window-" + win.Name + "-" + strconv.FormatInt(occ.Start.Unix(), 10),
				Summary: "Maintenance window " + win.Name, Category: "maintenance window",
				Description: fmt.Sprintf("Hosts %s may activate changes (cutoff %v after the start). Schedule %s in %s.",
					orAll(api.FormatLabels(win.Selector)), cutoffOf(win.Window), win.Schedule, orUTC(win.TimeZone)),
				Start: occ.Start, End: occ.End,
			})
		}
	}
	freezes, _ := s.store.Freezes(nil)
	for _, f := range freezes {
		if f.End.Before(now.Add(-calendarHorizon)) {
			continue
		}
		events = append(events, deploy.CalendarEvent{UID: "freeze-" + f.Name, Summary: "Change freeze " + f.Name, Category: "change freeze",
			Description: fmt.Sprintf("No change starts on hosts %s. %s (set by %s)", orAll(api.FormatLabels(f.Selector)), f.Reason, f.CreatedBy),
			Start:       f.Start, End: f.End})
	}
	var buf bytes.Buffer
	if err := deploy.WriteCalendar(&buf, "drover changes", now, events); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Content-Disposition", `inline; filename="drover.ics"`)
	_, err := w.Write(buf.Bytes())
	return err
}

// rolloutEvent is a rollout's place in the calendar: from its start (or
// its not_before, or its creation) to its end, its deadline or its
// forecast end.
func (s *Server) rolloutEvent(r *api.Rollout, now time.Time) (deploy.CalendarEvent, bool) {
	start := r.StartedAt
	if start.IsZero() {
		start = r.CreatedAt
		if r.Plan.NotBefore.After(start) {
			start = r.Plan.NotBefore
		}
	}
	end := r.EndedAt
	switch {
	case !end.IsZero() && end.Before(now.Add(-calendarHorizon)):
		return deploy.CalendarEvent{}, false
	case end.IsZero() && !r.Plan.Deadline.IsZero():
		end = r.Plan.Deadline
	case end.IsZero():
		if rv, err := s.store.ReviewRollout(r.ID, now); err == nil && rv.Forecast.End.After(start) {
			end = rv.Forecast.End
		}
	}
	if !end.After(start) {
		end = start.Add(time.Hour)
	}
	desc := fmt.Sprintf("%s rollout of %s to %d host(s) in waves %s; %s. Created by %s.", r.Kind, r.Release, len(r.Targets), r.Plan.Waves, r.State, r.CreatedBy)
	if r.Reason != "" {
		desc += " " + r.Reason
	}
	return deploy.CalendarEvent{UID: "rollout-" + r.ID, Summary: fmt.Sprintf("Rollout %s: %s (%s)", r.ID, r.Release, r.State),
		Category: "rollout", Description: desc, Start: start, End: end}, true
}

func orAll(sel string) string {
	if sel == "" {
		return "(all)"
	}
	return strings.ReplaceAll(sel, ",", ", ")
}

func orUTC(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}

func cutoffOf(w deploy.Window) time.Duration {
	if w.Cutoff == 0 {
		return w.Duration
	}
	return w.Cutoff
}
