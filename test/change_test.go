package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/agent"
	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/controlplane/webhook"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/pki"
	"github.com/emersion/go-ical"
)

// hostsFleet starts a cluster with one agent per name, all labelled
// env=prod, and publishes web@1.0.0 to every one of them.
func hostsFleet(t *testing.T, names ...string) (*testcluster.Cluster, string, map[string]*testcluster.Agent) {
	t.Helper()
	c := testcluster.Start(t, 3)
	c.AgentPollWait = time.Second
	key := c.SigningKey()
	token := c.Token(map[string]string{"env": "prod"}, len(names))
	agents := map[string]*testcluster.Agent{}
	for _, n := range names {
		agents[n] = c.StartAgent(n, "", token)
	}
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.WaitRollout(c.RolloutWith("web@1.0.0", nil), 60*time.Second, api.RolloutCompleted)
	return c, key, agents
}

func plan(t *testing.T, waves string, edit func(p *deploy.Plan)) deploy.Plan {
	t.Helper()
	w, err := deploy.ParseWaves(waves)
	if err != nil {
		t.Fatal(err)
	}
	p := deploy.Plan{Waves: w}
	if edit != nil {
		edit(&p)
	}
	return p
}

func create(t *testing.T, c *testcluster.Cluster, req api.RolloutRequest) string {
	t.Helper()
	created, err := c.Admin.CreateRollout(context.Background(), req)
	if err != nil {
		t.Fatalf("create rollout of %s: %v", req.Release, err)
	}
	return created.ID
}

// firstAt is when a deployment first entered state (zero if never).
func firstAt(d *api.Deployment, state deploy.HostState) time.Time {
	for _, tr := range d.History {
		if tr.State == state {
			return tr.At
		}
	}
	return time.Time{}
}

func endedAt(d *api.Deployment) time.Time { return d.History[len(d.History)-1].At }

// checkWavesInOrder fails if a host of a wave started before every host of
// the wave before had finished.
func checkWavesInOrder(t *testing.T, st *api.RolloutStatus) {
	t.Helper()
	var prevEnd time.Time
	for w := range st.Rollout.Sizes {
		var end time.Time
		for _, d := range st.Hosts {
			if d.Wave != w || !d.State.Final() || d.State == deploy.Skipped {
				continue
			}
			if start := firstAt(d, deploy.Instructed); start.Before(prevEnd) {
				t.Errorf("rollout %s: %s of wave %d started at %v, before wave %d ended at %v", st.Rollout.ID, d.Host, w+1, start, w, prevEnd)
			}
			if e := endedAt(d); e.After(end) {
				end = e
			}
		}
		if end.After(prevEnd) {
			prevEnd = end
		}
	}
}

// TestAutomaticRollbackInWaves: the third host of a rollout with
// on_failure rollback fails its checks; the rollout waits for the host
// still in flight, then a rollback takes every updated host back to 1.0.0,
// wave by wave.
func TestAutomaticRollbackInWaves(t *testing.T) {
	c, key, agents := hostsFleet(t, "h1", "h2", "h3", "h4")
	if err := os.WriteFile(filepath.Join(agents["h3"].Dir, "broken"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Publish("web", "2.0.0", webFiles, brokenCheck, key)
	id := create(t, c, api.RolloutRequest{Release: "web@2.0.0", Start: true,
		Plan: plan(t, "2,100%", func(p *deploy.Plan) { p.OnFailure = deploy.OnFailureRollback })})
	st := c.WaitRollout(id, 90*time.Second, api.RolloutRolledBack, api.RolloutPaused, api.RolloutCompleted)
	if st.Rollout.State != api.RolloutRolledBack || st.Rollout.RollbackID == "" {
		t.Fatalf("rollout %s: %s (%s); want rolled-back", id, st.Rollout.State, st.Rollout.Reason)
	}
	rb, _, err := c.Admin.Rollout(context.Background(), st.Rollout.RollbackID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if rb.Rollout.Kind != api.KindRollback || rb.Rollout.State != api.RolloutCompleted || len(rb.Rollout.Sizes) < 2 {
		t.Fatalf("rollback %s: %s %s in %d wave(s); want a completed rollback in waves", rb.Rollout.ID, rb.Rollout.Kind, rb.Rollout.State, len(rb.Rollout.Sizes))
	}
	checkWavesInOrder(t, rb)
	for _, d := range rb.Hosts {
		if d.State != deploy.Succeeded || d.Version != "1.0.0" {
			t.Errorf("rollback of %s: %s to %s; want succeeded to 1.0.0", d.Host, d.State, d.Version)
		}
	}
	if slices.ContainsFunc(rb.Hosts, func(d *api.Deployment) bool { return d.Host == "h3" }) {
		t.Errorf("h3 reverted by itself; the rollback must not touch it")
	}
	for name, a := range agents {
		if v := current(t, a, "web"); v != "1.0.0" {
			t.Errorf("%s runs %s; want 1.0.0", name, v)
		}
	}
	rep, err := c.Admin.Report(context.Background(), id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rollback == nil || len(rep.Deviations) == 0 || rep.Waves[1].Reverted != 1 {
		t.Errorf("report: rollback %v, deviations %v, wave 2 %+v", rep.Rollback != nil, rep.Deviations, rep.Waves[1])
	}
}

// TestLeaderKilledMidWave stops the leader while a wave is in flight: the
// new leader carries on from the committed state, never has more than
// max_parallel hosts in flight, and instructs no host twice.
func TestLeaderKilledMidWave(t *testing.T) {
	names := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	c, key, agents := hostsFleet(t, names...)
	c.PublishManifest(testManifest("web", "2.0.0", webCheck, 2*time.Second), webFiles, key)
	const maxParallel = 2
	id := create(t, c, api.RolloutRequest{Release: "web@2.0.0", Start: true,
		Plan: plan(t, "1,100%", func(p *deploy.Plan) { p.MaxParallel = maxParallel })})
	testcluster.WaitFor(t, 60*time.Second, "wave 2 to be under way", func() bool {
		st, _, err := c.Admin.Rollout(context.Background(), id, 0, "")
		return err == nil && st.Rollout.Wave == 1 && inFlight(st) > 0
	})
	old := c.Leader()
	c.StopServer(old)
	if now := c.Leader(); now == old {
		t.Fatalf("leader did not change")
	}
	st := c.WaitRollout(id, 90*time.Second, api.RolloutCompleted, api.RolloutPaused)
	if st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout %s; want completed", st.Rollout.State)
	}
	checkWavesInOrder(t, st)
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, d := range st.Hosts {
		n := 0
		for _, tr := range d.History {
			if tr.State == deploy.Instructed {
				n++
			}
		}
		if n != 1 || d.State != deploy.Succeeded {
			t.Errorf("%s: instructed %d time(s), ended %s; want once, succeeded", d.Host, n, d.State)
		}
		edges = append(edges, edge{firstAt(d, deploy.Instructed), +1}, edge{endedAt(d), -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // a host that ends at the same instant frees its slot first
	})
	inFlightNow, most := 0, 0
	for _, e := range edges {
		inFlightNow += e.delta
		most = max(most, inFlightNow)
	}
	if most > maxParallel {
		t.Errorf("%d hosts in flight at once; max_parallel is %d", most, maxParallel)
	}
	for _, n := range names {
		if v := current(t, agents[n], "web"); v != "2.0.0" {
			t.Errorf("%s runs %s; want 2.0.0", n, v)
		}
	}
}

// TestRolloutWaitsForWindowThenProceeds: hosts stage the release and wait
// for their window without being failed; when their clock reaches the
// window they activate and the rollout completes, the wait on record.
func TestRolloutWaitsForWindowThenProceeds(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.AgentPollWait = time.Second
	c.AgentConfig = func(cfg *agent.Config) { cfg.WindowJitter = time.Second }
	clock := &offsetClock{}
	c.AgentClock = clock
	key := c.SigningKey()
	token := c.Token(map[string]string{"env": "prod"}, 2)
	agents := []*testcluster.Agent{c.StartAgent("w1", "", token), c.StartAgent("w2", "", token)}
	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	c.WaitRollout(c.RolloutWith("web@1.0.0", nil), 60*time.Second, api.RolloutCompleted)

	opens := time.Now().Add(6 * time.Hour).Truncate(time.Second)
	c.SetWindow(windowAt("nightly", opens, time.Hour, 0))
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	id := create(t, c, api.RolloutRequest{Release: "web@2.0.0", Start: true,
		Plan: plan(t, "1,100%", func(p *deploy.Plan) { p.HostTimeout = 5 * time.Second })})
	testcluster.WaitFor(t, 20*time.Second, "w1 to wait for its window", func() bool {
		d := deployment(c, id, "w1")
		return d != nil && d.State == deploy.WaitingForWindow
	})
	// Longer than the host timeout: waiting for a window is not failing.
	observe(t, 7*time.Second, "w1 waiting, not failed", func() bool {
		d := deployment(c, id, "w1")
		return d != nil && d.State == deploy.WaitingForWindow
	})
	clock.advance(time.Until(opens) + time.Minute)
	st := c.WaitRollout(id, 60*time.Second, api.RolloutCompleted, api.RolloutPaused)
	if st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout %s (%s); want completed", st.Rollout.State, st.Rollout.Reason)
	}
	for _, a := range agents {
		if v := current(t, a, "web"); v != "2.0.0" {
			t.Errorf("%s runs %s; want 2.0.0", a.Name, v)
		}
	}
	rep, err := c.Admin.Report(context.Background(), id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if wait, _ := time.ParseDuration(rep.Waves[0].WindowWait); wait < 5*time.Second {
		t.Errorf("wave 1 waited %s for its window in the report; want the real wait", rep.Waves[0].WindowWait)
	}
}

// TestConflictRejectedThenQueued: a second rollout over the same hosts is
// refused with the other change named; queued, it starts by itself once
// the first has ended.
func TestConflictRejectedThenQueued(t *testing.T) {
	c, key, agents := hostsFleet(t, "q1", "q2")
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	c.Publish("web", "2.1.0", webFiles, webCheck, key)
	first := create(t, c, api.RolloutRequest{Release: "web@2.0.0", Plan: plan(t, "100%", nil)}) // pending
	_, err := c.Admin.CreateRollout(context.Background(), api.RolloutRequest{Release: "web@2.1.0", Plan: plan(t, "100%", nil), Start: true})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeConflict || !strings.Contains(err.Error(), "rollout "+first) ||
		!strings.Contains(err.Error(), "q1, q2") || !strings.Contains(err.Error(), "--queue") {
		t.Fatalf("overlapping rollout: %v; want a conflict naming %s, its hosts and --queue", err, first)
	}
	second := create(t, c, api.RolloutRequest{Release: "web@2.1.0", Plan: plan(t, "100%", nil), Queue: true})
	if st := c.WaitRollout(second, 5*time.Second, api.RolloutQueued); !slices.Equal(st.Rollout.After, []string{first}) {
		t.Fatalf("queued after %v; want [%s]", st.Rollout.After, first)
	}
	if err := c.Admin.StartRollout(context.Background(), first, ""); err != nil {
		t.Fatal(err)
	}
	c.WaitRollout(first, 60*time.Second, api.RolloutCompleted)
	c.WaitRollout(second, 60*time.Second, api.RolloutCompleted)
	for _, a := range agents {
		if v := current(t, a, "web"); v != "2.1.0" {
			t.Errorf("%s runs %s; want 2.1.0", a.Name, v)
		}
	}
}

// TestReadinessFailureBlocksStart: a release without health checks fails
// its readiness review; a deployer cannot start it, nor override; an
// admin's override starts it and is on record.
func TestReadinessFailureBlocksStart(t *testing.T) {
	c, key, _ := hostsFleet(t, "r1")
	c.Publish("web", "2.0.0", webFiles, nil, key)
	req := api.RolloutRequest{Release: "web@2.0.0", Plan: plan(t, "100%", nil)}
	rv, err := c.Admin.ReviewPlan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := rv.Failed(); !slices.Equal(got, []string{"health-checks"}) {
		t.Fatalf("failed gates %v; want [health-checks]", got)
	}
	deployer := c.Operator("dora", pki.RoleDeployer)
	req.Start = true
	created, err := deployer.CreateRollout(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "was created but not started") || !strings.Contains(err.Error(), "gate health-checks failed") {
		t.Fatalf("create and start: %v; want created, not started, naming the gate", err)
	}
	id := strings.Fields(strings.TrimPrefix(err.Error(), "rollout "))[0]
	_ = created
	if st := c.WaitRollout(id, 5*time.Second, api.RolloutPending); st.Rollout.State != api.RolloutPending {
		t.Fatal("not pending")
	}
	if err := deployer.StartRollout(context.Background(), id, "trust me"); !errors.As(err, new(*api.Error)) || !strings.Contains(err.Error(), "role admin is required") {
		t.Fatalf("deployer override: %v; want refused for want of the admin role", err)
	}
	if err := c.Admin.StartRollout(context.Background(), id, "checks live in the load balancer"); err != nil {
		t.Fatal(err)
	}
	st := c.WaitRollout(id, 60*time.Second, api.RolloutCompleted)
	if len(st.Rollout.Overrides) != 1 || st.Rollout.Overrides[0].Reason != "checks live in the load balancer" {
		t.Errorf("overrides %+v; want the admin's", st.Rollout.Overrides)
	}
	entries, err := c.Admin.AuditAbout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e api.AuditEntry) bool {
		return e.Action == "rollout.override" && e.Actor == "operator/admin" && strings.Contains(e.Detail, "health-checks")
	}) {
		t.Errorf("no override entry in the audit trail: %+v", entries)
	}
}

// TestAuditTrailAgreesAndDetectsTampering: every server serves the same
// hash-chained trail, which verifies; altering or dropping an entry of it
// is detected.
func TestAuditTrailAgreesAndDetectsTampering(t *testing.T) {
	c, _, _ := hostsFleet(t, "a1")
	if err := c.Admin.SetFreeze(context.Background(), deploy.Freeze{Name: "later", Start: time.Now().Add(time.Hour),
		End: time.Now().Add(2 * time.Hour), Reason: "audit test"}); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(10 * time.Second)
	var chains [][]api.AuditEntry
	for i := range c.Servers {
		entries, err := c.ClientFor(i).AuditAll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := api.VerifyAudit(entries); err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		chains = append(chains, entries)
	}
	for i := 1; i < len(chains); i++ {
		if !slices.Equal(chains[i], chains[0]) {
			t.Errorf("server %d's trail differs from server 0's", i)
		}
	}
	chain := chains[0]
	if len(chain) < 6 {
		t.Fatalf("%d entries; want every decision (trust, token, release, rollout, freeze...)", len(chain))
	}
	altered := slices.Clone(chain)
	altered[2].Actor = "operator/mallory"
	if err := api.VerifyAudit(altered); err == nil || !strings.Contains(err.Error(), "entry 3") {
		t.Errorf("altered entry: %v; want entry 3 named", err)
	}
	dropped := slices.Delete(slices.Clone(chain), 3, 4)
	if err := api.VerifyAudit(dropped); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("dropped entry: %v; want it detected", err)
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

// testManifest is a release whose hosts must stay healthy for minHealthy
// before they commit: long enough to stop a server mid-wave.
func testManifest(name, version string, checks []artifacts.HealthCheck, minHealthy time.Duration) artifacts.Manifest {
	return artifacts.Manifest{Name: name, Version: version, HealthChecks: checks,
		Probation: &artifacts.Probation{MinHealthyTime: artifacts.Duration(minHealthy), HealthyDeadline: artifacts.Duration(30 * time.Second),
			Interval: artifacts.Duration(200 * time.Millisecond)}}
}

// TestCalendarFeed: the schedule served as iCalendar holds the rollouts,
// the coming occurrences of maintenance windows, and the freezes, and a
// calendar library reads it.
func TestCalendarFeed(t *testing.T) {
	c, key, _ := hostsFleet(t, "c1")
	opens := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	c.SetWindow(windowAt("nightly", opens, time.Hour, 0))
	freeze := deploy.Freeze{Name: "year-end", Start: time.Now().Add(48 * time.Hour).Truncate(time.Second),
		End: time.Now().Add(72 * time.Hour).Truncate(time.Second), Reason: "close, books; audit"}
	if err := c.Admin.SetFreeze(context.Background(), freeze); err != nil {
		t.Fatal(err)
	}
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	id := create(t, c, api.RolloutRequest{Release: "web@2.0.0", Plan: plan(t, "100%", func(p *deploy.Plan) {
		p.NotBefore = time.Now().Add(time.Hour).Truncate(time.Second)
		p.Deadline = p.NotBefore.Add(3 * time.Hour)
	})})
	var buf bytes.Buffer
	if err := c.Admin.Calendar(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	cal, err := ical.NewDecoder(&buf).Decode()
	if err != nil {
		t.Fatalf("decode the feed: %v", err)
	}
	byUID := map[string]ical.Event{}
	windows := 0
	for _, ev := range cal.Events() {
		uid, _ := ev.Props.Text(ical.PropUID)
		byUID[uid] = ev
		if strings.HasPrefix(uid, "window-nightly-") {
			windows++
		}
	}
	if windows < 29 || windows > 31 {
		t.Errorf("%d occurrences of the daily window; want one a day for 30 days", windows)
	}
	f, ok := byUID["freeze-year-end@drover"]
	if !ok {
		t.Fatalf("no freeze event among %d events", len(byUID))
	}
	if start, err := f.DateTimeStart(nil); err != nil || !start.Equal(freeze.Start) {
		t.Errorf("freeze start %v (%v); want %v", start, err, freeze.Start)
	}
	if desc, _ := f.Props.Text(ical.PropDescription); !strings.Contains(desc, freeze.Reason) {
		t.Errorf("freeze description %q; want the reason", desc)
	}
	r, ok := byUID["rollout-"+id+"@drover"]
	if !ok {
		t.Fatalf("no event for rollout %s", id)
	}
	if end, err := r.DateTimeEnd(nil); err != nil || end.Sub(time.Now()) < 3*time.Hour {
		t.Errorf("rollout event ends %v (%v); want its deadline", end, err)
	}
}

// TestWebhooksSignedAndRetried: rollout events reach a webhook as JSON
// signed with HMAC-SHA256; a failed delivery is retried with the same
// event ID; the secret is never shown back.
func TestWebhooksSignedAndRetried(t *testing.T) {
	c, key, _ := hostsFleet(t, "k1", "k2")
	const secret = "0123456789abcdef-webhook"
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		received []controlplane.WebhookBody
		badSigs  int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify([]byte(secret), r.Header.Get(webhook.TimestampHeader), body, r.Header.Get(webhook.SignatureHeader)) {
			badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(webhook.DeliveryHeader)
		if attempts[id]++; attempts[id] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // every event fails once
			return
		}
		var b controlplane.WebhookBody
		if err := json.Unmarshal(body, &b); err != nil || b.ID != id {
			t.Errorf("body %s: %v", body, err)
		}
		received = append(received, b)
	}))
	defer srv.Close()
	if err := c.Admin.SetSettings(context.Background(), api.Settings{Webhooks: []api.Webhook{{URL: srv.URL, Secret: secret}}}); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Admin.Settings(context.Background()); err != nil || s.Webhooks[0].Secret == secret {
		t.Fatalf("settings as read back: %+v, %v; want the secret redacted", s, err)
	}
	c.Publish("web", "2.0.0", webFiles, webCheck, key)
	id := create(t, c, api.RolloutRequest{Release: "web@2.0.0", Start: true, Plan: plan(t, "1,100%", nil)})
	c.WaitRollout(id, 60*time.Second, api.RolloutCompleted)
	want := []string{"rollout.started", "rollout.wave_promoted", "rollout.completed"}
	testcluster.WaitFor(t, 20*time.Second, "the rollout's events at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var got []string
		for _, b := range received {
			if b.Subject == id {
				got = append(got, b.Event)
			}
		}
		return slices.Equal(got, want)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, b := range received {
		if b.Subject != id {
			t.Errorf("event %s about %s: a new webhook hears only of what happens after it was added", b.Event, b.Subject)
		}
		if attempts[b.ID] != 2 {
			t.Errorf("event %s delivered after %d attempt(s); want 2 (one failure, one retry)", b.ID, attempts[b.ID])
		}
		if b.Rollout == nil || b.Rollout.ID != id {
			t.Errorf("event %s carries rollout %+v", b.Event, b.Rollout)
		}
	}
	if badSigs > 0 {
		t.Errorf("%d deliveries with a bad signature", badSigs)
	}
}
