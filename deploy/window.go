package deploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Window is a recurring maintenance window: new changes may start only
// inside one, and not after its cutoff.
//
// Schedule is a subset of iCalendar's RRULE: FREQ=DAILY or FREQ=WEEKLY,
// with BYDAY (MO,TU,...; weekly only), BYHOUR, BYMINUTE and BYSECOND
// lists, e.g. "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=2;BYMINUTE=0". Times are
// wall-clock times in TimeZone (IANA, default UTC). Across daylight-saving
// changes: a start that falls in the spring-forward gap moves forward by
// the gap (02:30 becomes 03:30); one that occurs twice in the autumn is
// the first of the two.
type Window struct {
	Name     string        `json:"name"`
	Schedule string        `json:"schedule"`
	TimeZone string        `json:"time_zone,omitempty"`
	Duration time.Duration `json:"duration"`
	// Cutoff is how long after a window's start new changes may still
	// start; after it nothing new starts, so that what started can finish
	// inside the window. Default (0): the whole Duration.
	Cutoff time.Duration `json:"cutoff,omitempty"`
	// Selector: the window applies to hosts whose labels match. Empty:
	// every host.
	Selector map[string]string `json:"selector,omitempty"`
}

// rule is a parsed Schedule.
type rule struct {
	weekly  bool
	days    []time.Weekday
	hours   []int
	minutes []int
	seconds []int
}

var weekdays = map[string]time.Weekday{"SU": time.Sunday, "MO": time.Monday, "TU": time.Tuesday,
	"WE": time.Wednesday, "TH": time.Thursday, "FR": time.Friday, "SA": time.Saturday}

func parseRule(s string) (rule, error) {
	r := rule{hours: []int{0}, minutes: []int{0}, seconds: []int{0}}
	freq := ""
	for _, part := range strings.Split(strings.ToUpper(strings.TrimSpace(s)), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return r, fmt.Errorf("%q: write KEY=VALUE parts separated by ';'", part)
		}
		var err error
		switch k {
		case "FREQ":
			freq = v
		case "BYDAY":
			for _, d := range strings.Split(v, ",") {
				wd, ok := weekdays[d]
				if !ok {
					return r, fmt.Errorf("BYDAY: %q is not one of MO,TU,WE,TH,FR,SA,SU", d)
				}
				r.days = append(r.days, wd)
			}
		case "BYHOUR":
			r.hours, err = parseInts(k, v, 0, 23)
		case "BYMINUTE":
			r.minutes, err = parseInts(k, v, 0, 59)
		case "BYSECOND":
			r.seconds, err = parseInts(k, v, 0, 59)
		default:
			return r, fmt.Errorf("%s is not supported; use FREQ, BYDAY, BYHOUR, BYMINUTE, BYSECOND", k)
		}
		if err != nil {
			return r, err
		}
	}
	switch freq {
	case "DAILY":
		if len(r.days) > 0 {
			return r, fmt.Errorf("BYDAY needs FREQ=WEEKLY")
		}
	case "WEEKLY":
		r.weekly = true
		if len(r.days) == 0 {
			return r, fmt.Errorf("FREQ=WEEKLY needs BYDAY")
		}
	default:
		return r, fmt.Errorf("FREQ must be DAILY or WEEKLY")
	}
	return r, nil
}

func parseInts(key, v string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s: %q must be %d-%d", key, f, lo, hi)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Validate checks the window.
func (w Window) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: window %s: %s: %s", ErrInvalidPlan, w.Name, field, fmt.Sprintf(format, args...))
	}
	if w.Name == "" || len(w.Name) > 63 {
		return bad("name", "1-63 characters")
	}
	if _, err := parseRule(w.Schedule); err != nil {
		return bad("schedule", "%v", err)
	}
	if _, err := w.location(); err != nil {
		return bad("time_zone", "%v", err)
	}
	if w.Duration <= 0 || w.Duration > 7*24*time.Hour {
		return bad("duration", "must be between 1s and 168h")
	}
	if w.Cutoff < 0 || w.Cutoff > w.Duration {
		return bad("cutoff", "must be between 0 and the duration (%v)", w.Duration)
	}
	return nil
}

func (w Window) location() (*time.Location, error) {
	if w.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(w.TimeZone)
}

func (w Window) cutoff() time.Duration {
	if w.Cutoff == 0 {
		return w.Duration
	}
	return w.Cutoff
}

// Occurrence returns the occurrence of the window that contains t, or
// else the next one after t.
func (w Window) Occurrence(t time.Time) (start, end time.Time, err error) {
	r, err := parseRule(w.Schedule)
	if err != nil {
		return start, end, err
	}
	loc, err := w.location()
	if err != nil {
		return start, end, err
	}
	local := t.In(loc)
	// Start from the day before (a window may run past midnight) and look
	// far enough ahead to meet every weekly occurrence.
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -int(w.Duration/(24*time.Hour))-1)
	for range 16 + int(w.Duration/(24*time.Hour)) {
		if !r.weekly || slices.Contains(r.days, day.Weekday()) {
			for _, h := range r.hours {
				for _, m := range r.minutes {
					for _, s := range r.seconds {
						st := firstWallTime(day.Year(), day.Month(), day.Day(), h, m, s, loc)
						if en := st.Add(w.Duration); en.After(t) {
							return st, en, nil
						}
					}
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return start, end, fmt.Errorf("window %s has no occurrence after %v", w.Name, t)
}

// OpenAt reports whether a change may start at t: inside an occurrence and
// before its cutoff.
func (w Window) OpenAt(t time.Time) bool {
	start, _, err := w.Occurrence(t)
	return err == nil && !t.Before(start) && t.Before(start.Add(w.cutoff()))
}

// NextStart returns when a change may next start under any of windows —
// t itself if one is open — and until when it may start. Without windows,
// a change may start at any time (until is the zero time).
func NextStart(windows []Window, t time.Time) (from, until time.Time, ok bool) {
	if len(windows) == 0 {
		return t, time.Time{}, true
	}
	for _, w := range windows {
		start, _, err := w.Occurrence(t)
		if err != nil {
			continue
		}
		closes := start.Add(w.cutoff())
		if !t.Before(closes) { // inside the window but past its cutoff: the next one
			if start, _, err = w.Occurrence(start.Add(w.Duration)); err != nil {
				continue
			}
			closes = start.Add(w.cutoff())
		}
		begin := start
		if begin.Before(t) {
			begin = t
		}
		if !ok || begin.Before(from) {
			from, until, ok = begin, closes, true
		}
	}
	return from, until, ok
}

// firstWallTime is time.Date, except that a wall-clock time that occurs
// twice (when clocks go back) is the first of the two; Go does not promise
// which it picks.
func firstWallTime(y int, mo time.Month, d, h, mi, s int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, s, 0, loc)
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute} {
		e := t.Add(-back).In(loc)
		ey, emo, ed := e.Date()
		if ey == y && emo == mo && ed == d && e.Hour() == h && e.Minute() == mi && e.Second() == s {
			return e
		}
	}
	return t
}
