package test

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/drover-dev/drover/controlplane/client"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/agent"
	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/deploy"
)

var (
	agentBinOnce sync.Once
	agentBin     string
	agentBinErr  error
)

// buildAgent builds the drover-agent binary once per test run.
func buildAgent(t *testing.T) string {
	t.Helper()
	agentBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drover-agent-bin-")
		if err != nil {
			agentBinErr = err
			return
		}
		agentBin = filepath.Join(dir, "drover-agent")
		out, err := exec.Command("go", "build", "-o", agentBin, "../cmd/drover-agent").CombinedOutput()
		if err != nil {
			agentBinErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if agentBinErr != nil {
		t.Fatal(agentBinErr)
	}
	return agentBin
}

// agentProc is a drover-agent process; done is closed when it has exited.
type agentProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startAgentProc(t *testing.T, bin, dir, name, server, token, failpoint string) *agentProc {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--dir", dir, "--name", name, "--poll-wait", "1s", "--facts-dir", filepath.Join(dir, "facts.d")}
	if token != "" {
		args = append(args, "--server", server, "--token", token)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "DROVER_FAILPOINT="+failpoint)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *agentProc) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitHost waits until a host is enrolled and has sent its inventory.
func waitHost(t *testing.T, c *testcluster.Cluster, name string) {
	t.Helper()
	testcluster.WaitFor(t, 30*time.Second, "host "+name+" to enroll", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		if err != nil {
			return false
		}
		for _, h := range hosts {
			if h.ID == name && len(h.Inventory) > 0 {
				return true
			}
		}
		return false
	})
}

// deployment returns a host's part in a rollout.
func deployment(c *testcluster.Cluster, rollout, host string) *api.Deployment {
	st, _, err := c.Admin.Rollout(context.Background(), rollout, 0, "")
	if err != nil {
		return nil
	}
	for _, d := range st.Hosts {
		if d.Host == host {
			return d
		}
	}
	return nil
}

// TestAgentKilledAtEveryStep kills the agent process (SIGKILL, as a power
// cut would) at each step of an apply, starts it again, and checks that
// the host ends on exactly the old or the new version, that current is a
// valid link, and that the control plane was told which.
func TestAgentKilledAtEveryStep(t *testing.T) {
	bin := buildAgent(t)
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.Publish("web", "2.0.0", map[string]string{"bin/web*": "#!/bin/sh\necho v2\n"}, webCheck, key)
	bad := []artifacts.HealthCheck{{Name: "fails", Command: []string{"false"}}}
	c.Publish("web", "2.0.1", map[string]string{"bin/web*": "#!/bin/sh\necho bad\n"}, bad, key)

	server := "https://" + c.ServerAPI(0)
	tests := []struct {
		failpoint, release string
		want               deploy.HostState
		current            string
	}{
		{"downloading", "web@2.0.0", deploy.Succeeded, "2.0.0"},
		{"verifying", "web@2.0.0", deploy.Succeeded, "2.0.0"},
		{"staged", "web@2.0.0", deploy.Succeeded, "2.0.0"},
		{"activating", "web@2.0.0", deploy.Reverted, "1.0.0"},
		{"switched", "web@2.0.0", deploy.Reverted, "1.0.0"},
		{"probation", "web@2.0.0", deploy.Succeeded, "2.0.0"},
		{"reverting", "web@2.0.1", deploy.Reverted, "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.failpoint, func(t *testing.T) {
			host := "crash-" + tt.failpoint
			dir := filepath.Join(c.Dir, "hosts", host)
			token := c.Token(map[string]string{"fp": tt.failpoint}, 1)
			p := startAgentProc(t, bin, dir, host, server, token, "")
			waitHost(t, c, host)
			v1 := c.RolloutWith("web@1.0.0", map[string]string{"fp": tt.failpoint})
			if st := c.WaitRollout(v1, 60*time.Second, api.RolloutCompleted, api.RolloutPaused); st.Rollout.State != api.RolloutCompleted {
				t.Fatalf("installing 1.0.0: %s", st.Rollout.Reason)
			}
			p.stop()

			p = startAgentProc(t, bin, dir, host, server, "", tt.failpoint)
			id := c.RolloutWith(tt.release, map[string]string{"fp": tt.failpoint})
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("the agent never reached failpoint %s", tt.failpoint)
			}
			startAgentProc(t, bin, dir, host, server, "", "")
			testcluster.WaitFor(t, 60*time.Second, "the host's outcome to reach the control plane", func() bool {
				d := deployment(c, id, host)
				return d != nil && d.State.Final()
			})
			d := deployment(c, id, host)
			if os.Getenv("DROVER_DEBUG_LOG") != "" {
				b, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), host+".log"))
				t.Logf("agent log:\n%s", b)
			}
			target, err := os.Readlink(filepath.Join(dir, "apps/web/current"))
			if err != nil {
				t.Fatalf("current is not a link: %v", err)
			}
			if st, err := os.Stat(filepath.Join(dir, "apps/web", target, "bin/web")); err != nil || st.Mode()&0o111 == 0 {
				t.Fatalf("current -> %s, which does not hold an installed release (%v)", target, err)
			}
			onDisk := filepath.Base(target)
			if d.State != tt.want || d.Current != tt.current || onDisk != tt.current {
				t.Errorf("after a crash at %s: control plane says %s on %q (%s); disk says %q; want %s on %q",
					tt.failpoint, d.State, d.Current, d.Reason, onDisk, tt.want, tt.current)
			}
		})
	}
}

func TestDiskFullDuringDownload(t *testing.T) {
	disk := mountTmpfs(t, "6m")
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	token := c.Token(nil, 1)
	a := c.StartAgent("small", filepath.Join(disk, "host"), token)
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.WaitRollout(c.RolloutWith("web@1.0.0", nil), 60*time.Second, api.RolloutCompleted)

	big := make([]byte, 8<<20) // incompressible: does not fit
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"bin/web*": "#!/bin/sh\n", "data.bin": string(big)}
	c.Publish("web", "2.0.0", files, webCheck, key)
	id := c.RolloutWith("web@2.0.0", nil)
	st := c.WaitRollout(id, 60*time.Second, api.RolloutPaused, api.RolloutCompleted)
	d := deployment(c, id, "small")
	if st.Rollout.State != api.RolloutPaused || d.State != deploy.Failed || !strings.Contains(d.Reason, "no space left") || d.Current != "1.0.0" {
		t.Fatalf("rollout %s; host %s on %q: %q; want failed for lack of space, still on 1.0.0", st.Rollout.State, d.State, d.Current, d.Reason)
	}
	if v := current(t, a, "web"); v != "1.0.0" {
		t.Errorf("current -> %q; want 1.0.0", v)
	}
	if b, err := os.ReadFile(filepath.Join(a.Dir, "apps/web/current/etc/web.conf")); err != nil || string(b) != "port=8080\n" {
		t.Errorf("the running release was damaged: %q, %v", b, err)
	}
}

func TestHooksAndFlappingChecks(t *testing.T) {
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	hostLabel := func(h string) map[string]string { return map[string]string{"case": h} }
	cases := []struct {
		name    string
		tmpl    artifacts.Manifest
		want    deploy.HostState
		reason  string
		current string
	}{
		{"hanging activate hook", artifacts.Manifest{Hooks: &artifacts.Hooks{Activate: &artifacts.Hook{
			Command: []string{"sleep", "60"}, Timeout: artifacts.Duration(time.Second)}}}, deploy.Reverted, "activate hook failed: timed out after 1s", "1.0.0"},
		{"failing post-activate hook", artifacts.Manifest{Hooks: &artifacts.Hooks{PostActivate: &artifacts.Hook{
			Command: []string{"sh", "-c", "echo cannot restart >&2; exit 3"}}}}, deploy.Reverted, "post-activate hook failed: exit status 3", "1.0.0"},
		{"failing pre-activate hook", artifacts.Manifest{Hooks: &artifacts.Hooks{PreActivate: &artifacts.Hook{
			Command: []string{"false"}}}}, deploy.Failed, "pre-activate hook failed", "1.0.0"},
		{"flapping check", artifacts.Manifest{
			HealthChecks: []artifacts.HealthCheck{{Name: "flaps", Command: []string{"sh", "-c",
				`n=$(cat "$DROVER_HOST_DIR/flap" 2>/dev/null || echo 0); echo $((n+1)) > "$DROVER_HOST_DIR/flap"; [ $((n % 2)) -eq 0 ]`}}},
			Probation: &artifacts.Probation{MinHealthyTime: artifacts.Duration(time.Second), HealthyDeadline: artifacts.Duration(3 * time.Second),
				Interval: artifacts.Duration(100 * time.Millisecond)}}, deploy.Reverted, "not healthy for 1s within 3s", "1.0.0"},
		{"check healthy after two failures", artifacts.Manifest{
			HealthChecks: []artifacts.HealthCheck{{Name: "warms-up", Command: []string{"sh", "-c",
				`n=$(cat "$DROVER_HOST_DIR/warm" 2>/dev/null || echo 0); echo $((n+1)) > "$DROVER_HOST_DIR/warm"; [ $n -ge 2 ]`}}},
			Probation: &artifacts.Probation{MinHealthyTime: artifacts.Duration(300 * time.Millisecond), HealthyDeadline: artifacts.Duration(10 * time.Second),
				Interval: artifacts.Duration(100 * time.Millisecond)}}, deploy.Succeeded, "", "new"},
	}
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := fmt.Sprintf("hook-%d", i)
			a := c.StartAgent(host, "", c.Token(hostLabel(host), 1))
			c.WaitRollout(c.RolloutWith("web@1.0.0", hostLabel(host)), 60*time.Second, api.RolloutCompleted)
			tmpl := tc.tmpl
			tmpl.Name, tmpl.Version = "web", fmt.Sprintf("2.0.%d", i)
			if tc.current == "new" {
				tc.current = tmpl.Version
			}
			c.PublishManifest(tmpl, map[string]string{"bin/web*": "#!/bin/sh\n"}, key)
			id := rolloutOverriding(c, "web@"+tmpl.Version, hostLabel(host), "the hooks are the test")
			c.WaitRollout(id, 60*time.Second, api.RolloutPaused, api.RolloutCompleted)
			d := deployment(c, id, host)
			want := tc.current
			if d.State != tc.want || !strings.Contains(d.Reason, tc.reason) || d.Current != want || current(t, a, "web") != want {
				t.Errorf("host %s %q, reason %q, disk %q; want %s %q with a reason containing %q",
					d.State, d.Current, d.Reason, current(t, a, "web"), tc.want, want, tc.reason)
			}
		})
	}
}

// TestDeadMansSwitch cuts an agent off from every server during probation:
// it switches back by itself, and the control plane learns it once the
// servers are back.
func TestDeadMansSwitch(t *testing.T) {
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	a := c.StartAgent("lonely", "", c.Token(nil, 1))
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.WaitRollout(c.RolloutWith("web@1.0.0", nil), 60*time.Second, api.RolloutCompleted)
	c.PublishManifest(artifacts.Manifest{Name: "web", Version: "2.0.0", HealthChecks: webCheck,
		Probation: &artifacts.Probation{MinHealthyTime: artifacts.Duration(30 * time.Second), HealthyDeadline: artifacts.Duration(time.Minute),
			Interval: artifacts.Duration(200 * time.Millisecond), UnreachableAfter: artifacts.Duration(2 * time.Second)}},
		webFiles, key)
	id := c.RolloutWith("web@2.0.0", nil)
	testcluster.WaitFor(t, 30*time.Second, "the host to be on probation", func() bool {
		d := deployment(c, id, "lonely")
		return d != nil && d.State == deploy.Probation
	})
	if v := current(t, a, "web"); v != "2.0.0" {
		t.Fatalf("on probation but current -> %q", v)
	}
	for i := range c.Servers {
		c.StopServer(i)
	}
	testcluster.WaitFor(t, 20*time.Second, "the agent to switch back on its own", func() bool { return current(t, a, "web") == "1.0.0" })
	for i := range c.Servers {
		c.StartServer(i)
	}
	c.Leader()
	testcluster.WaitFor(t, 30*time.Second, "the control plane to learn of the revert", func() bool {
		d := deployment(c, id, "lonely")
		return d != nil && d.State == deploy.Reverted && d.Current == "1.0.0" && strings.Contains(d.Reason, "dead-man's switch")
	})
}

// windowAt is a daily window that opens at the wall-clock second of t (UTC).
func windowAt(name string, t time.Time, d, cutoff time.Duration) deploy.Window {
	t = t.UTC()
	return deploy.Window{Name: name, Schedule: fmt.Sprintf("FREQ=DAILY;BYHOUR=%d;BYMINUTE=%d;BYSECOND=%d", t.Hour(), t.Minute(), t.Second()),
		Duration: d, Cutoff: cutoff}
}

// TestNoActivationWithoutServerOrWindow: a staged release waits for its
// window; if no server can be reached when the window opens, the agent
// does not activate, and once the window's cutoff has passed it waits for
// the next window.
func TestNoActivationWithoutServerOrWindow(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.AgentPollWait = time.Second
	key := c.SigningKey()
	a := c.StartAgent("offline", "", c.Token(nil, 1))
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.WaitRollout(c.RolloutWith("web@1.0.0", nil), 60*time.Second, api.RolloutCompleted)

	opens := time.Now().Add(6 * time.Second).Truncate(time.Second)
	c.SetWindow(windowAt("soon", opens, 4*time.Second, 2*time.Second))
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	id := c.RolloutWith("web@2.0.0", nil)
	testcluster.WaitFor(t, 10*time.Second, "the host to wait for its window", func() bool {
		d := deployment(c, id, "offline")
		return d != nil && d.State == deploy.WaitingForWindow
	})
	for i := range c.Servers {
		c.StopServer(i)
	}
	observe(t, time.Until(opens.Add(5*time.Second)), "no activation while no server answers", func() bool { return current(t, a, "web") == "1.0.0" })
	for i := range c.Servers {
		c.StartServer(i)
	}
	c.Leader()
	observe(t, 4*time.Second, "no activation after the window's cutoff", func() bool { return current(t, a, "web") == "1.0.0" })
	if d := deployment(c, id, "offline"); d == nil || d.State != deploy.WaitingForWindow {
		t.Errorf("host state %v; want still waiting for a window", d)
	}
}

// TestWindowsAndClockJumps moves an agent's clock across a window boundary:
// jumping forward into the window lets it activate; a host whose clock
// jumps back out of the window before its start does not.
func TestWindowsAndClockJumps(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.AgentPollWait = time.Second
	c.AgentConfig = func(cfg *agent.Config) { cfg.WindowJitter = time.Second }
	key := c.SigningKey()
	ahead, behind := &offsetClock{}, &offsetClock{}
	c.AgentClock = ahead
	fwd := c.StartAgent("jumps-ahead", "", c.Token(map[string]string{"clock": "ahead"}, 1))
	c.AgentClock = behind
	back := c.StartAgent("jumps-back", "", c.Token(map[string]string{"clock": "behind"}, 1))
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.WaitRollout(c.RolloutWith("web@1.0.0", nil), 60*time.Second, api.RolloutCompleted)

	// A window six hours from now, an hour long.
	opens := time.Now().Add(6 * time.Hour).Truncate(time.Second)
	c.SetWindow(windowAt("later", opens, time.Hour, 0))
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	id := c.RolloutWith("web@2.0.0", nil)
	testcluster.WaitFor(t, 10*time.Second, "both hosts to wait for the window", func() bool {
		d1, d2 := deployment(c, id, "jumps-ahead"), deployment(c, id, "jumps-back")
		return d1 != nil && d2 != nil && d1.State == deploy.WaitingForWindow && d2.State == deploy.WaitingForWindow
	})
	// One clock jumps into the window; the other jumps into it and, before
	// its randomly delayed start, back out by a day.
	ahead.advance(6*time.Hour + 10*time.Minute)
	testcluster.WaitFor(t, 20*time.Second, "the host whose clock jumped into the window to activate", func() bool {
		return current(t, fwd, "web") == "2.0.0"
	})
	behind.advance(-24 * time.Hour)
	observe(t, 4*time.Second, "no activation on the host whose clock is a day behind", func() bool { return current(t, back, "web") == "1.0.0" })
}

// rolloutOverriding starts a rollout in one wave as an admin who overrides
// failed readiness gates (a release without health checks, say).
func rolloutOverriding(c *testcluster.Cluster, release string, selector map[string]string, reason string) string {
	c.T().Helper()
	w, _ := deploy.ParseWaves("100%")
	created, err := c.Admin.CreateRollout(context.Background(), api.RolloutRequest{Release: release, Selector: selector,
		Plan: deploy.Plan{Waves: w}, Start: true, Override: reason})
	if err != nil {
		c.T().Fatalf("create rollout of %s: %v", release, err)
	}
	return created.ID
}
