// Command benchreport runs drover's benchmarks — the Go benchmarks of the
// hot paths, the fleet simulator (`drover bench fleet`), a rollout to real
// agents (`drover bench rollout`) and the other `drover bench` commands —
// and writes bench/results.md with the machine, the date and the figures,
// beside those of the previous run (kept in bench/results.json).
// `make bench` runs it; it is not part of `make test`.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Results is one run, as bench/results.json keeps it.
type Results struct {
	Machine Machine `json:"machine"`
	// Fleet and Rollout are the JSON reports of `drover bench fleet` and
	// `drover bench rollout`, as they printed them.
	Fleet   json.RawMessage `json:"fleet,omitempty"`
	Rollout json.RawMessage `json:"rollout,omitempty"`
	// GoBench are the Go benchmarks' results.
	GoBench []GoBench `json:"go_bench"`
	// Other is the output of the other `drover bench` commands, by command.
	Other map[string][]string `json:"other"`
	// Errors are steps that failed; their figures are missing.
	Errors []string `json:"errors,omitempty"`
}

// Machine says where and when the figures were measured.
type Machine struct {
	Date     time.Time `json:"date"`
	Commit   string    `json:"commit"`
	CPU      string    `json:"cpu"`
	Cores    int       `json:"cores"`
	MemGiB   float64   `json:"mem_gib"`
	Kernel   string    `json:"kernel"`
	Go       string    `json:"go"`
	LoadFrom float64   `json:"load_start"` // 1-minute load average at the start
	LoadMax  float64   `json:"load_max"`   // highest 1-minute load average seen
	// OthersCPU is the CPU time other processes (not the benchmarks and
	// the processes they started) used during the run, in percent of the
	// machine's capacity: competition that depresses the figures.
	OthersCPU float64 `json:"others_cpu_percent"`
	Took      string  `json:"took"`
}

// GoBench is one benchmark's line.
type GoBench struct {
	Pkg     string             `json:"pkg"`
	Name    string             `json:"name"`
	NsPerOp float64            `json:"ns_per_op"`
	Metrics map[string]float64 `json:"metrics,omitempty"` // MB/s, B/op, allocs/op, custom units
}

type config struct {
	bin, out, fleetArgs, rolloutArgs string
	renderFrom, previous             string
	skipOther, skipGo                bool
	benchtime                        string
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin", "directory of the drover and drover-agent binaries")
	flag.StringVar(&c.out, "out", "bench", "directory of results.md and results.json")
	flag.StringVar(&c.fleetArgs, "fleet", "--agents 10000 --max-agents 20000", "arguments of drover bench fleet (the grow phase adds 5,000 agents a step, about 2 minutes each)")
	flag.StringVar(&c.rolloutArgs, "rollout", "--agents 50 --size-mib 10", "arguments of drover bench rollout")
	flag.StringVar(&c.benchtime, "benchtime", "1s", "go test -benchtime of the Go benchmarks")
	flag.BoolVar(&c.skipGo, "skip-go", false, "skip the Go benchmarks")
	flag.StringVar(&c.renderFrom, "render", "", "only write results.md again from this results.json (with -previous, beside that run's)")
	flag.StringVar(&c.previous, "previous", "", "with -render: the previous run's results.json")
	flag.BoolVar(&c.skipOther, "skip-other", false, "skip the other drover bench commands (failover, writes, upload, apply, footprint)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.renderFrom != "" {
		return rerender(c)
	}
	for _, b := range []string{"drover", "drover-agent"} {
		if _, err := os.Stat(filepath.Join(c.bin, b)); err != nil {
			return fmt.Errorf("%s/%s is missing; run make build first", c.bin, b)
		}
	}
	prev, err := readPrevious(filepath.Join(c.out, "results.json"))
	if err != nil {
		return err
	}
	start := time.Now()
	r := &Results{Machine: machine(), Other: map[string][]string{}}
	load := newLoadWatch()
	defer load.stop()
	cpu0 := sampleCPU()
	step := func(name string, fn func() error) {
		if ctx.Err() != nil {
			return
		}
		logf("%s", name)
		t := time.Now()
		if err := fn(); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", name, err))
			logf("%s failed after %v: %v", name, time.Since(t).Round(time.Second), err)
			return
		}
		logf("%s done in %v", name, time.Since(t).Round(time.Second))
	}
	drover := filepath.Join(c.bin, "drover")
	if !c.skipGo {
		step("go benchmarks", func() error { return goBenchmarks(ctx, c.benchtime, r) })
	}
	step("drover bench fleet "+c.fleetArgs, func() error {
		out, err := command(ctx, drover, append([]string{"bench", "fleet", "-o", "json"}, strings.Fields(c.fleetArgs)...)...)
		r.Fleet = jsonOrNil(out)
		return err
	})
	step("drover bench rollout "+c.rolloutArgs, func() error {
		out, err := command(ctx, drover, append([]string{"bench", "rollout", "-o", "json"}, strings.Fields(c.rolloutArgs)...)...)
		r.Rollout = jsonOrNil(out)
		return err
	})
	if !c.skipOther {
		for _, o := range [][]string{
			{"failover", "--trials", "10"},
			{"writes", "--duration", "5s", "--workers", "1,16,64"},
			{"upload", "--size-mib", "100"},
			{"apply", "--size-mib", "10"},
			{"footprint", "--idle", "20s", "--agent-bin", filepath.Join(c.bin, "drover-agent")},
		} {
			step("drover bench "+strings.Join(o, " "), func() error {
				out, err := command(ctx, drover, append([]string{"bench"}, o...)...)
				r.Other[o[0]] = lines(out)
				return err
			})
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.Machine.LoadMax = load.stop()
	r.Machine.OthersCPU = othersCPU(cpu0, sampleCPU())
	r.Machine.Took = time.Since(start).Round(time.Second).String()
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := render(r, prev)
	if err := os.WriteFile(filepath.Join(c.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s and results.json in %v", filepath.Join(c.out, "results.md"), time.Since(start).Round(time.Second))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  benchreport: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// rerender writes results.md from a results.json, after a change to the
// report's layout.
func rerender(c config) error {
	cur, err := readPrevious(c.renderFrom)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("%s does not exist", c.renderFrom)
	}
	var prev *Results
	if c.previous != "" {
		if prev, err = readPrevious(c.previous); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(c.out, "results.md"), []byte(render(cur, prev)), 0o644)
}

// readPrevious reads the previous run's results, if any.
func readPrevious(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is not a results file (remove it to start afresh): %w", path, err)
	}
	return &r, nil
}

// command runs a program, its stderr passed through, and returns its
// stdout.
func command(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return out, nil
}

func jsonOrNil(b []byte) json.RawMessage {
	if json.Valid(b) && len(bytes.TrimSpace(b)) > 0 {
		return json.RawMessage(bytes.TrimSpace(b))
	}
	return nil
}

func lines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// goBenchmarks runs the Go benchmarks of the hot paths. The fan-out and
// whole-wave benchmarks rebuild a store of 10,000 hosts for every
// iteration, so they run a fixed few times.
func goBenchmarks(ctx context.Context, benchtime string, r *Results) error {
	runs := []struct {
		benchtime, filter string
		pkgs              []string
	}{
		{benchtime, "^Benchmark(DesiredFor|ApplyAgentReport|ApplyRolloutStep|ApplyEnroll|ApplyInventory|EngineInputs)$", []string{"./controlplane/state"}},
		{"5x", "^Benchmark(DesiredFanout|ApplyRolloutStepWave|ApplyRolloutStart)$", []string{"./controlplane/state"}},
		{benchtime, ".", []string{"./artifacts", "./artifacts/chunks", "./deploy"}},
		{benchtime, "^BenchmarkDiff", []string{"./inventory"}},
	}
	var errs []error
	for _, run := range runs {
		args := append([]string{"test", "-run", "^$", "-bench", run.filter, "-benchtime", run.benchtime, "-benchmem", "-count", "1"}, run.pkgs...)
		out, err := command(ctx, "go", args...)
		r.GoBench = append(r.GoBench, parseGoBench(out)...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseGoBench reads `go test -bench` output.
func parseGoBench(out []byte) []GoBench {
	var res []GoBench
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/drover-dev/drover/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || f[3] != "ns/op" {
			continue
		}
		ns, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		b := GoBench{Pkg: pkg, Name: name, NsPerOp: ns, Metrics: map[string]float64{}}
		for i := 4; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				b.Metrics[f[i+1]] = v
			}
		}
		res = append(res, b)
	}
	return res
}

// machine describes this machine.
func machine() Machine {
	m := Machine{Date: time.Now().UTC().Truncate(time.Second), Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				m.MemGiB = float64(int(kb/(1<<20)*10+0.5)) / 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	m.LoadFrom = loadAverage()
	return m
}

// loadAverage is the 1-minute load average.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// loadWatch samples the load average while the benchmarks run, to tell
// whether other work competed with them.
type loadWatch struct {
	done chan struct{}
	max  chan float64
}

func newLoadWatch() *loadWatch {
	w := &loadWatch{done: make(chan struct{}), max: make(chan float64, 1)}
	go func() {
		peak := loadAverage()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				w.max <- peak
				return
			case <-t.C:
				peak = max(peak, loadAverage())
			}
		}
	}()
	return w
}

// stop ends the watch and returns the highest load seen; later calls
// return 0.
func (w *loadWatch) stop() float64 {
	select {
	case <-w.done:
		return 0
	default:
		close(w.done)
		return <-w.max
	}
}

// cpuSample is the machine's busy CPU time and this process tree's.
type cpuSample struct {
	at         time.Time
	busy, ours time.Duration
}

// sampleCPU reads the machine's busy time (/proc/stat) and the CPU time
// of this process and of the children it has waited for (which include
// the servers and agents the bench commands started and waited for).
func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		// cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			s.busy += time.Duration(n) * time.Second / 100
		}
	}
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			s.ours += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return s
}

// othersCPU is the busy time not ours between two samples, in percent of
// the machine's capacity.
func othersCPU(a, b cpuSample) float64 {
	capacity := b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU())
	if capacity <= 0 {
		return 0
	}
	others := (b.busy - a.busy - (b.ours - a.ours)).Seconds()
	return float64(int(max(others, 0)/capacity*1000+0.5)) / 10
}
