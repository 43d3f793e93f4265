package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// agent is one simulated host. Its loop has the shape of the real agent's
// (agent.Agent.Run): send the inventory, long-poll the desired state, and
// carry out each new instruction before polling again, reporting every
// step the real agent reports.
type agent struct {
	f     *Fleet
	name  string
	num   int
	conn  *conn
	trust []artifacts.SignedPolicy // pinned, one version per application
	rnd   *rand.Rand

	index    uint64
	handled  map[string]bool   // rollouts whose instruction was carried out
	releases map[string]string // app -> version it "runs"

	// failedAt is when the current outage began (zero when connected), and
	// failedServer the server that failed.
	failedAt     time.Time
	failedServer string
	// rehomed is the last Fleet.Rehome generation this agent acted on.
	rehomed int64
}

// run works until ctx ends.
func (a *agent) run(ctx context.Context) {
	defer a.conn.close()
	for failures := 1; !a.sendInventory(ctx); failures++ {
		if !sleep(ctx, retryDelay(failures)) {
			return
		}
	}
	failures := 0
	for ctx.Err() == nil {
		if g := a.f.rehome.Load(); g != a.rehomed {
			a.rehomed = g
			a.conn.goHome()
		}
		d, err := a.poll(ctx, a.f.cfg.PollWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.f.stats.PollErrors.Add(1)
			a.f.log.Debug("long poll failed", "host", a.name, "err", err)
			a.lost(err)
			// Check in at once somewhere else, as the real client fails over
			// within the request; back off only when no server answers.
			if !a.probe(ctx, false) {
				failures++
				sleep(ctx, retryDelay(failures))
			}
			continue
		}
		failures = 0
		a.f.stats.Polls.Add(1)
		if d.Index < a.index {
			continue // older than what was seen: ignore, as the real agent does
		}
		changed := d.Index != a.index
		a.index = d.Index
		if changed && a.f.cfg.VerifySignatures {
			a.learnTrust(d.Trust)
		}
		if !changed && a.f.cfg.Probe {
			a.probe(ctx, true)
		}
		for _, in := range d.Instructions {
			if a.handled[in.Rollout] || ctx.Err() != nil {
				continue
			}
			a.handled[in.Rollout] = true
			a.f.stats.receive(in.Rollout, a.name, time.Now())
			a.apply(ctx, in)
		}
	}
}

// poll is one long poll on the current server, without failover: a
// failure is handled by the caller.
func (a *agent) poll(ctx context.Context, wait time.Duration) (*api.DesiredState, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	var d api.DesiredState
	path := api.PathDesired + "?index=" + strconv.FormatUint(a.index, 10) + "&wait=" + wait.String()
	if _, err := a.conn.once(ctx, http.MethodGet, path, "", nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// probe is a check-in that does not wait (the desired state at once),
// with failover. A timed probe records its latency; an untimed one ends
// an outage. It reports whether a server answered.
func (a *agent) probe(ctx context.Context, timed bool) bool {
	path := api.PathDesired + "?index=" + strconv.FormatUint(a.index, 10) + "&wait=0s"
	start := time.Now()
	err := a.do(ctx, http.MethodGet, path, nil, nil)
	if err == nil && timed {
		a.f.stats.checkin(time.Since(start))
	}
	return err == nil
}

// do sends a request with failover: on a connection failure or a 503 it
// tries the next server, each at most once.
func (a *agent) do(ctx context.Context, method, path string, body []byte, out any) error {
	// A write carries one idempotency key through its attempts, as the real
	// client's does, so that one retried on another server applies once.
	key := ""
	if method != http.MethodGet {
		key = fmt.Sprintf("%s-%d", a.name, a.rnd.Uint64())
	}
	var err error
	for range a.conn.servers {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, err = a.conn.once(rctx, method, path, key, body, out)
		cancel()
		if err == nil {
			a.connected()
			return nil
		}
		if !retryable(err) || errors.Is(err, errUnavailable) || ctx.Err() != nil {
			return err // the caller backs off and retries a 503 on the same server
		}
		a.lost(err)
	}
	return err
}

// requestTimeout bounds a request that does not wait on purpose; a write
// may wait for a new leader (the servers give up after 15 s).
const requestTimeout = 20 * time.Second

// lost notes a failure of the current server and moves to the next one.
// A server that answers 503 (the cluster has no leader) is alive and no
// other would answer better: the agent keeps its connection and retries.
func (a *agent) lost(err error) {
	var apiErr *api.Error
	if errors.Is(err, errUnavailable) || errors.As(err, &apiErr) && apiErr.Code != api.CodeUnavailable && apiErr.Code != api.CodeInternal {
		return // a refusal or no leader, not an outage
	}
	if a.failedAt.IsZero() {
		a.failedAt, a.failedServer = time.Now(), a.conn.server()
	}
	a.conn.next()
}

// connected notes an answer, ending an outage if one was going on.
func (a *agent) connected() {
	if a.failedAt.IsZero() {
		return
	}
	a.f.stats.outage(Outage{Host: a.name, Server: a.failedServer, Failed: a.failedAt, Recovered: time.Now(), NewServer: a.conn.server()})
	a.failedAt = time.Time{}
}

// apply carries out one instruction: it checks the signatures against the
// trust policies received at enrollment, then reports each step of an
// apply, taking Config.ApplyTime in all, and ends succeeded or — at
// Config.FailureRate — reverted. Afterwards the inventory has changed
// (the releases in it), so it is sent again, as the real agent does.
func (a *agent) apply(ctx context.Context, in api.Instruction) {
	previous := a.releases[in.App]
	if a.f.cfg.VerifySignatures {
		policies := make([]artifacts.Policy, len(a.trust))
		for i, p := range a.trust {
			policies[i] = p.Policy
		}
		p, ok := artifacts.PolicyFor(policies, in.App)
		var err error
		if !ok {
			err = errors.New("no trust policy for " + in.App)
		} else {
			err = p.Verify(in.Manifest, in.Signatures)
		}
		if err != nil {
			a.f.stats.Applies.Add(1)
			a.f.stats.Failures.Add(1)
			a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Failed, Reason: "signature check failed: " + err.Error(), Current: previous})
			return
		}
	}
	half := a.f.cfg.ApplyTime / 2
	a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Downloading, Current: previous})
	sleep(ctx, half)
	a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Staged, Current: previous})
	a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Activating, Current: previous})
	a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Probation, Current: previous})
	sleep(ctx, a.f.cfg.ApplyTime-half)
	a.f.stats.Applies.Add(1)
	if a.rnd.Float64() < a.f.cfg.FailureRate {
		a.f.stats.Failures.Add(1)
		a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Reverted, Reason: "simulated health check failure", Current: previous})
	} else {
		a.releases[in.App] = in.Version
		a.report(ctx, api.Report{Rollout: in.Rollout, State: deploy.Succeeded, Current: in.Version})
	}
	a.sendInventory(ctx)
}

// report delivers a report, retrying until a server takes it, refuses it
// outright (it is dropped, as the real agent drops it), or ctx ends.
func (a *agent) report(ctx context.Context, r api.Report) {
	body, err := json.Marshal(r)
	if err != nil {
		return
	}
	for failures := 1; ctx.Err() == nil; failures++ {
		err := a.do(ctx, http.MethodPost, api.PathReport, body, nil)
		if err == nil {
			a.f.stats.Reports.Add(1)
			return
		}
		a.f.stats.ReportErrors.Add(1)
		a.f.log.Debug("cannot deliver report", "host", a.name, "rollout", r.Rollout, "state", r.State, "err", err)
		if !retryable(err) {
			a.f.log.Warn("report refused; dropped", "host", a.name, "rollout", r.Rollout, "state", r.State, "err", err)
			return
		}
		sleep(ctx, retryDelay(failures))
	}
}

// sendInventory sends the host's inventory once, reporting success.
func (a *agent) sendInventory(ctx context.Context) bool {
	sys := inventoryFor(a.name, a.num, a.f.cfg.InventoryPackages, a.releases, time.Now())
	body, err := json.Marshal(sys)
	if err != nil {
		return false
	}
	if err := a.do(ctx, http.MethodPut, api.PathInventory, body, nil); err != nil {
		if ctx.Err() == nil {
			a.f.stats.InventoryErrors.Add(1)
			a.f.log.Debug("cannot send inventory", "host", a.name, "err", err)
		}
		return false
	}
	a.f.stats.Inventories.Add(1)
	return true
}

// learnTrust follows the trust policies as the real agent does: an
// application seen for the first time is pinned at its newest version, a
// pinned one moves only along rotations its own keys signed.
func (a *agent) learnTrust(versions []artifacts.SignedPolicy) {
	byApp := map[string][]artifacts.SignedPolicy{}
	for _, v := range versions {
		byApp[v.App] = append(byApp[v.App], v)
	}
	for app, chain := range byApp {
		i := slices.IndexFunc(a.trust, func(p artifacts.SignedPolicy) bool { return p.App == app })
		if i < 0 {
			newest := slices.MaxFunc(chain, func(x, y artifacts.SignedPolicy) int { return cmp.Compare(x.Serial, y.Serial) })
			if newest.Validate() == nil {
				a.trust = append(a.trust, newest)
			}
			continue
		}
		if next, err := artifacts.Advance(a.trust[i], chain); err == nil {
			a.trust[i] = next
		}
	}
}

// retryDelay is the real agent's back-off: about 1 s, doubling up to 30 s,
// with jitter.
func retryDelay(failures int) time.Duration {
	base := min(time.Second<<min(failures, 5), 30*time.Second)
	return base/2 + rand.N(base/2+1)
}

// sleep waits for d or the end of ctx, reporting whether the time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
