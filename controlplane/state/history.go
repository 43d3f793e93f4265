package state

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

// A host's configuration history.
//
// Each inventory that changes a configuration fact (inventory.Configuration)
// adds one api.HostChange listing the facts, their old and new values, and
// for each the rollout that made it. A change is credited to a rollout
// when the host took part in it recently: its deployment there has been
// instructed and is still going, or ended no longer than attributionWindow
// before the inventory arrived. A release.<app> fact is credited only to a
// rollout of that application; any other fact to the most recent rollout
// on the host, since install hooks change packages and files as well. A
// change credited to no rollout is drift: the history entry and the host
// (DriftAt) are flagged.
//
// Everything here runs inside Apply: it reads the command's time, never
// the clock, and the diff is a pure function of the two inventories.
const (
	attributionWindow = 30 * time.Minute
	// historyPerHost is how many history entries a host keeps; older
	// ones are dropped, and the CMDB export has copied them long since.
	historyPerHost = 200
)

// recordChanges compares h's current inventory with sys, which is about to
// replace it, and writes the history entry.
func (w *writer) recordChanges(h *api.Host, sys *inventory.System) {
	entry := &api.HostChange{ID: fmt.Sprintf("%s/%020d", h.ID, w.index), Host: h.ID, At: w.cmd.Time}
	if len(h.Inventory) == 0 {
		entry.Initial = true
		entry.Facts = len(inventory.Configuration(sys))
	} else {
		var old inventory.System
		if err := json.Unmarshal(h.Inventory, &old); err != nil {
			panic(fmt.Sprintf("state: stored inventory of host %s: %v", h.ID, err))
		}
		changes := inventory.Diff(&old, sys)
		if len(changes) == 0 {
			return // free space or collection time only
		}
		if len(changes) > api.MaxHostChanges {
			entry.Omitted = len(changes) - api.MaxHostChanges
			changes = changes[:api.MaxHostChanges]
		}
		recent := w.recentDeployments(h.ID)
		for _, c := range changes {
			fc := api.FactChange{Fact: c.Fact, From: c.From, To: c.To, Rollout: creditedTo(c.Fact, recent)}
			entry.Drift = entry.Drift || fc.Rollout == ""
			entry.Changes = append(entry.Changes, fc)
		}
	}
	h.ChangedAt = w.cmd.Time
	if entry.Drift {
		h.DriftAt = w.cmd.Time
	}
	w.meta(&entry.Meta)
	w.insert(tabHostChanges, entry)
	w.pruneHistory(h.ID)
}

// recentDeployments lists the host's deployments that may have changed its
// configuration lately, most recently updated first.
func (w *writer) recentDeployments(host string) []*api.Deployment {
	it, err := w.tx.Get(tabDeployments, "host", host)
	if err != nil {
		panic(err)
	}
	since := w.cmd.Time.Add(-attributionWindow)
	var out []*api.Deployment
	for obj := it.Next(); obj != nil; obj = it.Next() {
		d := obj.(*api.Deployment)
		if d.State == deploy.Pending || d.State.Final() && d.UpdatedAt.Before(since) {
			continue
		}
		out = append(out, d)
	}
	// Newest first; ties (one command touching two) by rollout id, so
	// that every server credits the same one.
	slices.SortFunc(out, func(a, b *api.Deployment) int {
		return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), strings.Compare(b.Rollout, a.Rollout))
	})
	return out
}

// creditedTo names the rollout that made a change to fact, or "" for drift.
func creditedTo(fact string, recent []*api.Deployment) string {
	app, isRelease := strings.CutPrefix(fact, "release.")
	for _, d := range recent {
		if !isRelease || d.App == app {
			return d.Rollout
		}
	}
	return ""
}

// pruneHistory keeps the host's newest historyPerHost entries.
func (w *writer) pruneHistory(host string) {
	entries := w.hostChanges(host)
	for _, e := range entries[:max(0, len(entries)-historyPerHost)] {
		if err := w.tx.Delete(tabHostChanges, e); err != nil {
			panic(err)
		}
	}
}

// dropHistory removes a decommissioned host's history.
func (w *writer) dropHistory(host string) {
	for _, e := range w.hostChanges(host) {
		if err := w.tx.Delete(tabHostChanges, e); err != nil {
			panic(err)
		}
	}
	w.touch(tabHostChanges)
}

// hostChanges lists a host's history entries, oldest first.
func (w reader) hostChanges(host string) []*api.HostChange {
	it, err := w.tx.Get(tabHostChanges, "id_prefix", host+"/")
	if err != nil {
		panic(err)
	}
	var out []*api.HostChange
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*api.HostChange))
	}
	return out
}
