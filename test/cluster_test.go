package test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	// A restarted server applies its log only once a leader commits an
	// entry of its own term; until then every server shows the state of
	// its last snapshot, all alike. A write through the new leader proves
	// the log is committed; converged after it, every server has applied
	// every earlier entry.
	if _, err := writeToken(context.Background(), c.Admin); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	c.WaitConverged(30 * time.Second)
	checkTokens(t, c, acked)
}

// mountTmpfs mounts a tmpfs of size at a new directory (root only) and
// unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root (to mount a small tmpfs); CI runs as root")
		}
		t.Skip("needs root to mount a small tmpfs; run as root or in CI")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestFullDiskRefusesWritesAndLosesNothing fills one server's data
// directory: that server hands over leadership and refuses writes with a
// clear reason, the others go on, and nothing acknowledged is lost.
func TestFullDiskRefusesWritesAndLosesNothing(t *testing.T) {
	disk := mountTmpfs(t, "48m")
	c := testcluster.StartWith(t, testcluster.Options{Servers: 3, Tune: func(cfg *controlplane.Config) {
		cfg.Raft.SegmentBytes = 1 << 20
		cfg.MinFreeBytes = 8 << 20
		if cfg.ID == "s1" {
			cfg.DataDir = filepath.Join(disk, "data")
		}
	}})
	var acked []string
	write := func(cl *client.Client) error {
		id, err := writeToken(context.Background(), cl)
		if err == nil {
			acked = append(acked, id)
		}
		return err
	}
	for range 10 {
		if err := write(c.Admin); err != nil {
			t.Fatal(err)
		}
	}
	// Make s1 the leader, then fill its disk.
	if leader := c.Leader(); leader != 0 {
		if err := c.Servers[leader].Raft().LeadershipTransferToServer("s1", raft.ServerAddress(c.Servers[0].RaftAddr())).Error(); err != nil {
			t.Fatalf("transfer leadership to s1: %v", err)
		}
	}
	testcluster.WaitFor(t, 10*time.Second, "s1 to lead", func() bool { return c.Servers[0].IsLeader() })
	filler := filepath.Join(disk, "filler")
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=1M", "count=44").CombinedOutput(); err != nil && !strings.Contains(string(out), "No space") {
		t.Fatalf("fill disk: %v: %s", err, out)
	}

	testcluster.WaitFor(t, 15*time.Second, "s1 to hand over leadership", func() bool {
		return !c.Servers[0].IsLeader() && (c.Servers[1].IsLeader() || c.Servers[2].IsLeader())
	})
	s1 := c.ClientFor(0)
	err := write(s1)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeUnavailable || !strings.Contains(apiErr.Message, "free") {
		t.Fatalf("write through s1 with a full disk: got %v; want an unavailable error that says the disk is full", err)
	}
	t.Logf("s1 says: %s", apiErr.Message)
	for range 10 { // the cluster goes on; the client fails over from s1
		if err := write(c.Admin); err != nil {
			t.Fatalf("cluster refused a write while one server's disk is full: %v", err)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 15*time.Second, "s1 to accept writes again", func() bool { return write(s1) == nil })
	c.WaitConverged(20 * time.Second)
	checkTokens(t, c, acked)
}

// TestReadOnlyDataDirectoryIsRefusedAtStart starts a server on a data
// directory mounted read-only: it refuses to start, and says why.
func TestReadOnlyDataDirectoryIsRefusedAtStart(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	c := testcluster.StartWith(t, testcluster.Options{Servers: 1, Spare: 1, Tune: func(cfg *controlplane.Config) {
		if cfg.ID == "s2" {
			cfg.DataDir = filepath.Join(dir, "data")
		}
	}})
	err := c.TryStartServer(1)
	if err == nil || !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("server on a read-only data directory: got %v; want a refusal naming the directory as not writable", err)
	}
	t.Logf("s2 says: %v", err)
}

// TestOperatorReadsGoToTheLeader: a new operator client (a new CLI
// process, say) that first asks a follower is sent on to the leader, so it
// reads what was just written through any server; agents' and other
// clients' reads stay on the server they ask.
func TestOperatorReadsGoToTheLeader(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	follower := (leader + 1) % 3
	cfg, err := client.LoadConfig(c.Boot.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Servers = []string{"https://" + c.ServerAPI(follower), "https://" + c.ServerAPI((leader+2)%3), "https://" + c.ServerAPI(leader)}
	fresh, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	resp, err := fresh.Send(context.Background(), client.Request{Method: "GET", Path: api.PathClusterStatus})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Request.URL.Host; got != c.ServerAPI(leader) {
		t.Errorf("served by %s; want the leader %s", got, c.ServerAPI(leader))
	}
	local := c.ClientFor(follower)
	resp, err = local.Send(context.Background(), client.Request{Method: "GET", Path: api.PathClusterStatus})
	if err != nil {
		t.Fatalf("a plain read from the follower: %v", err)
	}
	resp.Body.Close()
}
