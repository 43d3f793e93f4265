package deploy

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWindowOccurrence(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	nightly := Window{Name: "nightly", Schedule: "FREQ=DAILY;BYHOUR=2", TimeZone: "Europe/Berlin", Duration: 2 * time.Hour, Cutoff: 90 * time.Minute}
	weekend := Window{Name: "weekend", Schedule: "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=22;BYMINUTE=30", TimeZone: "Europe/Berlin", Duration: 4 * time.Hour}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	tests := []struct {
		name      string
		w         Window
		t         time.Time
		wantStart time.Time
		open      bool
	}{
		{"before tonight's window", nightly, at(2026, 11, 26, 1, 0), at(2026, 11, 26, 2, 0), false},
		{"inside, before the cutoff", nightly, at(2026, 11, 26, 3, 0), at(2026, 11, 26, 2, 0), true},
		{"inside, past the cutoff", nightly, at(2026, 11, 26, 3, 45), at(2026, 11, 26, 2, 0), false},
		{"after it: tomorrow's", nightly, at(2026, 11, 26, 4, 0), at(2026, 11, 27, 2, 0), false},
		{"Thursday: Saturday's", weekend, at(2026, 11, 26, 12, 0), at(2026, 11, 28, 22, 30), false},
		{"past midnight into Sunday", weekend, at(2026, 11, 29, 1, 0), at(2026, 11, 28, 22, 30), true},
		// Spring forward in Berlin: 2026-03-29 02:00 -> 03:00. The 02:00
		// start does not exist; Go moves it forward to 03:00 CEST.
		{"spring-forward gap", nightly, at(2026, 3, 29, 0, 30), time.Date(2026, 3, 29, 3, 0, 0, 0, berlin), false},
		// Fall back: 2026-10-25 03:00 CEST -> 02:00 CET; 02:00 happens
		// twice and the window starts at the first.
		{"fall-back repeat", nightly, at(2026, 10, 25, 0, 30), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		start, end, err := tt.w.Occurrence(tt.t)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !start.Equal(tt.wantStart) {
			t.Errorf("%s: start %v; want %v", tt.name, start, tt.wantStart)
		}
		if !end.Equal(start.Add(tt.w.Duration)) {
			t.Errorf("%s: end %v; want start + %v", tt.name, end, tt.w.Duration)
		}
		if got := tt.w.OpenAt(tt.t); got != tt.open {
			t.Errorf("%s: OpenAt = %v; want %v", tt.name, got, tt.open)
		}
	}
}

func TestWindowTimeZones(t *testing.T) {
	// The same instant: 01:30 UTC is 02:30 in Berlin (winter) and 20:30 in
	// New York the evening before.
	instant := time.Date(2026, 1, 15, 1, 30, 0, 0, time.UTC)
	berlin := Window{Name: "b", Schedule: "FREQ=DAILY;BYHOUR=2", TimeZone: "Europe/Berlin", Duration: time.Hour}
	ny := Window{Name: "n", Schedule: "FREQ=DAILY;BYHOUR=2", TimeZone: "America/New_York", Duration: time.Hour}
	if !berlin.OpenAt(instant) {
		t.Error("Berlin's 02:00-03:00 window is not open at 02:30 Berlin time")
	}
	if ny.OpenAt(instant) {
		t.Error("New York's 02:00 window is open at 20:30 New York time")
	}
}

func TestNextStart(t *testing.T) {
	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	a := Window{Name: "a", Schedule: "FREQ=DAILY;BYHOUR=12", Duration: time.Hour, Cutoff: 30 * time.Minute}
	b := Window{Name: "b", Schedule: "FREQ=DAILY;BYHOUR=11", Duration: time.Hour}
	from, until, ok := NextStart([]Window{a, b}, base)
	if !ok || !from.Equal(base.Add(time.Hour)) || !until.Equal(base.Add(2*time.Hour)) {
		t.Errorf("NextStart = %v until %v (%v); want 11:00 until 12:00", from, until, ok)
	}
	// Inside a, before its cutoff: now, until the cutoff.
	from, until, _ = NextStart([]Window{a}, base.Add(2*time.Hour+10*time.Minute))
	if !from.Equal(base.Add(2*time.Hour+10*time.Minute)) || !until.Equal(base.Add(2*time.Hour+30*time.Minute)) {
		t.Errorf("inside a: %v until %v", from, until)
	}
	// Inside a, past its cutoff: tomorrow's.
	from, _, _ = NextStart([]Window{a}, base.Add(2*time.Hour+45*time.Minute))
	if !from.Equal(base.Add(26 * time.Hour)) {
		t.Errorf("past a's cutoff: next start %v; want tomorrow 12:00", from)
	}
	// No windows: now, with no limit.
	from, until, ok = NextStart(nil, base)
	if !ok || !from.Equal(base) || !until.IsZero() {
		t.Errorf("no windows: %v until %v (%v)", from, until, ok)
	}
}

func TestWindowValidate(t *testing.T) {
	good := Window{Name: "w", Schedule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=1", TimeZone: "Asia/Tokyo", Duration: time.Hour}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid window: %v", err)
	}
	for name, w := range map[string]Window{
		"no freq":         {Name: "w", Schedule: "BYHOUR=1", Duration: time.Hour},
		"weekly, no days": {Name: "w", Schedule: "FREQ=WEEKLY", Duration: time.Hour},
		"bad day":         {Name: "w", Schedule: "FREQ=WEEKLY;BYDAY=XX", Duration: time.Hour},
		"bad hour":        {Name: "w", Schedule: "FREQ=DAILY;BYHOUR=24", Duration: time.Hour},
		"monthly":         {Name: "w", Schedule: "FREQ=MONTHLY", Duration: time.Hour},
		"bad zone":        {Name: "w", Schedule: "FREQ=DAILY", TimeZone: "Mars/Olympus", Duration: time.Hour},
		"no duration":     {Name: "w", Schedule: "FREQ=DAILY"},
		"cutoff too long": {Name: "w", Schedule: "FREQ=DAILY", Duration: time.Hour, Cutoff: 2 * time.Hour},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, w)
		}
	}
}
