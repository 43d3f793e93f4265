package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

// The agent updating itself, with real binaries: every host runs a
// drover-agent built as version 1.0.0 from its own copy, under a small
// supervisor that restarts it whenever it exits (as systemd's
// Restart=always would), and is rolled a release of drover-agent — a good
// build, or one broken on purpose — through a real cluster. Each case
// checks what the control plane was told and which binary is in place.

// agentBuild is one drover-agent binary built for the tests.
type agentBuild struct {
	version, fault string
	path           string
	bytes          []byte
}

// selfUpdateBuilds builds the agent as 1.0.0, as 2.0.0, and as 2.0.1
// broken on purpose (agent.buildFault) in the way the file test-fault in
// each host's agent directory says, two at a time.
func selfUpdateBuilds(t *testing.T) map[string]*agentBuild {
	t.Helper()
	dir := t.TempDir()
	builds := map[string]*agentBuild{
		"1.0.0": {version: "1.0.0"},
		"2.0.0": {version: "2.0.0"},
		"2.0.1": {version: "2.0.1", fault: "from-file"},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	slots := make(chan struct{}, 2)
	for name, b := range builds {
		b.path = filepath.Join(dir, "drover-agent-"+name)
		ldflags := "-s -w -X main.version=" + b.version
		if b.fault != "" {
			ldflags += " -X github.com/drover-dev/drover/agent.buildFault=" + b.fault
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			out, err := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", b.path, "../cmd/drover-agent").CombinedOutput()
			if err == nil {
				b.bytes, err = os.ReadFile(b.path)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("go build %s: %v: %s", name, err, out))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	return builds
}

// publishAgent publishes drover-agent@VERSION with the build's binary at
// the payload's root and its signature (of sigOf's bytes) beside it.
func publishAgent(t *testing.T, c *testcluster.Cluster, keyPath string, b *agentBuild, sigOf []byte, probation artifacts.Probation) {
	t.Helper()
	key, err := artifacts.LoadSecretKey(keyPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if sigOf == nil {
		sigOf = b.bytes
	}
	sig := artifacts.Sign(key, sigOf, "drover-agent "+b.version)
	probation.Interval = artifacts.Duration(200 * time.Millisecond)
	c.PublishManifest(artifacts.Manifest{Name: "drover-agent", Version: b.version,
		Targets:      &artifacts.Targets{Architectures: []string{runtime.GOARCH}},
		HealthChecks: []artifacts.HealthCheck{{Name: "runs", Command: []string{"./drover-agent", "version"}}},
		Probation:    &probation},
		map[string]string{"drover-agent*": string(b.bytes), "drover-agent.minisig": string(sig)}, keyPath)
}

// supervised is an agent kept running by a supervisor that starts it
// again whenever it exits, like a service manager.
type supervised struct {
	name, dir, bin, log string
	mu                  sync.Mutex
	starts              int
	cmd                 *exec.Cmd
	stopped             bool
	done                chan struct{}
}

// superviseAgent copies the 1.0.0 build into the host's bin directory and
// runs it there; failpoint applies to the first start only. The host is
// labelled case=NAME; fault, when set, goes to the agent directory's
// test-fault file for the 2.0.1 build to read. prepare runs once the
// binary is in place, before the first start.
func superviseAgent(t *testing.T, c *testcluster.Cluster, v1 []byte, name, fault, failpoint string, extra []string, prepare func(binDir string)) *supervised {
	t.Helper()
	root := filepath.Join(c.Dir, "hosts", name)
	s := &supervised{name: name, dir: filepath.Join(root, "agent"), bin: filepath.Join(root, "bin", "drover-agent"),
		log: filepath.Join(root, "agent.log"), done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(s.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.bin, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(filepath.Dir(s.bin))
	}
	if fault != "" {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, "test-fault"), []byte(fault+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	token := c.Token(map[string]string{"case": name}, 1)
	args := append([]string{"run", "--dir", s.dir, "--name", name, "--poll-wait", "30s", "--facts-dir", filepath.Join(root, "facts.d"),
		"--server", "https://" + c.ServerAPI(0), "--token", token, "--watchdog-grace", "2s"}, extra...)
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		defer logf.Close()
		for {
			s.mu.Lock()
			if s.stopped || s.starts >= 30 {
				s.mu.Unlock()
				return
			}
			cmd := exec.Command(s.bin, args...)
			cmd.Stdout, cmd.Stderr = logf, logf
			cmd.Env = os.Environ()
			if s.starts == 0 && failpoint != "" {
				cmd.Env = append(cmd.Env, "DROVER_FAILPOINT="+failpoint)
			}
			err := cmd.Start()
			s.starts++
			s.cmd = cmd
			s.mu.Unlock()
			if err != nil {
				fmt.Fprintf(logf, "supervisor: cannot start %s: %v\n", s.bin, err)
				time.Sleep(100 * time.Millisecond) // as a service manager's restart delay would
				continue
			}
			err = cmd.Wait()
			fmt.Fprintf(logf, "supervisor: agent exited: %v\n", err)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *supervised) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	s.mu.Unlock()
	<-s.done
}

func (s *supervised) startCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// binaryVersion runs a binary's version command.
func binaryVersion(path string) string {
	out, err := exec.Command(path, "version").Output()
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "drover-agent ")
}

// agentVersion is the agent version a host's last inventory reported.
func agentVersion(c *testcluster.Cluster, host string) string {
	var hosts []*api.Host
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "GET", Path: api.PathHosts}, &hosts); err != nil {
		return ""
	}
	for _, h := range hosts {
		if h.ID == host && len(h.Inventory) > 0 {
			var sys inventory.System
			if json.Unmarshal(h.Inventory, &sys) == nil {
				return sys.AgentVersion
			}
		}
	}
	return ""
}

// readOnly makes dir unwritable for the agent: a read-only bind mount as
// root (whom permissions do not stop), else mode 0555.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return
	}
	for _, args := range [][]string{{"--bind", dir, dir}, {"-o", "remount,bind,ro", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

type selfUpdateCase struct {
	name, release, fault, failpoint string
	extra                           []string // more flags for drover-agent run
	prepare                         func(t *testing.T, binDir string)
	want                            deploy.HostState
	reason                          string // in the host's reason
	binary                          string // version of the binary in place afterwards
}

// TestAgentSelfUpdate rolls releases of drover-agent out to hosts, one
// host per case, all at once in one cluster.
func TestAgentSelfUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three agent binaries and runs sixteen agent processes")
	}
	began := time.Now()
	builds := selfUpdateBuilds(t)
	t.Logf("agent binaries built in %v", time.Since(began).Round(100*time.Millisecond))
	c := testcluster.Start(t, 3)
	key := c.SigningKey()
	good := artifacts.Probation{UnreachableAfter: artifacts.Duration(30 * time.Second), HealthyDeadline: artifacts.Duration(40 * time.Second)}
	// 2.0.1 must reach a server within 10s: long enough for a crash loop
	// to be caught by its boot counter first, short for the test.
	quick := artifacts.Probation{UnreachableAfter: artifacts.Duration(10 * time.Second), HealthyDeadline: artifacts.Duration(10 * time.Second)}
	publishAgent(t, c, key, builds["2.0.0"], nil, good)
	publishAgent(t, c, key, builds["2.0.1"], nil, quick)
	// 2.0.5 carries the good binary with a signature of other bytes; the
	// signature is checked before the binary ever runs (its version, which
	// the preflight would find wrong, does not matter).
	publishAgent(t, c, key, &agentBuild{version: "2.0.5", bytes: builds["2.0.0"].bytes}, builds["1.0.0"].bytes, good)

	t.Logf("cluster started and releases published %v after the start", time.Since(began).Round(100*time.Millisecond))

	cases := []selfUpdateCase{
		{name: "good", release: "2.0.0", want: deploy.Succeeded, binary: "2.0.0"},
		{name: "good-exit-mode", release: "2.0.0", extra: []string{"--restart", "exit"}, want: deploy.Succeeded, binary: "2.0.0"},
		{name: "fails-preflight", release: "2.0.1", fault: "selftest-fails", want: deploy.Failed, reason: "preflight of the new agent binary failed", binary: "1.0.0"},
		{name: "no-server", release: "2.0.1", fault: "no-server", want: deploy.Reverted, reason: "did not reach a server within 10s", binary: "1.0.0"},
		{name: "crashes-at-start", release: "2.0.1", fault: "crash-at-start", want: deploy.Reverted, reason: "crash loop", binary: "1.0.0"},
		{name: "hangs-at-start", release: "2.0.1", fault: "hang-at-start", want: deploy.Reverted, reason: "did not reach a server", binary: "1.0.0"},
		{name: "wrong-signature", release: "2.0.5", want: deploy.Failed, reason: "signature does not verify", binary: "1.0.0"},
		{name: "read-only-dir", release: "2.0.0", prepare: readOnly, want: deploy.Failed, reason: "is not writable", binary: "1.0.0"},
		// SIGKILL at each step of the swap, and of the restore.
		{name: "kill-preflighted", release: "2.0.0", failpoint: "self-preflighted", want: deploy.Succeeded, binary: "2.0.0"},
		{name: "kill-swapping", release: "2.0.0", failpoint: "self-swapping", want: deploy.Reverted, reason: "before the new binary was in place", binary: "1.0.0"},
		{name: "kill-new-written", release: "2.0.0", failpoint: "self-new-written", want: deploy.Reverted, reason: "before the new binary was in place", binary: "1.0.0"},
		{name: "kill-old-saved", release: "2.0.0", failpoint: "self-old-saved", want: deploy.Reverted, reason: "before the new binary was in place", binary: "1.0.0"},
		{name: "kill-renamed", release: "2.0.0", failpoint: "self-renamed", want: deploy.Succeeded, binary: "2.0.0"},
		{name: "kill-swapped", release: "2.0.0", failpoint: "self-swapped", want: deploy.Succeeded, binary: "2.0.0"},
		{name: "kill-booted", release: "2.0.0", failpoint: "self-booted", want: deploy.Succeeded, binary: "2.0.0"},
		{name: "kill-restoring", release: "2.0.1", fault: "no-server", failpoint: "self-restoring", want: deploy.Reverted, reason: "did not reach a server", binary: "1.0.0"},
	}
	if only := os.Getenv("DROVER_SELFUPDATE_CASES"); only != "" { // e.g. good,kill-renamed
		cases = slices.DeleteFunc(cases, func(tc selfUpdateCase) bool { return !slices.Contains(strings.Split(only, ","), tc.name) })
	}
	// Every case runs at once: all agents start, then all rollouts, then
	// each case waits for its host's outcome.
	start := time.Now()
	hosts := make([]*supervised, len(cases))
	for i, tc := range cases {
		var prepare func(string)
		if tc.prepare != nil {
			prepare = func(dir string) { tc.prepare(t, dir) }
		}
		hosts[i] = superviseAgent(t, c, builds["1.0.0"].bytes, tc.name, tc.fault, tc.failpoint, tc.extra, prepare)
	}
	for _, tc := range cases {
		waitHost(t, c, tc.name)
		if v := agentVersion(c, tc.name); v != "1.0.0" {
			t.Fatalf("%s: inventory says agent %q before the update; want 1.0.0", tc.name, v)
		}
	}
	t.Logf("%d hosts enrolled in %v", len(cases), time.Since(start).Round(100*time.Millisecond))
	rollouts := make([]string, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	waves, _ := deploy.ParseWaves("100%")
	for i, tc := range cases {
		wg.Go(func() {
			created, err := c.Admin.CreateRollout(context.Background(), api.RolloutRequest{Release: "drover-agent@" + tc.release,
				Selector: map[string]string{"case": tc.name}, Plan: deploy.Plan{Waves: waves}, Start: true})
			if err == nil {
				rollouts[i] = created.ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rollout of drover-agent@%s to %s: %v", cases[i].release, cases[i].name, err)
		}
	}
	t.Logf("%d rollouts started %v after the first agent", len(cases), time.Since(start).Round(100*time.Millisecond))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkSelfUpdateCase(t, c, hosts[i], rollouts[i], tc) })
	}
	t.Logf("%d hosts updated or not as they should, %v after the first agent started", len(cases), time.Since(start).Round(time.Second))
}

// checkSelfUpdateCase waits for a host's outcome and checks what the
// control plane was told, which binary is in place and which one runs.
func checkSelfUpdateCase(t *testing.T, c *testcluster.Cluster, s *supervised, id string, tc selfUpdateCase) {
	defer func() {
		if t.Failed() || os.Getenv("DROVER_DEBUG_LOG") != "" {
			b, _ := os.ReadFile(s.log)
			t.Logf("agent log:\n%s", b)
		}
	}()
	testcluster.WaitFor(t, 150*time.Second, "the host's outcome", func() bool {
		d := deployment(c, id, tc.name)
		return d != nil && d.State.Final()
	})
	d := deployment(c, id, tc.name)
	wantCurrent := ""
	if tc.want == deploy.Succeeded {
		wantCurrent = tc.release
	}
	if d.State != tc.want || !strings.Contains(d.Reason, tc.reason) || d.Current != wantCurrent {
		t.Errorf("host %s on %q: %q; want %s on %q with a reason containing %q", d.State, d.Current, d.Reason, tc.want, wantCurrent, tc.reason)
	}
	if v := binaryVersion(s.bin); v != tc.binary {
		t.Errorf("the binary in place is %s; want %s", v, tc.binary)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.bin), ".drover-agent.new")); err == nil {
		t.Error(".drover-agent.new left behind")
	}
	// The agent runs and says which version it is.
	testcluster.WaitFor(t, 30*time.Second, "the inventory to report agent "+tc.binary, func() bool {
		return agentVersion(c, tc.name) == tc.binary
	})
	switch tc.name {
	case "good":
		if n := s.startCount(); n != 1 {
			t.Errorf("the supervisor started the agent %d times; want 1 (the update re-executes in place)", n)
		}
		if v := binaryVersion(filepath.Join(filepath.Dir(s.bin), ".drover-agent.old")); v != "1.0.0" {
			t.Errorf("the previous binary kept is %s; want 1.0.0", v)
		}
	case "good-exit-mode":
		if n := s.startCount(); n != 2 {
			t.Errorf("the supervisor started the agent %d times; want 2 (it exits for the supervisor)", n)
		}
	case "crashes-at-start":
		if n := s.startCount(); n < 3 {
			t.Errorf("the supervisor started the agent %d times; want at least 3 (a crash loop, then the old binary)", n)
		}
	case "fails-preflight", "wrong-signature", "read-only-dir":
		if n := s.startCount(); n != 1 {
			t.Errorf("the supervisor started the agent %d times; want 1 (nothing replaced)", n)
		}
	}
}
