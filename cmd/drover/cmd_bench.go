package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/deploy"
)

// The bench commands measure a local cluster of real processes. They are
// for the people who build drover and for capacity planning; `make bench`
// runs them and writes bench/results.md.

func (a *app) benchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a local cluster: leader failover, write throughput",
	}
	var trials int
	failover := &cobra.Command{
		Use:   "failover [--trials 20]",
		Short: "Kill -9 the leader repeatedly and time until a write is accepted again",
		Long: `Start 3 server processes, then repeatedly: SIGKILL the leader, time from the
kill until a write is acknowledged, restart the killed server and let it
catch up. Prints the distribution (stock Raft timeouts).`,
		Example: `  drover bench failover --trials 20`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.benchFailover(cmd.Context(), trials)
		},
	}
	failover.Flags().IntVar(&trials, "trials", 20, "number of leader kills")
	var duration time.Duration
	var workers []int
	var profile string
	writes := &cobra.Command{
		Use:   "writes [--duration 10s] [--workers 1,16,64]",
		Short: "Measure small-write throughput and latency through Raft",
		Long: `Start 3 server processes and write small commands (join tokens) through
the API with N concurrent writers for each N, reporting ops/s and latency
percentiles; then measure one fsync of a 4 KiB write on the same disk, the
cost Raft's batching amortises.`,
		Example: `  drover bench writes --duration 10s --workers 1,16,64`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.benchWrites(cmd.Context(), duration, workers, profile)
		},
	}
	writes.Flags().DurationVar(&duration, "duration", 10*time.Second, "measuring time per concurrency level")
	writes.Flags().IntSliceVar(&workers, "workers", []int{1, 16, 64}, "concurrency levels")
	writes.Flags().StringVar(&profile, "profile", "", "write a CPU profile of the leader during the last level to this file")
	var sizeMiB int
	var uploadProfile string
	upload := &cobra.Command{
		Use:   "upload [--size-mib 100]",
		Short: "Measure payload upload throughput, and what a new version costs",
		Long: `Start 3 server processes and upload a payload of incompressible data
packed as tar (the worst case for throughput) until a quorum holds it
durably; then change 1 MiB of it and upload again, reporting the bytes the
second upload sent.`,
		Example: `  drover bench upload --size-mib 100`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.benchUpload(cmd.Context(), sizeMiB, uploadProfile)
		},
	}
	upload.Flags().IntVar(&sizeMiB, "size-mib", 100, "payload size in MiB")
	upload.Flags().StringVar(&uploadProfile, "profile", "", "write CPU profiles of the first upload (this process, and the leader) with this path prefix")
	var agentBin string
	var idle time.Duration
	footprint := &cobra.Command{
		Use:   "footprint [--agent-bin FILE] [--idle 30s]",
		Short: "Measure an agent's binary size and its resident memory when idle",
		Long: `Start a local cluster with one agent (the binary given, or the one next to
drover), let it enroll, report and sit idle, then read its resident set
size (VmRSS) and its binary's size. make footprint builds a static,
stripped agent and runs this.`,
		Example: `  drover bench footprint --agent-bin bin/drover-agent-static`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.benchFootprint(cmd.Context(), agentBin, idle)
		},
	}
	footprint.Flags().StringVar(&agentBin, "agent-bin", "", "agent binary to measure")
	footprint.Flags().DurationVar(&idle, "idle", 30*time.Second, "how long the agent sits idle before it is measured")
	var payloadMiB int
	apply := &cobra.Command{
		Use:     "apply [--size-mib 10]",
		Short:   "Time one agent from instruction to committed, for a payload of N MiB",
		Example: `  drover bench apply --size-mib 10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.benchApply(cmd.Context(), payloadMiB)
		},
	}
	apply.Flags().IntVar(&payloadMiB, "size-mib", 10, "payload size in MiB (random data)")
	cmd.AddCommand(failover, writes, upload, footprint, apply, a.benchFleetCommand(), a.benchRolloutCommand())
	return cmd
}

func (a *app) benchFootprint(ctx context.Context, agentBin string, idle time.Duration) error {
	dir, err := os.MkdirTemp("", "drover-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := startDevClusterWith(ctx, dir, 1, agentBin, func(string, ...any) {})
	if err != nil {
		return err
	}
	defer d.stop()
	agentProc := d.procs[len(d.procs)-1]
	fmt.Fprintf(a.stderr, "agent enrolled; idle for %v\n", idle)
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", agentProc.cmd.Process.Pid))
	if err != nil {
		return err
	}
	rss := ""
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			rss = strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	st, err := os.Stat(agentProc.cmd.Path)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "agent idle RSS %s; binary %s is %.2f MB\n", rss, agentProc.cmd.Path, float64(st.Size())/1e6)
	return nil
}

func (a *app) benchApply(ctx context.Context, sizeMiB int) error {
	dir, err := os.MkdirTemp("", "drover-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := startDevCluster(ctx, dir, 1, func(string, ...any) {})
	if err != nil {
		return err
	}
	defer d.stop()
	src := filepath.Join(dir, "build")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		return err
	}
	data := make([]byte, sizeMiB<<20)
	rnd := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rnd.Uint64())
	}
	if err := os.WriteFile(filepath.Join(src, "data.bin"), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "app"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return err
	}
	payload := filepath.Join(dir, "app.tar")
	if err := packDir(src, payload, "tar"); err != nil {
		return err
	}
	key, err := artifacts.LoadSecretKey(d.key, "")
	if err != nil {
		return err
	}
	if _, err := d.admin.Release(ctx, artifacts.Manifest{Schema: 1, Name: "app", Version: "1.0.0",
		HealthChecks: []artifacts.HealthCheck{{Name: "runs", Command: []string{"bin/app"}}}}, payload, key); err != nil {
		return err
	}
	syscall.Sync()
	req, _ := rolloutRequest("app@1.0.0", "100%", "0", "", 0)
	req.Start = true
	created, err := d.admin.CreateRollout(ctx, req)
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
	h := st.Hosts[0]
	if h.State != deploy.Succeeded {
		return fmt.Errorf("the apply ended %s: %s", h.State, h.Reason)
	}
	fmt.Fprintf(a.stdout, "instruction to committed, %d MiB payload, health check passing at once, min_healthy_time 0: %v\n",
		sizeMiB, h.UpdatedAt.Sub(h.StartedAt).Round(time.Millisecond))
	return nil
}

// benchUpload uploads a payload of n MiB of random files, then a version
// with one 1 MiB file changed.
func (a *app) benchUpload(ctx context.Context, n int, profile string) error {
	d, done, err := a.benchCluster(ctx)
	if err != nil {
		return err
	}
	defer done()
	rnd := rand.New(rand.NewPCG(7, 11))
	src := filepath.Join(d.dir, "payload")
	for i := range n {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 8 {
			binary.LittleEndian.PutUint64(b[j:], rnd.Uint64())
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d.bin", i)), b, 0o644); err != nil {
			return err
		}
	}
	for version := 1; version <= 2; version++ {
		if version == 2 {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 8 {
				binary.LittleEndian.PutUint64(b[j:], rnd.Uint64())
			}
			if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d.bin", n/2)), b, 0o644); err != nil {
				return err
			}
		}
		payload := filepath.Join(d.dir, fmt.Sprintf("v%d.tar", version))
		if err := packDir(src, payload, "tar"); err != nil {
			return err
		}
		// Write the test data out first, so that its writeback does not
		// compete with the servers' fsyncs during the measurement.
		syscall.Sync()
		if profile != "" && version == 1 {
			go d.profileLeader(ctx, 3*time.Second, profile+"-leader.prof", a.stderr)
			f, err := os.Create(profile + "-client.prof")
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		start := time.Now()
		res, err := d.admin.Upload(ctx, payload, "tar")
		if err != nil {
			return err
		}
		took := time.Since(start)
		if profile != "" && version == 1 {
			pprof.StopCPUProfile()
		}
		fmt.Fprintf(a.stdout, "upload v%d: %d MiB payload durable on %d servers in %v: %.0f MB/s; sent %.1f MiB (%.1f%%)\n",
			version, res.Size>>20, len(res.Holders), took.Round(time.Millisecond), float64(res.Size)/took.Seconds()/1e6,
			float64(res.Uploaded)/(1<<20), 100*float64(res.Uploaded)/float64(res.Size))
	}
	return nil
}

func (a *app) benchCluster(ctx context.Context) (*devCluster, func(), error) {
	dir, err := os.MkdirTemp("", "drover-bench-")
	if err != nil {
		return nil, nil, err
	}
	d, err := startDevCluster(ctx, dir, 0, func(string, ...any) {})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return d, func() { d.stop(); os.RemoveAll(dir) }, nil
}

func (a *app) benchFailover(ctx context.Context, trials int) error {
	d, done, err := a.benchCluster(ctx)
	if err != nil {
		return err
	}
	defer done()
	var times []time.Duration
	for trial := 1; trial <= trials; trial++ {
		leader, err := d.leaderIndex(ctx)
		if err != nil {
			return err
		}
		if err := d.procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		killed := time.Now()
		<-d.procs[leader].exited
		// One write, retried only if a server gives up on it; the servers
		// themselves wait for the new leader and forward to it.
		for {
			_, err := d.admin.Do(ctx, client.Request{Method: "POST", Path: api.PathTokens, JSON: api.TokenRequest{TTL: "1h", Uses: 1}}, nil)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		took := time.Since(killed)
		times = append(times, took)
		fmt.Fprintf(a.stderr, "trial %2d: killed %s, write accepted after %v\n", trial, d.serverIDs[leader], took.Round(time.Millisecond))
		if err := d.restartServer(ctx, leader); err != nil {
			return err
		}
	}
	p := percentiles(times)
	fmt.Fprintf(a.stdout, "leader failover (kill -9 to write accepted), %d trials: p50 %v, p90 %v, p99 %v, max %v\n",
		len(times), p(50), p(90), p(99), p(100))
	return nil
}

func (a *app) benchWrites(ctx context.Context, duration time.Duration, workers []int, profile string) error {
	d, done, err := a.benchCluster(ctx)
	if err != nil {
		return err
	}
	defer done()
	for i, n := range workers {
		if profile != "" && i == len(workers)-1 {
			go d.profileLeader(ctx, duration, profile, a.stderr)
		}
		var (
			mu   sync.Mutex
			lats []time.Duration
			errs int
			wg   sync.WaitGroup
		)
		end := time.Now().Add(duration)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) && ctx.Err() == nil {
					start := time.Now()
					_, err := d.admin.Do(ctx, client.Request{Method: "POST", Path: api.PathTokens, JSON: api.TokenRequest{TTL: "1h", Uses: 1}}, nil)
					lat := time.Since(start)
					mu.Lock()
					if err != nil {
						errs++
					} else {
						lats = append(lats, lat)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		p := percentiles(lats)
		fmt.Fprintf(a.stdout, "writes, %3d writers: %7.0f ops/s, latency p50 %v p99 %v, %d errors\n",
			n, float64(len(lats))/duration.Seconds(), p(50), p(99), errs)
	}
	fsync, err := measureFsync(d.dir, 200)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "one fsync of a 4 KiB write on the same disk: %v (a write per fsync would cap at %.0f ops/s)\n",
		fsync, float64(time.Second)/float64(fsync))
	return nil
}

// measureFsync returns the mean time of write+fsync of 4 KiB.
func measureFsync(dir string, n int) (time.Duration, error) {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	start := time.Now()
	for range n {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// percentiles returns a function giving the q-th percentile of ds.
func percentiles(ds []time.Duration) func(q int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return func(q int) time.Duration {
		if len(s) == 0 {
			return 0
		}
		i := min(len(s)-1, (q*len(s)+99)/100-1)
		return s[max(i, 0)].Round(time.Millisecond / 10)
	}
}

// profileLeader saves a CPU profile of the leader over d.
func (d *devCluster) profileLeader(ctx context.Context, dur time.Duration, path string, log io.Writer) {
	leader, err := d.leaderIndex(ctx)
	if err != nil {
		fmt.Fprintln(log, "profile:", err)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(log, "profile:", err)
		return
	}
	defer f.Close()
	addr := d.specs[leader].APIAddr
	c := client.New([]string{"https://" + addr}, d.adminTLS)
	defer c.Close()
	resp, err := c.Send(ctx, client.Request{Method: "GET", Path: fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(dur.Seconds())-1)})
	if err != nil {
		fmt.Fprintln(log, "profile:", err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(f, resp.Body)
	fmt.Fprintf(log, "CPU profile of leader %s written to %s\n", d.serverIDs[leader], path)
}
