package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// A host waiting for its maintenance window: the watch says when the
// window opens, from the windows whose selector matches the host.
func TestWatchSaysWhenAWaitingHostsWindowOpens(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) // a Wednesday, 13:00 in Berlin
	var out bytes.Buffer
	a := newApp(&out, io.Discard)
	a.now, a.loc = func() time.Time { return now }, time.UTC
	w := &watcher{a: a, fetched: true,
		windows: []*api.Window{
			{Window: deploy.Window{Name: "berlin-nights", Schedule: "FREQ=DAILY;BYHOUR=2", TimeZone: "Europe/Berlin", Duration: 3 * time.Hour, Selector: map[string]string{"site": "berlin"}}},
			{Window: deploy.Window{Name: "paris-nights", Schedule: "FREQ=DAILY;BYHOUR=1", TimeZone: "Europe/Paris", Duration: time.Hour, Selector: map[string]string{"site": "paris"}}},
		},
		labels: map[string]map[string]string{"b1": {"site": "berlin"}, "x1": {"site": "oslo"}},
	}
	r := &api.Rollout{ID: "r-7", Release: "web@1.2.0", State: api.RolloutRunning, Sizes: []int{2}, Targets: []string{"b1", "x1"}}
	status := func(state deploy.HostState) *api.RolloutStatus {
		return &api.RolloutStatus{Rollout: r, Hosts: []*api.Deployment{
			{Host: "b1", State: state, UpdatedAt: now}, {Host: "x1", State: state, UpdatedAt: now}}}
	}
	prev, cur := status(deploy.Instructed), status(deploy.WaitingForWindow)
	evs := w.diff(context.Background(), prev, cur)
	want := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC) // 02:00 in Berlin
	var b1, x1 *watchEvent
	for i := range evs {
		switch evs[i].Host {
		case "b1":
			b1 = &evs[i]
		case "x1":
			x1 = &evs[i]
		}
	}
	if b1 == nil || b1.WindowOpens == nil || !b1.WindowOpens.Equal(want) {
		t.Fatalf("b1's event %+v; want its window to open at %v", b1, want)
	}
	if x1 == nil || x1.WindowOpens != nil {
		t.Errorf("x1's event %+v; want no window time: no window applies to it", x1)
	}

	(&lineView{a: a, w: &out}).show(cur, evs)
	if line := "b1           wave 1  waiting-for-window: its window opens Thu 01:00 UTC (in 13h)"; !strings.Contains(out.String(), line) {
		t.Errorf("lines lack %q:\n%s", line, out.String())
	}

	var bars bytes.Buffer
	a.stdout = &bars
	v := newBarView(a, 100)
	v.show(cur, evs)
	v.mu.Lock()
	text := v.text[barKey("r-7", 0)]
	v.mu.Unlock()
	v.close(watchEvent{Rollout: "r-7", State: api.RolloutPaused, Counts: countStates(cur.Hosts)})
	if want := "2 waiting for a window (window opens 01:00, in 13h)"; text != want {
		t.Errorf("the wave's bar says %q; want %q", text, want)
	}
	if !strings.Contains(bars.String(), "wave 1/1") || !strings.Contains(bars.String(), "rollout r-7 ended") {
		t.Errorf("bars:\n%q", bars.String())
	}
}

func TestSummarizePutsOutcomesFirst(t *testing.T) {
	got := summarize(map[string]int{"pending": 3, "succeeded": 2, "probation": 1, "downloading": 1, "reverted": 1, "waiting-for-window": 2})
	want := "2 succeeded, 1 reverted, 2 in flight, 2 waiting for a window, 3 pending"
	if got != want {
		t.Errorf("summarize = %q; want %q", got, want)
	}
	if got := summarize(nil); got != "no hosts" {
		t.Errorf("summarize(nil) = %q", got)
	}
}
