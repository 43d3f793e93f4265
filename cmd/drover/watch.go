package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
)

// watchEvent is one line of `rollout watch -o json`.
type watchEvent struct {
	Time    time.Time `json:"time"`
	Rollout string    `json:"rollout"`
	Type    string    `json:"type"` // rollout, wave, host
	Host    string    `json:"host,omitempty"`
	Wave    int       `json:"wave,omitempty"`
	State   string    `json:"state"`
	Current string    `json:"current,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Output  string    `json:"output,omitempty"`
}

// watch follows a rollout with blocking queries until it ends, printing
// what changed; a rollout that rolls back is followed into its rollback.
// It returns an exit code 3 error when the rollout ends without
// completing. A non-zero index makes the first read wait until the server
// has something newer (read your writes).
func (a *app) watch(ctx context.Context, c *client.Client, id string, index uint64) error {
	var prev *api.RolloutStatus
	for {
		st, idx, err := c.Rollout(ctx, id, index, "30s")
		if err != nil {
			return err
		}
		index = idx
		for _, ev := range diff(prev, st) {
			a.printEvent(ev)
		}
		prev = st
		r := st.Rollout
		switch {
		// A paused rollout starts no new host, but those in flight finish:
		// wait for them, so the last lines show every outcome.
		case r.State == api.RolloutRunning || r.State == api.RolloutQueued || inFlight(st) > 0:
			continue
		case r.State == api.RolloutRollingBack && r.RollbackID == "":
			continue
		case r.State == api.RolloutRollingBack:
			if err := a.watch(ctx, c, r.RollbackID, 0); err != nil {
				return err
			}
			continue // the rollback ended: read the rollout's final state
		case r.State == api.RolloutCompleted:
			return nil
		}
		return &exitErr{code: exitIncomplete, err: fmt.Errorf("rollout %s %s: %s", id, r.State, r.Reason)}
	}
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
func diff(prev, cur *api.RolloutStatus) []watchEvent {
	r := cur.Rollout
	now := time.Now().UTC()
	var evs []watchEvent
	if prev == nil {
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "rollout", State: r.State,
			Reason: fmt.Sprintf("%s to %d host(s) in waves %s (cumulative sizes %s)", r.Release, len(r.Targets), r.Plan.Waves, joinInts(r.Sizes))})
	}
	if prev == nil || prev.Rollout.Wave != r.Wave {
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "wave", Wave: r.Wave + 1, State: "started",
			Reason: fmt.Sprintf("%d of %d", r.Wave+1, len(r.Sizes))})
	}
	before := map[string]string{}
	if prev != nil {
		for _, d := range prev.Hosts {
			before[d.Host] = string(d.State)
		}
	}
	for _, d := range cur.Hosts {
		if string(d.State) == before[d.Host] || (prev == nil && d.State == "pending") {
			continue
		}
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "host", Host: d.Host, Wave: d.Wave + 1,
			State: string(d.State), Current: d.Current, Reason: d.Reason, Output: d.Output})
	}
	if prev != nil && prev.Rollout.State != r.State {
		evs = append(evs, watchEvent{Time: now, Rollout: r.ID, Type: "rollout", State: r.State, Reason: r.Reason})
	}
	return evs
}

func (a *app) printEvent(ev watchEvent) {
	if a.output == "json" {
		_ = json.NewEncoder(a.stdout).Encode(ev)
		return
	}
	w := a.stdout
	ts := ev.Time.Local().Format("15:04:05")
	switch ev.Type {
	case "rollout":
		fmt.Fprintf(w, "%s rollout %s %s: %s\n", ts, ev.Rollout, ev.State, ev.Reason)
	case "wave":
		fmt.Fprintf(w, "%s wave %s started\n", ts, ev.Reason)
	case "host":
		if !verboseStates[ev.State] {
			return
		}
		line := fmt.Sprintf("%s   %-12s wave %d  %s", ts, ev.Host, ev.Wave, ev.State)
		if ev.Current != "" && (ev.State == "succeeded" || ev.State == "reverted" || ev.State == "failed") {
			line += " (now on " + ev.Current + ")"
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

// verboseStates are the host states a text watch prints; JSON has all.
var verboseStates = map[string]bool{"instructed": true, "waiting-for-window": true, "succeeded": true, "reverted": true, "failed": true, "skipped": true}

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
