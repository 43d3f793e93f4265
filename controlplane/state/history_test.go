package state

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

// inventoryBody is what the API handler writes for sys.
func inventoryBody(t *testing.T, host string, sys *inventory.System) Inventory {
	t.Helper()
	sys.HostName = host
	sys.Normalize()
	raw, err := json.Marshal(sys)
	if err != nil {
		t.Fatal(err)
	}
	return Inventory{Host: host, System: raw, Digest: sys.Digest()}
}

func baseSystem() *inventory.System {
	return &inventory.System{
		SerialNumber: "SN-1", UUID: "4c4c4544-0042",
		OperatingSystem: inventory.OperatingSystem{Name: "debian", Version: "12.7", Kernel: "6.1.0-25-amd64"},
		Filesystems:     []inventory.Filesystem{{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 1 << 30, FreeBytes: 1 << 29}},
		Packages:        []inventory.Package{{Name: "openssl", Version: "3.0.14", Manager: "dpkg"}},
	}
}

func (h *harness) history(host string) []*api.HostChange {
	h.tb.Helper()
	out, _ := h.store.HostHistory(nil, host)
	return out
}

// TestHostHistoryCreditsRolloutsAndFlagsDrift walks a host through its
// first inventory, a free-space change, a rollout's changes and a change
// nobody planned.
func TestHostHistoryCreditsRolloutsAndFlagsDrift(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1")

	sys := baseSystem()
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	hist := h.history("h1")
	if len(hist) != 1 || !hist[0].Initial || hist[0].Facts == 0 || hist[0].Drift {
		t.Fatalf("after the first inventory: %+v; want one initial entry", hist)
	}
	first := h.host("h1").ChangedAt

	sys.Filesystems[0].FreeBytes /= 2
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	if n := len(h.history("h1")); n != 1 {
		t.Errorf("free space changed: %d history entries; want still 1", n)
	}
	if got := h.host("h1"); !got.ChangedAt.Equal(first) || !got.InventoryAt.After(first) {
		t.Errorf("free space changed: changed_at %v inventory_at %v; want changed_at unchanged at %v", got.ChangedAt, got.InventoryAt, first)
	}

	// A rollout installs web 1.0.0; its hook upgrades openssl.
	r := h.addRollout(h.addRelease("web", "1.0.0"), nil, "100%", 0)
	h.start(r, 0, "h1")
	h.must(CmdAgentReport, reportBody("h1", r, deploy.Succeeded, "1.0.0"))
	sys.Releases = map[string]string{"web": "1.0.0"}
	sys.Packages[0].Version = "3.0.15"
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	hist = h.history("h1")
	last := hist[len(hist)-1]
	want := []api.FactChange{
		{Fact: "package.openssl", From: "3.0.14", To: "3.0.15", Rollout: r},
		{Fact: "release.web", To: "1.0.0", Rollout: r},
	}
	if len(hist) != 2 || last.Drift || !slices.Equal(last.Changes, want) {
		t.Fatalf("after the rollout: %d entries, last %+v; want %+v without drift", len(hist), last, want)
	}
	if !h.host("h1").DriftAt.IsZero() {
		t.Errorf("drift flagged after a rollout's changes")
	}

	// An hour later someone upgrades the kernel and switches web by hand.
	h.now = h.now.Add(time.Hour)
	sys.OperatingSystem.Kernel = "6.1.0-26-amd64"
	sys.Releases["web"] = "0.9.0"
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	hist = h.history("h1")
	last = hist[len(hist)-1]
	want = []api.FactChange{
		{Fact: "kernel", From: "6.1.0-25-amd64", To: "6.1.0-26-amd64"},
		{Fact: "release.web", From: "1.0.0", To: "0.9.0"},
	}
	if !last.Drift || !slices.Equal(last.Changes, want) {
		t.Fatalf("manual change: %+v; want drift %+v", last, want)
	}
	if got := h.host("h1"); !got.DriftAt.Equal(last.At) || !got.ChangedAt.Equal(last.At) {
		t.Errorf("host drift_at %v changed_at %v; want both %v", got.DriftAt, got.ChangedAt, last.At)
	}
}

// TestHostHistoryReleaseOfAnotherApp: a rollout of one application does not
// excuse a change to another application's release.
func TestHostHistoryReleaseOfAnotherApp(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1")
	sys := baseSystem()
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	r := h.addRollout(h.addRelease("api", "2.0.0"), nil, "100%", 0)
	h.start(r, 0, "h1") // in flight
	sys.Releases = map[string]string{"api": "2.0.0", "web": "5.0.0"}
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	hist := h.history("h1")
	got := hist[len(hist)-1]
	want := []api.FactChange{{Fact: "release.api", To: "2.0.0", Rollout: r}, {Fact: "release.web", To: "5.0.0"}}
	if !got.Drift || !slices.Equal(got.Changes, want) {
		t.Errorf("got %+v; want %+v with drift", got, want)
	}
}

func TestDecommissionDropsHistory(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1", "h2")
	h.must(CmdInventory, inventoryBody(t, "h1", baseSystem()))
	h.must(CmdInventory, inventoryBody(t, "h2", baseSystem()))
	h.must(CmdDecommission, Decommission{Host: "h1", Reason: "re-imaged"})
	if n := len(h.history("h1")); n != 0 {
		t.Errorf("decommissioned host keeps %d history entries", n)
	}
	if n := len(h.history("h2")); n != 1 {
		t.Errorf("another host's history: %d entries; want 1", n)
	}
}

func TestHostHistoryIsBounded(t *testing.T) {
	h := newHarness(t)
	h.addHosts(nil, "h1")
	sys := baseSystem()
	for i := range historyPerHost + 5 {
		sys.Facts = map[string]string{"counter": strconv.Itoa(i)}
		h.must(CmdInventory, inventoryBody(t, "h1", sys))
	}
	hist := h.history("h1")
	if len(hist) != historyPerHost {
		t.Fatalf("%d entries kept; want %d", len(hist), historyPerHost)
	}
	if hist[0].Initial {
		t.Errorf("the oldest entries were not the ones dropped")
	}

	// Thousands of changed packages in one inventory: the entry lists the
	// first MaxHostChanges and counts the rest.
	for i := range api.MaxHostChanges + 10 {
		sys.Packages = append(sys.Packages, inventory.Package{Name: "pkg-" + strconv.Itoa(i), Version: "1", Manager: "dpkg"})
	}
	h.must(CmdInventory, inventoryBody(t, "h1", sys))
	hist = h.history("h1")
	if last := hist[len(hist)-1]; len(last.Changes) != api.MaxHostChanges || last.Omitted != 10 {
		t.Errorf("big change: %d listed, %d omitted; want %d and 10", len(last.Changes), last.Omitted, api.MaxHostChanges)
	}
}
