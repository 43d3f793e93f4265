// Package testcluster starts a real drover cluster inside one test
// process: servers with Raft logs on disk and mutual TLS on loopback, an
// admin client, and agents each in a directory of their own. Nothing is
// mocked; tests get the same components a deployment runs.
package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/agent"
	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/bootstrap"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/webhook"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
)

// Cluster is a running test cluster.
type Cluster struct {
	t       testing.TB
	Dir     string
	Log     *slog.Logger
	Boot    *bootstrap.Cluster
	IDs     []string
	Servers []*controlplane.Server // nil while stopped
	Admin   *client.Client
	Net     *Net
	// Tune, when set, adjusts each server's configuration before it starts.
	Tune func(*controlplane.Config)
	// AgentPollWait is the long-poll wait of agents started from now on
	// (default 5s).
	AgentPollWait time.Duration
	// AgentClock is the clock of agents started from now on (default the
	// system clock); the servers always use the system clock.
	AgentClock deploy.Clock
	// AgentConfig, when set, adjusts the configuration of agents started
	// from now on.
	AgentConfig func(*agent.Config)

	clock  deploy.Clock
	mu     sync.Mutex
	agents []*Agent
}

// T is the test the cluster runs in.
func (c *Cluster) T() testing.TB { return c.t }

// Start creates and starts n servers and waits for a leader.
func Start(t testing.TB, n int) *Cluster {
	return StartWith(t, Options{Servers: n})
}

// Options shape a test cluster.
type Options struct {
	Servers int // started at once; they bootstrap the cluster together
	Spare   int // configured but not started: StartServer adds them later
	// Tune adjusts every server's configuration before it starts (Raft
	// snapshot thresholds, cleanup delays).
	Tune func(*controlplane.Config)
	// Clock is the servers' clock (default the system clock). TLS still
	// checks certificates against the real time.
	Clock deploy.Clock
}

// StartWith creates a cluster as the options say and waits for a leader.
func StartWith(t testing.TB, o Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Dir: t.TempDir(), Log: Logger(t), Net: NewNet(), Tune: o.Tune, clock: o.Clock}
	n := o.Servers + o.Spare
	var specs []bootstrap.Server
	for i := range n {
		id := fmt.Sprintf("s%d", i+1)
		c.IDs = append(c.IDs, id)
		spec := bootstrap.Server{ID: id, APIAddr: freeAddr(t), RaftAddr: freeAddr(t), GossipAddr: freeAddr(t)}
		c.Net.Own(id, spec.APIAddr, spec.RaftAddr, spec.GossipAddr)
		specs = append(specs, spec)
	}
	boot, err := bootstrap.Write(bootstrap.Plan{Dir: c.Dir, Servers: specs, Expect: o.Servers, Now: time.Now()})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	c.Boot = boot
	c.Servers = make([]*controlplane.Server, n)
	for i := range o.Servers {
		c.StartServer(i)
	}
	cfg, err := client.LoadConfig(boot.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin, err = cfg.Client(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	c.Leader()
	return c
}

// StartServer starts (or restarts, with its data) server i.
func (c *Cluster) StartServer(i int) *controlplane.Server {
	c.t.Helper()
	cfg, err := controlplane.LoadConfig(c.Boot.ServerConfigs[c.IDs[i]])
	if err != nil {
		c.t.Fatal(err)
	}
	if c.Tune != nil {
		c.Tune(cfg)
	}
	var s *controlplane.Server
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err = controlplane.New(cfg, c.serverOptions(cfg.ID))
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // the ports of a stopped server may take a moment to free
			c.t.Fatalf("server %s did not start: %v", cfg.ID, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Servers[i] = s
	return s
}

// serverOptions are what the cluster injects into server id; webhooks are
// retried quickly, so that tests of retries do not wait.
func (c *Cluster) serverOptions(id string) controlplane.Options {
	return controlplane.Options{Logger: c.Log, Network: c.Net.For(id), Clock: c.clock,
		WebhookBackoff: &webhook.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Attempts: 5}}
}

// TryStartServer starts server i once and returns the error, if any.
func (c *Cluster) TryStartServer(i int) error {
	cfg, err := controlplane.LoadConfig(c.Boot.ServerConfigs[c.IDs[i]])
	if err != nil {
		return err
	}
	if c.Tune != nil {
		c.Tune(cfg)
	}
	s, err := controlplane.New(cfg, c.serverOptions(cfg.ID))
	if err == nil {
		c.Servers[i] = s
	}
	return err
}

// StopServer stops server i, keeping its data.
func (c *Cluster) StopServer(i int) {
	if s := c.Servers[i]; s != nil {
		_ = s.Close()
		c.Servers[i] = nil
	}
}

// Leader waits for a leader among the running servers and returns its index.
func (c *Cluster) Leader() int {
	c.t.Helper()
	leader := -1
	WaitFor(c.t, 20*time.Second, "a leader", func() bool {
		for i, s := range c.Servers {
			if s != nil && s.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// Token creates a join token for agents with labels.
func (c *Cluster) Token(labels map[string]string, uses int) string {
	c.t.Helper()
	var tok api.TokenResponse
	_, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathTokens,
		JSON: api.TokenRequest{Labels: labels, TTL: "1h", Uses: uses}}, &tok)
	if err != nil {
		c.t.Fatalf("create token: %v", err)
	}
	return tok.Token
}

// Agent is an agent running in the test process.
type Agent struct {
	Name   string
	Dir    string
	Agent  *agent.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

// StartAgent enrolls an agent (first time only) and runs it until Stop or
// the end of the test.
func (c *Cluster) StartAgent(name, dir, token string) *Agent {
	c.t.Helper()
	if dir == "" {
		dir = filepath.Join(c.Dir, "hosts", name)
	}
	ctx := context.Background()
	if token != "" {
		server := "https://" + c.liveServerAddr()
		if err := agent.Enroll(ctx, agent.EnrollOptions{Dir: dir, Server: server, Token: token, Name: name}); err != nil {
			c.t.Fatalf("enroll %s: %v", name, err)
		}
	}
	wait := c.AgentPollWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	cfg := agent.Config{Dir: dir, Version: "test", PollWait: wait, Logger: c.Log, Clock: c.AgentClock}
	if c.AgentConfig != nil {
		c.AgentConfig(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		c.t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &Agent{Name: name, Dir: dir, Agent: a, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer a.Close()
		_ = a.Run(ctx)
	}()
	c.mu.Lock()
	c.agents = append(c.agents, h)
	c.mu.Unlock()
	return h
}

// Stop stops the agent and waits for it.
func (a *Agent) Stop() {
	a.cancel()
	<-a.done
}

func (c *Cluster) liveServerAddr() string {
	for _, s := range c.Servers {
		if s != nil {
			return s.APIAddr()
		}
	}
	c.t.Fatal("no server running")
	return ""
}

func (c *Cluster) stop() {
	c.mu.Lock()
	agents := c.agents
	c.mu.Unlock()
	for _, a := range agents {
		a.Stop()
	}
	if c.Admin != nil {
		c.Admin.Close()
	}
	for i := range c.Servers {
		c.StopServer(i)
	}
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logger sends slog output to the test log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func freeAddr(t testing.TB) string {
	addr, err := bootstrap.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Publish packs files (path -> content; a path ending in "*" is made
// executable, without the star) as name@version with the health checks,
// signs it with the secret key file, uploads it and records the release.
func (c *Cluster) Publish(name, version string, files map[string]string, checks []artifacts.HealthCheck, keyPath string) *artifacts.Manifest {
	return c.PublishManifest(artifacts.Manifest{Name: name, Version: version, HealthChecks: checks}, files, keyPath)
}

// PublishManifest is Publish with a whole manifest (hooks, probation,
// targets): its name, version and health checks are used as they are, its
// payload is made from files. Without probation settings, the tests'
// defaults apply (a failing check fails after 3 s).
func (c *Cluster) PublishManifest(tmpl artifacts.Manifest, files map[string]string, keyPath string) *artifacts.Manifest {
	c.t.Helper()
	return c.PublishPayload(tmpl, c.Pack(tmpl.Name+"-"+tmpl.Version, files), keyPath)
}

// Pack writes files (a name ending in * is executable) as a tar payload
// and returns its path.
func (c *Cluster) Pack(name string, files map[string]string) string {
	c.t.Helper()
	src := c.t.TempDir()
	for p, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			c.t.Fatal(err)
		}
	}
	payload := filepath.Join(c.t.TempDir(), name+".tar")
	f, err := os.Create(payload)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := artifacts.PackTar(src, f); err != nil {
		c.t.Fatal(err)
	}
	f.Close()
	return payload
}

// PublishPayload signs tmpl for the payload file and records the release.
func (c *Cluster) PublishPayload(tmpl artifacts.Manifest, payload, keyPath string) *artifacts.Manifest {
	c.t.Helper()
	name, version := tmpl.Name, tmpl.Version
	key, err := artifacts.LoadSecretKey(keyPath, "")
	if err != nil {
		c.t.Fatal(err)
	}
	tmpl.Schema = 1
	if tmpl.Probation == nil { // tests want failing checks to fail fast
		tmpl.Probation = &artifacts.Probation{HealthyDeadline: artifacts.Duration(3 * time.Second), Interval: artifacts.Duration(100 * time.Millisecond)}
	}
	m, err := c.Admin.Release(context.Background(), tmpl, payload, key)
	if err != nil {
		c.t.Fatalf("publish %s@%s: %v", name, version, err)
	}
	return m
}

// SigningKey makes a minisign key pair in a temporary directory (DIR/release.key
// and DIR/release.pub), sets it as the trust policy of every application,
// and returns the secret key's path.
func (c *Cluster) SigningKey() string {
	c.t.Helper()
	pub, sec, err := artifacts.GenerateKey("")
	if err != nil {
		c.t.Fatal(err)
	}
	dir := c.t.TempDir()
	keyPath := filepath.Join(dir, "release.key")
	if err := os.WriteFile(keyPath, sec, 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644); err != nil {
		c.t.Fatal(err)
	}
	pk, err := artifacts.ParsePublicKey(pub)
	if err != nil {
		c.t.Fatal(err)
	}
	policy := artifacts.SignedPolicy{Serial: 1, Policy: artifacts.Policy{App: artifacts.AnyApp, Keys: []string{pk.String()}, Threshold: 1}}
	if err := c.Admin.SetTrust(context.Background(), policy); err != nil {
		c.t.Fatalf("set trust: %v", err)
	}
	return keyPath
}

// RolloutWith starts a rollout of release over the hosts matching
// selector, in one wave, and returns its ID.
func (c *Cluster) RolloutWith(release string, selector map[string]string) string {
	c.t.Helper()
	w, _ := deploy.ParseWaves("100%")
	created, err := c.Admin.CreateRollout(context.Background(), api.RolloutRequest{Release: release, Selector: selector, Plan: deploy.Plan{Waves: w}, Start: true})
	if err != nil {
		c.t.Fatalf("create rollout of %s: %v", release, err)
	}
	return created.ID
}

// SetWindow creates or replaces a maintenance window.
func (c *Cluster) SetWindow(w deploy.Window) {
	c.t.Helper()
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "PUT", Path: "/v1/windows/" + w.Name, JSON: w}, nil); err != nil {
		c.t.Fatalf("set window %s: %v", w.Name, err)
	}
}

// WaitRollout waits until the rollout's state is one of states and
// returns its last status.
func (c *Cluster) WaitRollout(id string, timeout time.Duration, states ...string) *api.RolloutStatus {
	c.t.Helper()
	var st *api.RolloutStatus
	WaitFor(c.t, timeout, "rollout "+id+" to reach "+strings.Join(states, "|"), func() bool {
		var err error
		st, _, err = c.Admin.Rollout(context.Background(), id, 0, "")
		if err != nil {
			return false
		}
		for _, s := range states {
			if st.Rollout.State == s {
				return true
			}
		}
		return false
	})
	return st
}

// ClientFor returns an admin client that talks to server i only.
func (c *Cluster) ClientFor(i int) *client.Client {
	c.t.Helper()
	cfg, err := client.LoadConfig(c.Boot.AdminConfig)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.Servers = []string{"https://" + c.ServerAPI(i)}
	cl, err := cfg.Client()
	if err != nil {
		c.t.Fatal(err)
	}
	cl.ReadFromLeader = false // reads are answered by server i itself
	c.t.Cleanup(cl.Close)
	return cl
}

// ServerAPI returns server i's API address (whether or not it runs).
func (c *Cluster) ServerAPI(i int) string {
	cfg, err := controlplane.LoadConfig(c.Boot.ServerConfigs[c.IDs[i]])
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg.APIAddr
}

// WaitConverged waits until every running server has applied the same
// entries and holds byte-for-byte the same state, and fails the test with
// the first difference if that does not happen in time.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	var diff string
	deadline := time.Now().Add(timeout)
	for {
		if diff = c.stateDiff(); diff == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("servers did not converge in %v: %s", timeout, diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stateDiff compares the running servers' states and describes the first
// difference, or returns "".
func (c *Cluster) stateDiff() string {
	var first []string
	var firstID string
	for _, s := range c.Servers {
		if s == nil {
			continue
		}
		// Raft's applied index runs ahead of the state machine's while
		// entries wait in its queue: wait for both.
		if s.AppliedIndex() != s.Raft().CommitIndex() {
			return s.ID() + " has not applied every committed entry"
		}
		var buf bytes.Buffer
		if err := s.Store().Snapshot().Persist(&buf); err != nil {
			c.t.Fatal(err)
		}
		lines := strings.Split(buf.String(), "\n")
		if first == nil {
			first, firstID = lines, s.ID()
			continue
		}
		for i := 0; i < len(first) || i < len(lines); i++ {
			a, b := "", ""
			if i < len(first) {
				a = first[i]
			}
			if i < len(lines) {
				b = lines[i]
			}
			if a != b {
				return fmt.Sprintf("line %d differs:\n%s: %s\n%s: %s", i+1, firstID, a, s.ID(), b)
			}
		}
	}
	if first == nil {
		return "no server running"
	}
	return ""
}

// ClientWith returns a client that presents the given certificate (nil
// for none), trusts the cluster CA, and talks to the listed servers (by
// index; default all of them).
func (c *Cluster) ClientWith(certPEM, keyPEM []byte, servers ...int) *client.Client {
	c.t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(c.Boot.CADir, "ca.crt"))
	if err != nil {
		c.t.Fatal(err)
	}
	tlsCfg, err := pki.ClientTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(servers) == 0 {
		for i := range c.IDs {
			servers = append(servers, i)
		}
	}
	var urls []string
	for _, i := range servers {
		urls = append(urls, "https://"+c.ServerAPI(i))
	}
	cl := client.New(urls, tlsCfg)
	c.t.Cleanup(cl.Close)
	return cl
}

// Operator has the cluster issue an operator certificate with a role and
// returns a client that presents it.
func (c *Cluster) Operator(name string, role pki.Role) *client.Client {
	c.t.Helper()
	certPEM, keyPEM := c.OperatorCert(name, role)
	return c.ClientWith(certPEM, keyPEM)
}

// OperatorCert has the cluster issue an operator certificate with a role.
func (c *Cluster) OperatorCert(name string, role pki.Role) (certPEM, keyPEM []byte) {
	c.t.Helper()
	keyPEM, csr, err := pki.NewKeyAndCSR(name)
	if err != nil {
		c.t.Fatal(err)
	}
	var resp api.EnrollResponse
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "POST", Path: api.PathOperators,
		JSON: api.OperatorRequest{Name: name, Role: string(role), CSR: csr}}, &resp); err != nil {
		c.t.Fatalf("issue operator %s: %v", name, err)
	}
	return resp.Certificate, keyPEM
}

// CA loads the cluster CA (tests issue odd certificates with it).
func (c *Cluster) CA() *pki.CA {
	c.t.Helper()
	ca, err := pki.LoadCA(c.Boot.CADir)
	if err != nil {
		c.t.Fatal(err)
	}
	return ca
}
