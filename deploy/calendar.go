package deploy

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Interval is the half-open period [Start, End).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// maxOccurrences bounds what Occurrences returns, so that a long period
// asked of a frequent window cannot grow without limit.
const maxOccurrences = 1000

// Occurrences returns, in order, every occurrence of the window that
// overlaps [from, to), at most 1000 of them. A window whose schedule or
// time zone is invalid, or whose duration is not positive, has none.
func (w Window) Occurrences(from, to time.Time) []Interval {
	if w.Duration <= 0 || !from.Before(to) {
		return nil
	}
	var out []Interval
	for t := from; len(out) < maxOccurrences; {
		start, end, err := w.Occurrence(t)
		if err != nil || !start.Before(to) {
			break
		}
		out = append(out, Interval{Start: start, End: end})
		// Occurrence returns the earliest occurrence that ends after t, so
		// asking again from this one's end gives the next one, even where
		// occurrences overlap. Stop should it ever fail to move forward.
		if !end.After(t) {
			break
		}
		t = end
	}
	return out
}

// CalendarEvent is one event of an iCalendar feed: a window's occurrence,
// a freeze, a planned rollout.
type CalendarEvent struct {
	// UID identifies the event across versions of the feed; "@drover" is
	// appended if it has no '@'.
	UID         string
	Summary     string
	Description string // optional
	Category    string // optional
	Start, End  time.Time
}

// icalTime is the UTC form of an iCalendar DATE-TIME.
const icalTime = "20060102T150405Z"

// WriteCalendar writes events, in the order given, as an RFC 5545
// iCalendar object named name; stamp is the DTSTAMP of every event (when
// the feed was made). Each event needs a UID and an end after its start;
// otherwise nothing is written and an error names the event.
func WriteCalendar(w io.Writer, name string, stamp time.Time, events []CalendarEvent) error {
	for i, e := range events {
		if e.UID == "" {
			return fmt.Errorf("calendar event %d: give it a UID", i)
		}
		if !e.End.After(e.Start) {
			return fmt.Errorf("calendar event %s: end %v must be after start %v", e.UID, e.End, e.Start)
		}
	}
	cw := &contentWriter{w: w}
	cw.line("BEGIN", "VCALENDAR")
	cw.line("VERSION", "2.0")
	cw.line("PRODID", "-//drover//drover//EN")
	cw.line("CALSCALE", "GREGORIAN")
	cw.line("METHOD", "PUBLISH")
	cw.line("X-WR-CALNAME", escapeText(name))
	for _, e := range events {
		uid := e.UID
		if !strings.Contains(uid, "@") {
			uid += "@drover"
		}
		cw.line("BEGIN", "VEVENT")
		cw.line("UID", escapeText(uid))
		cw.line("DTSTAMP", stamp.UTC().Format(icalTime))
		cw.line("DTSTART", e.Start.UTC().Format(icalTime))
		cw.line("DTEND", e.End.UTC().Format(icalTime))
		cw.line("SUMMARY", escapeText(e.Summary))
		if e.Description != "" {
			cw.line("DESCRIPTION", escapeText(e.Description))
		}
		if e.Category != "" {
			cw.line("CATEGORIES", escapeText(e.Category))
		}
		cw.line("END", "VEVENT")
	}
	cw.line("END", "VCALENDAR")
	if cw.err != nil {
		return fmt.Errorf("cannot write calendar: %w", cw.err)
	}
	return nil
}

// escapeText escapes a TEXT value (RFC 5545 section 3.3.11): backslash,
// semicolon and comma get a backslash, a line break (LF, CRLF or CR)
// becomes \n. Other control characters, which TEXT does not allow, are
// dropped; invalid UTF-8 becomes U+FFFD.
func escapeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\\' || r == ';' || r == ',':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n' || r == '\r':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			// not allowed in TEXT
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxLineOctets is the longest a content line may be, CRLF not counted
// (RFC 5545 section 3.1).
const maxLineOctets = 75

// contentWriter writes content lines, folded and ending in CRLF, and
// keeps the first write error.
type contentWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// line writes "name:value", value already escaped.
func (c *contentWriter) line(name, value string) {
	if c.err != nil {
		return
	}
	c.buf = appendFolded(c.buf[:0], name+":"+value)
	_, c.err = c.w.Write(c.buf)
}

// appendFolded appends s as one logical line: physical lines of at most
// 75 octets, each continuation starting with a space, never splitting a
// UTF-8 sequence, each ending in CRLF.
func appendFolded(dst []byte, s string) []byte {
	limit := maxLineOctets
	for len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 { // not UTF-8 after all: cut anywhere rather than loop
			cut = limit
		}
		dst = append(dst, s[:cut]...)
		dst = append(dst, "\r\n "...)
		s = s[cut:]
		limit = maxLineOctets - 1 // the leading space counts
	}
	dst = append(dst, s...)
	return append(dst, "\r\n"...)
}
