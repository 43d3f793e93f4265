package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/artifacts/chunks"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

// Config is how an agent runs.
type Config struct {
	// Dir is the agent's directory (see the package documentation).
	Dir string
	// Version is the agent's own version, reported in its inventory.
	Version string
	// PollWait is how long a long poll waits for a change. Default 60s.
	PollWait time.Duration
	// InventoryInterval is how often the inventory is collected again.
	// Default 10 minutes; it is also collected after every apply.
	InventoryInterval time.Duration
	// KeepReleases is how many releases of an application stay on disk
	// for back-out. Default 2.
	KeepReleases int
	// DownloadMinRate is the slowest acceptable download, in bytes per
	// second; a chunk's deadline is DownloadGrace plus its size at this
	// rate. Defaults 64 KiB/s and 15s.
	DownloadMinRate int64
	DownloadGrace   time.Duration
	// WindowJitter bounds the random delay before activating in a window
	// the apply waited for (at most half the window). Default 5m.
	WindowJitter time.Duration
	// FactsDir holds custom facts: *.json files, and executables that print
	// a JSON object. Default /etc/drover/facts.d.
	FactsDir string
	// MetricsAddr, when set, serves the agent's metrics at http://ADDR/metrics.
	MetricsAddr string
	// Logger receives the agent's log. Default: discard.
	Logger *slog.Logger
	// Clock tells the time. Default: the system clock.
	Clock deploy.Clock
	// SelfUpdate says how the agent replaces its own binary with a
	// release of SelfApp; without a Binary it refuses such releases.
	SelfUpdate SelfUpdate
}

func (c *Config) setDefaults() {
	if c.PollWait == 0 {
		c.PollWait = 60 * time.Second
	}
	if c.InventoryInterval == 0 {
		c.InventoryInterval = 10 * time.Minute
	}
	if c.KeepReleases == 0 {
		c.KeepReleases = 2
	}
	if c.DownloadMinRate == 0 {
		c.DownloadMinRate = 64 << 10
	}
	if c.DownloadGrace == 0 {
		c.DownloadGrace = 15 * time.Second
	}
	if c.WindowJitter == 0 {
		c.WindowJitter = 5 * time.Minute
	}
	if c.FactsDir == "" {
		c.FactsDir = "/etc/drover/facts.d"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = deploy.SystemClock{}
	}
	c.SelfUpdate.setDefaults()
}

// Agent is one running agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	files   layout
	name    string
	client  *client.Client
	creds   *credentials
	journal *journal
	trust   []artifacts.SignedPolicy // pinned: one version per application
	labels  map[string]string
	cache   *chunks.Store

	// downloaded counts compressed chunk bytes fetched from servers.
	downloaded atomic.Int64
	// lastIndex is the highest desired-state index seen: an answer older
	// than that (a stale or replayed server) is ignored.
	lastIndex uint64
	// wakeAt is when a waiting apply must be looked at again; the long
	// poll returns by then.
	wakeAt time.Time
	// lastContact is when a server last answered (unix nanoseconds).
	lastContact atomic.Int64
	metrics     agentMetrics

	lastInventory time.Time
	jobs          jobRunner
}

// New opens an enrolled agent directory.
func New(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	l := layout{cfg.Dir}
	b, err := os.ReadFile(l.config())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; run: drover-agent enroll", ErrNotEnrolled, cfg.Dir, "agent.json")
	}
	if err != nil {
		return nil, err
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", l.config(), err)
	}
	creds := &credentials{}
	if err := creds.load(l); err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(l.tls("ca.crt"))
	if err != nil {
		return nil, err
	}
	tlsCfg, err := creds.tlsConfig(caPEM)
	if err != nil {
		return nil, err
	}
	j, err := loadJournal(l.journal())
	if err != nil {
		return nil, err
	}
	trust, err := loadTrust(l)
	if err != nil {
		return nil, err
	}
	cache, err := chunks.OpenStore(filepath.Join(l.cache(), "chunks"))
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("host", id.Name), files: l, name: id.Name, creds: creds,
		client: client.New(id.Servers, tlsCfg), journal: j, trust: trust, labels: id.Labels, cache: cache}
	return a, nil
}

// Downloaded is how many (compressed) chunk bytes the agent has fetched
// from servers since it started.
func (a *Agent) Downloaded() int64 { return a.downloaded.Load() }

// Name is the host name the agent enrolled as.
func (a *Agent) Name() string { return a.name }

// Close releases the agent's connections.
func (a *Agent) Close() { a.client.Close() }

// Run works until ctx ends: it finishes or reverts an apply interrupted by
// a crash, then loops — deliver pending reports, send the inventory when
// it changed, long-poll for the desired state, apply what it says.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent started", "servers", a.client.Servers(), "version", a.cfg.Version)
	// The dead-man's switch counts from the start: a probation resumed
	// after a crash gets its full time to reach a server.
	a.touch()
	if a.cfg.MetricsAddr != "" {
		if err := a.runMetrics(ctx); err != nil {
			return err
		}
	}
	if err := a.resumeSelfUpdate(ctx); err != nil {
		return err
	}
	if err := a.recover(ctx); err != nil {
		return err
	}
	var index uint64
	failures := 0
	for ctx.Err() == nil {
		a.takeClearHalt()
		a.maybeRenew(ctx)
		a.flushOutbox(ctx)
		a.maybeSendInventory(ctx)
		wait := a.cfg.PollWait
		if !a.wakeAt.IsZero() {
			wait = max(time.Second, min(wait, a.wakeAt.Sub(a.cfg.Clock.Now())))
			a.wakeAt = time.Time{}
		}
		desired, err := a.poll(ctx, index, wait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait := retryDelay(failures)
			a.log.Warn("cannot get desired state", "err", err, "retry_in", wait)
			sleep(ctx, wait)
			continue
		}
		failures = 0
		if desired.Index < a.lastIndex {
			a.log.Warn("ignoring desired state older than one already seen", "index", desired.Index, "seen", a.lastIndex)
			continue
		}
		a.lastIndex = desired.Index
		index = desired.Index
		a.client.SetServers(desired.Servers)
		a.learnTrust(desired.Trust)
		a.abandonWithdrawn(desired.Instructions)
		for _, in := range desired.Instructions {
			if ctx.Err() != nil {
				break
			}
			if err := a.handle(ctx, in); err != nil {
				if errors.Is(err, ErrRestart) {
					return err
				}
				a.log.Error("apply failed", "rollout", in.Rollout, "err", err)
			}
		}
		a.startJobs(ctx, desired.Jobs)
	}
	a.log.Info("agent stopped")
	return nil
}

// poll is one long poll for the host's desired state.
func (a *Agent) poll(ctx context.Context, index uint64, wait time.Duration) (*api.DesiredState, error) {
	var d api.DesiredState
	path := api.PathDesired + "?index=" + strconv.FormatUint(index, 10) + "&wait=" + wait.String()
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	a.metrics.polls.Add(1)
	if _, err := a.client.Do(ctx, client.Request{Method: http.MethodGet, Path: path}, &d); err != nil {
		a.metrics.pollErrors.Add(1)
		return nil, err
	}
	a.touch()
	return &d, nil
}

// touch records that a server answered.
func (a *Agent) touch() { a.lastContact.Store(a.cfg.Clock.Now().UnixNano()) }

// contact is when a server last answered.
func (a *Agent) contact() time.Time { return time.Unix(0, a.lastContact.Load()) }

// ping asks a server for the desired state without waiting, to learn
// whether one is reachable (and delivers pending reports).
func (a *Agent) ping(ctx context.Context) {
	a.flushOutbox(ctx)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := a.client.Do(ctx, client.Request{Method: http.MethodGet, Path: api.PathDesired + "?wait=0s"}, nil); err == nil {
		a.touch()
	}
}

// abandonWithdrawn forgets a staged (not yet activated) apply whose
// instruction the servers no longer list — its rollout was paused or
// rolled back — so that the host is free for the next change.
func (a *Agent) abandonWithdrawn(ins []api.Instruction) {
	rec := a.journal.Active
	if rec == nil || (rec.Step != stepStaged && rec.Step != stepWaiting) {
		return
	}
	for _, in := range ins {
		if in.Rollout == rec.Rollout {
			return
		}
	}
	a.log.Info("instruction withdrawn before activation; the staged release stays on disk", "rollout", rec.Rollout)
	a.journal.Active = nil
	if err := a.journal.save(a.files.journal()); err != nil {
		a.log.Error("cannot save journal", "err", err)
	}
}

// learnTrust updates the pinned trust policies from the versions the
// servers list. A pinned policy moves only along rotations signed by its
// own keys (artifacts.Advance), so a compromised control plane cannot swap
// the signers of an application this agent already trusts. An application
// this agent has never seen is pinned at its newest version.
func (a *Agent) learnTrust(versions []artifacts.SignedPolicy) {
	byApp := map[string][]artifacts.SignedPolicy{}
	for _, v := range versions {
		byApp[v.App] = append(byApp[v.App], v)
	}
	changed := false
	for app, chain := range byApp {
		i := slices.IndexFunc(a.trust, func(p artifacts.SignedPolicy) bool { return p.App == app })
		if i < 0 {
			newest := slices.MaxFunc(chain, func(x, y artifacts.SignedPolicy) int { return cmp.Compare(x.Serial, y.Serial) })
			if newest.Validate() != nil {
				continue
			}
			a.trust = append(a.trust, newest)
			a.log.Info("trust policy pinned", "app", app, "serial", newest.Serial, "keys", len(newest.Keys), "threshold", newest.Threshold)
			changed = true
			continue
		}
		next, err := artifacts.Advance(a.trust[i], chain)
		if err != nil {
			a.log.Error("refusing a trust policy rotation", "app", app, "err", err)
		}
		if next.Serial != a.trust[i].Serial {
			a.log.Info("trust policy rotated", "app", app, "serial", next.Serial)
			a.trust[i] = next
			changed = true
		}
	}
	if changed {
		if err := saveTrust(a.files, a.trust); err != nil {
			a.log.Error("cannot save trust policy", "err", err)
		}
	}
}

// trustPolicies returns the pinned policies.
func (a *Agent) trustPolicies() []artifacts.Policy {
	out := make([]artifacts.Policy, len(a.trust))
	for i, p := range a.trust {
		out[i] = p.Policy
	}
	return out
}

// report queues a report durably, then tries to deliver the queue.
func (a *Agent) report(ctx context.Context, r api.Report) {
	a.journal.Outbox = append(a.journal.Outbox, r)
	if err := a.journal.save(a.files.journal()); err != nil {
		a.log.Error("cannot save journal", "err", err)
	}
	a.flushOutbox(ctx)
}

// flushOutbox delivers queued reports in order and stops at the first
// failure, keeping the rest for later.
func (a *Agent) flushOutbox(ctx context.Context) {
	sent := 0
	for _, r := range a.journal.Outbox {
		_, err := a.client.Do(ctx, client.Request{Method: http.MethodPost, Path: api.PathReport, JSON: r}, nil)
		if err == nil {
			a.touch()
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) && apiErr.Code != api.CodeUnavailable && apiErr.Code != api.CodeInternal {
			a.log.Warn("report refused; dropped", "rollout", r.Rollout, "state", r.State, "err", err)
		} else if err != nil {
			break
		}
		sent++
	}
	if sent == 0 {
		return
	}
	a.journal.Outbox = a.journal.Outbox[sent:]
	if err := a.journal.save(a.files.journal()); err != nil {
		a.log.Error("cannot save journal", "err", err)
	}
}

// maybeSendInventory collects the inventory when it is due and sends it
// when its digest differs from the last one a server accepted.
func (a *Agent) maybeSendInventory(ctx context.Context) {
	now := a.cfg.Clock.Now()
	if !a.lastInventory.IsZero() && now.Sub(a.lastInventory) < a.cfg.InventoryInterval {
		return
	}
	sys, err := inventory.Collect(ctx, inventory.CollectOptions{Now: a.cfg.Clock.Now})
	if err != nil {
		a.log.Warn("cannot collect inventory", "err", err)
		return
	}
	sys.AgentVersion = a.cfg.Version
	sys.Facts = a.collectFacts(ctx)
	if sys.Releases, err = a.files.Installed(); err != nil {
		a.log.Warn("cannot list installed releases", "err", err)
	}
	sys.Normalize()
	a.lastInventory = now
	digest := sys.Digest()
	if digest == a.journal.InventoryDigest {
		return
	}
	if _, err := a.client.Do(ctx, client.Request{Method: http.MethodPut, Path: api.PathInventory, JSON: sys}, nil); err != nil {
		a.log.Warn("cannot send inventory", "err", err)
		return
	}
	a.journal.InventoryDigest = digest
	if err := a.journal.save(a.files.journal()); err != nil {
		a.log.Error("cannot save journal", "err", err)
	}
	a.log.Info("inventory sent", "digest", digest[:12])
	// Collecting (the package database above all) leaves garbage behind;
	// an agent that now goes idle for minutes gives the memory back.
	debug.FreeOSMemory()
}

func retryDelay(failures int) time.Duration {
	base := min(time.Second<<min(failures, 5), 30*time.Second)
	return base/2 + rand.N(base/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
