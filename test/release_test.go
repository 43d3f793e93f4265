package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/client"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/deploy"
)

var (
	webFiles = map[string]string{"bin/web*": "#!/bin/sh\necho web\n", "etc/web.conf": "port=8080\n"}
	webCheck = []artifacts.HealthCheck{{Name: "binary", Command: []string{"sh", "-c", "test -x bin/web"}}}
	// brokenCheck fails on a host whose directory holds a file named "broken".
	brokenCheck = []artifacts.HealthCheck{{Name: "not-broken", Command: []string{"sh", "-c",
		`if [ -e "$DROVER_HOST_DIR/broken" ]; then echo "host is marked broken" >&2; exit 1; fi`}}}
)

// fleet is a three-server cluster with three enrolled agents and a
// trusted signing key.
type fleet struct {
	*testcluster.Cluster
	key    string
	agents []*testcluster.Agent
}

func startFleet(t *testing.T) *fleet {
	c := testcluster.Start(t, 3)
	f := &fleet{Cluster: c, key: c.SigningKey()}
	token := c.Token(map[string]string{"env": "test"}, 3)
	for _, name := range []string{"h1", "h2", "h3"} {
		f.agents = append(f.agents, c.StartAgent(name, "", token))
	}
	testcluster.WaitFor(t, 20*time.Second, "three hosts with inventory", func() bool {
		hosts, err := c.Admin.Hosts(context.Background(), client.HostQuery{})
		if err != nil || len(hosts) != 3 {
			return false
		}
		for _, h := range hosts {
			if len(h.Inventory) == 0 {
				return false
			}
		}
		return true
	})
	return f
}

func (f *fleet) rollout(t *testing.T, release, waves string) string {
	t.Helper()
	w, err := deploy.ParseWaves(waves)
	if err != nil {
		t.Fatal(err)
	}
	created, err := f.Admin.CreateRollout(context.Background(), api.RolloutRequest{Release: release, Plan: deploy.Plan{Waves: w}, Start: true})
	if err != nil {
		t.Fatalf("create rollout: %v", err)
	}
	return created.ID
}

// current returns the version an agent's current link points at.
func current(t *testing.T, a *testcluster.Agent, app string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(a.Dir, "apps", app, "current"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

func TestSignedReleaseRollsOutInTwoWaves(t *testing.T) {
	f := startFleet(t)
	f.Publish("web", "1.0.0", webFiles, webCheck, f.key)
	id := f.rollout(t, "web@1.0.0", "1,100%")
	st := f.WaitRollout(id, 60*time.Second, api.RolloutCompleted, api.RolloutPaused)
	if st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout ended %s: %s", st.Rollout.State, st.Rollout.Reason)
	}
	if got := st.Rollout.Sizes; len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("wave sizes = %v; want [1 3]", got)
	}
	for _, d := range st.Hosts {
		if d.State != deploy.Succeeded || d.Current != "1.0.0" {
			t.Errorf("host %s: state %s current %q; want succeeded on 1.0.0 (%s)", d.Host, d.State, d.Current, d.Reason)
		}
	}
	for _, a := range f.agents {
		if v := current(t, a, "web"); v != "1.0.0" {
			t.Errorf("%s: current -> %q; want 1.0.0", a.Name, v)
		}
		if b, err := os.ReadFile(filepath.Join(a.Dir, "apps/web/current/etc/web.conf")); err != nil || string(b) != "port=8080\n" {
			t.Errorf("%s: unpacked config = %q, %v", a.Name, b, err)
		}
	}
	hosts, err := f.Admin.Hosts(context.Background(), client.HostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Releases["web"] != "1.0.0" {
			t.Errorf("control plane: host %s runs %v; want web 1.0.0", h.ID, h.Releases)
		}
	}
}

func TestFailingHealthCheckRevertsAndStopsTheRollout(t *testing.T) {
	f := startFleet(t)
	f.Publish("web", "1.0.0", webFiles, webCheck, f.key)
	f.WaitRollout(f.rollout(t, "web@1.0.0", "100%"), 60*time.Second, api.RolloutCompleted)

	// h1 is the first target (targets are in host order), so it is wave 1.
	if err := os.WriteFile(filepath.Join(f.agents[0].Dir, "broken"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.Publish("web", "2.0.0", webFiles, brokenCheck, f.key)
	id := f.rollout(t, "web@2.0.0", "1,100%")
	st := f.WaitRollout(id, 60*time.Second, api.RolloutPaused, api.RolloutCompleted)
	if st.Rollout.State != api.RolloutPaused || !strings.Contains(st.Rollout.Reason, "failure threshold") {
		t.Fatalf("rollout is %s (%s); want paused by its failure threshold", st.Rollout.State, st.Rollout.Reason)
	}
	byHost := map[string]*api.Deployment{}
	for _, d := range st.Hosts {
		byHost[d.Host] = d
	}
	h1 := byHost["h1"]
	if h1.State != deploy.Reverted || h1.Current != "1.0.0" || !strings.Contains(h1.Output, "host is marked broken") {
		t.Errorf("h1: state %s current %q output %q; want reverted to 1.0.0 with the check's output", h1.State, h1.Current, h1.Output)
	}
	for _, h := range []string{"h2", "h3"} {
		if byHost[h].State != deploy.Pending {
			t.Errorf("%s: state %s; want pending (the rollout must not pass wave 1)", h, byHost[h].State)
		}
	}
	for _, a := range f.agents {
		if v := current(t, a, "web"); v != "1.0.0" {
			t.Errorf("%s: current -> %q; want 1.0.0", a.Name, v)
		}
	}
}

// payloadChunks returns the chunk files of a payload on server id.
func payloadChunks(t *testing.T, f *fleet, sha, id string) []string {
	t.Helper()
	var p api.Payload
	testcluster.WaitFor(t, 5*time.Second, "the payload's record", func() bool {
		_, err := f.Admin.Do(context.Background(), client.Request{Method: "GET", Path: api.PathPayloads + "/" + sha}, &p)
		return err == nil
	})
	list, err := chunks.DecodeList(p.List)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, ref := range list {
		files = append(files, filepath.Join(f.Dir, "servers", id, "data", "chunks", ref.SHA256[:2], ref.SHA256))
	}
	return files
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	f := startFleet(t)
	f.Publish("web", "1.0.0", webFiles, webCheck, f.key)
	f.WaitRollout(f.rollout(t, "web@1.0.0", "100%"), 60*time.Second, api.RolloutCompleted)

	m := f.Publish("web", "2.0.0", map[string]string{"bin/web*": "#!/bin/sh\necho evil\n"}, webCheck, f.key)
	// Alter the payload's bytes after signing, on every server's disk.
	for _, id := range f.IDs {
		for _, file := range payloadChunks(t, f, m.Payload.SHA256, id) {
			flipByte(t, file)
		}
	}
	id := f.rollout(t, "web@2.0.0", "1,100%")
	st := f.WaitRollout(id, 60*time.Second, api.RolloutPaused, api.RolloutCompleted)
	if st.Rollout.State != api.RolloutPaused {
		t.Fatalf("rollout is %s; want paused", st.Rollout.State)
	}
	d := st.Hosts[0]
	if d.State != deploy.Failed || !strings.Contains(d.Reason, "chunk") || d.Current != "1.0.0" {
		t.Errorf("%s: state %s reason %q current %q; want failed for want of a good chunk, still on 1.0.0", d.Host, d.State, d.Reason, d.Current)
	}
	if v := current(t, f.agents[0], "web"); v != "1.0.0" {
		t.Errorf("h1: current -> %q; want 1.0.0", v)
	}
	if _, err := os.Stat(filepath.Join(f.agents[0].Dir, "apps/web/releases/2.0.0")); !os.IsNotExist(err) {
		t.Errorf("h1: the refused release was unpacked (%v)", err)
	}
}

// TestCorruptChunkOnOneServerIsRepaired flips a bit in one server's copy
// of a chunk: that server notices when it is asked for it, replaces its
// copy from another server, and serves the good bytes.
func TestCorruptChunkOnOneServerIsRepaired(t *testing.T) {
	f := startFleet(t)
	m := f.Publish("web", "1.0.0", webFiles, webCheck, f.key)
	files := payloadChunks(t, f, m.Payload.SHA256, "s1")
	good, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, files[0])

	var p api.Payload
	testcluster.WaitFor(t, 5*time.Second, "the payload's record", func() bool {
		_, err := f.Admin.Do(context.Background(), client.Request{Method: "GET", Path: api.PathPayloads + "/" + m.Payload.SHA256}, &p)
		return err == nil
	})
	list, _ := chunks.DecodeList(p.List)
	data, _, err := f.ClientFor(0).Chunk(context.Background(), list[0], nil)
	if err != nil {
		t.Fatalf("s1 could not serve the chunk: %v", err)
	}
	if _, err := chunks.Decompress(data, list[0]); err != nil {
		t.Fatalf("s1 served a bad chunk: %v", err)
	}
	if now, _ := os.ReadFile(files[0]); !bytes.Equal(now, good) {
		t.Error("s1's copy of the chunk was not repaired")
	}
	// And the fleet installs the release.
	st := f.WaitRollout(f.rollout(t, "web@1.0.0", "100%"), 60*time.Second, api.RolloutCompleted, api.RolloutPaused)
	if st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout %s: %s", st.Rollout.State, st.Rollout.Reason)
	}
}

// TestNewVersionDownloadsOnlyChangedChunks rolls out a 24 MiB payload,
// then a version in which one 1 MiB file changed: the agents download a
// small fraction of the payload the second time.
func TestNewVersionDownloadsOnlyChangedChunks(t *testing.T) {
	f := startFleet(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	files := map[string]string{"bin/web*": "#!/bin/sh\n"}
	for i := range 24 {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		files[fmt.Sprintf("data/%02d.bin", i)] = string(b)
	}
	v1 := f.Publish("web", "1.0.0", files, webCheck, f.key)
	f.WaitRollout(f.rollout(t, "web@1.0.0", "100%"), 120*time.Second, api.RolloutCompleted)
	before := f.agents[0].Agent.Downloaded()

	b := []byte(files["data/07.bin"])
	for j := range b {
		b[j] = byte(rnd.Uint32())
	}
	files["data/07.bin"] = string(b)
	f.Publish("web", "2.0.0", files, webCheck, f.key)
	st := f.WaitRollout(f.rollout(t, "web@2.0.0", "100%"), 120*time.Second, api.RolloutCompleted, api.RolloutPaused)
	if st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout %s: %s", st.Rollout.State, st.Rollout.Reason)
	}
	got := f.agents[0].Agent.Downloaded() - before
	pct := 100 * float64(got) / float64(v1.Payload.Size)
	t.Logf("the new version cost h1 %d bytes of a %d-byte payload: %.2f%%", got, v1.Payload.Size, pct)
	if pct > 5 {
		t.Errorf("h1 downloaded %.2f%% of the payload for a 1 MiB change; want at most 5%%", pct)
	}
}

// TestAntiEntropyAndGarbageCollection: a server that was down while a
// payload was uploaded fetches its chunks from its peers once it is back
// and records itself as a holder; chunks no payload references are
// removed once old enough.
func TestAntiEntropyAndGarbageCollection(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Servers: 3, Tune: func(cfg *controlplane.Config) {
		cfg.Chunks.AntiEntropyEvery = 500 * time.Millisecond
		cfg.Chunks.GCEvery = 500 * time.Millisecond
		cfg.Chunks.GCGrace = time.Second
	}})
	key := c.SigningKey()
	leader := c.Leader()
	down := (leader + 1) % 3
	c.StopServer(down)
	m := c.Publish("web", "1.0.0", webFiles, webCheck, key)
	var p api.Payload
	_, err := c.Admin.Do(context.Background(), client.Request{Method: "GET", Path: api.PathPayloads + "/" + m.Payload.SHA256}, &p)
	if err != nil || slices.Contains(p.Holders, c.IDs[down]) {
		t.Fatalf("payload holders %v (%v); want it without the stopped server", p.Holders, err)
	}
	// An orphan chunk, uploaded but never part of a registered payload.
	orphan := []byte("an orphan chunk that no payload references")
	sum := sha256.Sum256(orphan)
	ref := chunks.Ref{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(orphan))}
	body := chunks.Compress(orphan)
	if _, err := c.Admin.Do(context.Background(), client.Request{Method: "PUT", Path: api.PathChunks + ref.SHA256 + "?size=" + strconv.Itoa(len(orphan)),
		Body: bytes.NewReader(body), Size: int64(len(body))}, nil); err != nil {
		t.Fatalf("upload orphan chunk: %v", err)
	}

	c.StartServer(down)
	testcluster.WaitFor(t, 30*time.Second, "the returning server to complete and record its copy", func() bool {
		var p api.Payload
		_, err := c.Admin.Do(context.Background(), client.Request{Method: "GET", Path: api.PathPayloads + "/" + m.Payload.SHA256}, &p)
		return err == nil && slices.Contains(p.Holders, c.IDs[down])
	})
	list, _ := chunks.DecodeList(p.List)
	for _, r := range list {
		if _, err := os.Stat(filepath.Join(c.Dir, "servers", c.IDs[down], "data", "chunks", r.SHA256[:2], r.SHA256)); err != nil {
			t.Errorf("the returning server lacks chunk %s: %v", r.SHA256, err)
		}
	}
	orphanFile := filepath.Join(c.Dir, "servers", c.IDs[leader], "data", "chunks", ref.SHA256[:2], ref.SHA256)
	testcluster.WaitFor(t, 30*time.Second, "the orphan chunk to be collected", func() bool {
		_, err := os.Stat(orphanFile)
		return os.IsNotExist(err)
	})
	for _, r := range list {
		if _, err := os.Stat(filepath.Join(c.Dir, "servers", c.IDs[leader], "data", "chunks", r.SHA256[:2], r.SHA256)); err != nil {
			t.Errorf("garbage collection removed a referenced chunk %s: %v", r.SHA256, err)
		}
	}
}
