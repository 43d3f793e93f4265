package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/sim"
)

// A simulated fleet larger than one process's open-file limit (each
// agent holds a socket) is split into shards: the first in this process,
// the others in worker processes (`drover bench fleet worker`, hidden),
// driven over their stdin and stdout with one JSON request and one JSON
// answer per line.

// shard is a part of the simulated fleet.
type shard interface {
	// enroll enrolls agents with a join token; start runs them.
	enroll(ctx context.Context, token string, names []string) error
	start() error
	counters() (sim.Counters, error)
	takeCheckins() ([]time.Duration, error)
	receivedCount(rollout string) (int, error)
	received(rollout string) ([]sim.Receipt, error)
	takeOutages() ([]sim.Outage, error)
	onServer(server string) (int, error)
	rehome() error
	stop()
	pid() int
}

// localShard is the shard in this process.
type localShard struct{ f *sim.Fleet }

func (l localShard) enroll(ctx context.Context, token string, names []string) error {
	return l.f.Enroll(ctx, token, names)
}
func (l localShard) start() error                           { l.f.Start(); return nil }
func (l localShard) counters() (sim.Counters, error)        { return l.f.Stats().Counters(), nil }
func (l localShard) takeCheckins() ([]time.Duration, error) { return l.f.Stats().TakeCheckins(), nil }
func (l localShard) receivedCount(r string) (int, error)    { return len(l.f.Stats().Received(r)), nil }
func (l localShard) received(r string) ([]sim.Receipt, error) {
	return l.f.Stats().Received(r), nil
}
func (l localShard) takeOutages() ([]sim.Outage, error) { return l.f.Stats().TakeOutages(), nil }
func (l localShard) onServer(s string) (int, error)     { return l.f.OnServer(s), nil }
func (l localShard) rehome() error                      { l.f.Rehome(); return nil }
func (l localShard) stop()                              { l.f.Stop() }
func (l localShard) pid() int                           { return os.Getpid() }

// workerConfig is what a worker process needs to build its fleet.
type workerConfig struct {
	Servers           []string      `json:"servers"`
	CA                []byte        `json:"ca"`
	SourceAddrs       []string      `json:"source_addrs"`
	PollWait          time.Duration `json:"poll_wait"`
	ApplyTime         time.Duration `json:"apply_time"`
	FailureRate       float64       `json:"failure_rate"`
	InventoryPackages int           `json:"inventory_packages"`
	StartRate         int           `json:"start_rate"`
	Seed              uint64        `json:"seed"`
}

func (c workerConfig) simConfig() (sim.Config, error) {
	var addrs []netip.Addr
	for _, a := range c.SourceAddrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return sim.Config{}, err
		}
		addrs = append(addrs, ip)
	}
	return sim.Config{Servers: c.Servers, CA: c.CA, SourceAddrs: addrs, PollWait: c.PollWait, Probe: true,
		ApplyTime: c.ApplyTime, FailureRate: c.FailureRate, VerifySignatures: true,
		InventoryPackages: c.InventoryPackages, StartRate: c.StartRate, Seed: c.Seed}, nil
}

// workerRequest and workerAnswer are one exchange with a worker.
type workerRequest struct {
	Op      string   `json:"op"` // enroll, start, counters, checkins, count, received, outages, on, rehome
	Token   string   `json:"token,omitempty"`
	Names   []string `json:"names,omitempty"`
	Rollout string   `json:"rollout,omitempty"`
	Server  string   `json:"server,omitempty"`
}

type workerAnswer struct {
	Error    string          `json:"error,omitempty"`
	Counters sim.Counters    `json:"counters"`
	Checkins []time.Duration `json:"checkins,omitempty"`
	Count    int             `json:"count,omitempty"`
	Receipts []sim.Receipt   `json:"receipts,omitempty"`
	Outages  []sim.Outage    `json:"outages,omitempty"`
}

// workerShard is a shard in a worker process.
type workerShard struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Scanner
}

// startWorker starts a worker process running this binary.
func startWorker(cfg workerConfig, stderr io.Writer) (*workerShard, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "bench", "fleet", "worker")
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stopped in order, not by the terminal's Ctrl-C
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start a simulator worker: %w", err)
	}
	w := &workerShard{cmd: cmd, in: in, out: newLineScanner(out)}
	if err := writeJSONLine(in, cfg); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// newLineScanner reads a worker's answers, one JSON document a line (a
// list of receipts can be long).
func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	return sc
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func (w *workerShard) call(req workerRequest) (workerAnswer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var a workerAnswer
	if err := writeJSONLine(w.in, req); err != nil {
		return a, fmt.Errorf("simulator worker %d: %w", w.pid(), err)
	}
	if !w.out.Scan() {
		return a, fmt.Errorf("simulator worker %d ended: %v", w.pid(), w.out.Err())
	}
	if err := json.Unmarshal(w.out.Bytes(), &a); err != nil {
		return a, fmt.Errorf("simulator worker %d: bad answer: %w", w.pid(), err)
	}
	if a.Error != "" {
		return a, fmt.Errorf("simulator worker %d: %s", w.pid(), a.Error)
	}
	return a, nil
}

func (w *workerShard) enroll(_ context.Context, token string, names []string) error {
	_, err := w.call(workerRequest{Op: "enroll", Token: token, Names: names})
	return err
}

func (w *workerShard) start() error {
	_, err := w.call(workerRequest{Op: "start"})
	return err
}

func (w *workerShard) counters() (sim.Counters, error) {
	a, err := w.call(workerRequest{Op: "counters"})
	return a.Counters, err
}

func (w *workerShard) takeCheckins() ([]time.Duration, error) {
	a, err := w.call(workerRequest{Op: "checkins"})
	return a.Checkins, err
}

func (w *workerShard) receivedCount(rollout string) (int, error) {
	a, err := w.call(workerRequest{Op: "count", Rollout: rollout})
	return a.Count, err
}

func (w *workerShard) received(rollout string) ([]sim.Receipt, error) {
	a, err := w.call(workerRequest{Op: "received", Rollout: rollout})
	return a.Receipts, err
}

func (w *workerShard) takeOutages() ([]sim.Outage, error) {
	a, err := w.call(workerRequest{Op: "outages"})
	return a.Outages, err
}

func (w *workerShard) onServer(server string) (int, error) {
	a, err := w.call(workerRequest{Op: "on", Server: server})
	return a.Count, err
}

func (w *workerShard) rehome() error {
	_, err := w.call(workerRequest{Op: "rehome"})
	return err
}

// stop closes the worker's stdin, which ends it, and waits for it.
func (w *workerShard) stop() {
	w.in.Close()
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = w.cmd.Process.Kill()
		<-done
	}
}

func (w *workerShard) pid() int {
	if w.cmd == nil || w.cmd.Process == nil {
		return 0
	}
	return w.cmd.Process.Pid
}

// benchFleetWorkerCommand is the worker's side: it reads its
// configuration, then serves requests until its stdin closes.
func (a *app) benchFleetWorkerCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "A shard of drover bench fleet's simulated agents (started by it)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := raiseFileLimit(); err != nil {
				return err
			}
			return serveWorker(cmd.Context(), os.Stdin, a.stdout)
		},
	}
}

func serveWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	if !sc.Scan() {
		return errors.New("fleet worker: no configuration on stdin")
	}
	var cfg workerConfig
	if err := json.Unmarshal(sc.Bytes(), &cfg); err != nil {
		return fmt.Errorf("fleet worker: configuration: %w", err)
	}
	simCfg, err := cfg.simConfig()
	if err != nil {
		return fmt.Errorf("fleet worker: configuration: %w", err)
	}
	f, err := sim.New(simCfg)
	if err != nil {
		return err
	}
	defer f.Stop()
	enc := json.NewEncoder(out)
	st := f.Stats()
	for sc.Scan() {
		var req workerRequest
		var ans workerAnswer
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			ans.Error = "bad request: " + err.Error()
		}
		switch req.Op {
		case "enroll":
			if err := f.Enroll(ctx, req.Token, req.Names); err != nil {
				ans.Error = err.Error()
			}
		case "start":
			f.Start()
		case "counters":
		case "checkins":
			ans.Checkins = st.TakeCheckins()
		case "count":
			ans.Count = len(st.Received(req.Rollout))
		case "received":
			ans.Receipts = st.Received(req.Rollout)
		case "outages":
			ans.Outages = st.TakeOutages()
		case "on":
			ans.Count = f.OnServer(req.Server)
		case "rehome":
			f.Rehome()
		default:
			if ans.Error == "" {
				ans.Error = fmt.Sprintf("unknown op %q", req.Op)
			}
		}
		ans.Counters = st.Counters()
		if err := enc.Encode(ans); err != nil {
			return err
		}
	}
	return sc.Err()
}

// simFleet is the whole simulated fleet: its shards, each filled up to
// perShard agents before the next is started.
type simFleet struct {
	shards   []shard
	sizes    []int
	started  []int
	perShard int
	newShard func(i int) (shard, error)
}

func (s *simFleet) size() int {
	n := 0
	for _, v := range s.sizes {
		n += v
	}
	return n
}

// enroll enrolls names, filling the shards in order.
func (s *simFleet) enroll(ctx context.Context, token string, names []string) error {
	for len(names) > 0 {
		i := len(s.shards) - 1
		if i < 0 || s.sizes[i] >= s.perShard {
			sh, err := s.newShard(len(s.shards))
			if err != nil {
				return err
			}
			s.shards, s.sizes, s.started = append(s.shards, sh), append(s.sizes, 0), append(s.started, 0)
			i++
		}
		n := min(len(names), s.perShard-s.sizes[i])
		if err := s.shards[i].enroll(ctx, token, names[:n]); err != nil {
			return err
		}
		s.sizes[i] += n
		names = names[n:]
	}
	return nil
}

// start runs the agents not running yet, shard by shard.
func (s *simFleet) start() error {
	for i, sh := range s.shards {
		if s.started[i] < s.sizes[i] {
			if err := sh.start(); err != nil {
				return err
			}
			s.started[i] = s.sizes[i]
		}
	}
	return nil
}

func (s *simFleet) counters() (sim.Counters, error) {
	var sum sim.Counters
	for _, sh := range s.shards {
		c, err := sh.counters()
		if err != nil {
			return sum, err
		}
		sum = sum.Add(c)
	}
	return sum, nil
}

func (s *simFleet) takeCheckins() ([]time.Duration, error) {
	var all []time.Duration
	for _, sh := range s.shards {
		c, err := sh.takeCheckins()
		if err != nil {
			return nil, err
		}
		all = append(all, c...)
	}
	return all, nil
}

func (s *simFleet) receivedCount(rollout string) (int, error) {
	n := 0
	for _, sh := range s.shards {
		c, err := sh.receivedCount(rollout)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

func (s *simFleet) received(rollout string) ([]sim.Receipt, error) {
	var all []sim.Receipt
	for _, sh := range s.shards {
		r, err := sh.received(rollout)
		if err != nil {
			return nil, err
		}
		all = append(all, r...)
	}
	return all, nil
}

func (s *simFleet) takeOutages() ([]sim.Outage, error) {
	var all []sim.Outage
	for _, sh := range s.shards {
		o, err := sh.takeOutages()
		if err != nil {
			return nil, err
		}
		all = append(all, o...)
	}
	return all, nil
}

func (s *simFleet) onServer(server string) (int, error) {
	n := 0
	for _, sh := range s.shards {
		c, err := sh.onServer(server)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

func (s *simFleet) rehome() error {
	for _, sh := range s.shards {
		if err := sh.rehome(); err != nil {
			return err
		}
	}
	return nil
}

// stop ends every shard, the workers first.
func (s *simFleet) stop() {
	for i := len(s.shards) - 1; i >= 0; i-- {
		s.shards[i].stop()
	}
}

// samples samples the CPU time of every simulator process.
func (s *simFleet) samples() []procSample {
	out := []procSample{sampleProc("simulator", os.Getpid())}
	for i, sh := range s.shards {
		if _, local := sh.(localShard); !local {
			out = append(out, sampleProc(fmt.Sprintf("simulator worker %d", i), sh.pid()))
		}
	}
	return out
}
