package main

// Output: read commands print data on stdout as a table, JSON or YAML (-o);
// messages go to stderr. Colour is used only on a terminal, never when
// NO_COLOR is set, TERM is dumb or --no-color is given.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/cupwriter"
	"go.yaml.in/yaml/v3"
)

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFormats are the formats every read command accepts.
var outputFormats = []string{formatTable, formatJSON, formatYAML}

// printOut writes v as JSON or YAML (the same keys) with -o json or -o
// yaml, or calls table otherwise. A command without a table form passes a
// nil table: it prints JSON by default.
func (a *app) printOut(v any, table func(w io.Writer)) error {
	format := a.output
	if format == "" {
		format = formatTable
	}
	if format == formatTable && table == nil {
		format = formatJSON
	}
	switch format {
	case formatJSON:
		return writeJSON(a.stdout, v)
	case formatYAML:
		return writeYAML(a.stdout, v)
	case formatTable:
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return usageErr("--output %q: allowed values are %s", a.output, strings.Join(outputFormats, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeYAML writes v as YAML with exactly the keys, order and values of
// its JSON form: v is encoded as JSON, which YAML reads as flow-style
// YAML, and written back in block style.
func writeYAML(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(buf.Bytes(), &doc); err != nil {
		return fmt.Errorf("cannot convert to YAML: %w", err)
	}
	blockStyle(&doc)
	ye := yaml.NewEncoder(w)
	ye.SetIndent(2)
	if err := ye.Encode(&doc); err != nil {
		return err
	}
	return ye.Close()
}

// blockStyle drops the flow style and quoting that came with the JSON
// form; the encoder quotes again every string that needs it (such as
// "true" or "012"). Strings that YAML 1.1 readers take for booleans
// ("yes", "off") stay quoted too.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && yaml11Bools[strings.ToLower(n.Value)] {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

var yaml11Bools = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true}

func row(w io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

// until says how far t is from now, roughly: "in 3h20m", "now", "2m ago".
func until(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d < 0:
		return roughly(-d) + " ago"
	}
	return "in " + roughly(d)
}

// roughly rounds d to what a person reads at a glance: seconds under a
// minute, minutes under an hour, hours and minutes under two days, days.
func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dd", int(d.Round(24*time.Hour)/(24*time.Hour)))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// terminalWidth is the width of the terminal w is, in columns; 0 when
// unknown.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cw := cupwriter.New(f, false)
	if !cw.IsTerminal() {
		return 0
	}
	width, _, err := cw.GetTermSize()
	if err != nil {
		return 0
	}
	return width
}

// fancy reports whether w may get colour and progress bars: a terminal,
// without NO_COLOR, TERM=dumb or --no-color.
func (a *app) fancy(w io.Writer) bool {
	return a.terminal(w) && !a.noColor && a.getenv("NO_COLOR") == "" && a.getenv("TERM") != "dumb"
}

// ANSI colours.
const (
	colBold   = "1"
	colRed    = "31"
	colGreen  = "32"
	colYellow = "33"
	colBlue   = "34"
	colDim    = "2"
)

// painter colours text, or leaves it alone when colour is off.
type painter bool

func (p painter) paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// stateColour is the colour of a rollout or host state.
func stateColour(state string) string {
	switch state {
	case "completed", "succeeded", "up":
		return colGreen
	case "failed", "reverted", "aborted", "rolled-back", "rolling-back", "down", "FAIL":
		return colRed
	case "paused", "waiting-for-window", "queued", "pending":
		return colYellow
	case "running", "instructed", "downloading", "staged", "activating", "probation":
		return colBlue
	}
	return ""
}

func (p painter) state(s string) string {
	if c := stateColour(s); c != "" {
		return p.paint(c, s)
	}
	return s
}
