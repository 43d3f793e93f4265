package main

// Tests of the CLI as a release manager meets it, without a cluster: help
// (golden files; go test ./cmd/drover -run TestHelp -update rewrites
// them), exit codes of usage errors, output formats, colour, completion,
// manual pages and the configuration's contexts.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/controlplane/bootstrap"
	"github.com/drover-dev/drover/pki"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// cli runs drover in the test process with a given environment.
type cli struct {
	env      map[string]string
	now      time.Time // zero: the real clock
	terminal bool      // whether stdout and stderr count as terminals
}

func (c cli) run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(k string) string { return c.env[k] }
	if !c.now.IsZero() {
		a.now = func() time.Time { return c.now }
	}
	a.loc = time.UTC
	a.terminal = func(io.Writer) bool { return c.terminal }
	a.width = func(io.Writer) int { return 100 }
	code = a.run(context.Background(), args)
	return out.String(), errb.String(), code
}

// offline is a CLI with a home directory of its own and no configuration.
func offline(t *testing.T) cli {
	return cli{env: map[string]string{"HOME": t.TempDir()}}
}

// golden compares got with testdata/NAME.golden, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/drover -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; if the change is meant, rewrite it with go test ./cmd/drover -run '%s' -update\n%s",
			path, strings.Split(t.Name(), "/")[0], lineDiff(string(want), got))
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, "line "+strconv.Itoa(i+1)+":\n  want: "+a+"\n  got:  "+b)
			if len(out) == 5 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestHelpGolden(t *testing.T) {
	for _, args := range [][]string{
		{"--help"},
		{"rollout", "--help"},
		{"rollout", "watch", "--help"},
		{"host", "list", "--help"},
		{"status", "--help"},
		{"config", "--help"},
		{"config", "set-context", "--help"},
		{"completion", "--help"},
	} {
		name := "help-" + strings.Join(append([]string{"drover"}, args[:len(args)-1]...), "-")
		t.Run(name, func(t *testing.T) {
			out, errOut, code := offline(t).run(args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden(t, name, out)
		})
	}
}

// walk calls f for every command a person can run or ask help about.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			walk(sub, f)
		}
	}
}

func TestEveryCommandHelpStartsWithExamples(t *testing.T) {
	root := newApp(io.Discard, io.Discard).rootCommand()
	n := 0
	walk(root, func(c *cobra.Command) {
		n++
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		out, errOut, code := offline(t).run(args...)
		if code != 0 || errOut != "" {
			t.Errorf("%s --help: exit %d, stderr %q", c.CommandPath(), code, errOut)
			return
		}
		if !strings.HasPrefix(out, "Examples:\n  ") || !strings.Contains(strings.SplitN(out, "\n\n", 2)[0], "drover") {
			t.Errorf("%s --help does not start with examples of drover:\n%s", c.CommandPath(), out[:min(len(out), 300)])
		}
		if c.Parent() == root && c.GroupID == "" {
			t.Errorf("%s is in no group of drover --help: add it to groupOf in root.go", c.CommandPath())
		}
	})
	if n < 50 {
		t.Errorf("walked %d commands; the tree has more", n)
	}
}

func TestUsageAndConfigurationErrorsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"rollout", "bogus"}, []string{`unknown command "bogus" for "drover rollout"`, "drover rollout --help"}},
		{[]string{"rollout", "stat"}, []string{`unknown command "stat" for "drover rollout"; did you mean start?`}},
		{[]string{"operator", "issue", "x", "--role", "boss"}, []string{`--role`, `"boss"`, "want one of viewer, deployer, approver, admin"}},
		{[]string{"bogus"}, []string{`unknown command "bogus" for "drover"`}},
		{[]string{"rollout", "show"}, []string{"accepts 1 arg(s), received 0", "drover rollout show --help"}},
		{[]string{"host", "list", "--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"host", "list", "-o", "xml"}, []string{`--output "xml": allowed values are table, json, yaml`}},
		{[]string{"rollout", "report", "r-1", "-o", "csv"}, []string{"allowed values are table, json, yaml, md, markdown"}},
		{[]string{"host", "list"}, []string{"config.yaml does not exist", "drover config set-context"}},
		{[]string{"rollout", "create", "web@1.0.0", "--on-failure", "explode"}, []string{"on_failure", `"explode"`, "allowed values are pause, rollback"}},
		{[]string{"completion", "tcsh"}, []string{`shell "tcsh": allowed values are bash, zsh, fish, powershell`}},
		{[]string{"config", "use-context", "prod"}, []string{"config.yaml does not exist"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := offline(t).run(tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d; want %d (stderr %q)", code, exitUsage, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q; want nothing: messages go to stderr", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
}

func TestYAMLHasTheKeysAndValuesOfJSON(t *testing.T) {
	type inner struct {
		Note string `json:"note"`
	}
	v := struct {
		Name    string            `json:"name"`
		Looks   []string          `json:"looks"`
		Empty   []int             `json:"empty"`
		Nil     *inner            `json:"nil"`
		Nested  inner             `json:"nested"`
		Labels  map[string]string `json:"labels"`
		When    time.Time         `json:"when"`
		Count   uint64            `json:"count"`
		Ratio   float64           `json:"ratio"`
		Bytes   []byte            `json:"bytes"`
		Omitted string            `json:"omitted,omitempty"`
	}{
		Name:  "web@1.2.0",
		Looks: []string{"true", "012", "1e3", "null", "a: b", "- x", "#c", "line1\nline2", "", "2026-12-02T14:02:28Z", "ünïcode <&>"},
		Empty: []int{}, Nested: inner{Note: "yes"}, Labels: map[string]string{"env": "prod", "on": "off"},
		When: time.Date(2026, 12, 2, 14, 2, 28, 5, time.UTC), Count: 1 << 60, Ratio: 0.25, Bytes: []byte{0, 1, 2, 250},
	}
	var js, ys bytes.Buffer
	a := newApp(&js, io.Discard)
	a.output = formatJSON
	if err := a.printOut(v, nil); err != nil {
		t.Fatal(err)
	}
	a.stdout, a.output = &ys, formatYAML
	if err := a.printOut(v, func(io.Writer) { t.Error("yaml printed the table") }); err != nil {
		t.Fatal(err)
	}
	var fromJSON, fromYAML any
	if err := json.Unmarshal(js.Bytes(), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ys.Bytes(), &fromYAML); err != nil {
		t.Fatalf("%v\n%s", err, ys.String())
	}
	// Compare as JSON values (YAML decodes integers as int).
	b, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	var yamlAsJSON any
	_ = json.Unmarshal(b, &yamlAsJSON)
	if !reflect.DeepEqual(fromJSON, yamlAsJSON) {
		t.Errorf("YAML differs from JSON:\njson: %s\nyaml: %s", js.String(), ys.String())
	}
	if strings.Contains(ys.String(), "{") || !strings.Contains(ys.String(), "nested:\n  note: \"yes\"") {
		t.Errorf("YAML is not in block style with \"yes\" quoted:\n%s", ys.String())
	}
	// Key order follows the JSON form, not the alphabet.
	if i, j := strings.Index(ys.String(), "name:"), strings.Index(ys.String(), "looks:"); i < 0 || j < i {
		t.Errorf("keys out of order:\n%s", ys.String())
	}
}

func TestTableIsAligned(t *testing.T) {
	var out bytes.Buffer
	a := newApp(&out, io.Discard)
	err := a.printOut(nil, func(w io.Writer) {
		row(w, "ID", "STATE")
		row(w, "r-1", "completed")
		row(w, "r-12345", "paused")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "ID       STATE\nr-1      completed\nr-12345  paused\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestColourAndProgressOnlyOnATerminalWithoutNoColor(t *testing.T) {
	tests := []struct {
		terminal bool
		env      map[string]string
		flag     bool
		want     bool
	}{
		{terminal: false, want: false},
		{terminal: true, want: true},
		{terminal: true, env: map[string]string{"NO_COLOR": "1"}, want: false},
		{terminal: true, env: map[string]string{"NO_COLOR": ""}, want: true}, // the convention: set and not empty
		{terminal: true, env: map[string]string{"TERM": "dumb"}, want: false},
		{terminal: true, flag: true, want: false},
	}
	for _, tt := range tests {
		a := newApp(io.Discard, io.Discard)
		a.terminal = func(io.Writer) bool { return tt.terminal }
		a.width = func(io.Writer) int { return 100 }
		a.getenv = func(k string) string { return tt.env[k] }
		a.noColor = tt.flag
		if got := a.fancy(a.stdout); got != tt.want {
			t.Errorf("terminal %v env %v --no-color %v: fancy = %v; want %v", tt.terminal, tt.env, tt.flag, got, tt.want)
		}
		_, isBars := a.watchView().(*barView)
		if isBars != tt.want {
			t.Errorf("terminal %v env %v: progress bars %v; want %v", tt.terminal, tt.env, isBars, tt.want)
		}
		if isBars {
			a.watchView().(*barView).p.Shutdown()
		}
	}
	// A terminal of unknown or too narrow a width gets lines: bars would
	// wrap, or not show at all.
	a := newApp(io.Discard, io.Discard)
	a.terminal = func(io.Writer) bool { return true }
	a.getenv = func(string) string { return "" }
	for _, w := range []int{0, 40} {
		a.width = func(io.Writer) int { return w }
		if _, ok := a.watchView().(*lineView); !ok {
			t.Errorf("terminal %d columns wide: want the line view", w)
		}
	}
	// Errors: red only on a terminal.
	_, errOut, _ := cli{env: map[string]string{"HOME": t.TempDir()}, terminal: true}.run("bogus")
	if !strings.HasPrefix(errOut, "\x1b[31merror:\x1b[0m") {
		t.Errorf("stderr on a terminal %q; want a red error:", errOut)
	}
	_, errOut, _ = cli{env: map[string]string{"HOME": t.TempDir(), "NO_COLOR": "1"}, terminal: true}.run("bogus")
	if strings.Contains(errOut, "\x1b[") {
		t.Errorf("colour with NO_COLOR: %q", errOut)
	}
}

func TestCompletionScriptsAndManPages(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_drover", "zsh": "#compdef drover", "fish": "complete -c drover", "powershell": "Register-ArgumentCompleter"} {
		out, errOut, code := offline(t).run("completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %d bytes without %q (stderr %q)", shell, code, len(out), want, errOut)
		}
	}
	// The cobra protocol behind the scripts: subcommands of rollout.
	out, _, _ := offline(t).run("__complete", "rollout", "w")
	if !strings.Contains(out, "watch") {
		t.Errorf("completing 'rollout w': %q", out)
	}
	dir := t.TempDir()
	if _, errOut, code := offline(t).run("docs", "man", "--dir", dir); code != 0 {
		t.Fatalf("docs man: exit %d: %s", code, errOut)
	}
	page, err := os.ReadFile(filepath.Join(dir, "drover-rollout-watch.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`.TH "DROVER" "1"`, "drover-rollout-watch - Follow a rollout", ".SH EXAMPLE", "drover rollout watch r-42"} {
		if !strings.Contains(string(page), w) {
			t.Errorf("man page lacks %q", w)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if len(pages) < 50 {
		t.Errorf("%d man pages; want one per command", len(pages))
	}
}

// bundle writes an operator's CLI bundle (key, certificate, CA, config)
// signed by a fresh CA.
func bundle(t *testing.T, name string, role pki.Role, now time.Time, servers ...string) string {
	t.Helper()
	ca, err := pki.NewCA("test", now, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	cfg := filepath.Join(dir, "config.yaml")
	if err := bootstrap.WriteOperator(ca, name, role, now, dir, servers, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigContexts(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	home := t.TempDir()
	c := cli{env: map[string]string{"HOME": home}, now: now}
	prod := bundle(t, "alice", pki.RoleApprover, now, "https://10.0.0.1:7400", "https://10.0.0.2:7400")
	lab := bundle(t, "bob", pki.RoleViewer, now, "https://192.168.1.5:7400")
	labDir := filepath.Dir(lab)

	steps := []struct {
		args    []string
		env     map[string]string
		code    int
		stdout  string // exact, unless empty
		stderr  []string
		outHave []string
	}{
		{args: []string{"config", "set-context", "prod", "--from", prod}, stderr: []string{"context prod set in " + filepath.Join(home, ".config/drover/config.yaml"), "it is the current context"}},
		{args: []string{"config", "set-context", "lab", "--server", "192.168.1.5:7400", "--ca-cert", filepath.Join(labDir, "ca.crt"),
			"--client-cert", filepath.Join(labDir, "bob.crt"), "--client-key", filepath.Join(labDir, "bob.key")}, stderr: []string{"drover config use-context lab"}},
		{args: []string{"config", "current-context"}, stdout: "prod\n"},
		{args: []string{"config", "get-contexts"}, outHave: []string{
			"CURRENT  NAME  SERVERS                                      OPERATOR        ROLE      CERTIFICATE EXPIRES",
			"*        prod  https://10.0.0.1:7400,https://10.0.0.2:7400  operator/alice  approver  2026-08-30 (in 90d)",
			"-        lab   https://192.168.1.5:7400                     operator/bob    viewer    2026-08-30 (in 90d)"}},
		{args: []string{"config", "use-context", "lab"}, stderr: []string{"now using context lab"}},
		{args: []string{"config", "current-context", "-o", "json"}, outHave: []string{`"context": "lab"`}},
		{args: []string{"config", "current-context"}, env: map[string]string{"DROVER_CONTEXT": "prod"}, stdout: "prod\n"},
		{args: []string{"config", "current-context", "--context", "lab"}, env: map[string]string{"DROVER_CONTEXT": "prod"}, stdout: "lab\n"},
		{args: []string{"config", "view"}, env: map[string]string{"DROVER_SERVERS": "10.9.9.9:7400"}, outHave: []string{
			"context   lab", "(from $DROVER_SERVERS)\n", "https://10.9.9.9:7400 ",
			"operator  operator/bob (viewer), certificate expires 2026-08-30 (in 90d)"}},
		{args: []string{"config", "use-context", "staging"}, code: exitUsage, stderr: []string{`no such context "staging"; the contexts are prod, lab`}},
		{args: []string{"config", "set-context", "half", "--server", "10.0.0.1:7400"}, code: exitUsage, stderr: []string{"missing ca (--ca-cert"}},
		{args: []string{"config", "delete-context", "lab"}, stderr: []string{"context lab deleted"}},
		{args: []string{"config", "get-contexts", "-o", "yaml"}, outHave: []string{"- name: prod\n  current: true\n  servers:\n    - https://10.0.0.1:7400"}},
	}
	for _, s := range steps {
		cc := c
		if s.env != nil {
			cc.env = map[string]string{"HOME": home}
			for k, v := range s.env {
				cc.env[k] = v
			}
		}
		out, errOut, code := cc.run(s.args...)
		name := strings.Join(s.args, " ")
		if code != s.code {
			t.Errorf("%s: exit %d; want %d (stderr %q)", name, code, s.code, errOut)
		}
		if s.stdout != "" && out != s.stdout {
			t.Errorf("%s: stdout %q; want %q", name, out, s.stdout)
		}
		for _, w := range s.outHave {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", name, w, out)
			}
		}
		for _, w := range s.stderr {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr %q lacks %q", name, errOut, w)
			}
		}
	}
}

// normalize replaces what changes from run to run — times, ports, rollout
// IDs, Raft indexes, leaders — and realigns tables, so that golden files
// hold only what the test controls.
func normalize(s string, maskColumns ...string) string {
	for _, r := range []struct{ re, with string }{
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`, "<time>"},
		{`(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{3,4} \((in [0-9dhms]+|now|[0-9dhms]+ ago)\)`, "<when>"},
		{`open now`, "<when>"},
		{`127\.0\.0\.1:\d+`, "127.0.0.1:<port>"},
		{`\br-\d+\b`, "r-<n>"},
		{`"(create_index|modify_index|term|seq)": \d+`, `"$1": <n>`},
		{`(?m)^(\s*-?\s*)(create_index|modify_index|term|seq): \d+$`, "$1$2: <n>"},
		{`"leader": "s\d"`, `"leader": "<s>"`},
		{`"open": (true|false)`, `"open": <bool>`},
		{`leader s\d \(term \d+\)`, "leader <s> (term <n>)"},
		{`\b\d+(\.\d+)?(ms|s|m|h)[0-9.hms]* ago\b`, "<ago>"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return realign(s, maskColumns)
}

// realign lays tables out again after normalize changed their cells'
// widths: cells are what two or more spaces separate. Cells under a
// header named in mask become <masked>.
func realign(s string, mask []string) string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	split := regexp.MustCompile(`\s{2,}`)
	var masked map[int]bool
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, "{") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "[") || strings.HasPrefix(line, "}") || strings.HasPrefix(line, "]") {
			tw.Write([]byte(line + "\n")) // JSON: as it is
			continue
		}
		cells := split.Split(strings.TrimRight(line, " "), -1)
		if m := headerMask(cells, mask); m != nil {
			masked = m
		} else if len(cells) < 2 {
			masked = nil
		} else {
			for i := range cells {
				if masked[i] {
					cells[i] = "<masked>"
				}
			}
		}
		tw.Write([]byte(strings.Join(cells, "\t") + "\n"))
	}
	tw.Flush()
	return buf.String()
}

func headerMask(cells, mask []string) map[int]bool {
	var m map[int]bool
	for i, c := range cells {
		for _, name := range mask {
			if c == name {
				if m == nil {
					m = map[int]bool{}
				}
				m[i] = true
			}
		}
	}
	return m
}

func TestNormalizeKeepsWhatTheTestControls(t *testing.T) {
	in := "HOST  OS            LAST REPORT\nh1    Ubuntu 24.04  3s ago\nh22   -             never\n\nrollout r-123 at 2026-12-02T14:02:28Z on 127.0.0.1:41234\n"
	want := "HOST  OS        LAST REPORT\nh1    <masked>  <ago>\nh22   <masked>  never\n\nrollout r-<n> at <time> on 127.0.0.1:<port>\n"
	if got := normalize(in, "OS"); got != want {
		t.Errorf("normalize:\n%s\nwant:\n%s", got, want)
	}
}
