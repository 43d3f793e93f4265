package main

// The CLI against a real three-server cluster in the test process, with
// two agents: rollout watch's exit codes, golden tables and JSON of the
// main commands, every read command's JSON and YAML, progress bars, and
// errors a person can act on.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

var (
	webFiles = map[string]string{"bin/web*": "#!/bin/sh\necho web\n", "etc/web.conf": "port=8080\n"}
	webCheck = []artifacts.HealthCheck{{Name: "binary", Command: []string{"sh", "-c", "test -x bin/web"}}}
	// brokenCheck fails on a host whose directory holds a file named broken.
	brokenCheck = []artifacts.HealthCheck{{Name: "not-broken", Command: []string{"sh", "-c",
		`if [ -e "$DROVER_HOST_DIR/broken" ]; then echo "host is marked broken" >&2; exit 1; fi`}}}
)

func TestCLIAgainstACluster(t *testing.T) {
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	c.StartAgent("h1", "", c.Token(map[string]string{"env": "test", "site": "a"}, 1))
	h2 := c.StartAgent("h2", "", c.Token(map[string]string{"env": "test", "site": "b"}, 1))
	ctx := context.Background()
	testcluster.WaitFor(t, 20*time.Second, "two hosts with inventory", func() bool {
		hosts, err := c.Admin.Hosts(ctx, client.HostQuery{})
		return err == nil && len(hosts) == 2 && len(hosts[0].Inventory) > 0 && len(hosts[1].Inventory) > 0
	})
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.Publish("web", "1.1.0", map[string]string{"bin/web*": "#!/bin/sh\necho web 1.1\n"}, brokenCheck, key)
	c.SetWindow(deploy.Window{Name: "berlin-nights", Schedule: "FREQ=DAILY;BYHOUR=2", TimeZone: "Europe/Berlin",
		Duration: 3 * time.Hour, Cutoff: 2 * time.Hour, Selector: map[string]string{"site": "berlin"}})
	if err := c.Admin.SetFreeze(ctx, deploy.Freeze{Name: "year-end", Start: time.Date(2031, 12, 20, 0, 0, 0, 0, time.UTC),
		End: time.Date(2032, 1, 4, 0, 0, 0, 0, time.UTC), Selector: map[string]string{"site": "berlin"}, Reason: "year-end close"}); err != nil {
		t.Fatal(err)
	}
	cl := cli{env: map[string]string{"DROVER_CONFIG": c.Boot.AdminConfig, "HOME": t.TempDir()}}

	var completed, paused string
	t.Run("a rollout that completes: watch exits 0", func(t *testing.T) {
		out, errOut, code := cl.run("rollout", "create", "web@1.0.0", "--waves", "1,100%", "--start", "--watch")
		if code != exitOK {
			t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		completed = strings.SplitN(out, "\n", 2)[0]
		if !regexp.MustCompile(`^r-\d+$`).MatchString(completed) {
			t.Fatalf("first line %q; want the rollout's ID", completed)
		}
		for _, w := range []string{"rollout " + completed + " running: web@1.0.0 to 2 host(s) in waves 1,100%",
			"wave 1 of 2 started: 1 host(s)", "h1           wave 1  succeeded (now on 1.0.0)", "wave 2 of 2 done: 1 succeeded",
			"rollout " + completed + " completed: all 2 host(s) done", "rollout " + completed + " ended completed: 2 succeeded\n"} {
			if !strings.Contains(out, w) {
				t.Errorf("the watch's lines lack %q:\n%s", w, out)
			}
		}
		if errOut != "" {
			t.Errorf("stderr %q; want nothing", errOut)
		}
	})
	if completed == "" {
		t.FailNow()
	}

	t.Run("golden tables and JSON", func(t *testing.T) {
		for _, g := range []struct {
			name string
			args []string
			mask []string
		}{
			{"rollout-list", []string{"rollout", "list"}, nil},
			{"rollout-show", []string{"rollout", "show", completed}, nil},
			{"host-list", []string{"host", "list"}, []string{"OS", "CPUS", "MEMORY", "LAST REPORT", "DRIFT"}},
			{"release-list", []string{"release", "list"}, nil},
			{"freeze-list", []string{"freeze", "list"}, nil},
			{"freeze-list-json", []string{"freeze", "list", "-o", "json"}, nil},
			{"window-list-yaml", []string{"window", "list", "-o", "yaml"}, nil},
		} {
			t.Run(g.name, func(t *testing.T) {
				out, errOut, code := cl.run(g.args...)
				if code != 0 || errOut != "" {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
				golden(t, "out-"+g.name, normalize(out, g.mask...))
			})
		}
	})

	t.Run("a rollout that pauses: watch exits 3 and streams JSON lines", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(h2.Dir, "broken"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := cl.run("rollout", "create", "web@1.1.0", "--waves", "1,100%", "--start")
		if code != 0 {
			t.Fatalf("create: exit %d: %s", code, errOut)
		}
		paused = strings.TrimSpace(out)
		out, errOut, code = cl.run("rollout", "watch", paused, "-o", "json")
		if code != exitIncomplete {
			t.Fatalf("exit %d; want 3\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		var events []watchEvent
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev watchEvent
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("line %q is not a watch event: %v", line, err)
			}
			events = append(events, ev)
		}
		reverted := false
		for _, ev := range events {
			if ev.Type == "host" && ev.Host == "h2" && ev.State == "reverted" && strings.Contains(ev.Output, "host is marked broken") {
				reverted = true
			}
		}
		if !reverted {
			t.Errorf("no event of h2 reverting with its check's output:\n%s", out)
		}
		end := events[len(events)-1]
		if end.Type != "end" || end.State != api.RolloutPaused || end.ExitCode == nil || *end.ExitCode != exitIncomplete ||
			end.Counts["succeeded"] != 1 || end.Counts["reverted"] != 1 {
			t.Errorf("last event %+v; want the end, paused, exit code 3, 1 succeeded and 1 reverted", end)
		}
		if !strings.Contains(errOut, "rollout "+paused+" paused: ") {
			t.Errorf("stderr %q; want why the rollout paused", errOut)
		}
	})
	if paused == "" {
		t.FailNow()
	}

	t.Run("golden status", func(t *testing.T) {
		for _, g := range []struct{ name, format string }{{"status", "table"}, {"status-json", "json"}} {
			out, errOut, code := cl.run("status", "-o", g.format)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden(t, "out-"+g.name, normalize(out))
		}
	})

	t.Run("every read command prints JSON and YAML", func(t *testing.T) {
		var rel api.Release
		if _, err := c.Admin.Do(ctx, client.Request{Method: "GET", Path: api.PathReleases + "/web@1.0.0"}, &rel); err != nil {
			t.Fatal(err)
		}
		args := map[string][]string{
			"drover artifact show":         {rel.Payload},
			"drover release show":          {"web@1.0.0"},
			"drover release readiness":     {"web@1.0.0", "--selector", "site=a"},
			"drover rollout show":          {completed},
			"drover rollout report":        {completed},
			"drover rollout change-record": {completed},
			"drover rollout watch":         {completed},
			"drover host show":             {"h1"},
		}
		ran := 0
		walk(newApp(io.Discard, io.Discard).rootCommand(), func(cmd *cobra.Command) {
			path := cmd.CommandPath()
			if !isReadCommand(cmd) {
				return
			}
			ran++
			for _, format := range []string{"json", "yaml"} {
				argv := append(append(strings.Fields(path)[1:], args[path]...), "-o", format)
				out, errOut, code := cl.run(argv...)
				if code == exitError && path == "drover release readiness" && strings.Contains(errOut, "gate(s) failed") {
					code = 0 // it prints the review, then says a gate failed
				}
				if code != 0 {
					if code == exitUsage && strings.Contains(errOut, "arg(s)") {
						t.Errorf("%s needs arguments: give it some in the args table of this test (%s)", path, errOut)
					} else {
						t.Errorf("drover %s: exit %d: %s", strings.Join(argv, " "), code, errOut)
					}
					return
				}
				if err := checkDocuments(out, format, path == "drover rollout watch"); err != nil {
					t.Errorf("drover %s: %v\n%s", strings.Join(argv, " "), err, out[:min(len(out), 500)])
				}
			}
		})
		if ran < 25 {
			t.Errorf("ran %d read commands; the tree has more", ran)
		}
	})

	t.Run("progress bars on a terminal", func(t *testing.T) {
		term := cl
		term.terminal = true
		out, errOut, code := term.run("rollout", "watch", completed)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, w := range []string{"wave 1/2", "wave 2/2", "1/1", "1 succeeded", "rollout " + completed + " ended \x1b[32mcompleted\x1b[0m: 2 succeeded"} {
			if !strings.Contains(out, w) {
				t.Errorf("the bars lack %q:\n%q", w, out)
			}
		}
		out, _, code = term.run("rollout", "watch", paused)
		if code != exitIncomplete || !strings.Contains(out, "\x1b[31mreverted\x1b[0m") {
			t.Errorf("exit %d; want 3 and the reverted host in red:\n%q", code, out)
		}
		noColor := term
		noColor.env = map[string]string{"DROVER_CONFIG": c.Boot.AdminConfig, "HOME": t.TempDir(), "NO_COLOR": "1"}
		out, _, _ = noColor.run("rollout", "watch", completed)
		if strings.Contains(out, "\x1b[") || !strings.Contains(out, "wave 2 of 2 done") {
			t.Errorf("with NO_COLOR: want plain lines, got:\n%q", out)
		}
	})

	t.Run("errors a person can act on", func(t *testing.T) {
		// Nothing listens on port 1 of loopback.
		_, errOut, code := cl.run("status", "--server", "https://127.0.0.1:1")
		for _, w := range []string{"tried https://127.0.0.1:1", "connection refused", "Configuration: " + c.Boot.AdminConfig, "(servers from --server)"} {
			if !strings.Contains(errOut, w) {
				t.Errorf("connection refused: stderr %q lacks %q", errOut, w)
			}
		}
		if code != exitError {
			t.Errorf("connection refused: exit %d; want 1", code)
		}

		certPEM, keyPEM := c.OperatorCert("vera", pki.RoleViewer)
		dir := t.TempDir()
		caPEM, err := os.ReadFile(filepath.Join(c.Boot.CADir, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"vera.crt": certPEM, "vera.key": keyPEM, "ca.crt": caPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		admin, err := client.LoadConfig(c.Boot.AdminConfig)
		if err != nil {
			t.Fatal(err)
		}
		vera := filepath.Join(dir, "config.yaml")
		if err := (&client.Config{Servers: admin.Servers, CA: "ca.crt", Cert: "vera.crt", Key: "vera.key"}).Save(vera); err != nil {
			t.Fatal(err)
		}
		_, errOut, code = cl.run("rollout", "resume", paused, "--config", vera)
		for _, w := range []string{"operator/vera (viewer) may not do this: role deployer or higher is required", "drover operator issue vera --role deployer"} {
			if !strings.Contains(errOut, w) {
				t.Errorf("role error: stderr %q lacks %q", errOut, w)
			}
		}
		if code != exitError {
			t.Errorf("role error: exit %d; want 1", code)
		}
	})
}

// isReadCommand reports whether a command only reads, and so prints its
// answer as a table, JSON or YAML.
func isReadCommand(c *cobra.Command) bool {
	if !c.Runnable() || c.HasSubCommands() || strings.HasPrefix(c.CommandPath(), "drover bench") {
		return false
	}
	switch c.Name() {
	case "list", "show", "status", "members", "get-contexts", "current-context", "view", "version", "readiness", "report", "change-record", "watch":
		return true
	}
	return c.CommandPath() == "drover audit verify"
}

// checkDocuments checks that out is one JSON or YAML document (a stream of
// them for watch), each an object or a list.
func checkDocuments(out, format string, stream bool) error {
	var docs []any
	switch format {
	case "json":
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			docs = append(docs, v)
		}
	case "yaml":
		dec := yaml.NewDecoder(strings.NewReader(out))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			docs = append(docs, v)
		}
	}
	switch {
	case len(docs) == 0:
		return errors.New("no document")
	case len(docs) > 1 && !stream:
		return errors.New("more than one document")
	}
	for _, d := range docs {
		if d == nil {
			return errors.New("an empty document")
		}
		if reflect.TypeOf(d).Kind() != reflect.Map && reflect.TypeOf(d).Kind() != reflect.Slice {
			return errors.New("not an object or a list")
		}
	}
	return nil
}
