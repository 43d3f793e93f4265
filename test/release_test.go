package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		hosts, err := c.Admin.Hosts(context.Background())
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
	created, err := f.Admin.CreateRollout(context.Background(), api.RolloutRequest{Release: release, Plan: deploy.Plan{Waves: w}})
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
	hosts, err := f.Admin.Hosts(context.Background())
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

func TestTamperedPayloadIsRefused(t *testing.T) {
	f := startFleet(t)
	f.Publish("web", "1.0.0", webFiles, webCheck, f.key)
	f.WaitRollout(f.rollout(t, "web@1.0.0", "100%"), 60*time.Second, api.RolloutCompleted)

	m := f.Publish("web", "2.0.0", map[string]string{"bin/web*": "#!/bin/sh\necho evil\n"}, webCheck, f.key)
	// Alter the payload after signing, on every server's disk.
	for _, id := range f.IDs {
		path := filepath.Join(f.Dir, "servers", id, "data", "blobs", m.Payload.SHA256)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id := f.rollout(t, "web@2.0.0", "1,100%")
	st := f.WaitRollout(id, 60*time.Second, api.RolloutPaused, api.RolloutCompleted)
	if st.Rollout.State != api.RolloutPaused {
		t.Fatalf("rollout is %s; want paused", st.Rollout.State)
	}
	d := st.Hosts[0]
	if d.State != deploy.Failed || !strings.Contains(d.Reason, "digest mismatch") || d.Current != "1.0.0" {
		t.Errorf("%s: state %s reason %q current %q; want failed with a digest mismatch, still on 1.0.0", d.Host, d.State, d.Reason, d.Current)
	}
	if v := current(t, f.agents[0], "web"); v != "1.0.0" {
		t.Errorf("h1: current -> %q; want 1.0.0", v)
	}
	if _, err := os.Stat(filepath.Join(f.agents[0].Dir, "apps/web/releases/2.0.0")); !os.IsNotExist(err) {
		t.Errorf("h1: the refused release was unpacked (%v)", err)
	}
}
