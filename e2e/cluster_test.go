package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
)

// Sizes and names of the cluster.
const (
	numServers = 3
	numAgents  = 12
	app        = "e2eapp"
	agentDir   = "/var/lib/drover"
	fleetLabel = "e2e=fleet"
	// cliTimeout bounds one CLI command: a command stuck on a paused or
	// partitioned server is killed and, where it is a read, tried again.
	cliTimeout = 30 * time.Second
	// statusTimeout bounds one `drover cluster status` while waiting for
	// a leader: long enough for the CLI to give up on a frozen server
	// (its TLS handshake times out after 10s) and ask the next one.
	statusTimeout = 25 * time.Second
)

// node is one container: a server or an agent's host.
type node struct {
	Name      string // s1..s3, host-01..host-12
	IP        string
	Container string
}

// cluster is a control plane of three server containers and a fleet of
// agent containers on one private Docker network, with the CLI
// configurations of three operators (admin, deployer, viewer) on this host.
type cluster struct {
	run      string
	dir      string
	drover   string // the CLI, the same static binary the servers run
	image    string
	network  string
	servers  []*node
	agents   []*node
	admin    string // CLI configuration files
	deployer string
	viewer   string
	key      string // the release signing key
	logf     func(format string, args ...any)
}

// startCluster builds everything and starts the cluster as an operator
// would: cluster init, servers, a trusted signing key, operators, one join
// token per host, agents. Everything it creates carries the run's label;
// the caller sweeps it even when this fails. It returns what it started
// even with an error, for the logs.
func startCluster(ctx context.Context, dir, run string, logf func(string, ...any)) (*cluster, error) {
	c := &cluster{run: run, dir: dir, logf: logf}
	root, err := moduleRoot()
	if err != nil {
		return c, err
	}
	binDir := filepath.Join(dir, "bin")
	start := time.Now()
	if prebuilt := os.Getenv("DROVER_E2E_BIN"); prebuilt != "" {
		binDir = prebuilt // binaries built elsewhere; they must be static too
		for _, b := range []string{"drover", "drover-agent"} {
			if err := requireStatic(filepath.Join(binDir, b)); err != nil {
				return c, err
			}
		}
	} else if err := buildBinaries(ctx, root, binDir); err != nil {
		return c, err
	}
	c.drover = filepath.Join(binDir, "drover")
	busybox, err := findBusybox(ctx, logf)
	if err != nil {
		return c, err
	}
	if c.image, err = buildImage(ctx, filepath.Join(dir, "image"), binDir, busybox, run); err != nil {
		return c, err
	}
	logf("built static binaries and image %s in %v", c.image, time.Since(start).Round(time.Second))
	prefix, err := c.createNetwork(ctx)
	if err != nil {
		return c, err
	}
	for i := 1; i <= numServers; i++ {
		c.servers = append(c.servers, &node{Name: fmt.Sprintf("s%d", i), IP: fmt.Sprintf("%s%d", prefix, 10+i)})
	}
	for i := 1; i <= numAgents; i++ {
		c.agents = append(c.agents, &node{Name: fmt.Sprintf("host-%02d", i), IP: fmt.Sprintf("%s%d", prefix, 100+i)})
	}
	for _, n := range append(append([]*node{}, c.servers...), c.agents...) {
		n.Container = fmt.Sprintf("drover-e2e-%s-%s", run, n.Name)
	}
	if err := c.startServers(ctx); err != nil {
		return c, err
	}
	if err := c.setUpOperators(ctx); err != nil {
		return c, err
	}
	if err := c.startAgents(ctx); err != nil {
		return c, err
	}
	logf("cluster up in %v: %d servers, %d agents on %s (%s0/24)", time.Since(start).Round(time.Second), numServers, numAgents, c.network, prefix)
	return c, nil
}

// createNetwork creates the run's private network: internal (no route
// out), with a subnet of its own so that every container has a fixed
// address, which the certificates name. It returns the subnet's prefix,
// such as "10.213.7.".
func (c *cluster) createNetwork(ctx context.Context) (string, error) {
	c.network = "drover-e2e-" + c.run
	var lastErr error
	for range 20 {
		prefix := fmt.Sprintf("10.%d.%d.", 200+rand.IntN(50), rand.IntN(256))
		_, err := docker(ctx, "network", "create", "--internal", "--subnet", prefix+"0/24",
			"--label", labelKey+"="+c.run, c.network)
		if err == nil {
			return prefix, nil
		}
		lastErr = err // most likely the subnet overlaps another network's
	}
	return "", fmt.Errorf("cannot create the test network: %w", lastErr)
}

// create makes a container for n on the network at its address, with the
// run's label; it does not start it.
func (c *cluster) create(ctx context.Context, n *node, role string, cmd ...string) error {
	args := []string{"create", "--name", n.Container, "--hostname", n.Name,
		"--network", c.network, "--ip", n.IP,
		"--label", labelKey + "=" + c.run, "--label", labelKey + ".role=" + role,
		"--stop-timeout", "10", c.image}
	_, err := docker(ctx, append(args, cmd...)...)
	return err
}

// startServers writes the cluster's files with `drover cluster init`,
// copies each server's directory into its container and starts the three.
func (c *cluster) startServers(ctx context.Context) error {
	clusterDir := filepath.Join(c.dir, "cluster")
	args := []string{"cluster", "init", "--dir", clusterDir}
	for _, s := range c.servers {
		args = append(args, "--server", s.Name+"="+s.IP)
	}
	if _, err := c.cli(ctx, "", args...); err != nil {
		return err
	}
	c.admin = filepath.Join(clusterDir, "admin.yaml")
	for _, s := range c.servers {
		if err := c.create(ctx, s, "server", "/bin/drover", "server", "--config", "/srv/drover/server.yaml"); err != nil {
			return err
		}
		if _, err := docker(ctx, "cp", filepath.Join(clusterDir, "servers", s.Name)+"/.", s.Container+":/srv/drover"); err != nil {
			return err
		}
		// An admin bundle that talks to this server only, for commands run
		// inside the container (when it is cut off from the others).
		op, err := c.localOperator(clusterDir, s)
		if err != nil {
			return err
		}
		if _, err := docker(ctx, "cp", op+"/.", s.Container+":/srv/op"); err != nil {
			return err
		}
	}
	for _, s := range c.servers {
		if _, err := docker(ctx, "start", s.Container); err != nil {
			return err
		}
	}
	if _, err := c.waitLeader(ctx, 90*time.Second, ""); err != nil {
		return err
	}
	return c.waitHealthy(ctx, 90*time.Second)
}

// localOperator writes, for server s, a copy of the admin's bundle whose
// configuration names s alone.
func (c *cluster) localOperator(clusterDir string, s *node) (string, error) {
	src := filepath.Join(clusterDir, "operators", "admin")
	dst := filepath.Join(c.dir, "local-op", s.Name)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", err
	}
	for _, f := range []string{"admin.crt", "admin.key", "ca.crt"} {
		if err := copyFile(filepath.Join(src, f), filepath.Join(dst, f), 0o600); err != nil {
			return "", err
		}
	}
	cfg := fmt.Sprintf("servers: [\"https://%s:7400\"]\nca: ca.crt\ncert: admin.crt\nkey: admin.key\n", s.IP)
	return dst, os.WriteFile(filepath.Join(dst, "config.yaml"), []byte(cfg), 0o600)
}

// setUpOperators makes and trusts a signing key, and issues a deployer
// (releases and rollouts) and a viewer (the history recorder).
func (c *cluster) setUpOperators(ctx context.Context) error {
	keys := filepath.Join(c.dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	c.key = filepath.Join(keys, "release.key")
	if _, err := c.cli(ctx, "", "keygen", "--no-password", "--out", filepath.Join(keys, "release")); err != nil {
		return err
	}
	if _, err := c.cli(ctx, c.admin, "trust", "set", "--app", "*", "--pubkey", filepath.Join(keys, "release.pub")); err != nil {
		return err
	}
	for _, op := range []struct {
		name, role string
		cfg        *string
	}{{"deployer", "deployer", &c.deployer}, {"viewer", "viewer", &c.viewer}} {
		out, err := c.cli(ctx, c.admin, "operator", "issue", "e2e-"+op.name, "--role", op.role,
			"--out", filepath.Join(c.dir, "operators", op.name))
		if err != nil {
			return err
		}
		*op.cfg = strings.TrimSpace(out)
	}
	return nil
}

// startAgents gives every host a join token of its own (its labels: the
// fleet, and its index for rollouts that target a few hosts), and starts
// its agent pointed at one of the servers in turn.
func (c *cluster) startAgents(ctx context.Context) error {
	tokens := make([]string, len(c.agents))
	for i, a := range c.agents {
		tok, err := c.cli(ctx, c.admin, "token", "create", "--labels", fmt.Sprintf("%s,idx=%d", fleetLabel, i+1),
			"--host", a.Name, "--uses", "1", "--ttl", "2h")
		if err != nil {
			return err
		}
		tokens[i] = strings.TrimSpace(tok)
	}
	if err := c.eachAgent(func(a *node) error {
		i := slices.Index(c.agents, a)
		server := c.servers[i%numServers]
		if err := c.create(ctx, a, "agent", "/bin/drover-agent", "run", "--dir", agentDir, "--name", a.Name,
			"--server", "https://"+server.IP+":7400", "--token", tokens[i], "--poll-wait", "20s"); err != nil {
			return err
		}
		_, err := docker(ctx, "start", a.Container)
		return err
	}); err != nil {
		return err
	}
	return c.waitHosts(ctx, 3*time.Minute)
}

// cli runs the drover CLI with an operator configuration ("" for none)
// and returns its standard output. An error carries the exit code and
// standard error.
func (c *cluster) cli(ctx context.Context, config string, args ...string) (string, error) {
	return c.cliWithin(ctx, cliTimeout, config, args...)
}

// cliWithin is cli with a timeout of its own.
func (c *cluster) cliWithin(ctx context.Context, timeout time.Duration, config string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if config != "" {
		args = append([]string{"--config", config}, args...)
	}
	cmd := exec.CommandContext(ctx, c.drover, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "DROVER_CONFIG=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), timeout)
		}
		return stdout.String(), fmt.Errorf("drover %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// readJSON runs a read command with -o json until it succeeds or timeout
// passes (a server may be down), and decodes its output into out.
func (c *cluster) readJSON(ctx context.Context, config string, timeout time.Duration, out any, args ...string) error {
	args = append(args, "-o", "json")
	return waitFor(ctx, timeout, "drover "+strings.Join(args, " "), func() (bool, error) {
		stdout, err := c.cli(ctx, config, args...)
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			return false, fmt.Errorf("bad JSON from drover %s: %w", strings.Join(args, " "), err)
		}
		return true, nil
	})
}

// waitFor checks cond every 250ms until it holds, timeout passes or ctx
// ends. The error names what it waited for and cond's last error.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("timed out after %v waiting for %s; last error: %w", timeout, what, err)
			}
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// server returns the server node with the ID.
func (c *cluster) server(id string) *node {
	for _, s := range c.servers {
		if s.Name == id {
			return s
		}
	}
	return nil
}

// agent returns the agent node with the host name.
func (c *cluster) agent(name string) *node {
	for _, a := range c.agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// status is the cluster status as any reachable server answers it. Its
// short timeout matters right after a server dies: see statusTimeout.
func (c *cluster) status(ctx context.Context) (api.ClusterStatus, error) {
	var st api.ClusterStatus
	out, err := c.cliWithin(ctx, statusTimeout, c.admin, "cluster", "status", "-o", "json")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// waitLeader waits for a leader other than not ("" for any) and returns it.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration, not string) (*node, error) {
	var leader *node
	err := waitFor(ctx, timeout, "a leader other than "+not, func() (bool, error) {
		st, err := c.status(ctx)
		if err != nil {
			return false, err
		}
		if st.Leader == "" || st.Leader == not {
			return false, fmt.Errorf("leader %q (answered by %s)", st.Leader, st.AnsweredBy)
		}
		leader = c.server(st.Leader)
		return leader != nil, nil
	})
	return leader, err
}

// waitHealthy waits until every server is a voter, alive in gossip, in the
// leader's term and caught up with its log.
func (c *cluster) waitHealthy(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, "every server healthy and caught up", func() (bool, error) {
		st, err := c.status(ctx)
		if err != nil {
			return false, err
		}
		if st.Leader == "" {
			return false, fmt.Errorf("no leader")
		}
		ok := 0
		for _, s := range st.Servers {
			switch {
			case s.Suffrage != "voter":
				return false, fmt.Errorf("server %s is %s", s.ID, s.Suffrage)
			case s.Gossip != "alive":
				return false, fmt.Errorf("server %s is %s in gossip", s.ID, s.Gossip)
			case s.Health == nil:
				return false, fmt.Errorf("server %s does not answer", s.ID)
			case s.Health.Term != st.Term || s.Health.Leader != st.Leader:
				return false, fmt.Errorf("server %s sees leader %q in term %d, not %q in %d", s.ID, s.Health.Leader, s.Health.Term, st.Leader, st.Term)
			case s.Lag > 16:
				return false, fmt.Errorf("server %s lags %d entries", s.ID, s.Lag)
			}
			ok++
		}
		return ok == numServers, fmt.Errorf("%d of %d servers healthy", ok, numServers)
	})
}

// hosts lists the enrolled hosts.
func (c *cluster) hosts(ctx context.Context) ([]*api.Host, error) {
	var hosts []*api.Host
	err := c.readJSON(ctx, c.viewer, time.Minute, &hosts, "host", "list")
	return hosts, err
}

// waitHosts waits until every agent has enrolled, reported its inventory
// and is up.
func (c *cluster) waitHosts(ctx context.Context, timeout time.Duration) error {
	cfg := c.viewer
	if cfg == "" {
		cfg = c.admin
	}
	return waitFor(ctx, timeout, fmt.Sprintf("%d hosts enrolled and up", len(c.agents)), func() (bool, error) {
		out, err := c.cli(ctx, cfg, "host", "list", "-o", "json")
		if err != nil {
			return false, err
		}
		var hosts []*api.Host
		if err := json.Unmarshal([]byte(out), &hosts); err != nil {
			return false, err
		}
		up := 0
		for _, h := range hosts {
			if h.Status == api.HostUp && len(h.Inventory) > 0 {
				up++
			}
		}
		return up == len(c.agents), fmt.Errorf("%d of %d hosts enrolled, reported and up", up, len(c.agents))
	})
}

// containerState is a container's status (running, paused, exited) and
// whether it is attached to the run's network.
func (c *cluster) containerState(ctx context.Context, n *node) (string, bool, error) {
	out, err := docker(ctx, "inspect", "-f", "{{.State.Status}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", n.Container)
	if err != nil {
		return "", false, err
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", false, fmt.Errorf("docker inspect %s: empty answer", n.Container)
	}
	attached := false
	for _, net := range f[1:] {
		attached = attached || net == c.network
	}
	return f[0], attached, nil
}

// restore brings a container back to running and attached, whatever a
// fault left it in.
func (c *cluster) restore(ctx context.Context, n *node) error {
	st, attached, err := c.containerState(ctx, n)
	if err != nil {
		return err
	}
	switch st {
	case "paused":
		if _, err := docker(ctx, "unpause", n.Container); err != nil {
			return err
		}
	case "running":
	default:
		if _, err := docker(ctx, "start", n.Container); err != nil {
			return err
		}
	}
	if !attached {
		return c.connect(ctx, n)
	}
	return nil
}

// Faults. Each is one docker command.

func (c *cluster) kill(ctx context.Context, n *node) error {
	_, err := docker(ctx, "kill", n.Container)
	return err
}

func (c *cluster) start(ctx context.Context, n *node) error {
	_, err := docker(ctx, "start", n.Container)
	return err
}

func (c *cluster) stop(ctx context.Context, n *node) error {
	_, err := docker(ctx, "stop", "-t", "10", n.Container)
	return err
}

func (c *cluster) pause(ctx context.Context, n *node) error {
	_, err := docker(ctx, "pause", n.Container)
	return err
}

func (c *cluster) unpause(ctx context.Context, n *node) error {
	_, err := docker(ctx, "unpause", n.Container)
	return err
}

func (c *cluster) disconnect(ctx context.Context, n *node) error {
	_, err := docker(ctx, "network", "disconnect", c.network, n.Container)
	return err
}

func (c *cluster) connect(ctx context.Context, n *node) error {
	_, err := docker(ctx, "network", "connect", "--ip", n.IP, c.network, n.Container)
	return err
}

// exec runs a command in a running container.
func (c *cluster) exec(ctx context.Context, n *node, timeout time.Duration, args ...string) (string, error) {
	return dockerIn(ctx, timeout, nil, append([]string{"exec", n.Container}, args...)...)
}

// logs returns a container's log since a time.
func (c *cluster) logs(ctx context.Context, n *node, since time.Time) string {
	return containerLogs(ctx, n.Container, since.UTC().Format(time.RFC3339Nano), "all")
}

// hostDisk is what an agent's own disk says: the version its current link
// points at ("" if the application was never installed), the versions
// whose activate hook ran (the hook appends one line per run to
// HOST_DIR/activations), and `drover-agent status` (empty when the
// container is not running).
type hostDisk struct {
	Current     string
	Activations []string
	Status      string
}

// idle reports whether the agent applies nothing and has delivered every
// report.
func (h hostDisk) idle() bool {
	return strings.Contains(h.Status, "applying  nothing") && strings.Contains(h.Status, "outbox    0 report(s)")
}

// readHost reads an agent's disk: with one docker exec while its
// container runs, else (stopped or paused) with docker cp.
func (c *cluster) readHost(ctx context.Context, a *node) (hostDisk, error) {
	script := fmt.Sprintf("readlink %[1]s/apps/%[2]s/current; echo @@; cat %[1]s/activations 2>/dev/null; echo @@; drover-agent status --dir %[1]s",
		agentDir, app)
	out, err := c.exec(ctx, a, time.Minute, "sh", "-c", script)
	if err != nil && (strings.Contains(err.Error(), "is not running") || strings.Contains(err.Error(), "is paused")) {
		return c.copyHost(ctx, a)
	}
	if err != nil {
		return hostDisk{}, err
	}
	parts := strings.SplitN(out, "@@\n", 3)
	if len(parts) != 3 {
		return hostDisk{}, fmt.Errorf("%s: cannot read the answer about its disk: %q", a.Name, out)
	}
	h := hostDisk{Activations: strings.Fields(parts[1]), Status: parts[2]}
	if link := strings.TrimSpace(parts[0]); link != "" {
		h.Current = filepath.Base(link)
	}
	return h, nil
}

// copyHost reads a stopped agent's current link and activations with
// docker cp (a tar stream).
func (c *cluster) copyHost(ctx context.Context, a *node) (hostDisk, error) {
	var h hostDisk
	hdr, _, err := copyOut(ctx, a.Container, agentDir+"/apps/"+app+"/current")
	switch {
	case isMissing(err):
	case err != nil:
		return h, err
	case hdr.Linkname == "":
		return h, fmt.Errorf("%s: apps/%s/current is not a symbolic link", a.Name, app)
	default:
		h.Current = filepath.Base(hdr.Linkname)
	}
	_, body, err := copyOut(ctx, a.Container, agentDir+"/activations")
	if err != nil && !isMissing(err) {
		return h, err
	}
	h.Activations = strings.Fields(string(body))
	return h, nil
}

// readFleet reads every agent's disk, several at once.
func (c *cluster) readFleet(ctx context.Context) (map[string]hostDisk, error) {
	var mu sync.Mutex
	out := map[string]hostDisk{}
	err := c.eachAgent(func(a *node) error {
		h, err := c.readHost(ctx, a)
		mu.Lock()
		out[a.Name] = h
		mu.Unlock()
		return err
	})
	return out, err
}

// eachAgent calls fn for every agent, six at a time (docker commands take
// most of a second each here), and returns the errors joined.
func (c *cluster) eachAgent(fn func(a *node) error) error {
	sem := make(chan struct{}, 6)
	errs := make([]error, len(c.agents))
	var wg sync.WaitGroup
	for i, a := range c.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(a)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// agentsConnectedTo lists the agents with an established connection to a
// server's API, from their own view (netstat in each container).
func (c *cluster) agentsConnectedTo(ctx context.Context, server *node) ([]string, error) {
	var mu sync.Mutex
	var out []string
	err := c.eachAgent(func(a *node) error {
		st, err := c.exec(ctx, a, 30*time.Second, "netstat", "-tn")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(st, "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 && f[4] == server.IP+":7400" && f[5] == "ESTABLISHED" {
				mu.Lock()
				out = append(out, a.Name)
				mu.Unlock()
				break
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// cliErr runs a CLI command that prints nothing the caller needs.
func (c *cluster) cliErr(ctx context.Context, config string, args ...string) error {
	_, err := c.cli(ctx, config, args...)
	return err
}
