package main

// drover status: the fleet on one screen, from the API's existing reads:
// the cluster's health, hosts by status and version, active and scheduled
// rollouts, the next maintenance windows and the freezes ahead.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
)

// maxLag is how many log entries behind the leader a server may be and
// still count as healthy.
const maxLag = 100

// statusRows bounds each list of the table form (JSON has everything).
const statusRows = 5

type fleetStatus struct {
	Cluster  clusterSummary  `json:"cluster"`
	Hosts    hostSummary     `json:"hosts"`
	Rollouts rolloutsSummary `json:"rollouts"`
	Windows  []windowSummary `json:"windows"`
	Freezes  []freezeSummary `json:"freezes"`
}

type clusterSummary struct {
	Leader   string   `json:"leader"`
	Term     uint64   `json:"term"`
	Servers  int      `json:"servers"`
	Voters   int      `json:"voters"`
	Healthy  int      `json:"healthy"`            // alive, answering, and caught up
	Problems []string `json:"problems,omitempty"` // one per unhealthy server
}

type hostSummary struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
	Down     []string       `json:"down,omitempty"`
	Drifted  int            `json:"drifted"` // hosts changed in a way no rollout explains
	Versions []versionCount `json:"versions"`
}

type versionCount struct {
	App     string `json:"app"`     // "" for hosts with no release
	Version string `json:"version"` // ""
	Hosts   int    `json:"hosts"`
}

type rolloutsSummary struct {
	Active    []rolloutSummary `json:"active"`    // running, paused, rolling back
	Scheduled []rolloutSummary `json:"scheduled"` // pending or queued
}

type rolloutSummary struct {
	ID        string         `json:"id"`
	Release   string         `json:"release"`
	Kind      string         `json:"kind"`
	State     string         `json:"state"`
	Wave      int            `json:"wave"` // from 1
	Waves     int            `json:"waves"`
	Hosts     int            `json:"hosts"`
	Counts    map[string]int `json:"counts,omitempty"` // host states, of active rollouts
	NotBefore time.Time      `json:"not_before,omitzero"`
	Deadline  time.Time      `json:"deadline,omitzero"`
	After     []string       `json:"after,omitempty"`
	Reason    string         `json:"reason,omitempty"`
}

type windowSummary struct {
	Name     string            `json:"name"`
	Selector map[string]string `json:"selector,omitempty"`
	Opens    time.Time         `json:"opens"`
	Closes   time.Time         `json:"closes"`
	Open     bool              `json:"open"`
}

type freezeSummary struct {
	Name     string            `json:"name"`
	Selector map[string]string `json:"selector,omitempty"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	InForce  bool              `json:"in_force"`
	Reason   string            `json:"reason,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The fleet at a glance: cluster, hosts, rollouts, windows, freezes",
		Long: `Show on one screen: the control plane's leader and the health of its
servers; hosts by status (up, down) and by release version, and how many
drifted; active rollouts with their hosts' progress, and scheduled ones
(pending or queued); the next occurrence of each maintenance window; and
the change freezes in force or ahead. -o json and -o yaml give every
item; the table shows the first few of each list.`,
		Example: `  drover status
  drover status -o json | jq '.rollouts.active[] | {id, counts}'
  watch -n 10 drover status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := a.fleetStatus(cmd.Context(), c)
			if err != nil {
				return err
			}
			return a.printOut(st, func(w io.Writer) { a.printStatus(w, st) })
		},
	}
}

// fleetStatus reads what status shows.
func (a *app) fleetStatus(ctx context.Context, c *client.Client) (*fleetStatus, error) {
	now := a.now()
	var cs api.ClusterStatus
	if _, err := c.Do(ctx, client.Request{Method: "GET", Path: api.PathClusterStatus}, &cs); err != nil {
		return nil, err
	}
	hosts, err := c.Hosts(ctx, client.HostQuery{})
	if err != nil {
		return nil, err
	}
	rollouts, err := c.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	windows, err := c.Windows(ctx)
	if err != nil {
		return nil, err
	}
	freezes, err := c.Freezes(ctx)
	if err != nil {
		return nil, err
	}
	st := &fleetStatus{Cluster: summarizeCluster(cs), Hosts: summarizeHosts(hosts),
		Rollouts: rolloutsSummary{Active: []rolloutSummary{}, Scheduled: []rolloutSummary{}},
		Windows:  []windowSummary{}, Freezes: []freezeSummary{}}
	slices.SortFunc(rollouts, func(x, y *api.Rollout) int { return cmp.Compare(x.CreateIndex, y.CreateIndex) })
	for _, r := range rollouts {
		s := rolloutSummary{ID: r.ID, Release: r.Release, Kind: r.Kind, State: r.State, Wave: r.Wave + 1, Waves: len(r.Sizes),
			Hosts: len(r.Targets), NotBefore: r.Plan.NotBefore, Deadline: r.Plan.Deadline, After: r.After, Reason: r.Reason}
		switch r.State {
		case api.RolloutRunning, api.RolloutPaused, api.RolloutRollingBack:
			rs, _, err := c.Rollout(ctx, r.ID, 0, "")
			if err != nil {
				return nil, err
			}
			s.Counts = countStates(rs.Hosts)
			st.Rollouts.Active = append(st.Rollouts.Active, s)
		case api.RolloutPending, api.RolloutQueued:
			st.Rollouts.Scheduled = append(st.Rollouts.Scheduled, s)
		}
	}
	for _, w := range windows {
		opens, closes, err := w.Occurrence(now)
		if err != nil {
			continue
		}
		st.Windows = append(st.Windows, windowSummary{Name: w.Name, Selector: w.Selector, Opens: opens.UTC(), Closes: closes.UTC(), Open: !now.Before(opens)})
	}
	slices.SortFunc(st.Windows, func(x, y windowSummary) int { return cmp.Or(x.Opens.Compare(y.Opens), cmp.Compare(x.Name, y.Name)) })
	for _, f := range freezes {
		if !f.End.After(now) {
			continue
		}
		st.Freezes = append(st.Freezes, freezeSummary{Name: f.Name, Selector: f.Selector, Start: f.Start.UTC(), End: f.End.UTC(), InForce: f.Active(now), Reason: f.Reason})
	}
	slices.SortFunc(st.Freezes, func(x, y freezeSummary) int { return cmp.Or(x.Start.Compare(y.Start), cmp.Compare(x.Name, y.Name)) })
	return st, nil
}

func summarizeCluster(cs api.ClusterStatus) clusterSummary {
	out := clusterSummary{Leader: cs.Leader, Term: cs.Term, Servers: len(cs.Servers)}
	for _, s := range cs.Servers {
		if s.Suffrage == "voter" {
			out.Voters++
		}
		switch {
		case s.Health == nil:
			out.Problems = append(out.Problems, s.ID+" does not answer")
		case s.Gossip != "alive":
			out.Problems = append(out.Problems, fmt.Sprintf("%s is %s in gossip", s.ID, s.Gossip))
		case s.Lag > maxLag:
			out.Problems = append(out.Problems, fmt.Sprintf("%s is %d entries behind the leader", s.ID, s.Lag))
		default:
			out.Healthy++
		}
	}
	return out
}

func summarizeHosts(hosts []*api.Host) hostSummary {
	out := hostSummary{Total: len(hosts), ByStatus: map[string]int{}, Versions: []versionCount{}}
	versions := map[[2]string]int{}
	for _, h := range hosts {
		out.ByStatus[h.Status]++
		if h.Status == api.HostDown {
			out.Down = append(out.Down, h.ID)
		}
		if !h.DriftAt.IsZero() {
			out.Drifted++
		}
		if len(h.Releases) == 0 {
			versions[[2]string{"", ""}]++
		}
		for app, v := range h.Releases {
			versions[[2]string{app, v}]++
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(versions), func(x, y [2]string) int {
		// By application, then the most hosts first; no release last.
		return cmp.Or(boolCmp(x[0] == "")-boolCmp(y[0] == ""), cmp.Compare(x[0], y[0]), cmp.Compare(versions[y], versions[x]), cmp.Compare(x[1], y[1]))
	}) {
		out.Versions = append(out.Versions, versionCount{App: k[0], Version: k[1], Hosts: versions[k]})
	}
	return out
}

func boolCmp(b bool) int {
	if b {
		return 1
	}
	return 0
}

// printStatus writes the table form of status.
func (a *app) printStatus(w io.Writer, st *fleetStatus) {
	p := painter(a.fancy(a.stdout))
	now := a.now()
	heading := func(title, detail string) {
		fmt.Fprintf(w, "%s %s\n", p.paint(colBold, title+":"), detail)
	}
	more := func(shown, all int) {
		if all > shown {
			fmt.Fprintf(w, "(%d more; -o json lists them all)\n", all-shown)
		}
	}
	at := func(t time.Time) string {
		return t.In(a.loc).Format("Mon 2006-01-02 15:04 MST") + " (" + until(t, now) + ")"
	}

	cl := st.Cluster
	health := fmt.Sprintf("%d of %d servers healthy", cl.Healthy, cl.Servers)
	if cl.Healthy < cl.Servers {
		health = p.paint(colRed, health+": "+strings.Join(cl.Problems, "; "))
	}
	heading("Cluster", fmt.Sprintf("leader %s (term %d), %s", dash(cl.Leader), cl.Term, health))

	h := st.Hosts
	var byStatus []string
	for _, s := range slices.Sorted(maps.Keys(h.ByStatus)) {
		byStatus = append(byStatus, fmt.Sprintf("%d %s", h.ByStatus[s], s))
	}
	detail := fmt.Sprintf("%d", h.Total)
	if len(byStatus) > 0 {
		detail += " (" + strings.Join(byStatus, ", ") + ")"
	}
	if len(h.Down) > 0 {
		detail += p.paint(colRed, "; down: "+strings.Join(h.Down[:min(len(h.Down), 10)], ", "))
		if len(h.Down) > 10 {
			detail += ", …"
		}
	}
	if h.Drifted > 0 {
		detail += fmt.Sprintf("; %d drifted (drover host list shows when)", h.Drifted)
	}
	fmt.Fprintln(w)
	heading("Hosts", detail)
	if len(h.Versions) > 0 {
		row(w, "APP", "VERSION", "HOSTS")
		for _, v := range h.Versions {
			if v.App == "" {
				row(w, "(none)", "-", v.Hosts)
				continue
			}
			row(w, v.App, v.Version, v.Hosts)
		}
	}

	rs := st.Rollouts
	fmt.Fprintln(w)
	heading("Rollouts", fmt.Sprintf("%d active, %d scheduled", len(rs.Active), len(rs.Scheduled)))
	if len(rs.Active)+len(rs.Scheduled) > 0 {
		row(w, "ID", "RELEASE", "STATE", "WAVE", "HOSTS", "PROGRESS")
		for _, r := range rs.Active[:min(len(rs.Active), statusRows)] {
			progress := summarize(r.Counts)
			if r.State != api.RolloutRunning && r.Reason != "" {
				progress += "; " + r.Reason
			}
			row(w, r.ID, r.Release, r.State, fmt.Sprintf("%d/%d", r.Wave, r.Waves), r.Hosts, progress)
		}
		for _, r := range rs.Scheduled[:min(len(rs.Scheduled), statusRows)] {
			when := "not started"
			switch {
			case r.State == api.RolloutQueued:
				when = "after " + strings.Join(r.After, ", ")
			case !r.NotBefore.IsZero():
				when = "not before " + at(r.NotBefore)
			}
			row(w, r.ID, r.Release, r.State, "-", r.Hosts, when)
		}
		more(min(len(rs.Active), statusRows), len(rs.Active))
		more(min(len(rs.Scheduled), statusRows), len(rs.Scheduled))
	}

	fmt.Fprintln(w)
	heading("Maintenance windows", fmt.Sprintf("%d", len(st.Windows)))
	if len(st.Windows) > 0 {
		row(w, "WINDOW", "HOSTS", "OPENS", "CLOSES")
		for _, win := range st.Windows[:min(len(st.Windows), statusRows)] {
			opens := at(win.Opens)
			if win.Open {
				opens = "open now"
			}
			row(w, win.Name, dash(api.FormatLabels(win.Selector)), opens, at(win.Closes))
		}
		more(min(len(st.Windows), statusRows), len(st.Windows))
	}

	fmt.Fprintln(w)
	heading("Change freezes", fmt.Sprintf("%d in force or ahead", len(st.Freezes)))
	if len(st.Freezes) > 0 {
		row(w, "FREEZE", "HOSTS", "FROM", "UNTIL", "REASON")
		for _, f := range st.Freezes[:min(len(st.Freezes), statusRows)] {
			from := at(f.Start)
			if f.InForce {
				from = "in force"
			}
			row(w, f.Name, dash(api.FormatLabels(f.Selector)), from, at(f.End), dash(f.Reason))
		}
		more(min(len(st.Freezes), statusRows), len(st.Freezes))
	}
}
