package deploy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"
)

func TestWindowOccurrences(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	daily := Window{Name: "daily", Schedule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", TimeZone: "Europe/Berlin", Duration: time.Hour}
	weekend := Window{Name: "weekend", Schedule: "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=1", TimeZone: "Europe/Berlin", Duration: 3 * time.Hour}
	lateUTC := Window{Name: "late", Schedule: "FREQ=DAILY;BYHOUR=23", Duration: 3 * time.Hour}
	tests := []struct {
		name     string
		w        Window
		from, to time.Time
		want     []time.Time // starts; each ends Duration later
	}{
		// Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does
		// not exist that night and becomes 03:30 CEST.
		{"daily, spring forward", daily, at(2026, 3, 28, 0, 0), at(2026, 3, 31, 0, 0),
			[]time.Time{utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)}},
		// Fall back, 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens
		// twice and the first (CEST) is taken.
		{"daily, fall back", daily, at(2026, 10, 24, 0, 0), at(2026, 10, 27, 0, 0),
			[]time.Time{utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)}},
		{"weekly, spring forward", weekend, at(2026, 3, 27, 0, 0), at(2026, 4, 6, 0, 0),
			[]time.Time{utc(2026, 3, 28, 0, 0), utc(2026, 3, 29, 0, 0), utc(2026, 4, 3, 23, 0), utc(2026, 4, 4, 23, 0)}},
		{"weekly, fall back", weekend, at(2026, 10, 23, 0, 0), at(2026, 11, 2, 0, 0),
			[]time.Time{utc(2026, 10, 23, 23, 0), utc(2026, 10, 24, 23, 0), utc(2026, 10, 31, 0, 0), utc(2026, 11, 1, 0, 0)}},
		// 23:00-02:00: the first occurrence started the evening before
		// from, the last starts just before to.
		{"past midnight", lateUTC, utc(2026, 11, 26, 1, 0), utc(2026, 11, 28, 0, 0),
			[]time.Time{utc(2026, 11, 25, 23, 0), utc(2026, 11, 26, 23, 0), utc(2026, 11, 27, 23, 0)}},
		{"ends exactly at from, starts exactly at to", lateUTC, utc(2026, 11, 26, 2, 0), utc(2026, 11, 27, 23, 0),
			[]time.Time{utc(2026, 11, 26, 23, 0)}},
		// Occurrences 36h long overlap one another; none is skipped.
		{"overlapping occurrences", Window{Name: "long", Schedule: "FREQ=DAILY;BYHOUR=12", Duration: 36 * time.Hour},
			utc(2026, 11, 26, 0, 0), utc(2026, 11, 28, 0, 0),
			[]time.Time{utc(2026, 11, 25, 12, 0), utc(2026, 11, 26, 12, 0), utc(2026, 11, 27, 12, 0)}},
		// 02:30 CET does not exist on 2026-03-29 and becomes 03:30 CEST,
		// the same instant as the 03:30 start: one occurrence, not two.
		{"two starts fall together in the gap", Window{Name: "gap", Schedule: "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=30", TimeZone: "Europe/Berlin", Duration: time.Minute},
			at(2026, 3, 29, 0, 0), at(2026, 3, 29, 12, 0),
			[]time.Time{utc(2026, 3, 29, 1, 30)}},
		{"empty period", daily, at(2026, 3, 28, 0, 0), at(2026, 3, 28, 0, 0), nil},
		{"to before from", daily, at(2026, 3, 28, 0, 0), at(2026, 3, 27, 0, 0), nil},
		{"invalid schedule", Window{Name: "bad", Schedule: "FREQ=HOURLY", Duration: time.Hour}, at(2026, 3, 28, 0, 0), at(2026, 4, 28, 0, 0), nil},
		{"invalid time zone", Window{Name: "bad", Schedule: "FREQ=DAILY", TimeZone: "Mars/Olympus", Duration: time.Hour}, at(2026, 3, 28, 0, 0), at(2026, 4, 28, 0, 0), nil},
		{"zero duration", Window{Name: "bad", Schedule: "FREQ=DAILY"}, at(2026, 3, 28, 0, 0), at(2026, 4, 28, 0, 0), nil},
	}
	for _, tt := range tests {
		got := tt.w.Occurrences(tt.from, tt.to)
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %d occurrences %v; want %d %v", tt.name, len(got), got, len(tt.want), tt.want)
			continue
		}
		for i, iv := range got {
			if !iv.Start.Equal(tt.want[i]) || !iv.End.Equal(tt.want[i].Add(tt.w.Duration)) {
				t.Errorf("%s: occurrence %d is %v-%v; want %v-%v", tt.name, i, iv.Start, iv.End, tt.want[i], tt.want[i].Add(tt.w.Duration))
			}
		}
	}
}

func TestWindowOccurrencesCapped(t *testing.T) {
	// Two a day for 600 days: 1200, of which the first 1000 come back.
	w := Window{Name: "often", Schedule: "FREQ=DAILY;BYHOUR=0,12", Duration: time.Hour}
	from := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	got := w.Occurrences(from, from.AddDate(0, 0, 600))
	if len(got) != 1000 {
		t.Fatalf("got %d occurrences; want 1000", len(got))
	}
	for i, iv := range got {
		if want := from.Add(time.Duration(i) * 12 * time.Hour); !iv.Start.Equal(want) {
			t.Fatalf("occurrence %d starts %v; want %v", i, iv.Start, want)
		}
	}
}

func TestEscapeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{`back\slash`, `back\\slash`},
		{"semi;colon", `semi\;colon`},
		{"com,ma", `com\,ma`},
		{"two\nlines", `two\nlines`},
		{"crlf\r\nline", `crlf\nline`},
		{"cr\rline", `cr\nline`},
		{"tab\tkept", "tab\tkept"},
		{"bell\x07 and del\x7f dropped", "bell and del dropped"},
		{"colon: and \"quotes\" stay", "colon: and \"quotes\" stay"},
		{`all \;,` + "\n", `all \\\;\,\n`},
		{"Grüße 🚀", "Grüße 🚀"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
	}
	for _, tt := range tests {
		if got := escapeText(tt.in); got != tt.want {
			t.Errorf("escapeText(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteCalendar(t *testing.T) {
	stamp := time.Date(2026, 11, 26, 9, 15, 0, 0, time.UTC)
	berlin := mustLoc(t, "Europe/Berlin")
	events := []CalendarEvent{
		{UID: "window-nightly-20261127", Summary: "Maintenance: nightly", Category: "window",
			Start: time.Date(2026, 11, 27, 2, 0, 0, 0, berlin), End: time.Date(2026, 11, 27, 4, 0, 0, 0, berlin)},
		{UID: "freeze-xmas@example.org", Summary: "Freeze: xmas", Description: "No changes;\nholidays, really", Category: "freeze",
			Start: time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)},
	}
	var buf bytes.Buffer
	if err := WriteCalendar(&buf, "drover: prod", stamp, events); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"BEGIN:VCALENDAR",
		"VERSION:2.0",
		"PRODID:-//drover//drover//EN",
		"CALSCALE:GREGORIAN",
		"METHOD:PUBLISH",
		"X-WR-CALNAME:drover: prod",
		"BEGIN:VEVENT",
		"UID:window-nightly-20261127@drover",
		"DTSTAMP:20261126T091500Z",
		"DTSTART:20261127T010000Z",
		"DTEND:20261127T030000Z",
		"SUMMARY:Maintenance: nightly",
		"CATEGORIES:window",
		"END:VEVENT",
		"BEGIN:VEVENT",
		"UID:freeze-xmas@example.org",
		"DTSTAMP:20261126T091500Z",
		"DTSTART:20261220T000000Z",
		"DTEND:20270102T000000Z",
		"SUMMARY:Freeze: xmas",
		`DESCRIPTION:No changes\;\nholidays\, really`,
		"CATEGORIES:freeze",
		"END:VEVENT",
		"END:VCALENDAR",
		"",
	}, "\r\n")
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteCalendarRejects(t *testing.T) {
	at := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		e    CalendarEvent
	}{
		{"no UID", CalendarEvent{Summary: "x", Start: at, End: at.Add(time.Hour)}},
		{"end before start", CalendarEvent{UID: "a", Start: at, End: at.Add(-time.Hour)}},
		{"empty event", CalendarEvent{UID: "a", Start: at, End: at}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		ok := CalendarEvent{UID: "ok", Start: at, End: at.Add(time.Hour)}
		if err := WriteCalendar(&buf, "x", at, []CalendarEvent{ok, tt.e}); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before failing; want none", tt.name, buf.Len())
		}
	}
}

type failingWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errDiskFull
	}
	f.after--
	return len(p), nil
}

func TestWriteCalendarWriteError(t *testing.T) {
	at := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	err := WriteCalendar(&failingWriter{after: 3}, "x", at, []CalendarEvent{{UID: "a", Start: at, End: at.Add(time.Hour)}})
	if !errors.Is(err, errDiskFull) {
		t.Errorf("got %v; want %v", err, errDiskFull)
	}
}

func TestFolding(t *testing.T) {
	// Every width of UTF-8 sequence, so that a fold at 75 octets would
	// split one of them unless it steps back.
	summary := strings.Repeat("aé€𝄞", 20) // 200 octets
	if len(summary) != 200 {
		t.Fatalf("summary is %d bytes; want 200", len(summary))
	}
	// The property name shifts where the folds fall: try every offset
	// within a 4-byte sequence.
	for _, prefix := range []string{"", "a", "ab", "abc"} {
		text := prefix + summary
		var buf bytes.Buffer
		at := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
		if err := WriteCalendar(&buf, "fold", at, []CalendarEvent{{UID: "f", Summary: text, Start: at, End: at.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("prefix %q: output does not end in CRLF", prefix)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		var logical []string
		for i, l := range lines {
			if len(l) > 75 {
				t.Errorf("prefix %q: line %d is %d octets: %q", prefix, i, len(l), l)
			}
			if strings.ContainsAny(l, "\r\n") {
				t.Errorf("prefix %q: line %d has a bare CR or LF: %q", prefix, i, l)
			}
			if strings.HasPrefix(l, " ") {
				rest := l[1:]
				if !utf8.ValidString(rest) {
					t.Errorf("prefix %q: continuation line %d splits a UTF-8 sequence: %q", prefix, i, l)
				}
				logical[len(logical)-1] += rest
				continue
			}
			if !utf8.ValidString(l) {
				t.Errorf("prefix %q: line %d splits a UTF-8 sequence: %q", prefix, i, l)
			}
			logical = append(logical, l)
		}
		var folded int
		for _, l := range lines {
			if strings.HasPrefix(l, " ") {
				folded++
			}
		}
		if folded < 2 {
			t.Errorf("prefix %q: SUMMARY folded into %d continuation lines; want at least 2", prefix, folded)
		}
		found := false
		for _, l := range logical {
			if v, ok := strings.CutPrefix(l, "SUMMARY:"); ok {
				found = true
				if v != text {
					t.Errorf("prefix %q: unfolded SUMMARY is %q; want %q", prefix, v, text)
				}
			}
		}
		if !found {
			t.Errorf("prefix %q: no SUMMARY line", prefix)
		}
	}
}

func TestAppendFolded(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"short", "A:b", "A:b\r\n"},
		{"exactly 75", strings.Repeat("x", 75), strings.Repeat("x", 75) + "\r\n"},
		{"76", strings.Repeat("x", 76), strings.Repeat("x", 75) + "\r\n x\r\n"},
		{"continuation holds 74", strings.Repeat("x", 75+74+1), strings.Repeat("x", 75) + "\r\n " + strings.Repeat("x", 74) + "\r\n x\r\n"},
		// "€" is 3 octets at 74-76: the line breaks before it.
		{"no split", strings.Repeat("x", 73) + "€y", strings.Repeat("x", 73) + "\r\n €y\r\n"},
	}
	for _, tt := range tests {
		if got := string(appendFolded(nil, tt.in)); got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
}

// TestWriteCalendarParses reads the output back with an independent
// iCalendar parser.
func TestWriteCalendarParses(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	w := Window{Name: "nightly", Schedule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", TimeZone: "Europe/Berlin", Duration: time.Hour}
	from := time.Date(2026, 3, 28, 0, 0, 0, 0, berlin)
	var events []CalendarEvent
	for _, iv := range w.Occurrences(from, from.AddDate(0, 0, 3)) {
		events = append(events, CalendarEvent{
			UID:      "window-" + w.Name + "-" + iv.Start.UTC().Format("20060102T150405Z"),
			Summary:  "Maintenance window " + w.Name,
			Category: "window",
			Start:    iv.Start, End: iv.End,
		})
	}
	f := Freeze{Name: "easter", Start: time.Date(2026, 4, 2, 18, 0, 0, 0, berlin), End: time.Date(2026, 4, 7, 6, 0, 0, 0, berlin),
		Reason: "Easter; nobody on call, really.\nAsk the SRE lead (Jürgen) first: " + strings.Repeat("très long raison ", 6)}
	events = append(events, CalendarEvent{UID: "freeze-" + f.Name + "@ops.example", Summary: "Freeze: " + f.Name + ", all hosts",
		Description: f.Reason, Category: "freeze, change control", Start: f.Start, End: f.End})
	if len(events) != 4 {
		t.Fatalf("got %d events; want 3 occurrences and a freeze", len(events))
	}

	stamp := time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	if err := WriteCalendar(&buf, "drover, prod; Berlin", stamp, events); err != nil {
		t.Fatal(err)
	}
	cal, err := ical.NewDecoder(&buf).Decode()
	if err != nil {
		t.Fatalf("cannot parse the calendar: %v", err)
	}
	for prop, want := range map[string]string{
		ical.PropVersion: "2.0", ical.PropProductID: "-//drover//drover//EN",
		ical.PropCalendarScale: "GREGORIAN", ical.PropMethod: "PUBLISH", "X-WR-CALNAME": "drover, prod; Berlin",
	} {
		if got, err := cal.Props.Text(prop); err != nil || got != want {
			t.Errorf("calendar %s = %q (%v); want %q", prop, got, err, want)
		}
	}
	// The parser's encoder checks the properties RFC 5545 requires.
	if err := ical.NewEncoder(&bytes.Buffer{}).Encode(cal); err != nil {
		t.Errorf("parsed calendar is not valid: %v", err)
	}

	got := cal.Events()
	if len(got) != len(events) {
		t.Fatalf("parsed %d events; want %d", len(got), len(events))
	}
	for i, e := range events {
		wantUID := e.UID
		if !strings.Contains(wantUID, "@") {
			wantUID += "@drover"
		}
		g := got[i]
		text := func(prop string) string {
			t.Helper()
			s, err := g.Props.Text(prop)
			if err != nil {
				t.Errorf("event %d: %s: %v", i, prop, err)
			}
			return s
		}
		if uid := text(ical.PropUID); uid != wantUID {
			t.Errorf("event %d: UID %q; want %q", i, uid, wantUID)
		}
		if s := text(ical.PropSummary); s != e.Summary {
			t.Errorf("event %d: SUMMARY %q; want %q", i, s, e.Summary)
		}
		if s := text(ical.PropDescription); s != e.Description {
			t.Errorf("event %d: DESCRIPTION %q; want %q", i, s, e.Description)
		}
		if cats, err := g.Props.Get(ical.PropCategories).TextList(); err != nil || len(cats) != 1 || cats[0] != e.Category {
			t.Errorf("event %d: CATEGORIES %q (%v); want [%q]", i, cats, err, e.Category)
		}
		if ts, err := g.Props.DateTime(ical.PropDateTimeStamp, nil); err != nil || !ts.Equal(stamp) {
			t.Errorf("event %d: DTSTAMP %v (%v); want %v", i, ts, err, stamp)
		}
		if start, err := g.DateTimeStart(nil); err != nil || !start.Equal(e.Start) {
			t.Errorf("event %d: DTSTART %v (%v); want %v", i, start, err, e.Start)
		}
		if end, err := g.DateTimeEnd(nil); err != nil || !end.Equal(e.End) {
			t.Errorf("event %d: DTEND %v (%v); want %v", i, end, err, e.End)
		}
	}
}
