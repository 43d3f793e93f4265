package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/sim"
	"github.com/drover-dev/drover/deploy"
)

// `drover bench rollout` times a whole rollout to real agents: the
// processes `drover dev` starts, a real payload, real health checks.

func (a *app) benchRolloutCommand() *cobra.Command {
	var agents, sizeMiB, maxParallel int
	var waves string
	cmd := &cobra.Command{
		Use:   "rollout [--agents 50] [--size-mib 10] [--waves 1,10%,50%,100%]",
		Short: "Time a rollout of a signed payload to N real agents, start to completed, and where the time goes",
		Long: `Start a local cluster of 3 servers and N real drover-agent processes (as
drover dev does), publish a release whose payload holds SIZE MiB of random
data and a health check, and roll it out in the given waves with no bake
time. Prints the time from the rollout's start to its completion and, per
wave and per step of the hosts' applies, where the time went.`,
		Example: `  drover bench rollout --agents 50 --size-mib 10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agents < 1 || agents > 500 {
				return usageErr("--agents: between 1 and 500")
			}
			if sizeMiB < 1 {
				return usageErr("--size-mib: at least 1")
			}
			return a.benchRollout(cmd.Context(), agents, sizeMiB, waves, maxParallel)
		},
	}
	cmd.Flags().IntVar(&agents, "agents", 50, "real agents to start")
	cmd.Flags().IntVar(&sizeMiB, "size-mib", 10, "payload size in MiB (random data)")
	cmd.Flags().StringVar(&waves, "waves", "1,10%,50%,100%", "waves of the rollout")
	cmd.Flags().IntVar(&maxParallel, "max-parallel", 0, "max_parallel of the rollout (0: no limit)")
	return cmd
}

// realRolloutReport is the result of `drover bench rollout`.
type realRolloutReport struct {
	Agents  int    `json:"agents"`
	SizeMiB int    `json:"size_mib"`
	Waves   string `json:"waves"`
	Total   ms     `json:"total_ms"` // the rollout's start to its completion
	// PerWave is each wave from its first host instructed to its last
	// host succeeded; Gaps the time from a wave's end to the next one's
	// first instruction (the engine promoting it).
	PerWave []ms `json:"wave_ms"`
	Gaps    []ms `json:"gap_ms"`
	// Steps is the median time hosts spent in each state before the next,
	// over all hosts.
	Steps []stepTime `json:"steps"`
	// CPU is the CPU time the processes used during the rollout, in
	// seconds: the agents together, each agent on average, the servers
	// together; Wall is the rollout's wall time, for comparison (the
	// machine has Cores cores).
	AgentsCPU   float64 `json:"agents_cpu_s"`
	PerAgentCPU float64 `json:"per_agent_cpu_s"`
	ServersCPU  float64 `json:"servers_cpu_s"`
	Cores       int     `json:"cores"`
}

type stepTime struct {
	State  deploy.HostState `json:"state"`
	Median ms               `json:"median_ms"`
	Max    ms               `json:"max_ms"`
}

func (a *app) benchRollout(ctx context.Context, agents, sizeMiB int, waves string, maxParallel int) error {
	w, err := deploy.ParseWaves(waves)
	if err != nil {
		return usageErr("--waves: %v", err)
	}
	dir, err := os.MkdirTemp("", "drover-bench-rollout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(a.stderr, "starting 3 servers and %d agents\n", agents)
	d, err := startDevCluster(ctx, dir, agents, func(string, ...any) {})
	if err != nil {
		return err
	}
	defer d.stop()
	payload, err := randomPayload(dir, sizeMiB)
	if err != nil {
		return err
	}
	key, err := artifacts.LoadSecretKey(d.key, "")
	if err != nil {
		return err
	}
	m := artifacts.Manifest{Schema: 1, Name: "app", Version: "1.0.0",
		HealthChecks: []artifacts.HealthCheck{{Name: "runs", Command: []string{"bin/app"}}}}
	if _, err := d.admin.Release(ctx, m, payload, key); err != nil {
		return err
	}
	syscall.Sync() // the test data's writeback must not compete with the measurement
	fmt.Fprintf(a.stderr, "rolling %s (%d MiB) out to %d agents in waves %s\n", m.ID(), sizeMiB, agents, waves)
	var before []procSample
	for _, p := range d.procs {
		before = append(before, sampleProc(p.name, p.cmd.Process.Pid))
	}
	created, err := d.admin.CreateRollout(ctx, api.RolloutRequest{Release: m.ID(), Plan: deploy.Plan{Waves: w, MaxParallel: maxParallel}, Start: true})
	if err != nil {
		return err
	}
	var st *api.RolloutStatus
	for index := created.Index - 1; ; {
		if st, index, err = d.admin.Rollout(ctx, created.ID, index, "30s"); err != nil {
			return err
		}
		if st.Rollout.State != api.RolloutRunning {
			break
		}
	}
	if st.Rollout.State != api.RolloutCompleted {
		return fmt.Errorf("rollout %s ended %s: %s", st.Rollout.ID, st.Rollout.State, st.Rollout.Reason)
	}
	r := summarizeRollout(st)
	r.Agents, r.SizeMiB, r.Waves, r.Cores = agents, sizeMiB, waves, runtime.NumCPU()
	for i, b := range before {
		used := float64(sampleProc(b.name, b.pid).ticks-b.ticks) / clockTicks
		if i < len(d.serverIDs) {
			r.ServersCPU += used
		} else {
			r.AgentsCPU += used
		}
	}
	r.AgentsCPU, r.ServersCPU, r.PerAgentCPU = round1(r.AgentsCPU), round1(r.ServersCPU), round1(r.AgentsCPU/float64(agents)*10)/10
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(a.stdout, "rollout of %d MiB to %d real agents in waves %s: %v from start to completed\n", sizeMiB, agents, waves, r.Total)
	fmt.Fprintf(a.stdout, "  per wave %v; between waves %v\n", r.PerWave, r.Gaps)
	fmt.Fprintf(a.stdout, "  CPU used meanwhile: agents %.1f s (%.2f s each), servers %.1f s, on %d cores\n", r.AgentsCPU, r.PerAgentCPU, r.ServersCPU, r.Cores)
	for _, s := range r.Steps {
		fmt.Fprintf(a.stdout, "  %-12s median %v, max %v\n", s.State, s.Median, s.Max)
	}
	return nil
}

// randomPayload packs a payload of n MiB of random data and a script that
// exits 0 (its health check) as a tar, and returns its path.
func randomPayload(dir string, n int) (string, error) {
	src := filepath.Join(dir, "build")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		return "", err
	}
	data := make([]byte, n<<20)
	rnd := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rnd.Uint64())
	}
	if err := os.WriteFile(filepath.Join(src, "data.bin"), data, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "app"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return "", err
	}
	payload := filepath.Join(dir, "app.tar")
	return payload, packDir(src, payload, "tar")
}

// summarizeRollout says where a completed rollout's time went, from its
// hosts' state histories (all stamped with the leader's clock).
func summarizeRollout(st *api.RolloutStatus) realRolloutReport {
	r := realRolloutReport{Total: toMS(st.Rollout.EndedAt.Sub(st.Rollout.StartedAt))}
	waves := len(st.Rollout.Sizes)
	first := make([]time.Time, waves)
	last := make([]time.Time, waves)
	in := map[deploy.HostState][]time.Duration{}
	var order []deploy.HostState
	for _, d := range st.Hosts {
		if d.Wave < waves {
			if first[d.Wave].IsZero() || d.StartedAt.Before(first[d.Wave]) {
				first[d.Wave] = d.StartedAt
			}
			if d.UpdatedAt.After(last[d.Wave]) {
				last[d.Wave] = d.UpdatedAt
			}
		}
		for i := 0; i+1 < len(d.History); i++ {
			s := d.History[i].State
			if !slices.Contains(order, s) {
				order = append(order, s)
			}
			in[s] = append(in[s], d.History[i+1].At.Sub(d.History[i].At))
		}
	}
	for w := range waves {
		r.PerWave = append(r.PerWave, toMS(last[w].Sub(first[w])))
		if w > 0 {
			r.Gaps = append(r.Gaps, toMS(first[w].Sub(last[w-1])))
		}
	}
	for _, s := range order {
		r.Steps = append(r.Steps, stepTime{State: s, Median: toMS(sim.Percentile(in[s], 50)), Max: toMS(sim.Percentile(in[s], 100))})
	}
	return r
}
