package test

import (
	"context"
	"github.com/drover-dev/drover/controlplane/client"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/testcluster"
)

func hostStatus(t *testing.T, c *testcluster.Cluster, id string) string {
	hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
	if err != nil {
		return ""
	}
	for _, h := range hosts {
		if h.ID == id {
			return h.Status
		}
	}
	return ""
}

// observe checks cond continuously for d and fails at the first miss. It
// is for properties that must hold over a stretch of time.
func observe(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLivenessWithoutRaftWritesPerCheckin(t *testing.T) {
	const downAfter = 8 * time.Second
	c := testcluster.StartWith(t, testcluster.Options{Servers: 3, Tune: func(cfg *controlplane.Config) {
		cfg.HostDownAfter = downAfter
	}})
	c.AgentPollWait = time.Second
	token := c.Token(nil, 2)
	a1 := c.StartAgent("h1", "", token)
	a2 := c.StartAgent("h2", "", token)
	_ = a1
	testcluster.WaitFor(t, 20*time.Second, "both hosts to report inventory", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		return err == nil && len(hosts) == 2 && len(hosts[0].Inventory) > 0 && len(hosts[1].Inventory) > 0
	})

	// Agents poll every second; nothing changes, so nothing is written.
	leader := c.Servers[c.Leader()]
	before := leader.Store().AppliedIndex()
	observe(t, 4*time.Second, "no raft write while agents only check in", func() bool {
		return leader.Store().AppliedIndex() == before
	})

	// A host whose agent stops is marked down; the other stays up.
	a2.Stop()
	testcluster.WaitFor(t, downAfter+20*time.Second, "h2 to be marked down", func() bool { return hostStatus(t, c, "h2") == api.HostDown })
	if got := hostStatus(t, c, "h1"); got != api.HostUp {
		t.Fatalf("h1 is %q; want up", got)
	}
	// It comes back up when its agent returns.
	c.StartAgent("h2", a2.Dir, "")
	testcluster.WaitFor(t, 20*time.Second, "h2 to be marked up again", func() bool { return hostStatus(t, c, "h2") == api.HostUp })

	// A new leader knows no check-in times: it waits a full period before
	// marking anyone down, during which the agents find the new leader's
	// cluster and check in.
	c.StopServer(c.Leader())
	c.Leader()
	observe(t, downAfter+5*time.Second, "hosts up across the leader change", func() bool {
		return hostStatus(t, c, "h1") != api.HostDown && hostStatus(t, c, "h2") != api.HostDown
	})
}
