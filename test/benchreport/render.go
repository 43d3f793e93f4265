package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// The parts of `drover bench fleet -o json` and `drover bench rollout -o
// json` that the report shows (durations in milliseconds).
type fleetReport struct {
	Agents         int    `json:"agents"`
	SourceAddrs    int    `json:"source_addrs"`
	InventoryBytes int    `json:"inventory_bytes"`
	FileLimit      int    `json:"file_limit"`
	PollWait       string `json:"poll_wait"`
	Enroll         struct {
		Count  int     `json:"count"`
		Took   float64 `json:"took_ms"`
		PerSec float64 `json:"per_sec"`
	} `json:"enroll"`
	Inventory struct {
		Took   float64 `json:"took_ms"`
		PerSec float64 `json:"per_sec"`
	} `json:"inventory"`
	Hold  *hold `json:"hold"`
	Waves []struct {
		Hosts     int     `json:"hosts"`
		P50       float64 `json:"p50_ms"`
		P99       float64 `json:"p99_ms"`
		Max       float64 `json:"max_ms"`
		Completed float64 `json:"completed_ms"`
		Decided   float64 `json:"decided_ms"`
		DelivP50  float64 `json:"delivery_p50_ms"`
		DelivP99  float64 `json:"delivery_p99_ms"`
		Servers   []usage `json:"servers"`
		Writes    writes  `json:"writes"`
	} `json:"waves"`
	Rollout *struct {
		Hosts       int       `json:"hosts"`
		Waves       string    `json:"waves"`
		MaxParallel int       `json:"max_parallel"`
		Apply       float64   `json:"apply_ms"`
		Total       float64   `json:"total_ms"`
		Ideal       float64   `json:"ideal_ms"`
		Wave        []float64 `json:"wave_ms"`
		Writes      writes    `json:"writes"`
	} `json:"rollout"`
	Failover *struct {
		Agents     int     `json:"agents"`
		Kills      int     `json:"kills"`
		WriteP50   float64 `json:"write_p50_ms"`
		WriteP99   float64 `json:"write_p99_ms"`
		WriteMax   float64 `json:"write_max_ms"`
		Affected   int     `json:"agents_affected"`
		NotServed  int     `json:"agents_not_served"`
		ReconnP50  float64 `json:"reconnect_p50_ms"`
		ReconnP99  float64 `json:"reconnect_p99_ms"`
		ReconnMax  float64 `json:"reconnect_max_ms"`
		MarkedDown int     `json:"hosts_marked_down"`
		CheckedAt  float64 `json:"down_checked_after_ms"`
	} `json:"failover"`
	Grow *struct {
		Steps   []hold `json:"steps"`
		Largest int    `json:"largest_held"`
		Stopped string `json:"stopped"`
	} `json:"grow"`
}

// writes are the commands committed during a phase, by command.
type writes map[string]struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
}

func (w writes) String() string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s (mean %s)", w[k].Count, k, format(w[k].Mean, "ms")))
	}
	return strings.Join(parts, ", ")
}

type hold struct {
	Agents   int     `json:"agents"`
	Checkins int     `json:"checkins"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	ReqPerS  float64 `json:"requests_per_sec"`
	Errors   int     `json:"errors"`
	Servers  []usage `json:"servers"`
	Sim      usage   `json:"simulator"`
}

type usage struct {
	Name string  `json:"name"`
	CPU  float64 `json:"cpu_percent"`
	RSS  float64 `json:"rss_mib"`
	Peak float64 `json:"peak_rss_mib"`
}

type rolloutReport struct {
	Agents  int       `json:"agents"`
	SizeMiB int       `json:"size_mib"`
	Waves   string    `json:"waves"`
	Total   float64   `json:"total_ms"`
	PerWave []float64 `json:"wave_ms"`
	Gaps    []float64 `json:"gap_ms"`
	Steps   []struct {
		State  string  `json:"state"`
		Median float64 `json:"median_ms"`
		Max    float64 `json:"max_ms"`
	} `json:"steps"`
	AgentsCPU   float64 `json:"agents_cpu_s"`
	PerAgentCPU float64 `json:"per_agent_cpu_s"`
	ServersCPU  float64 `json:"servers_cpu_s"`
	Cores       int     `json:"cores"`
}

// parsed is a run's reports, decoded; missing parts are nil.
type parsed struct {
	r       *Results
	fleet   *fleetReport
	rollout *rolloutReport
}

func parse(r *Results) parsed {
	p := parsed{r: r}
	if r == nil {
		return p
	}
	if len(r.Fleet) > 0 {
		var f fleetReport
		if json.Unmarshal(r.Fleet, &f) == nil {
			p.fleet = &f
		}
	}
	if len(r.Rollout) > 0 {
		var ro rolloutReport
		if json.Unmarshal(r.Rollout, &ro) == nil {
			p.rollout = &ro
		}
	}
	return p
}

// target is one line of the targets table.
type target struct {
	what, goal string
	value      func(p parsed) (float64, bool) // the figure, if measured
	unit       string                         // "ms", "s", "count"
	ok         func(v float64) bool
	// note, when set, says how the run differed from the target's terms
	// (fewer agents, say); "" when it did not.
	note func(p parsed) string
}

// fleetNote names the fleet size when it is not the target's 10,000.
func fleetNote(p parsed) string {
	if p.fleet != nil && p.fleet.Agents != 10000 {
		return fmt.Sprintf("%d agents", p.fleet.Agents)
	}
	return ""
}

// rolloutNote names the real agents' rollout when it is not the target's.
func rolloutNote(p parsed) string {
	if p.rollout != nil && (p.rollout.Agents != 50 || p.rollout.SizeMiB != 10) {
		return fmt.Sprintf("%d agents, %d MiB", p.rollout.Agents, p.rollout.SizeMiB)
	}
	return ""
}

func (p parsed) wave(hosts int) (w struct{ p99, max float64 }, ok bool) {
	if p.fleet == nil {
		return w, false
	}
	for _, v := range p.fleet.Waves {
		if v.Hosts == hosts {
			return struct{ p99, max float64 }{v.P99, v.Max}, true
		}
	}
	return w, false
}

var targets = []target{
	{"Idle check-in latency p99, 10,000 agents", "≤ 25 ms", func(p parsed) (float64, bool) {
		if p.fleet == nil || p.fleet.Hold == nil {
			return 0, false
		}
		return p.fleet.Hold.P99, true
	}, "ms", func(v float64) bool { return v <= 25 }, fleetNote},
	{"Largest fleet held with check-in p99 ≤ 25 ms", "10,000 (stretch 50,000)", func(p parsed) (float64, bool) {
		if p.fleet == nil || p.fleet.Grow == nil {
			return 0, false
		}
		return float64(p.fleet.Grow.Largest), true
	}, "count", func(v float64) bool { return v >= 10000 }, func(p parsed) string {
		if g := p.fleet.Grow; len(g.Steps) > 0 && g.Largest == 0 {
			return fmt.Sprintf("p99 %s at %d agents", format(g.Steps[0].P99, "ms"), g.Steps[0].Agents)
		}
		return ""
	}},
	{"Instruction latency p99, 1,000-host wave", "≤ 2 s", func(p parsed) (float64, bool) {
		w, ok := p.wave(1000)
		return w.p99, ok
	}, "ms", func(v float64) bool { return v <= 2000 }, nil},
	{"Instruction latency p99, 10,000-host wave", "≤ 5 s", func(p parsed) (float64, bool) {
		w, ok := p.wave(10000)
		return w.p99, ok
	}, "ms", func(v float64) bool { return v <= 5000 }, nil},
	{"Leader killed under load: write accepted again, p99", "≤ 4 s", func(p parsed) (float64, bool) {
		if p.fleet == nil || p.fleet.Failover == nil {
			return 0, false
		}
		return p.fleet.Failover.WriteP99, true
	}, "ms", func(v float64) bool { return v <= 4000 }, fleetNote},
	{"Leader killed under load: simulated agents marked down", "0", func(p parsed) (float64, bool) {
		if p.fleet == nil || p.fleet.Failover == nil {
			return 0, false
		}
		return float64(p.fleet.Failover.MarkedDown), true
	}, "count", func(v float64) bool { return v == 0 }, fleetNote},
	{"Leader killed under load: agents of the killed server served again, max", "≤ 10 s", func(p parsed) (float64, bool) {
		if p.fleet == nil || p.fleet.Failover == nil {
			return 0, false
		}
		if p.fleet.Failover.NotServed > 0 {
			return math.Inf(1), true
		}
		return p.fleet.Failover.ReconnMax, true
	}, "ms", func(v float64) bool { return v <= 10000 }, func(p parsed) string {
		if p.fleet != nil && p.fleet.Failover != nil && p.fleet.Failover.NotServed > 0 {
			return fmt.Sprintf("%d of %d agents not served again within 30 s", p.fleet.Failover.NotServed, p.fleet.Failover.Affected)
		}
		return fleetNote(p)
	}},
	{"Rollout to 1,000 simulated hosts, waves 1,10%,50%,100%, max_parallel 200, 1 s apply", "ideal (sum of the waves' batches × 1 s)", func(p parsed) (float64, bool) {
		if p.fleet == nil || p.fleet.Rollout == nil {
			return 0, false
		}
		return p.fleet.Rollout.Total, true
	}, "ms", nil, func(p parsed) string {
		if p.fleet == nil || p.fleet.Rollout == nil {
			return ""
		}
		n := ""
		if h := p.fleet.Rollout.Hosts; h != 1000 {
			n = fmt.Sprintf("%d hosts, ", h)
		}
		return fmt.Sprintf("%sideal %s", n, format(p.fleet.Rollout.Ideal, "ms"))
	}},
	{"50 real agents, 10 MiB, waves 1,10%,50%,100%: start to completed", "≤ 11.5 s (10× faster than Ansible's 115 s)", func(p parsed) (float64, bool) {
		if p.rollout == nil {
			return 0, false
		}
		return p.rollout.Total, true
	}, "ms", func(v float64) bool { return v <= 11500 }, rolloutNote},
}

func format(v float64, unit string) string {
	switch unit {
	case "count":
		return fmt.Sprintf("%.0f", v)
	case "ms":
		switch {
		case math.IsInf(v, 1):
			return "> 30 s"
		case v >= 10000:
			return fmt.Sprintf("%.1f s", v/1000)
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v >= 10:
			return fmt.Sprintf("%.0f ms", v)
		default:
			return fmt.Sprintf("%.2f ms", v)
		}
	}
	return fmt.Sprint(v)
}

// render writes results.md: this run beside the previous one.
func render(r, prev *Results) string {
	cur, old := parse(r), parse(prev)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# drover benchmark results\n\n")
	w("Written by `make bench` (`test/benchreport`); do not edit by hand. ")
	w("How to read and reproduce these figures: `docs/performance.md`.\n\n")
	w("## Machine\n\n| | this run | previous run |\n|---|---|---|\n")
	m, pm := r.Machine, Machine{}
	if prev != nil {
		pm = prev.Machine
	}
	rows := [][3]string{
		{"date (UTC)", m.Date.Format("2006-01-02 15:04"), dateOr(pm)},
		{"commit", m.Commit, pm.Commit},
		{"CPU", m.CPU, pm.CPU},
		{"cores, memory", fmt.Sprintf("%d, %.1f GiB", m.Cores, m.MemGiB), coresOr(pm)},
		{"kernel, Go", m.Kernel + ", " + m.Go, strings.Trim(pm.Kernel+", "+pm.Go, ", ")},
		{"load average at start / highest", fmt.Sprintf("%.1f / %.1f", m.LoadFrom, m.LoadMax), loadOr(pm)},
		{"CPU used by other processes during the run", fmt.Sprintf("%.0f %% of the machine", m.OthersCPU), othersOr(pm)},
		{"run took", m.Took, pm.Took},
	}
	for _, x := range rows {
		w("| %s | %s | %s |\n", x[0], dashIf(x[1]), dashIf(x[2]))
	}
	w("\n")
	if m.OthersCPU >= 10 {
		w("**Contention:** other processes used %.0f %% of this machine's CPU while these benchmarks ran "+
			"(servers, simulator and agents share the same %d cores with them), so every latency and throughput "+
			"below is depressed by it. Re-run `make bench` on a quiet machine for the real figures.\n\n", m.OthersCPU, m.Cores)
	}
	if len(r.Errors) > 0 {
		w("**Steps that failed** (their figures are missing):\n\n")
		for _, e := range r.Errors {
			w("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		w("\n")
	}
	w("## Targets\n\n| measure | target | this run | met | previous run |\n|---|---|---|---|---|\n")
	for _, t := range targets {
		v, ok := t.value(cur)
		pv, pok := t.value(old)
		cell, met, pcell := "not measured", "", "-"
		if ok {
			cell = format(v, t.unit)
			if t.note != nil {
				if n := t.note(cur); n != "" {
					cell += " (" + n + ")"
				}
			}
			switch {
			case t.ok == nil:
				met = "see below"
			case t.ok(v):
				met = "yes"
			default:
				met = "**no**"
			}
		}
		if pok {
			pcell = format(pv, t.unit)
			if t.note != nil {
				if n := t.note(old); n != "" {
					pcell += " (" + n + ")"
				}
			}
		}
		w("| %s | %s | %s | %s | %s |\n", t.what, t.goal, cell, met, pcell)
	}
	w("\n")
	renderFleet(w, cur, old)
	renderRollout(w, cur, old)
	renderGoBench(w, r, prev)
	renderOther(w, r, prev)
	return b.String()
}

func dashIf(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func dateOr(m Machine) string {
	if m.Date.IsZero() {
		return ""
	}
	return m.Date.Format("2006-01-02 15:04")
}

func coresOr(m Machine) string {
	if m.Cores == 0 {
		return ""
	}
	return fmt.Sprintf("%d, %.1f GiB", m.Cores, m.MemGiB)
}

func loadOr(m Machine) string {
	if m.Date.IsZero() {
		return ""
	}
	return fmt.Sprintf("%.1f / %.1f", m.LoadFrom, m.LoadMax)
}

func othersOr(m Machine) string {
	if m.Date.IsZero() {
		return ""
	}
	return fmt.Sprintf("%.0f %% of the machine", m.OthersCPU)
}

func serversLine(us []usage) string {
	var parts []string
	for _, u := range us {
		parts = append(parts, fmt.Sprintf("%s %.0f %% CPU, %.0f MiB (peak %.0f)", u.Name, u.CPU, u.RSS, u.Peak))
	}
	return strings.Join(parts, "; ")
}

func renderFleet(w func(string, ...any), cur, old parsed) {
	f := cur.fleet
	if f == nil {
		return
	}
	w("## Fleet simulator (`drover bench fleet`)\n\n")
	w("%d simulated agents in one process against 3 server processes on loopback, each agent with its own certificate "+
		"and mutual-TLS connection (from %d loopback source addresses), long-polling every %s, %d-byte inventories; "+
		"open-file limit %d.\n\n", f.Agents, f.SourceAddrs, dashIf(f.PollWait), f.InventoryBytes, f.FileLimit)
	w("- Enrolled %d agents in %s (%.0f/s); all started and sent their inventories in %s (%.0f/s).\n",
		f.Enroll.Count, format(f.Enroll.Took, "ms"), f.Enroll.PerSec, format(f.Inventory.Took, "ms"), f.Inventory.PerSec)
	if h := f.Hold; h != nil {
		w("- Idle: %d check-ins timed: p50 %s, p99 %s, max %s; %.0f requests/s; %d errors.\n",
			h.Checkins, format(h.P50, "ms"), format(h.P99, "ms"), format(h.Max, "ms"), h.ReqPerS, h.Errors)
		w("  Servers: %s. Simulator: %.0f %% CPU, %.0f MiB.\n", serversLine(h.Servers), h.Sim.CPU, h.Sim.RSS)
	}
	for _, v := range f.Waves {
		w("- Wave of %d hosts (one wave, no max_parallel): instruction latency p50 %s, p99 %s, max %s — the engine's decision "+
			"instructed them %s after the start, delivery to the agents took p50 %s, p99 %s; every host succeeded %s after the start. Servers: %s.\n",
			v.Hosts, format(v.P50, "ms"), format(v.P99, "ms"), format(v.Max, "ms"), format(v.Decided, "ms"),
			format(v.DelivP50, "ms"), format(v.DelivP99, "ms"), format(v.Completed, "ms"), serversLine(v.Servers))
		w("  Commands committed meanwhile (proposal to applied on the leader): %s.\n", dashIf(v.Writes.String()))
	}
	if ro := f.Rollout; ro != nil {
		var waves []string
		for _, x := range ro.Wave {
			waves = append(waves, format(x, "ms"))
		}
		w("- Rollout to %d hosts in waves %s, max_parallel %d, %s apply: %s from start to completed; ideal %s "+
			"(%.1f× the ideal); each wave from its first host started to its last done: %s.\n",
			ro.Hosts, ro.Waves, ro.MaxParallel, format(ro.Apply, "ms"), format(ro.Total, "ms"), format(ro.Ideal, "ms"),
			ro.Total/math.Max(ro.Ideal, 1), strings.Join(waves, ", "))
		w("  Commands committed meanwhile: %s.\n", dashIf(ro.Writes.String()))
	}
	if fo := f.Failover; fo != nil {
		w("- Leader killed (SIGKILL) %d times under %d agents: write accepted again p50 %s, p99 %s, max %s. "+
			"%d agents of killed servers were served by another server again p50 %s, p99 %s, max %s after the kill (%d not within 30 s). "+
			"Hosts marked down: %d (servers' logs searched %s after the last kill).\n",
			fo.Kills, fo.Agents, format(fo.WriteP50, "ms"), format(fo.WriteP99, "ms"), format(fo.WriteMax, "ms"),
			fo.Affected, format(fo.ReconnP50, "ms"), format(fo.ReconnP99, "ms"), format(fo.ReconnMax, "ms"), fo.NotServed,
			fo.MarkedDown, format(fo.CheckedAt, "ms"))
	}
	if g := f.Grow; g != nil {
		w("\nGrowing the fleet (each step measured over about one check-in period):\n\n")
		w("| agents | check-ins | p50 | p99 | max | requests/s | errors | servers (CPU, RSS) | simulator |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range g.Steps {
			w("| %d | %d | %s | %s | %s | %.0f | %d | %s | %.0f %%, %.0f MiB |\n", s.Agents, s.Checkins, format(s.P50, "ms"),
				format(s.P99, "ms"), format(s.Max, "ms"), s.ReqPerS, s.Errors, serversLine(s.Servers), s.Sim.CPU, s.Sim.RSS)
		}
		if g.Largest == 0 {
			w("\nLargest fleet held: **none** of the sizes tried; the search stopped because %s.\n", g.Stopped)
		} else {
			w("\nLargest fleet held: **%d** agents; the search stopped because %s.\n", g.Largest, g.Stopped)
		}
	}
	if old.fleet != nil && old.fleet.Hold != nil && f.Hold != nil {
		w("\nPrevious run: %d agents, idle check-in p99 %s.\n", old.fleet.Agents, format(old.fleet.Hold.P99, "ms"))
	}
	w("\n")
}

func renderRollout(w func(string, ...any), cur, old parsed) {
	r := cur.rollout
	if r == nil {
		return
	}
	w("## Real agents (`drover bench rollout`)\n\n")
	w("%d `drover-agent` processes (as `drover dev --agents %d` starts them), a %d MiB payload with a health check, "+
		"waves %s, no bake time: **%s** from the rollout's start to its completion.\n\n",
		r.Agents, r.Agents, r.SizeMiB, r.Waves, format(r.Total, "ms"))
	var waves, gaps []string
	for _, x := range r.PerWave {
		waves = append(waves, format(x, "ms"))
	}
	for _, x := range r.Gaps {
		gaps = append(gaps, format(x, "ms"))
	}
	w("Per wave (first host instructed to last host succeeded): %s. Between waves (last host of a wave done to the "+
		"first of the next instructed): %s.\n\n", strings.Join(waves, ", "), strings.Join(gaps, ", "))
	if r.Cores > 0 {
		w("CPU used during the rollout: the agents %.1f s (%.2f s each), the servers %.1f s: on %d cores, at least "+
			"%.1f s of the rollout's %s were CPU time that no amount of parallelism could hide.\n\n",
			r.AgentsCPU, r.PerAgentCPU, r.ServersCPU, r.Cores, (r.AgentsCPU+r.ServersCPU)/float64(r.Cores), format(r.Total, "ms"))
	}
	w("Where a host's time goes (time spent in each state before the next, over all hosts):\n\n| state | median | max |\n|---|---|---|\n")
	for _, s := range r.Steps {
		w("| %s | %s | %s |\n", s.State, format(s.Median, "ms"), format(s.Max, "ms"))
	}
	if old.rollout != nil {
		w("\nPrevious run: %s.\n", format(old.rollout.Total, "ms"))
	}
	w("\n")
}

func renderGoBench(w func(string, ...any), r, prev *Results) {
	if len(r.GoBench) == 0 {
		return
	}
	before := map[string]GoBench{}
	if prev != nil {
		for _, g := range prev.GoBench {
			before[g.Pkg+"."+g.Name] = g
		}
	}
	w("## Go benchmarks of the hot paths\n\n`go test -bench` (one process, no servers).\n\n")
	w("| package | benchmark | time/op | MB/s | B/op | allocs/op | other | previous time/op |\n|---|---|---|---|---|---|---|---|\n")
	for _, g := range r.GoBench {
		var other []string
		for k, v := range g.Metrics {
			if k != "MB/s" && k != "B/op" && k != "allocs/op" {
				other = append(other, fmt.Sprintf("%.4g %s", v, k))
			}
		}
		pcell := "-"
		if p, ok := before[g.Pkg+"."+g.Name]; ok {
			pcell = nanos(p.NsPerOp)
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", g.Pkg, g.Name, nanos(g.NsPerOp), metric(g, "MB/s"),
			metric(g, "B/op"), metric(g, "allocs/op"), dashIf(strings.Join(other, ", ")), pcell)
	}
	w("\n")
}

func metric(g GoBench, k string) string {
	v, ok := g.Metrics[k]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.6g", v)
}

func nanos(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

func renderOther(w func(string, ...any), r, prev *Results) {
	if len(r.Other) == 0 {
		return
	}
	w("## Other `drover bench` commands\n\n")
	for _, name := range []string{"failover", "writes", "upload", "apply", "footprint"} {
		out, ok := r.Other[name]
		if !ok {
			continue
		}
		w("`drover bench %s`:\n\n```\n%s\n```\n", name, strings.Join(out, "\n"))
		if prev != nil {
			if p, ok := prev.Other[name]; ok && len(p) > 0 {
				w("\nPrevious run:\n\n```\n%s\n```\n", strings.Join(p, "\n"))
			}
		}
		w("\n")
	}
}
