package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/sim"
	"github.com/drover-dev/drover/deploy"
)

// The phases of `drover bench fleet`.

// holdResult is check-in latency of an idle fleet.
type holdResult struct {
	Agents   int         `json:"agents"`
	Measured ms          `json:"measured_ms"`
	Checkins int         `json:"checkins"`
	P50      ms          `json:"p50_ms"`
	P99      ms          `json:"p99_ms"`
	Max      ms          `json:"max_ms"`
	ReqPerS  float64     `json:"requests_per_sec"`
	Errors   int64       `json:"errors"`
	Servers  []procUsage `json:"servers"`
	Sim      procUsage   `json:"simulator"`
}

// waveResult is how fast a one-wave rollout reached its hosts.
type waveResult struct {
	Hosts int `json:"hosts"`
	// Instruction latency: from the rollout's start (the leader's time
	// stamped on the start command) to each agent holding its instruction.
	P50       ms `json:"p50_ms"`
	P99       ms `json:"p99_ms"`
	Max       ms `json:"max_ms"`
	Completed ms `json:"completed_ms"` // start to every host succeeded
	// Decided is when the engine's decision instructed the last host,
	// after the start; Delivery is from there to each agent.
	Decided     ms          `json:"decided_ms"`
	DeliveryP50 ms          `json:"delivery_p50_ms"`
	DeliveryP99 ms          `json:"delivery_p99_ms"`
	Servers     []procUsage `json:"servers"`
	// Writes are the commands the leader committed meanwhile: count and
	// mean time from proposal to applied, by command.
	Writes writeStats `json:"writes"`
}

// writeStats is the servers' drover_raft_apply_seconds by command: how
// many commands each leader committed and their total time.
type writeStats map[string]writeStat

type writeStat struct {
	Count  int `json:"count"`
	MeanMS ms  `json:"mean_ms"`
	sum    float64
}

// writeStats reads every server's metrics and adds up what each committed
// as leader.
func (b *fleetBench) writeStats(ctx context.Context) writeStats {
	out := writeStats{}
	for _, spec := range b.d.specs {
		c := client.New([]string{"https://" + spec.APIAddr}, b.d.adminTLS)
		resp, err := c.Send(ctx, client.Request{Method: "GET", Path: api.PathMetrics})
		if err != nil {
			c.Close()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		c.Close()
		out.add(string(body))
	}
	return out
}

// add adds the drover_raft_apply_seconds sums and counts of a server's
// metrics (Prometheus text) to w.
func (w writeStats) add(metrics string) {
	for _, line := range strings.Split(metrics, "\n") {
		name, rest, ok := strings.Cut(line, "{command=\"")
		if !ok || (name != "drover_raft_apply_seconds_sum" && name != "drover_raft_apply_seconds_count") {
			continue
		}
		cmdName, value, _ := strings.Cut(rest, "\"} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		s := w[cmdName]
		if name == "drover_raft_apply_seconds_sum" {
			s.sum += v
		} else {
			s.Count += int(v)
		}
		w[cmdName] = s
	}
}

// since is what was committed after before.
func (w writeStats) since(before writeStats) writeStats {
	out := writeStats{}
	for k, v := range w {
		n := v.Count - before[k].Count
		if n <= 0 {
			continue
		}
		sum := v.sum - before[k].sum
		out[k] = writeStat{Count: n, MeanMS: ms(round1(sum / float64(n) * 1000)), sum: sum}
	}
	return out
}

func (w writeStats) String() string {
	keys := slices.Sorted(maps.Keys(w))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d (mean %v)", k, w[k].Count, w[k].MeanMS))
	}
	return strings.Join(parts, ", ")
}

// rolloutResult is a whole rollout in waves.
type rolloutResult struct {
	Hosts       int    `json:"hosts"`
	Waves       string `json:"waves"`
	MaxParallel int    `json:"max_parallel"`
	ApplyTime   ms     `json:"apply_ms"`
	Total       ms     `json:"total_ms"`
	// Ideal is the sum over waves of the wave's batches of max_parallel
	// hosts, one apply time each.
	Ideal  ms         `json:"ideal_ms"`
	Wave   []ms       `json:"wave_ms"` // first host started to last host done, per wave
	Writes writeStats `json:"writes"`
}

// failoverResult is leader kills under load.
type failoverResult struct {
	Agents     int `json:"agents"`
	Kills      int `json:"kills"`
	WriteP50   ms  `json:"write_p50_ms"`
	WriteP99   ms  `json:"write_p99_ms"`
	WriteMax   ms  `json:"write_max_ms"`
	Affected   int `json:"agents_affected"`   // agents whose server was killed, all kills
	NotServed  int `json:"agents_not_served"` // of which not served again within 30 s
	ReconnP50  ms  `json:"reconnect_p50_ms"`
	ReconnP99  ms  `json:"reconnect_p99_ms"`
	ReconnMax  ms  `json:"reconnect_max_ms"`
	MarkedDown int `json:"hosts_marked_down"`
	// DownCheckedAfter is how long after the last kill the servers' logs
	// were searched for hosts marked down.
	DownCheckedAfter ms `json:"down_checked_after_ms"`
}

// growResult is the search for the largest fleet held.
type growResult struct {
	Steps   []holdResult `json:"steps"`
	Largest int          `json:"largest_held"`
	Stopped string       `json:"stopped"` // why the search ended
}

// grow enrolls agents, in groups of one join token each, until the fleet
// has n, starts them, and waits for every inventory.
func (b *fleetBench) grow(ctx context.Context, n int) error {
	first := b.fleet.size() == 0
	added := n - b.fleet.size()
	start := time.Now()
	for b.fleet.size() < n {
		size := min(b.o.groupSize, n-b.fleet.size())
		group := fmt.Sprintf("g%03d", b.groups)
		b.groups++
		var tok api.TokenResponse
		if _, err := b.d.admin.Do(ctx, client.Request{Method: "POST", Path: api.PathTokens,
			JSON: api.TokenRequest{Labels: map[string]string{"fleet": "sim", "group": group}, TTL: "6h", Uses: size}}, &tok); err != nil {
			return fmt.Errorf("cannot create a join token: %w", err)
		}
		names := make([]string, size)
		for i := range names {
			names[i] = fmt.Sprintf("sim-%05d", b.fleet.size()+i)
		}
		if err := b.fleet.enroll(ctx, tok.Token, names); err != nil {
			return err
		}
	}
	enrolled := time.Since(start)
	b.logf("enrolled %d agents in %v (%.0f/s)", added, enrolled.Round(time.Millisecond), float64(added)/enrolled.Seconds())
	before, err := b.fleet.counters()
	if err != nil {
		return err
	}
	start = time.Now()
	if err := b.fleet.start(); err != nil {
		return err
	}
	next := time.Now().Add(15 * time.Second)
	var pollErr error
	err = poll(ctx, 15*time.Minute, "every new agent to send its inventory", func() bool {
		c, err := b.fleet.counters()
		if err != nil {
			pollErr = err
			return true
		}
		if time.Now().After(next) {
			next = next.Add(15 * time.Second)
			b.logf("%d of %d inventories in; %d attempts failed and were retried", c.Inventories-before.Inventories, added, c.InventoryErrors-before.InventoryErrors)
		}
		return c.Inventories-before.Inventories >= int64(added)
	})
	if err = cmp.Or(pollErr, err); err != nil {
		return err
	}
	inv := time.Since(start)
	b.logf("%d agents started and sent their inventories in %v", added, inv.Round(time.Millisecond))
	if first {
		b.report.Enroll, b.report.Inventory = rate(added, enrolled), rate(added, inv)
	}
	return nil
}

// samples samples the servers' CPU time, then the simulator processes'.
func (b *fleetBench) samples() (servers, sims []procSample) {
	for i, id := range b.d.serverIDs {
		servers = append(servers, sampleProc(id, b.d.procs[i].cmd.Process.Pid))
	}
	return servers, b.fleet.samples()
}

// usage is what the processes sampled used since; the simulator's
// processes are added up.
func usage(servers, sims []procSample) (perServer []procUsage, simulator procUsage) {
	for _, s := range servers {
		perServer = append(perServer, usageSince(s))
	}
	simulator.Name = "simulator"
	for _, s := range sims {
		u := usageSince(s)
		simulator.CPUPercent += u.CPUPercent
		simulator.RSSMiB += u.RSSMiB
		simulator.PeakRSSMiB += u.PeakRSSMiB
	}
	simulator.CPUPercent, simulator.RSSMiB, simulator.PeakRSSMiB = round1(simulator.CPUPercent), round1(simulator.RSSMiB), round1(simulator.PeakRSSMiB)
	return perServer, simulator
}

// holdPhase measures the check-ins of the idle fleet for d, after letting
// every agent go through a whole long poll first.
func (b *fleetBench) holdPhase(ctx context.Context, d time.Duration, profile bool) (*holdResult, error) {
	b.logf("hold: %d agents; letting every agent finish a long poll (%v)", b.fleet.size(), b.o.pollWait+5*time.Second)
	if !sleepCtx(ctx, b.o.pollWait+5*time.Second) {
		return nil, ctx.Err()
	}
	if _, err := b.fleet.takeCheckins(); err != nil {
		return nil, err
	}
	before, err := b.fleet.counters()
	if err != nil {
		return nil, err
	}
	servers, sims := b.samples()
	stopProfile := func() {}
	if profile && b.o.profileDir != "" {
		stopProfile = b.profile(ctx, d, "hold")
	}
	b.logf("hold: measuring check-ins for %v", d)
	if !sleepCtx(ctx, d) {
		return nil, ctx.Err()
	}
	stopProfile()
	lat, err := b.fleet.takeCheckins()
	if err != nil {
		return nil, err
	}
	after, err := b.fleet.counters()
	if err != nil {
		return nil, err
	}
	r := &holdResult{Agents: b.fleet.size(), Measured: toMS(d), Checkins: len(lat),
		P50: toMS(sim.Percentile(lat, 50)), P99: toMS(sim.Percentile(lat, 99)), Max: toMS(sim.Percentile(lat, 100)),
		ReqPerS: round1(float64(after.Polls-before.Polls+after.Checkins-before.Checkins) / d.Seconds()),
		Errors:  after.Errors() - before.Errors()}
	r.Servers, r.Sim = usage(servers, sims)
	b.logf("hold: %d check-ins, p50 %v p99 %v max %v, %.0f requests/s, %d errors; servers %s; simulator %.0f%% CPU %.0f MiB",
		r.Checkins, r.P50, r.P99, r.Max, r.ReqPerS, r.Errors, usageLine(r.Servers), r.Sim.CPUPercent, r.Sim.RSSMiB)
	return r, nil
}

func usageLine(us []procUsage) string {
	var parts []string
	for _, u := range us {
		parts = append(parts, fmt.Sprintf("%s %.0f%% CPU %.0f MiB", u.Name, u.CPUPercent, u.RSSMiB))
	}
	return strings.Join(parts, ", ")
}

// profile starts CPU profiles of the leader and of this process for d,
// into the profile directory; the returned function stops this process's.
func (b *fleetBench) profile(ctx context.Context, d time.Duration, name string) func() {
	dir := b.o.profileDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.logf("profile: %v", err)
		return func() {}
	}
	go b.d.profileLeader(ctx, d, filepath.Join(dir, name+"-leader.prof"), b.log)
	f, err := os.Create(filepath.Join(dir, name+"-simulator.prof"))
	if err != nil {
		b.logf("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.logf("profile: %v", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// publish signs and records the next version of the simulated app.
func (b *fleetBench) publish(ctx context.Context) (string, error) {
	b.version++
	m := artifacts.Manifest{Schema: 1, Name: "simapp", Version: fmt.Sprintf("1.0.%d", b.version),
		HealthChecks: []artifacts.HealthCheck{{Name: "runs", Command: []string{"bin/app"}}}}
	if _, err := b.d.admin.Release(ctx, m, b.payload, b.key); err != nil {
		return "", fmt.Errorf("cannot publish %s: %w", m.ID(), err)
	}
	return m.ID(), nil
}

// startRollout creates and starts a rollout and returns it as started.
func (b *fleetBench) startRollout(ctx context.Context, release string, selector map[string]string, waves string, maxParallel int) (*api.Rollout, error) {
	w, err := deploy.ParseWaves(waves)
	if err != nil {
		return nil, err
	}
	created, err := b.d.admin.CreateRollout(ctx, api.RolloutRequest{Release: release, Selector: selector,
		Plan: deploy.Plan{Waves: w, MaxParallel: maxParallel}, Start: true})
	if err != nil {
		return nil, err
	}
	return b.rolloutInfo(ctx, created.ID)
}

// rolloutInfo reads a rollout without its hosts (the list is light; one
// rollout's status carries every host's history).
func (b *fleetBench) rolloutInfo(ctx context.Context, id string) (*api.Rollout, error) {
	all, err := b.d.admin.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("rollout %s is not listed", id)
}

// waitRollout waits until the rollout ends and returns it; a rollout
// that ends other than completed is an error.
func (b *fleetBench) waitRollout(ctx context.Context, id string, timeout time.Duration) (*api.Rollout, error) {
	var r *api.Rollout
	err := poll(ctx, timeout, "rollout "+id+" to end", func() bool {
		var err error
		r, err = b.rolloutInfo(ctx, id)
		return err == nil && r.State != api.RolloutRunning
	})
	if err != nil {
		return nil, err
	}
	if r.State != api.RolloutCompleted {
		return r, fmt.Errorf("rollout %s ended %s: %s", id, r.State, r.Reason)
	}
	return r, nil
}

// wavesPhase runs a one-wave rollout to one group, then to every host.
func (b *fleetBench) wavesPhase(ctx context.Context) error {
	n := b.fleet.size()
	sizes := []struct {
		hosts    int
		selector map[string]string
	}{{min(b.o.groupSize, n), map[string]string{"group": "g000"}}, {n, map[string]string{"fleet": "sim"}}}
	if sizes[0].hosts == n {
		sizes = sizes[1:]
	}
	for i, s := range sizes {
		r, err := b.wave(ctx, s.selector, s.hosts, i == len(sizes)-1)
		if err != nil {
			return err
		}
		b.report.Waves = append(b.report.Waves, r)
	}
	return nil
}

// wave rolls a new release out to hosts (all in one wave, no limit on
// parallelism) and measures when each agent got its instruction.
func (b *fleetBench) wave(ctx context.Context, selector map[string]string, hosts int, profile bool) (waveResult, error) {
	rel, err := b.publish(ctx)
	if err != nil {
		return waveResult{}, err
	}
	servers, sims := b.samples()
	writes0 := b.writeStats(ctx)
	stopProfile := func() {}
	if profile && b.o.profileDir != "" {
		stopProfile = b.profile(ctx, 20*time.Second, "wave")
	}
	defer stopProfile()
	b.logf("wave: %s to %d hosts in one wave", rel, hosts)
	r, err := b.startRollout(ctx, rel, selector, "100%", 0)
	if err != nil {
		return waveResult{}, err
	}
	var pollErr error
	err = poll(ctx, 5*time.Minute, fmt.Sprintf("%d agents to receive their instruction", hosts), func() bool {
		n, err := b.fleet.receivedCount(r.ID)
		pollErr = err
		return err != nil || n >= hosts
	})
	if err = cmp.Or(pollErr, err); err != nil {
		return waveResult{}, err
	}
	receipts, err := b.fleet.received(r.ID)
	if err != nil {
		return waveResult{}, err
	}
	var lat []time.Duration
	for _, rc := range receipts {
		lat = append(lat, rc.At.Sub(r.StartedAt))
	}
	end, err := b.waitRollout(ctx, r.ID, 10*time.Minute)
	if err != nil {
		return waveResult{}, err
	}
	res := waveResult{Hosts: hosts, P50: toMS(sim.Percentile(lat, 50)), P99: toMS(sim.Percentile(lat, 99)),
		Max: toMS(sim.Percentile(lat, 100)), Completed: toMS(end.EndedAt.Sub(r.StartedAt))}
	res.Servers, _ = usage(servers, sims)
	// Split the latency: the engine's decision (the hosts' instruction
	// time, which the leader stamps on it) and its delivery.
	if st, _, err := b.d.admin.Rollout(ctx, r.ID, 0, ""); err == nil {
		instructed := map[string]time.Time{}
		var decided []time.Duration
		for _, d := range st.Hosts {
			instructed[d.Host] = d.StartedAt
			decided = append(decided, d.StartedAt.Sub(r.StartedAt))
		}
		var delivery []time.Duration
		for _, rc := range receipts {
			delivery = append(delivery, rc.At.Sub(instructed[rc.Host]))
		}
		res.Decided = toMS(sim.Percentile(decided, 100))
		res.DeliveryP50, res.DeliveryP99 = toMS(sim.Percentile(delivery, 50)), toMS(sim.Percentile(delivery, 99))
	}
	writes := b.writeStats(ctx).since(writes0)
	res.Writes = writes
	b.logf("wave: %d hosts instructed: p50 %v p99 %v max %v (engine's decision after %v; delivery p50 %v p99 %v); all succeeded after %v; servers %s; writes %s",
		hosts, res.P50, res.P99, res.Max, res.Decided, res.DeliveryP50, res.DeliveryP99, res.Completed, usageLine(res.Servers), writes)
	return res, nil
}

// rolloutPhase rolls a release out to one group of hosts in waves
// 1,10%,50%,100% with max_parallel 200.
func (b *fleetBench) rolloutPhase(ctx context.Context) (*rolloutResult, error) {
	const waves, maxParallel = "1,10%,50%,100%", 200
	group := "g001"
	if b.groups < 2 {
		group = "g000"
	}
	rel, err := b.publish(ctx)
	if err != nil {
		return nil, err
	}
	b.logf("rollout: %s to group %s in waves %s, max_parallel %d, apply %v", rel, group, waves, maxParallel, b.o.applyTime)
	writes0 := b.writeStats(ctx)
	r, err := b.startRollout(ctx, rel, map[string]string{"group": group}, waves, maxParallel)
	if err != nil {
		return nil, err
	}
	end, err := b.waitRollout(ctx, r.ID, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	st, _, err := b.d.admin.Rollout(ctx, r.ID, 0, "")
	if err != nil {
		return nil, err
	}
	res := &rolloutResult{Hosts: len(end.Targets), Waves: waves, MaxParallel: maxParallel, ApplyTime: toMS(b.o.applyTime),
		Total: toMS(end.EndedAt.Sub(r.StartedAt))}
	var ideal time.Duration
	prev := 0
	for w, size := range end.Sizes {
		batches := (size - prev + maxParallel - 1) / maxParallel
		ideal += time.Duration(batches) * b.o.applyTime
		prev = size
		var first, last time.Time
		for _, d := range st.Hosts {
			if d.Wave != w {
				continue
			}
			if first.IsZero() || d.StartedAt.Before(first) {
				first = d.StartedAt
			}
			if d.UpdatedAt.After(last) {
				last = d.UpdatedAt
			}
		}
		res.Wave = append(res.Wave, toMS(last.Sub(first)))
	}
	res.Ideal = toMS(ideal)
	res.Writes = b.writeStats(ctx).since(writes0)
	b.logf("rollout: %d hosts in %v (ideal %v); waves %v; writes %s", res.Hosts, res.Total, res.Ideal, res.Wave, res.Writes)
	return res, nil
}

// failoverPhase kills the leader repeatedly under the fleet's load. Before
// each kill the agents are sent back to their first servers, so that each
// kill cuts off the killed server's share of the fleet.
func (b *fleetBench) failoverPhase(ctx context.Context) (*failoverResult, error) {
	res := &failoverResult{Agents: b.fleet.size(), Kills: b.o.kills}
	var writes, reconnects []time.Duration
	for trial := 1; trial <= b.o.kills; trial++ {
		if trial > 1 {
			if err := b.fleet.rehome(); err != nil {
				return nil, err
			}
			b.logf("failover: agents going back to their first servers (%v)", b.o.pollWait+5*time.Second)
			if !sleepCtx(ctx, b.o.pollWait+5*time.Second) {
				return nil, ctx.Err()
			}
		}
		leader, err := b.d.leaderIndex(ctx)
		if err != nil {
			return nil, err
		}
		killedURL := b.servers[leader]
		if _, err := b.fleet.takeOutages(); err != nil {
			return nil, err
		}
		expected, err := b.fleet.onServer(killedURL)
		if err != nil {
			return nil, err
		}
		if err := b.d.procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return nil, err
		}
		killed := time.Now()
		<-b.d.procs[leader].exited
		for {
			_, err := b.d.admin.Do(ctx, client.Request{Method: "POST", Path: api.PathTokens, JSON: api.TokenRequest{TTL: "1h", Uses: 1}}, nil)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		took := time.Since(killed)
		writes = append(writes, took)
		// The agents of the killed server lose their long poll at once and
		// check in elsewhere: wait until each has been served again, or
		// for reconnectWait.
		served := 0
		var worst time.Duration
		_ = poll(ctx, reconnectWait, "the killed server's agents to be served again", func() bool {
			more, _ := b.fleet.takeOutages()
			for _, o := range more {
				if o.Server != killedURL || o.Failed.Before(killed) {
					continue
				}
				served++
				reconnects = append(reconnects, o.Recovered.Sub(killed))
				worst = max(worst, o.Recovered.Sub(killed))
			}
			return served >= expected
		})
		res.Affected += expected
		res.NotServed += max(expected-served, 0)
		b.logf("failover %d/%d: killed %s; write accepted after %v; %d of its %d agents served again within %v",
			trial, b.o.kills, b.d.serverIDs[leader], took.Round(time.Millisecond), served, expected, worst.Round(time.Millisecond))
		if err := b.d.restartServer(ctx, leader); err != nil {
			return nil, err
		}
	}
	res.WriteP50, res.WriteP99, res.WriteMax = toMS(sim.Percentile(writes, 50)), toMS(sim.Percentile(writes, 99)), toMS(sim.Percentile(writes, 100))
	res.ReconnP50, res.ReconnP99, res.ReconnMax = toMS(sim.Percentile(reconnects, 50)), toMS(sim.Percentile(reconnects, 99)), toMS(sim.Percentile(reconnects, 100))
	return res, nil
}

// reconnectWait is how long the failover phase waits for the agents of a
// killed server to be served again; those that are not count as such.
const reconnectWait = 30 * time.Second

// hostDownAfter is the servers' host_down_after: the bench cluster runs
// with the default.
const hostDownAfter = 3 * time.Minute

// checkMarkedDown waits until a host missed by a new leader would have
// been marked down (host_down_after and two liveness rounds after the last
// kill), then counts the hosts the servers' logs say were marked down.
func (b *fleetBench) checkMarkedDown(ctx context.Context, lastKill time.Time) error {
	until := lastKill.Add(b.o.downWait)
	if wait := time.Until(until); wait > 0 {
		b.logf("failover: waiting %v more, until a host missed by the new leader would have been marked down", wait.Round(time.Second))
		if !sleepCtx(ctx, wait) {
			return ctx.Err()
		}
	}
	down := 0
	for _, id := range b.d.serverIDs {
		log, err := os.ReadFile(filepath.Join(b.d.dir, "logs", id+".log"))
		if err != nil {
			return err
		}
		down += countMarkedDown(string(log))
	}
	b.report.Failover.MarkedDown = down
	b.report.Failover.DownCheckedAfter = toMS(time.Since(lastKill))
	b.logf("failover: %d hosts marked down (servers' logs, %v after the last kill)", down, time.Since(lastKill).Round(time.Second))
	return nil
}

// countMarkedDown counts the hosts named down in a server log's "host
// status changed" lines (slog text: down="[h1 h2]" or down=[h1]).
func countMarkedDown(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="host status changed"`) {
			continue
		}
		_, after, ok := strings.Cut(line, " down=")
		if !ok {
			continue
		}
		after = strings.TrimPrefix(after, `"`)
		list, _, _ := strings.Cut(strings.TrimPrefix(after, "["), "]")
		n += len(strings.Fields(list))
	}
	return n
}

// growPhase adds agents until the fleet is no longer held within the
// target, a request fails, or a limit is reached.
func (b *fleetBench) growPhase(ctx context.Context) (*growResult, error) {
	res := &growResult{}
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, err
	}
	for {
		h, err := b.holdPhase(ctx, b.o.growHold, false)
		if err != nil {
			return nil, err
		}
		res.Steps = append(res.Steps, *h)
		if h.P99 > toMS(b.o.target) || h.Errors > 0 {
			res.Stopped = fmt.Sprintf("at %d agents check-in p99 was %v (target %v) with %d errors", h.Agents, h.P99, b.o.target, h.Errors)
			break
		}
		res.Largest = h.Agents
		next := b.fleet.size() + b.o.growStep
		switch {
		case next > b.o.maxAgents:
			res.Stopped = fmt.Sprintf("--max-agents %d reached", b.o.maxAgents)
		case uint64(next/len(b.servers))+1000 > limit:
			res.Stopped = fmt.Sprintf("the servers' open-file limit (%d, about a third of the fleet's connections each) allows no more agents", limit)
		}
		if res.Stopped != "" {
			break
		}
		if err := b.grow(ctx, next); err != nil {
			res.Stopped = fmt.Sprintf("growing to %d agents failed: %v", next, err)
			break
		}
	}
	b.logf("grow: largest fleet held within %v: %d agents; %s", b.o.target, res.Largest, res.Stopped)
	return res, nil
}

// sleepCtx waits for d or the end of ctx, reporting whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
