package sim_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/sim"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/deploy"
)

// startFleet starts a 3-server cluster and n simulated agents on it,
// enrolled with labels, and waits until each has sent its inventory.
func startFleet(t *testing.T, n int, cfg sim.Config) (*testcluster.Cluster, *sim.Fleet) {
	t.Helper()
	c := testcluster.Start(t, 3)
	ca, err := os.ReadFile(filepath.Join(c.Boot.CADir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CA = ca
	for i := range c.IDs {
		cfg.Servers = append(cfg.Servers, "https://"+c.ServerAPI(i))
	}
	cfg.SourceAddrs = sim.LoopbackSources(2)
	cfg.Logger = c.Log
	f, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	token := c.Token(map[string]string{"fleet": "sim"}, n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("sim-%03d", i)
	}
	if err := f.Enroll(context.Background(), token, names); err != nil {
		t.Fatal(err)
	}
	f.Start()
	testcluster.WaitFor(t, 60*time.Second, "every simulated agent to send its inventory", func() bool {
		return f.Stats().Inventories.Load() >= int64(n)
	})
	return c, f
}

// checks is a health check for the releases: the readiness review wants
// one (the simulated agents do not run it).
var checks = []artifacts.HealthCheck{{Name: "runs", Command: []string{"bin/app"}}}

// TestFleetRollout: simulated agents enroll over real mutual TLS, hold
// their own connections, report inventories the servers accept, receive a
// real signed release's instruction and report it through to succeeded,
// so that the rollout completes; idle agents' timed check-ins are recorded.
func TestFleetRollout(t *testing.T) {
	const n = 12
	c, f := startFleet(t, n, sim.Config{PollWait: 300 * time.Millisecond, Probe: true, ApplyTime: 50 * time.Millisecond, VerifySignatures: true})
	hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != n {
		t.Fatalf("%d hosts enrolled; want %d", len(hosts), n)
	}
	for _, h := range hosts {
		if len(h.Inventory) == 0 || h.Status != api.HostUp {
			t.Errorf("host %s: status %s, %d bytes of inventory; want up with an inventory", h.ID, h.Status, len(h.Inventory))
		}
	}
	testcluster.WaitFor(t, 60*time.Second, "timed check-ins", func() bool { return f.Stats().Checkins.Load() >= n })
	for _, d := range f.Stats().TakeCheckins() {
		if d <= 0 {
			t.Fatalf("check-in latency %v; want positive", d)
		}
	}

	key := c.SigningKey()
	c.Publish("app", "1.0.0", map[string]string{"bin/app*": "#!/bin/sh\n"}, checks, key)
	id := c.RolloutWith("app@1.0.0", map[string]string{"fleet": "sim"})
	st := c.WaitRollout(id, 60*time.Second, api.RolloutCompleted, api.RolloutPaused)
	if st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout %s; want completed", st.Rollout.State)
	}
	for _, d := range st.Hosts {
		if d.State != deploy.Succeeded || d.Current != "1.0.0" {
			t.Errorf("host %s: %s running %q; want succeeded running 1.0.0", d.Host, d.State, d.Current)
		}
	}
	if got := len(f.Stats().Received(id)); got != n {
		t.Errorf("%d agents saw the instruction; want %d", got, n)
	}
	if got := f.Stats().Failures.Load(); got != 0 {
		t.Errorf("%d simulated applies failed; want 0", got)
	}
}

// TestFleetFailureRate: with a failure rate of 1 every apply ends
// reverted, and the rollout's failure threshold pauses it.
func TestFleetFailureRate(t *testing.T) {
	c, f := startFleet(t, 4, sim.Config{FailureRate: 1, ApplyTime: 10 * time.Millisecond})
	key := c.SigningKey()
	c.Publish("app", "1.0.0", map[string]string{"bin/app*": "#!/bin/sh\n"}, checks, key)
	id := c.RolloutWith("app@1.0.0", map[string]string{"fleet": "sim"})
	st := c.WaitRollout(id, 60*time.Second, api.RolloutPaused, api.RolloutCompleted)
	if st.Rollout.State != api.RolloutPaused {
		t.Fatalf("rollout %s; want paused by its failure threshold", st.Rollout.State)
	}
	reverted := 0
	for _, d := range st.Hosts {
		if d.State == deploy.Reverted {
			reverted++
		}
	}
	if reverted == 0 || f.Stats().Failures.Load() == 0 {
		t.Fatalf("%d hosts reverted, %d simulated failures; want some", reverted, f.Stats().Failures.Load())
	}
}

// TestFleetFailover: agents whose server stops reconnect to another one,
// and the outage each saw is recorded.
func TestFleetFailover(t *testing.T) {
	c, f := startFleet(t, 6, sim.Config{PollWait: 5 * time.Second})
	stopped := "https://" + c.ServerAPI(0)
	c.StopServer(0) // agents 0 and 3 poll it
	var outages []sim.Outage
	testcluster.WaitFor(t, 60*time.Second, "the agents of the stopped server to reconnect", func() bool {
		outages = append(outages, f.Stats().TakeOutages()...)
		return len(outages) >= 2
	})
	for _, o := range outages {
		if o.Server != stopped || o.NewServer == stopped || o.Recovered.Before(o.Failed) {
			t.Errorf("outage %+v: want a failure of %s and a recovery on another server after it", o, stopped)
		}
	}
}
