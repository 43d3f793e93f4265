package main

// rollout watch follows a rollout with blocking queries until it ends and
// shows it as a progress bar per wave on a terminal, as one line per change
// otherwise, or as JSON lines with -o json. A rollout that rolls back is
// followed into its rollback.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/deploy"
)

// watchRetryFor is how long a watch keeps trying to reach the control
// plane before it gives up.
const watchRetryFor = 2 * time.Minute

// watchEvent is one line of `rollout watch -o json`.
type watchEvent struct {
	Time    time.Time `json:"time"`
	Rollout string    `json:"rollout"`
	Type    string    `json:"type"` // rollout, wave, host, end
	Host    string    `json:"host,omitempty"`
	Wave    int       `json:"wave,omitempty"`  // from 1
	Waves   int       `json:"waves,omitempty"` // of a wave event: how many the rollout has
	State   string    `json:"state"`           // a wave's: started, done; the end's: the rollout's, or error
	Current string    `json:"current,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Output  string    `json:"output,omitempty"`
	// WindowOpens is when a host waiting for its maintenance window may
	// start, as its windows say.
	WindowOpens *time.Time `json:"window_opens,omitempty"`
	// Counts are host states: of a wave when it is done, of the rollout
	// at the end.
	Counts map[string]int `json:"counts,omitempty"`
	// ExitCode is the watch's exit code, on the end event.
	ExitCode *int `json:"exit_code,omitempty"`
}

// watchView shows what a watch sees.
type watchView interface {
	// show gets the rollout's latest status and what changed.
	show(st *api.RolloutStatus, evs []watchEvent)
	// note is a message about the watch itself (on stderr).
	note(msg string)
	// close ends the view with the end event.
	close(end watchEvent)
}

// minBarWidth is the narrowest terminal the progress bars are drawn on.
const minBarWidth = 60

// watchView picks the view: JSON lines with -o json (YAML documents with
// -o yaml), progress bars on a terminal wide enough, lines otherwise.
func (a *app) watchView() watchView {
	switch {
	case a.output == formatJSON || a.output == formatYAML:
		return &jsonView{a: a, yaml: a.output == formatYAML}
	case a.fancy(a.stdout):
		if width := a.width(a.stdout); width >= minBarWidth {
			return newBarView(a, min(width, 120))
		}
	}
	return &lineView{a: a, w: a.stdout}
}

// watch follows a rollout until it ends. It returns an exit code 3 error
// when the rollout ends without completing. A non-zero index makes the
// first read wait until the server has something newer (read your writes).
func (a *app) watch(ctx context.Context, c *client.Client, id string, index uint64) error {
	w := &watcher{a: a, c: c, view: a.watchView()}
	final, err := w.follow(ctx, id, index)
	end := watchEvent{Time: a.now().UTC(), Rollout: id, Type: "end"}
	code := exitOK
	switch {
	case err != nil:
		code, end.State, end.Reason = exitError, "error", err.Error()
	case final.Rollout.State != api.RolloutCompleted:
		code = exitIncomplete
	}
	if final != nil {
		if err == nil {
			end.State, end.Reason = final.Rollout.State, final.Rollout.Reason
		}
		end.Counts = countStates(final.Hosts)
	}
	end.ExitCode = &code
	w.view.close(end)
	if err != nil {
		return err
	}
	if code == exitIncomplete {
		r := final.Rollout
		return &exitErr{code: exitIncomplete, err: fmt.Errorf("rollout %s %s: %s", id, r.State, dash(r.Reason))}
	}
	return nil
}

// watcher follows a rollout and its rollback.
type watcher struct {
	a    *app
	c    *client.Client
	view watchView
	// windows and labels are read once, when a host first waits for its
	// window.
	windows []*api.Window
	labels  map[string]map[string]string
	fetched bool
}

// follow reads the rollout until it ends and returns its last status.
func (w *watcher) follow(ctx context.Context, id string, index uint64) (*api.RolloutStatus, error) {
	var prev *api.RolloutStatus
	var failingSince time.Time
	backoff := time.Second
	for {
		st, idx, err := w.c.Rollout(ctx, id, index, "30s")
		if err != nil {
			if ctx.Err() != nil {
				return prev, ctx.Err()
			}
			if !transient(err) || (!failingSince.IsZero() && time.Since(failingSince) > watchRetryFor) {
				return prev, err
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
				w.view.note(fmt.Sprintf("lost contact with the control plane (%v); retrying for up to %v", err, watchRetryFor))
			}
			select {
			case <-ctx.Done():
				return prev, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		if !failingSince.IsZero() {
			w.view.note("back in contact with the control plane")
			failingSince, backoff = time.Time{}, time.Second
		}
		index = idx
		w.view.show(st, w.diff(ctx, prev, st))
		prev = st
		r := st.Rollout
		switch {
		// A paused rollout starts no new host, but those in flight finish:
		// wait for them, so that the last lines show every outcome.
		case r.State == api.RolloutRunning || r.State == api.RolloutQueued || inFlight(st) > 0:
			continue
		case r.State == api.RolloutRollingBack && r.RollbackID == "":
			continue
		case r.State == api.RolloutRollingBack:
			if _, err := w.follow(ctx, r.RollbackID, 0); err != nil {
				return st, err
			}
			continue // the rollback ended: read the rollout's final state
		}
		return st, nil
	}
}

// transient errors are worth retrying: no server reachable, or no leader.
func transient(err error) bool {
	var ce *client.ConnError
	return errors.As(err, &ce) || api.CodeOf(err) == api.CodeUnavailable
}

func inFlight(st *api.RolloutStatus) int {
	n := 0
	for _, d := range st.Hosts {
		if d.State.InFlight() {
			n++
		}
	}
	return n
}

// diff lists what changed between two views of a rollout.
func (w *watcher) diff(ctx context.Context, prev, cur *api.RolloutStatus) []watchEvent {
	r := cur.Rollout
	now := w.a.now().UTC()
	var evs []watchEvent
	if prev == nil {
		what := fmt.Sprintf("%s to %d host(s) in waves %s (cumulative sizes %s)", r.Release, len(r.Targets), r.Plan.Waves, joinInts(r.Sizes))
		if r.Kind == api.KindRollback {
			what = fmt.Sprintf("rollback of %s (%s): %d host(s) in waves of %s", r.RollbackOf, r.Release, len(r.Targets), joinInts(r.Sizes))
		}
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "rollout", State: r.State, Reason: what})
	}
	if r.Wave < len(r.Sizes) && (prev != nil && prev.Rollout.Wave != r.Wave || prev == nil && !waveDone(cur, r.Wave)) {
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "wave", Wave: r.Wave + 1, Waves: len(r.Sizes), State: "started",
			Reason: fmt.Sprintf("%d host(s)", waveSize(r, r.Wave))})
	}
	before := map[string]deploy.HostState{}
	if prev != nil {
		for _, d := range prev.Hosts {
			before[d.Host] = d.State
		}
	}
	for _, d := range cur.Hosts {
		if d.State == before[d.Host] || (prev == nil && d.State == deploy.Pending) {
			continue
		}
		at := now
		if !d.UpdatedAt.IsZero() {
			at = d.UpdatedAt.UTC()
		}
		ev := watchEvent{Time: at, Rollout: r.ID, Type: "host", Host: d.Host, Wave: d.Wave + 1,
			State: string(d.State), Current: d.Current, Reason: d.Reason, Output: d.Output}
		if d.State == deploy.WaitingForWindow {
			if t, ok := w.windowOpens(ctx, d.Host, now); ok {
				ev.WindowOpens = &t
			}
		}
		evs = append(evs, ev)
	}
	for i := range r.Sizes {
		if hosts := waveHosts(cur, i); len(hosts) > 0 && waveDone(cur, i) && (prev == nil || !waveDone(prev, i)) {
			counts := countStates(hosts)
			evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "wave", Wave: i + 1, Waves: len(r.Sizes), State: "done",
				Reason: summarize(counts), Counts: counts})
		}
	}
	if prev != nil && prev.Rollout.State != r.State {
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "rollout", State: r.State, Reason: r.Reason})
	}
	return evs
}

// windowOpens says when a host waiting for its maintenance window may
// start, from the windows that apply to it.
func (w *watcher) windowOpens(ctx context.Context, host string, now time.Time) (time.Time, bool) {
	if !w.fetched {
		w.fetched = true
		_, _ = w.c.Do(ctx, client.Request{Method: "GET", Path: api.PathWindows}, &w.windows)
		var hosts []*api.Host
		if _, err := w.c.Do(ctx, client.Request{Method: "GET", Path: api.PathHosts}, &hosts); err == nil {
			w.labels = map[string]map[string]string{}
			for _, h := range hosts {
				w.labels[h.ID] = h.Labels
			}
		}
	}
	labels, ok := w.labels[host]
	if !ok {
		return time.Time{}, false
	}
	var mine []deploy.Window
	for _, win := range w.windows {
		if deploy.MatchLabels(labels, win.Selector) {
			mine = append(mine, win.Window)
		}
	}
	if len(mine) == 0 {
		return time.Time{}, false
	}
	from, _, ok := deploy.NextStart(mine, now)
	return from, ok
}

func waveSize(r *api.Rollout, i int) int {
	if i <= 0 {
		return r.Sizes[0]
	}
	return r.Sizes[i] - r.Sizes[i-1]
}

func waveHosts(st *api.RolloutStatus, i int) []*api.Deployment {
	var out []*api.Deployment
	for _, d := range st.Hosts {
		if d.Wave == i {
			out = append(out, d)
		}
	}
	return out
}

// waveDone reports whether every host of wave i is final.
func waveDone(st *api.RolloutStatus, i int) bool {
	for _, d := range st.Hosts {
		if d.Wave == i && !d.State.Final() {
			return false
		}
	}
	return true
}

func countStates(hosts []*api.Deployment) map[string]int {
	out := map[string]int{}
	for _, d := range hosts {
		out[string(d.State)]++
	}
	return out
}

// summarize renders host counts, outcomes first: "2 succeeded, 1 reverted,
// 1 in flight, 3 pending".
func summarize(counts map[string]int) string {
	var parts []string
	inflight := 0
	for st, n := range counts {
		if s := deploy.HostState(st); s.InFlight() && s != deploy.WaitingForWindow {
			inflight += n
		}
	}
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(counts[string(deploy.Succeeded)], "succeeded")
	add(counts[string(deploy.Reverted)], "reverted")
	add(counts[string(deploy.Failed)], "failed")
	add(counts[string(deploy.Skipped)], "skipped")
	add(inflight, "in flight")
	add(counts[string(deploy.WaitingForWindow)], "waiting for a window")
	add(counts[string(deploy.Pending)], "pending")
	if len(parts) == 0 {
		return "no hosts"
	}
	return strings.Join(parts, ", ")
}

// lineView prints a line per change, for logs and pipes (and above the
// progress bars, in colour).
type lineView struct {
	a     *app
	w     io.Writer
	paint painter
}

// verboseStates are the host states a line view prints; JSON has all.
var verboseStates = map[string]bool{"instructed": true, "waiting-for-window": true, "succeeded": true, "reverted": true, "failed": true, "skipped": true}

func (v *lineView) show(_ *api.RolloutStatus, evs []watchEvent) {
	for _, ev := range evs {
		v.line(ev)
	}
}

func (v *lineView) line(ev watchEvent) {
	w := v.w
	now := v.a.now()
	ts := ev.Time.In(v.a.loc).Format("15:04:05")
	switch ev.Type {
	case "rollout":
		line := fmt.Sprintf("%s rollout %s %s", ts, ev.Rollout, v.paint.state(ev.State))
		if ev.Reason != "" {
			line += ": " + ev.Reason
		}
		fmt.Fprintln(w, line)
	case "wave":
		fmt.Fprintf(w, "%s wave %d of %d %s: %s\n", ts, ev.Wave, ev.Waves, ev.State, ev.Reason)
	case "host":
		if !verboseStates[ev.State] {
			return
		}
		line := fmt.Sprintf("%s   %-12s wave %d  %s", ts, ev.Host, ev.Wave, v.paint.state(ev.State))
		if ev.Current != "" && (ev.State == "succeeded" || ev.State == "reverted" || ev.State == "failed") {
			line += " (now on " + ev.Current + ")"
		}
		if ev.WindowOpens != nil {
			line += fmt.Sprintf(": its window opens %s (%s)", ev.WindowOpens.In(v.a.loc).Format("Mon 15:04 MST"), until(*ev.WindowOpens, now))
		}
		if ev.Reason != "" {
			line += ": " + ev.Reason
		}
		fmt.Fprintln(w, line)
		if out := strings.TrimSpace(ev.Output); out != "" {
			writeIndented(w, out, "      | ")
		}
	}
}

func (v *lineView) note(msg string) { fmt.Fprintln(v.a.stderr, "watch:", msg) }

func (v *lineView) close(end watchEvent) {
	if end.State == "error" {
		return // run prints the error
	}
	fmt.Fprintf(v.w, "%s rollout %s ended %s: %s\n", end.Time.In(v.a.loc).Format("15:04:05"), end.Rollout, end.State, summarize(end.Counts))
}

// jsonView prints each event as a line of JSON, or as a YAML document.
type jsonView struct {
	a    *app
	yaml bool
}

func (v *jsonView) show(_ *api.RolloutStatus, evs []watchEvent) {
	enc := json.NewEncoder(v.a.stdout)
	enc.SetEscapeHTML(false)
	for _, ev := range evs {
		if v.yaml {
			fmt.Fprintln(v.a.stdout, "---")
			_ = writeYAML(v.a.stdout, ev)
			continue
		}
		_ = enc.Encode(ev)
	}
}

func (v *jsonView) note(msg string) { fmt.Fprintln(v.a.stderr, "watch:", msg) }

func (v *jsonView) close(end watchEvent) { v.show(nil, []watchEvent{end}) }

// barView draws a progress bar per wave, each with its hosts' states and
// when waiting hosts' windows open, and prints failures and changes of
// the rollout's state above the bars as they happen.
type barView struct {
	a     *app
	p     *mpb.Progress
	lines *lineView // writes above the bars
	paint painter

	mu    sync.Mutex        // guards what the decorators read
	text  map[string]string // bar key -> state counts
	bars  map[string]*waveBar
	order []string
	opens map[string]time.Time // host -> when its window opens
}

type waveBar struct {
	bar   *mpb.Bar
	total int
}

func newBarView(a *app, width int) *barView {
	// We decided the output is a terminal ourselves (tests pass a buffer),
	// so mpb need not decide it again.
	p := mpb.New(mpb.WithOutput(a.stdout), mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithWidth(width), mpb.WithRefreshRate(200*time.Millisecond))
	v := &barView{a: a, p: p, paint: painter(true), text: map[string]string{}, bars: map[string]*waveBar{}, opens: map[string]time.Time{}}
	v.lines = &lineView{a: a, w: p, paint: painter(true)}
	return v
}

func barKey(rollout string, wave int) string { return fmt.Sprintf("%s/%d", rollout, wave) }

func (v *barView) show(st *api.RolloutStatus, evs []watchEvent) {
	r := st.Rollout
	for _, ev := range evs {
		switch {
		case ev.Type == "rollout":
			v.lines.line(ev)
		case ev.Type == "host" && (ev.State == "reverted" || ev.State == "failed"):
			v.lines.line(ev)
		case ev.Type == "host" && ev.State == "waiting-for-window":
			if ev.WindowOpens != nil {
				v.mu.Lock()
				v.opens[ev.Host] = *ev.WindowOpens
				v.mu.Unlock()
			}
		}
	}
	for i := range r.Sizes {
		key := barKey(r.ID, i)
		b, ok := v.bars[key]
		if !ok {
			name := fmt.Sprintf("wave %d/%d", i+1, len(r.Sizes))
			if r.Kind == api.KindRollback {
				name = "rollback " + name
			}
			total := max(waveSize(r, i), 1)
			bar := v.p.AddBar(int64(total),
				mpb.PrependDecorators(decor.Name(name, decor.WC{W: len(name) + 1, C: decor.DindentRight}), decor.CountersNoUnit("%d/%d", decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					v.mu.Lock()
					defer v.mu.Unlock()
					return v.text[key]
				})))
			b = &waveBar{bar: bar, total: total}
			v.bars[key] = b
			v.order = append(v.order, key)
		}
		hosts := waveHosts(st, i)
		final := 0
		for _, d := range hosts {
			if d.State.Final() {
				final++
			}
		}
		if len(hosts) == 0 && (i < r.Wave || r.State == api.RolloutCompleted) {
			final = b.total // an empty wave is done once passed
		}
		text := summarize(countStates(hosts))
		if opens, ok := v.earliestOpen(hosts); ok {
			text += fmt.Sprintf(" (window opens %s, %s)", opens.In(v.a.loc).Format("15:04"), until(opens, v.a.now()))
		}
		v.mu.Lock()
		v.text[key] = text
		v.mu.Unlock()
		b.bar.SetCurrent(int64(final))
	}
}

// earliestOpen is the soonest window of the wave's hosts that wait for one.
func (v *barView) earliestOpen(hosts []*api.Deployment) (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var first time.Time
	for _, d := range hosts {
		if t, ok := v.opens[d.Host]; ok && d.State == deploy.WaitingForWindow && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first, !first.IsZero()
}

func (v *barView) note(msg string) { fmt.Fprintln(v.a.stderr, "watch:", msg) }

func (v *barView) close(end watchEvent) {
	for _, key := range v.order {
		v.bars[key].bar.Abort(false) // a wave that will not finish stays drawn as it is
	}
	v.p.Wait()
	if end.State == "error" {
		return
	}
	st := v.paint.state(end.State)
	fmt.Fprintf(v.a.stdout, "rollout %s ended %s: %s\n", end.Rollout, st, summarize(end.Counts))
}

func writeIndented(w io.Writer, text, prefix string) {
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintln(w, prefix+l)
	}
}

func joinInts(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}
