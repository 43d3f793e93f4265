package test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/testcluster"
)

// writeToken makes one acknowledged write through c and returns the ID of
// the token it created.
func writeToken(ctx context.Context, c *client.Client) (string, error) {
	var tok api.TokenResponse
	_, err := c.Do(ctx, client.Request{Method: "POST", Path: api.PathTokens, JSON: api.TokenRequest{TTL: "1h", Uses: 1}}, &tok)
	return tok.ID, err
}

// checkTokens fails unless every running server holds every token.
func checkTokens(t *testing.T, c *testcluster.Cluster, ids []string) {
	t.Helper()
	for _, s := range c.Servers {
		if s == nil {
			continue
		}
		for _, id := range ids {
			if _, ok := s.Store().Token(id); !ok {
				t.Fatalf("server %s lost acknowledged write (token %s)", s.ID(), id)
			}
		}
	}
}

// writer writes tokens in a loop until stopped and records the
// acknowledged ones.
type writer struct {
	mu     sync.Mutex
	acked  []string
	errs   int
	cancel context.CancelFunc
	done   chan struct{}
}

func startWriter(c *client.Client) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			id, err := writeToken(ctx, c)
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, id)
			} else {
				w.errs++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) stop() []string {
	w.cancel()
	<-w.done
	return w.acked
}

func TestLeaderKilledDuringWritesLosesNothing(t *testing.T) {
	c := testcluster.Start(t, 3)
	w := startWriter(c.Admin)
	testcluster.WaitFor(t, 10*time.Second, "some writes", func() bool { return w.count() >= 20 })

	old := c.Leader()
	before := w.count()
	killed := time.Now()
	c.StopServer(old)
	newLeader := c.Leader()
	elected := time.Since(killed)
	testcluster.WaitFor(t, 15*time.Second, "writes to continue under the new leader", func() bool { return w.count() >= before+20 })
	acked := w.stop()
	t.Logf("leader %s stopped; %s elected after %v; %d writes acknowledged", c.IDs[old], c.IDs[newLeader], elected, len(acked))

	c.WaitConverged(10 * time.Second)
	checkTokens(t, c, acked)
	// The old leader comes back from its disk with every write as well.
	c.StartServer(old)
	c.WaitConverged(20 * time.Second)
	checkTokens(t, c, acked)
}

func TestIsolatedLeaderAcceptsNoWriteAndConverges(t *testing.T) {
	c := testcluster.Start(t, 3)
	var acked []string
	for range 5 {
		id, err := writeToken(context.Background(), c.Admin)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	old := c.Leader()
	var majority []string
	for i, id := range c.IDs {
		if i != old {
			majority = append(majority, id)
		}
	}
	c.Net.Partition([]string{c.IDs[old]}, majority)

	testcluster.WaitFor(t, 15*time.Second, "a new leader in the majority", func() bool {
		for i, s := range c.Servers {
			if i != old && s.IsLeader() {
				return true
			}
		}
		return false
	})
	testcluster.WaitFor(t, 10*time.Second, "the isolated leader to step down", func() bool { return !c.Servers[old].IsLeader() })

	// The majority goes on.
	majorityClient := c.ClientFor((old + 1) % 3)
	for range 5 {
		id, err := writeToken(context.Background(), majorityClient)
		if err != nil {
			t.Fatalf("majority refused a write: %v", err)
		}
		acked = append(acked, id)
	}
	// The minority acknowledges nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	id, err := writeToken(ctx, c.ClientFor(old))
	cancel()
	if err == nil {
		t.Fatalf("isolated server acknowledged a write (token %s)", id)
	}
	c.Net.Heal()
	c.WaitConverged(30 * time.Second)
	checkTokens(t, c, acked)
	if _, ok := c.Servers[old].Store().Token(id); ok && id != "" {
		t.Errorf("the write refused by the minority appeared after healing")
	}
}

func TestLaggingFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Servers: 3, Tune: func(cfg *controlplane.Config) {
		cfg.Raft.SnapshotThreshold = 50
		cfg.Raft.TrailingLogs = 10
		cfg.Raft.SegmentBytes = 16 << 10 // trimmed a segment at a time: keep them small
	}})
	leader := c.Leader()
	follower := (leader + 1) % 3
	c.StopServer(follower)
	var acked []string
	for range 120 {
		id, err := writeToken(context.Background(), c.Admin)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	if err := c.Servers[leader].Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.StartServer(follower)
	c.WaitConverged(30 * time.Second)
	checkTokens(t, c, acked)
	snaps, _ := filepath.Glob(filepath.Join(c.Dir, "servers", c.IDs[follower], "data", "raft", "snapshots", "*"))
	if len(snaps) == 0 {
		t.Errorf("the follower caught up without installing a snapshot; the log was not trimmed enough to test this")
	}
}

func TestRemovedServerReturnsWithoutDisturbing(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	gone := (leader + 1) % 3
	c.StopServer(gone)
	if err := c.Servers[leader].Raft().RemoveServer(raft.ServerID(c.IDs[gone]), 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("remove server: %v", err)
	}
	term := c.Servers[leader].Raft().Stats()["term"]

	// It comes back with its old data. Pre-vote keeps its elections from
	// deposing the leader; the leader adds it back as a non-voter and
	// promotes it once it has caught up.
	c.StartServer(gone)
	w := startWriter(c.Admin)
	testcluster.WaitFor(t, 60*time.Second, "the returning server to be a voter again", func() bool {
		servers := c.Servers[leader].Raft().GetConfiguration().Configuration().Servers
		for _, s := range servers {
			if string(s.ID) == c.IDs[gone] && s.Suffrage == raft.Voter {
				return true
			}
		}
		return false
	})
	acked := w.stop()
	if !c.Servers[leader].IsLeader() || c.Servers[leader].Raft().Stats()["term"] != term {
		t.Errorf("the returning server disturbed the cluster: leader %v, term %s (was %s)",
			c.Servers[leader].IsLeader(), c.Servers[leader].Raft().Stats()["term"], term)
	}
	c.WaitConverged(20 * time.Second)
	checkTokens(t, c, acked)
}

func TestNewServerJoinsAsNonVoterAndIsPromoted(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Servers: 3, Spare: 1})
	for range 10 {
		if _, err := writeToken(context.Background(), c.Admin); err != nil {
			t.Fatal(err)
		}
	}
	c.StartServer(3)
	suffrage := func() string {
		servers := c.Servers[c.Leader()].Raft().GetConfiguration().Configuration().Servers
		for _, s := range servers {
			if string(s.ID) == c.IDs[3] {
				return s.Suffrage.String()
			}
		}
		return ""
	}
	testcluster.WaitFor(t, 30*time.Second, "s4 to be added", func() bool { return suffrage() != "" })
	if got := suffrage(); got != "Nonvoter" && got != "Voter" {
		t.Fatalf("s4 added as %s", got)
	}
	testcluster.WaitFor(t, 30*time.Second, "s4 to be promoted to voter", func() bool { return suffrage() == "Voter" })
	c.WaitConverged(20 * time.Second)

	var st api.ClusterStatus
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "GET", Path: api.PathClusterStatus}, &st); err != nil {
		t.Fatal(err)
	}
	voters, leaders := 0, 0
	for _, s := range st.Servers {
		if s.Suffrage == "voter" {
			voters++
		}
		if s.Leader {
			leaders++
		}
		if s.Health == nil || s.Gossip != "alive" {
			t.Errorf("cluster status: %s gossip %s health %v", s.ID, s.Gossip, s.Health)
		}
	}
	if voters != 4 || leaders != 1 {
		t.Errorf("cluster status: %d voters and %d leaders; want 4 and 1", voters, leaders)
	}
}

func TestWholeClusterRestartKeepsEveryWrite(t *testing.T) {
	c := testcluster.Start(t, 3)
	var acked []string
	for range 30 {
		id, err := writeToken(context.Background(), c.Admin)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	for i := range c.Servers {
		c.StopServer(i)
	}
	for i := range c.Servers {
		c.StartServer(i)
	}
	c.Leader()
	c.WaitConverged(30 * time.Second)
	checkTokens(t, c, acked)
	if _, err := writeToken(context.Background(), c.Admin); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
}

func TestUnwritableBlobStoreGivesAClearError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; the disk-full test covers this as root")
	}
	_ = errors.New
}
