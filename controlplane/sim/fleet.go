// Package sim simulates a fleet of drover agents in one process, to
// measure what a cluster holds. Every simulated agent enrolls with a join
// token and a key of its own, keeps its own mutual-TLS HTTP/2 connection
// (dialled from one of several loopback source addresses, so that ports do
// not run out), long-polls its desired state, sends an inventory, and
// carries out rollout instructions with a simulated apply of configurable
// duration and failure rate. Only the apply is simulated: the servers, the
// TLS, the certificates and the API are the real ones.
package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/pki"
)

// Config is how a simulated fleet behaves.
type Config struct {
	// Servers are the servers' base URLs, e.g. https://127.0.0.1:7400.
	// Agent i starts on server i mod len(Servers) and fails over to the
	// next one.
	Servers []string
	// CA is the cluster CA certificate (PEM).
	CA []byte
	// SourceAddrs are the local addresses agents dial from, agent i using
	// SourceAddrs[i mod len]. On Linux every 127.0.0.0/8 address is local;
	// each gives about 28,000 ephemeral ports. None: the kernel chooses.
	SourceAddrs []netip.Addr
	// PollWait is the long poll's wait, so the check-in period of an idle
	// agent. Default 30s.
	PollWait time.Duration
	// Probe: after a long poll that found nothing changed, check in once
	// more without waiting (?wait=0s) and record how long it took. This is
	// how the fleet measures check-in latency; it doubles the request rate
	// of an idle fleet.
	Probe bool
	// ApplyTime is how long a simulated apply takes, from the instruction
	// to the final report. FailureRate (0 to 1) is the share of applies
	// that end reverted.
	ApplyTime   time.Duration
	FailureRate float64
	// VerifySignatures checks each instruction's manifest signatures
	// against the trust policies the agent received at enrollment, as the
	// real agent does; an instruction that fails ends failed.
	VerifySignatures bool
	// InventoryPackages is the number of OS packages in each simulated
	// inventory (the bulk of its size). Default 100.
	InventoryPackages int
	// EnrollConcurrency is how many enrollments are in flight at once.
	// Default 64.
	EnrollConcurrency int
	// StartRate is how many agents start per second (each makes a TLS
	// handshake and an inventory write). Default 200.
	StartRate int
	// Seed makes the failures reproducible.
	Seed uint64
	// Logger receives warnings, and each failed request at debug level
	// (Stats counts them). Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PollWait == 0 {
		c.PollWait = 30 * time.Second
	}
	if c.InventoryPackages == 0 {
		c.InventoryPackages = 100
	}
	if c.EnrollConcurrency == 0 {
		c.EnrollConcurrency = 64
	}
	if c.StartRate == 0 {
		c.StartRate = 200
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Servers) == 0:
		return errors.New("sim: Servers: at least one server URL is required")
	case len(c.CA) == 0:
		return errors.New("sim: CA: the cluster CA certificate is required")
	case c.FailureRate < 0 || c.FailureRate > 1:
		return fmt.Errorf("sim: FailureRate: must be between 0 and 1, got %v", c.FailureRate)
	case c.ApplyTime < 0:
		return fmt.Errorf("sim: ApplyTime: must not be negative, got %v", c.ApplyTime)
	}
	return nil
}

// Fleet is a set of simulated agents.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	stats  *Stats
	enroll *http.Client // no client certificate: enrollment is anonymous
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	agents  []*agent
	started int // agents[:started] are running
	// rehome is bumped by Rehome; agents compare it before each poll.
	rehome atomic.Int64
}

// New prepares an empty fleet; Enroll adds agents, Start runs them.
func New(cfg Config) (*Fleet, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := pki.ClientTLS(nil, nil, cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Fleet{cfg: cfg, log: cfg.Logger, stats: newStats(), ctx: ctx, cancel: cancel,
		enroll: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}}}, nil
}

// Stats is what the agents observed.
func (f *Fleet) Stats() *Stats { return f.stats }

// Size is the number of agents enrolled.
func (f *Fleet) Size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.agents)
}

// Enroll enrolls one agent per name with the join token (which needs a
// use per name): each makes its key and a certificate request, and the
// servers issue its certificate, as `drover-agent enroll` does. Requests
// are spread over the servers; one that fails for want of a leader is
// retried.
func (f *Fleet) Enroll(ctx context.Context, token string, names []string) error {
	type job struct {
		num  int
		name string
	}
	f.mu.Lock()
	base := len(f.agents)
	f.mu.Unlock()
	jobs := make(chan job)
	results := make(chan *agent, len(names))
	errs := make(chan error, f.cfg.EnrollConcurrency)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(f.cfg.EnrollConcurrency, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				a, err := f.enrollOne(ctx, token, j.num, j.name)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				results <- a
			}
		}()
	}
feed:
	for i, name := range names {
		select {
		case jobs <- job{num: base + i, name: name}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(results)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	enrolled := make([]*agent, len(names))
	for a := range results {
		enrolled[a.num-base] = a
	}
	f.mu.Lock()
	f.agents = append(f.agents, enrolled...)
	f.mu.Unlock()
	return nil
}

// enrollOne enrolls agent num under name and returns it, not running.
func (f *Fleet) enrollOne(ctx context.Context, token string, num int, name string) (*agent, error) {
	keyPEM, csr, err := pki.NewKeyAndCSR(name)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(api.EnrollRequest{Token: token, Host: name, CSR: csr})
	if err != nil {
		return nil, err
	}
	var resp api.EnrollResponse
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		server := f.cfg.Servers[(num+attempt)%len(f.cfg.Servers)]
		err = f.post(ctx, server+api.PathEnroll, "enroll-"+name, body, &resp)
		if err == nil {
			break
		}
		if !retryable(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("cannot enroll %s: %w", name, err)
		}
		sleep(ctx, retryDelay(1))
	}
	tlsCfg, err := pki.ClientTLS(resp.Certificate, keyPEM, f.cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("certificate issued to %s: %w", name, err)
	}
	var src netip.Addr
	if n := len(f.cfg.SourceAddrs); n > 0 {
		src = f.cfg.SourceAddrs[num%n]
	}
	return &agent{f: f, name: name, num: num, conn: newConn(f.cfg.Servers, num, tlsCfg, src), trust: resp.Trust,
		rnd: rand.New(rand.NewPCG(f.cfg.Seed, uint64(num))), handled: map[string]bool{}, releases: map[string]string{}}, nil
}

// post sends an anonymous JSON request (enrollment) to one server.
func (f *Fleet) post(ctx context.Context, url, key string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderIdempotencyKey, key)
	resp, err := f.enroll.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return errUnavailable
	}
	if resp.StatusCode >= 300 {
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			return &e
		}
		return &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s answered %s", url, resp.Status)}
	}
	return json.Unmarshal(b, out)
}

// Start runs every enrolled agent that is not running yet, StartRate a
// second, and returns once they have all started. They run until Stop.
func (f *Fleet) Start() {
	f.mu.Lock()
	todo := f.agents[f.started:]
	f.started = len(f.agents)
	f.mu.Unlock()
	tick := time.Second / time.Duration(f.cfg.StartRate)
	next := time.Now()
	for _, a := range todo {
		if !sleep(f.ctx, time.Until(next)) {
			return
		}
		next = next.Add(tick)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			a.run(f.ctx)
		}()
	}
}

// Stop ends every agent and closes its connection.
func (f *Fleet) Stop() {
	f.cancel()
	f.wg.Wait()
	f.enroll.CloseIdleConnections()
}

// OnServer is the number of running agents whose connection is to server
// (a base URL) now.
func (f *Fleet) OnServer(server string) int {
	f.mu.Lock()
	running := f.agents[:f.started]
	f.mu.Unlock()
	n := 0
	for _, a := range running {
		if a.conn.server() == server {
			n++
		}
	}
	return n
}

// Rehome sends every agent back to the server it started on, at its next
// check-in. Agents, like the real client, stay on whichever server last
// answered them, so after servers fail the fleet bunches up on the
// survivors; a benchmark calls Rehome to spread it evenly again.
func (f *Fleet) Rehome() { f.rehome.Add(1) }

// LoopbackSources returns n loopback source addresses, 127.0.0.2 on.
func LoopbackSources(n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	a := netip.MustParseAddr("127.0.0.2")
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}
