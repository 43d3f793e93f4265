package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/sim"
)

// `drover bench fleet` measures what one cluster holds: N simulated agents
// (controlplane/sim, each with its own certificate and connection) in this
// process, against three real server processes on loopback.

// fleetOptions are the flags of `drover bench fleet`.
type fleetOptions struct {
	agents      int
	groupSize   int
	sourceAddrs int
	packages    int
	pollWait    time.Duration
	hold        time.Duration
	applyTime   time.Duration
	failureRate float64
	kills       int
	growStep    int
	maxAgents   int
	growHold    time.Duration
	target      time.Duration
	startRate   int
	downWait    time.Duration
	perProcess  int
	phases      []string
	profileDir  string
}

var fleetPhases = []string{"hold", "waves", "rollout", "failover", "grow"}

func (a *app) benchFleetCommand() *cobra.Command {
	var o fleetOptions
	cmd := &cobra.Command{
		Use:   "fleet [--agents 10000] [--phases hold,waves,rollout,failover,grow]",
		Short: "Simulate N agents against a local 3-server cluster: check-ins, waves, failover, capacity",
		Long: `Start 3 server processes on loopback and N simulated agents in this
process. Every simulated agent enrolls with a join token and its own key,
holds its own mutual-TLS connection (from one of several loopback source
addresses), long-polls with --poll-wait, sends an inventory, and carries
out instructions with a simulated apply (--apply-time, --failure-rate),
reporting each step as the real agent does. Then, by phase:

  hold      every idle agent also times a check-in that does not wait
            (?wait=0s) after each long poll: check-in latency p50/p99, the
            servers' CPU and memory
  waves     one wave of 1,000 hosts, then one of every host: time from the
            rollout's start to each agent holding its instruction
  rollout   1,000 hosts in waves 1,10%,50%,100% with max_parallel 200:
            start to completed, against the ideal (each wave's batches of
            max_parallel hosts, one apply time each)
  failover  SIGKILL the leader --kills times: time until a write is
            accepted, how soon the agents of the killed server are served
            again; at the end, whether any host was marked down
  grow      enroll --grow-step more agents at a time until check-in p99
            passes --target, a request fails, or the open-file limit or
            --max-agents is reached: the largest N held

The open-file soft limit is raised to the hard limit; N is bounded by it.
Progress goes to stderr, the results to stdout (-o json for the bench
report generator).`,
		Example: `  drover bench fleet --agents 10000
  drover bench fleet --agents 2000 --phases hold,waves --hold 30s
  drover bench fleet --agents 10000 --phases hold --profile /tmp/prof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, p := range o.phases {
				if !slices.Contains(fleetPhases, p) {
					return usageErr("--phases: %q is not one of %s", p, strings.Join(fleetPhases, ", "))
				}
			}
			switch {
			case o.agents < 1:
				return usageErr("--agents: at least 1")
			case o.groupSize < 1:
				return usageErr("--group-size: at least 1")
			case o.failureRate < 0 || o.failureRate > 1:
				return usageErr("--failure-rate: between 0 and 1")
			case o.pollWait < time.Second:
				return usageErr("--poll-wait: at least 1s")
			case o.startRate < 1:
				return usageErr("--start-rate: at least 1")
			}
			if a.output != "json" && a.output != "table" && a.output != "" {
				return usageErr("--output %q: allowed values are table, json", a.output)
			}
			return a.benchFleet(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.agents, "agents", 10000, "simulated agents")
	f.IntVar(&o.groupSize, "group-size", 1000, "agents per join token; each group has its label group=gNNN")
	f.IntVar(&o.sourceAddrs, "source-addrs", 8, "loopback source addresses to spread connections over (127.0.0.2 on)")
	f.IntVar(&o.startRate, "start-rate", 200, "agents started per second (each makes a TLS handshake and an inventory write)")
	f.IntVar(&o.perProcess, "per-process", 0, "simulated agents per simulator process (each holds an open file per agent); more start worker processes (default: the open-file limit less 1,000)")
	f.IntVar(&o.packages, "inventory-packages", 100, "OS packages in each simulated inventory")
	f.DurationVar(&o.pollWait, "poll-wait", 30*time.Second, "long-poll wait: the check-in period of an idle agent")
	f.DurationVar(&o.hold, "hold", 60*time.Second, "how long the hold phase measures check-ins")
	f.DurationVar(&o.applyTime, "apply-time", time.Second, "duration of a simulated apply")
	f.Float64Var(&o.failureRate, "failure-rate", 0, "share of simulated applies that end reverted (0 to 1)")
	f.IntVar(&o.kills, "kills", 3, "leader kills in the failover phase (the agents go back to their first servers between kills, a long poll each)")
	f.DurationVar(&o.downWait, "down-check-after", hostDownAfter+15*time.Second, "after the failover phase, search the servers' logs for hosts marked down this long after the last kill (the servers' host_down_after is 3m)")
	f.IntVar(&o.growStep, "grow-step", 5000, "agents added at each step of the grow phase")
	f.IntVar(&o.maxAgents, "max-agents", 50000, "the grow phase stops at this many agents")
	f.DurationVar(&o.growHold, "grow-hold", 35*time.Second, "how long each grow step measures check-ins")
	f.DurationVar(&o.target, "target", 25*time.Millisecond, "check-in p99 the grow phase must stay within")
	f.StringSliceVar(&o.phases, "phases", fleetPhases, "phases to run, in this order: "+strings.Join(fleetPhases, ","))
	cmd.AddCommand(a.benchFleetWorkerCommand())
	f.StringVar(&o.profileDir, "profile", "", "write CPU profiles of the leader and of this process (hold and 10,000-host wave) to this directory")
	return cmd
}

// fleetReport is the result of `drover bench fleet`, as -o json prints it.
type fleetReport struct {
	Agents         int             `json:"agents"`
	PollWait       string          `json:"poll_wait"`
	SourceAddrs    int             `json:"source_addrs"`
	InventoryBytes int             `json:"inventory_bytes"`
	FileLimit      uint64          `json:"file_limit"`
	Enroll         timedRate       `json:"enroll"`
	Inventory      timedRate       `json:"inventory"`
	Hold           *holdResult     `json:"hold,omitempty"`
	Waves          []waveResult    `json:"waves,omitempty"`
	Rollout        *rolloutResult  `json:"rollout,omitempty"`
	Failover       *failoverResult `json:"failover,omitempty"`
	Grow           *growResult     `json:"grow,omitempty"`
	Problems       []string        `json:"problems,omitempty"`
}

// timedRate is how long N operations took, and their rate.
type timedRate struct {
	Count  int     `json:"count"`
	Took   ms      `json:"took_ms"`
	PerSec float64 `json:"per_sec"`
}

func rate(n int, d time.Duration) timedRate {
	return timedRate{Count: n, Took: toMS(d), PerSec: round1(float64(n) / d.Seconds())}
}

// fleetBench is one run of `drover bench fleet`.
type fleetBench struct {
	o       fleetOptions
	log     io.Writer
	d       *devCluster
	fleet   *simFleet
	servers []string
	key     minisign.PrivateKey
	payload string
	version int
	groups  int
	report  fleetReport
}

func (a *app) benchFleet(ctx context.Context, o fleetOptions) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	if o.perProcess == 0 {
		o.perProcess = int(limit) - 1000
	}
	if o.perProcess < 1 || uint64(o.perProcess)+500 > limit {
		return fmt.Errorf("the open-file limit is %d, too low for %d simulated agents per process (each holds a connection): raise the hard limit (ulimit -Hn) or pass a lower --per-process",
			limit, o.perProcess)
	}
	dir, err := os.MkdirTemp("", "drover-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &fleetBench{o: o, log: a.stderr}
	b.report = fleetReport{Agents: o.agents, PollWait: o.pollWait.String(), SourceAddrs: o.sourceAddrs, FileLimit: limit}
	b.logf("starting 3 servers")
	if b.d, err = startDevCluster(ctx, dir, 0, func(string, ...any) {}); err != nil {
		return err
	}
	defer b.d.stop()
	if err := b.setup(dir); err != nil {
		return err
	}
	defer b.fleet.stop()
	if err := b.grow(ctx, o.agents); err != nil {
		return err
	}
	start := time.Now()
	var lastKill time.Time
	for _, phase := range o.phases {
		var err error
		switch phase {
		case "hold":
			b.report.Hold, err = b.holdPhase(ctx, o.hold, true)
		case "waves":
			err = b.wavesPhase(ctx)
		case "rollout":
			b.report.Rollout, err = b.rolloutPhase(ctx)
		case "failover":
			b.report.Failover, err = b.failoverPhase(ctx)
			lastKill = time.Now()
			if err == nil {
				err = b.fleet.rehome()
			}
		case "grow":
			b.report.Grow, err = b.growPhase(ctx)
		}
		if err != nil {
			return fmt.Errorf("phase %s: %w", phase, err)
		}
	}
	if b.report.Failover != nil {
		if err := b.checkMarkedDown(ctx, lastKill); err != nil {
			return err
		}
	}
	b.logf("done in %v", time.Since(start).Round(time.Second))
	return a.printFleetReport(&b.report)
}

// setup makes the signing key, the payload every release carries, and
// the (empty) simulated fleet.
func (b *fleetBench) setup(dir string) error {
	var err error
	if b.key, err = artifacts.LoadSecretKey(b.d.key, ""); err != nil {
		return err
	}
	src := filepath.Join(dir, "simapp")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "app"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return err
	}
	b.payload = filepath.Join(dir, "simapp.tar")
	if err := packDir(src, b.payload, "tar"); err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(b.d.boot.CADir, "ca.crt"))
	if err != nil {
		return err
	}
	for _, s := range b.d.specs {
		b.servers = append(b.servers, "https://"+s.APIAddr)
	}
	wc := workerConfig{Servers: b.servers, CA: ca, PollWait: b.o.pollWait, ApplyTime: b.o.applyTime, FailureRate: b.o.failureRate,
		InventoryPackages: b.o.packages, StartRate: b.o.startRate, Seed: 1}
	for _, a := range sim.LoopbackSources(b.o.sourceAddrs) {
		wc.SourceAddrs = append(wc.SourceAddrs, a.String())
	}
	cfg, err := wc.simConfig()
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b.fleet = &simFleet{perShard: b.o.perProcess, newShard: func(i int) (shard, error) {
		if i == 0 {
			f, err := sim.New(cfg)
			return localShard{f}, err
		}
		wc := wc
		wc.Seed += uint64(i)
		b.logf("starting simulator worker %d (agents beyond %d)", i, i*b.o.perProcess)
		return startWorker(wc, b.log)
	}}
	b.report.InventoryBytes = sim.InventorySize(b.o.packages)
	return nil
}

func (b *fleetBench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// printFleetReport writes the results: JSON with -o json, else a summary.
func (a *app) printFleetReport(r *fleetReport) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	w := a.stdout
	fmt.Fprintf(w, "fleet of %d simulated agents (long poll %s, %d source addresses, %d-byte inventories)\n",
		r.Agents, r.PollWait, r.SourceAddrs, r.InventoryBytes)
	fmt.Fprintf(w, "  enrolled in %v (%.0f/s); inventories in %v (%.0f/s)\n", r.Enroll.Took, r.Enroll.PerSec, r.Inventory.Took, r.Inventory.PerSec)
	if h := r.Hold; h != nil {
		fmt.Fprintf(w, "  idle check-in latency: p50 %v, p99 %v, max %v over %d check-ins (%.0f requests/s, %d errors)\n",
			h.P50, h.P99, h.Max, h.Checkins, h.ReqPerS, h.Errors)
		fmt.Fprintf(w, "    servers: %s; simulator %.0f%% CPU %.0f MiB\n", usageLine(h.Servers), h.Sim.CPUPercent, h.Sim.RSSMiB)
	}
	for _, v := range r.Waves {
		fmt.Fprintf(w, "  wave of %d hosts: instruction latency p50 %v, p99 %v, max %v; all succeeded after %v\n",
			v.Hosts, v.P50, v.P99, v.Max, v.Completed)
	}
	if ro := r.Rollout; ro != nil {
		fmt.Fprintf(w, "  rollout of %d hosts in waves %s, max_parallel %d, apply %v: %v (ideal %v); per wave %v\n",
			ro.Hosts, ro.Waves, ro.MaxParallel, ro.ApplyTime, ro.Total, ro.Ideal, ro.Wave)
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "  leader killed %d times under %d agents: write accepted p50 %v, p99 %v, max %v\n", f.Kills, f.Agents, f.WriteP50, f.WriteP99, f.WriteMax)
		fmt.Fprintf(w, "    %d agents of killed servers served again: p50 %v, p99 %v, max %v (%d not within 30s); hosts marked down: %d (checked %v after the last kill)\n",
			f.Affected, f.ReconnP50, f.ReconnP99, f.ReconnMax, f.NotServed, f.MarkedDown, f.DownCheckedAfter)
	}
	if g := r.Grow; g != nil {
		for _, s := range g.Steps {
			fmt.Fprintf(w, "  %6d agents: check-in p50 %v, p99 %v; servers %s\n", s.Agents, s.P50, s.P99, usageLine(s.Servers))
		}
		fmt.Fprintf(w, "  largest fleet held: %d agents (%s)\n", g.Largest, g.Stopped)
	}
	return nil
}
