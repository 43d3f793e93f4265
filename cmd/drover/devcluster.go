package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/bootstrap"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

// devCluster is a local cluster of real processes: three `drover server`
// and N `drover-agent`, each agent with a directory standing for its host,
// all state under one directory.
type devCluster struct {
	dir       string
	boot      *bootstrap.Cluster
	admin     *client.Client
	key       string  // secret key trusted for every application
	procs     []*proc // servers first, then agents
	serverIDs []string
	spawnArgs [][]string // how each process was started, to restart it
	agentDir  []string
	specs     []bootstrap.Server
	adminTLS  *tls.Config
	logf      func(format string, args ...any)
}

// startDevCluster starts the servers, trusts a fresh signing key, and
// starts the agents with a join token.
func startDevCluster(ctx context.Context, dir string, agents int, logf func(string, ...any)) (*devCluster, error) {
	return startDevClusterWith(ctx, dir, agents, "", logf)
}

// startDevClusterWith is startDevCluster with a given agent binary ("":
// the one next to this binary, else on PATH).
func startDevClusterWith(ctx context.Context, dir string, agents int, agentBin string, logf func(string, ...any)) (_ *devCluster, err error) {
	d := &devCluster{dir: dir, logf: logf}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	if agentBin == "" {
		if agentBin, err = siblingBinary("drover-agent"); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var specs []bootstrap.Server
	for i := 1; i <= 3; i++ {
		var addrs [3]string
		for j := range addrs {
			if addrs[j], err = bootstrap.FreeLoopbackAddr(); err != nil {
				return nil, err
			}
		}
		apiAddr, raftAddr, gossipAddr := addrs[0], addrs[1], addrs[2]
		specs = append(specs, bootstrap.Server{ID: "s" + strconv.Itoa(i), APIAddr: apiAddr, RaftAddr: raftAddr, GossipAddr: gossipAddr})
	}
	d.specs = specs
	if d.boot, err = bootstrap.Write(bootstrap.Plan{Dir: dir, Name: "dev", Servers: specs, Now: time.Now()}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	for _, s := range specs {
		d.serverIDs = append(d.serverIDs, s.ID)
		if err := d.spawn(s.ID, self, "server", "--config", d.boot.ServerConfigs[s.ID]); err != nil {
			return nil, err
		}
	}
	logf("started 3 servers: %s, %s, %s", specs[0].APIAddr, specs[1].APIAddr, specs[2].APIAddr)
	cfg, err := client.LoadConfig(d.boot.AdminConfig)
	if err != nil {
		return nil, err
	}
	if d.admin, err = cfg.Client(); err != nil {
		return nil, err
	}
	certPEM, keyPEM, caPEM, err := pki.LoadKeyPair(cfg.Cert, cfg.Key, cfg.CA)
	if err != nil {
		return nil, err
	}
	if d.adminTLS, err = pki.ClientTLS(certPEM, keyPEM, caPEM); err != nil {
		return nil, err
	}
	if err := d.waitLeader(ctx); err != nil {
		return nil, err
	}
	if err := d.trustNewKey(ctx); err != nil {
		return nil, err
	}
	var tok api.TokenResponse
	if _, err := d.admin.Do(ctx, client.Request{Method: "POST", Path: api.PathTokens,
		JSON: api.TokenRequest{Labels: map[string]string{"env": "dev"}, TTL: "1h", Uses: max(agents, 1)}}, &tok); err != nil {
		return nil, fmt.Errorf("cannot create a join token: %w", err)
	}
	server := "https://" + specs[0].APIAddr
	for i := 1; i <= agents; i++ {
		name := fmt.Sprintf("host-%d", i)
		hostDir := filepath.Join(dir, "hosts", name)
		d.agentDir = append(d.agentDir, hostDir)
		if err := d.spawn(name, agentBin, "run", "--dir", hostDir, "--name", name, "--server", server, "--token", tok.Token, "--poll-wait", "20s"); err != nil {
			return nil, err
		}
	}
	if err := d.waitHosts(ctx, agents); err != nil {
		return nil, err
	}
	logf("started %d agents; each has a directory under %s", agents, filepath.Join(dir, "hosts"))
	return d, nil
}

// spawn starts a process with its output appended to logs/NAME.log.
func (d *devCluster) spawn(name, bin string, args ...string) error {
	p, err := d.start(name, bin, args)
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.spawnArgs = append(d.spawnArgs, append([]string{name, bin}, args...))
	return nil
}

// proc is a process of the cluster; exited is closed when it ends.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // set before exited is closed
}

func (d *devCluster) start(name, bin string, args []string) (*proc, error) {
	logFile, err := os.OpenFile(filepath.Join(d.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us, and we stop them in order
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// died returns an error naming a server that exited, with the end of its
// log, or nil while they all run.
func (d *devCluster) died() error {
	for _, p := range d.procs[:min(len(d.procs), len(d.serverIDs))] {
		select {
		case <-p.exited:
			log, _ := os.ReadFile(filepath.Join(d.dir, "logs", p.name+".log"))
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			return fmt.Errorf("server %s exited (%v); the end of its log:\n%s", p.name, p.err, strings.Join(lines[max(0, len(lines)-5):], "\n"))
		default:
		}
	}
	return nil
}

// restartServer starts server i again (after it died or was killed) and
// waits until it has caught up with the leader.
func (d *devCluster) restartServer(ctx context.Context, i int) error {
	a := d.spawnArgs[i]
	p, err := d.start(a[0], a[1], a[2:])
	if err != nil {
		return err
	}
	d.procs[i] = p
	return poll(ctx, 60*time.Second, "server "+d.serverIDs[i]+" to catch up", func() bool {
		var st api.ClusterStatus
		if _, err := d.admin.Do(ctx, client.Request{Method: "GET", Path: api.PathClusterStatus}, &st); err != nil || st.Leader == "" {
			return false
		}
		for _, s := range st.Servers {
			if s.ID == d.serverIDs[i] {
				return s.Health != nil && s.Lag < 10
			}
		}
		return false
	})
}

// leaderIndex returns the index in procs of the current leader.
func (d *devCluster) leaderIndex(ctx context.Context) (int, error) {
	var leader string
	err := poll(ctx, 30*time.Second, "a leader", func() bool {
		var st api.ClusterStatus
		_, err := d.admin.Do(ctx, client.Request{Method: "GET", Path: api.PathClusterStatus}, &st)
		leader = st.Leader
		return err == nil && leader != ""
	})
	if err != nil {
		return 0, err
	}
	for i, id := range d.serverIDs {
		if id == leader {
			return i, nil
		}
	}
	return 0, fmt.Errorf("leader %s is not one of this cluster's servers", leader)
}

func (d *devCluster) waitLeader(ctx context.Context) error {
	var dead error
	err := poll(ctx, 30*time.Second, "a leader", func() bool {
		if dead = d.died(); dead != nil {
			return true
		}
		var st api.ClusterStatus
		_, err := d.admin.Do(ctx, client.Request{Method: "GET", Path: api.PathClusterStatus}, &st)
		return err == nil && st.Leader != ""
	})
	if dead != nil {
		return dead
	}
	return err
}

func (d *devCluster) waitHosts(ctx context.Context, n int) error {
	return poll(ctx, 60*time.Second, fmt.Sprintf("%d agents to enroll and report", n), func() bool {
		hosts, err := d.admin.Hosts(ctx, client.HostQuery{})
		if err != nil || len(hosts) < n {
			return false
		}
		for _, h := range hosts {
			if len(h.Inventory) == 0 {
				return false
			}
		}
		return true
	})
}

// trustNewKey makes a signing key in keys/ and trusts it for every application.
func (d *devCluster) trustNewKey(ctx context.Context) error {
	pub, sec, err := artifacts.GenerateKey("")
	if err != nil {
		return err
	}
	d.key = filepath.Join(d.dir, "keys", "release.key")
	if err := os.MkdirAll(filepath.Dir(d.key), 0o700); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(d.key, sec, 0o600); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(d.dir, "keys", "release.pub"), pub, 0o644); err != nil {
		return err
	}
	pk, err := artifacts.ParsePublicKey(pub)
	if err != nil {
		return err
	}
	return d.admin.SetTrust(ctx, artifacts.SignedPolicy{Serial: 1,
		Policy: artifacts.Policy{App: artifacts.AnyApp, Keys: []string{pk.String()}, Threshold: 1}})
}

// stop ends every process: agents first, then servers, each with SIGTERM
// and, after a grace period, SIGKILL.
func (d *devCluster) stop() {
	if d.admin != nil {
		d.admin.Close()
	}
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	d.procs = nil
}

// siblingBinary finds another drover binary next to this one, else on PATH.
func siblingBinary(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("cannot find %s next to drover or on PATH; build it with: make build", name)
	}
	return p, nil
}

// poll checks cond until it holds, the timeout passes or ctx ends.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
