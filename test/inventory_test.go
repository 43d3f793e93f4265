package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/agent"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/controlplane/testcluster"
	"github.com/drover-dev/drover/inventory"
)

// TestInventoryHistoryAndExports runs real agents through a rollout and a
// change nobody planned, then reads the history, the drift flag, the host
// filters and every export format back from the cluster.
func TestInventoryHistoryAndExports(t *testing.T) {
	clock := &offsetClock{}
	c := testcluster.StartWith(t, testcluster.Options{Servers: 3, Clock: clock})
	c.AgentConfig = func(cfg *agent.Config) {
		cfg.FactsDir = filepath.Join(cfg.Dir, "facts.d")
		cfg.InventoryInterval = 200 * time.Millisecond
	}
	key := c.SigningKey()
	viewer := c.Operator("vera", "viewer") // before the clock moves: TLS checks certificates against the real time
	h1 := c.StartAgent("h1", "", c.Token(map[string]string{"env": "prod"}, 1))
	c.StartAgent("h2", "", c.Token(map[string]string{"env": "dev"}, 1))
	ctx := context.Background()
	history := func(host string) []*api.HostChange {
		d, err := c.Admin.Host(ctx, host)
		if err != nil {
			t.Fatalf("host %s: %v", host, err)
		}
		return d.History
	}

	c.Publish("web", "1.0.0", webFiles, webCheck, key)
	testcluster.WaitFor(t, 20*time.Second, "both hosts to report inventory", func() bool {
		hosts, err := c.Admin.Hosts(ctx, client.HostQuery{})
		return err == nil && len(hosts) == 2 && len(hosts[0].Inventory) > 0 && len(hosts[1].Inventory) > 0
	})
	id := c.RolloutWith("web@1.0.0", nil)
	if st := c.WaitRollout(id, 60*time.Second, api.RolloutCompleted, api.RolloutPaused); st.Rollout.State != api.RolloutCompleted {
		t.Fatalf("rollout ended %s: %s", st.Rollout.State, st.Rollout.Reason)
	}

	// The rollout's change is credited to it on both hosts.
	for _, host := range []string{"h1", "h2"} {
		testcluster.WaitFor(t, 20*time.Second, host+"'s history to show the release", func() bool {
			for _, e := range history(host) {
				for _, ch := range e.Changes {
					if ch.Fact == "release.web" && ch.To == "1.0.0" {
						if ch.Rollout != id || e.Drift {
							t.Fatalf("%s: release.web change credited to %q (drift %v); want %s", host, ch.Rollout, e.Drift, id)
						}
						return true
					}
				}
			}
			return false
		})
	}

	// Incremental exports: only what changed after a time.
	hosts, err := c.Admin.Hosts(ctx, client.HostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, h := range hosts {
		last = latest(last, h.ChangedAt, h.StatusSince)
	}
	for since, want := range map[time.Time]int{last: 0, last.Add(-time.Millisecond): 1, last.Add(-time.Hour): 2} {
		var buf bytes.Buffer
		if err := c.Admin.Export(ctx, "jsonl", client.HostQuery{Since: since}, &buf); err != nil {
			t.Fatal(err)
		}
		if got := len(splitLines(buf.Bytes())); got < want || want == 0 && got != 0 || want == 2 && got != 2 {
			t.Errorf("export since %s (last change %s): %d hosts; want %d", since, last, got, want)
		}
	}

	// Well after the rollout, someone adds a custom fact on h1 by hand:
	// drift.
	clock.advance(time.Hour)
	if err := os.MkdirAll(filepath.Join(h1.Dir, "facts.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h1.Dir, "facts.d", "rack.json"), []byte(`{"rack":"b12"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "h1 to be flagged for drift", func() bool {
		d, err := c.Admin.Host(ctx, "h1")
		if err != nil || d.Host.DriftAt.IsZero() {
			return false
		}
		last := d.History[len(d.History)-1]
		return last.Drift && slices.Contains(last.Changes, api.FactChange{Fact: "fact.rack", To: "b12"})
	})

	// Filters.
	for where, want := range map[string][]string{
		"":                                  {"h1", "h2"},
		"env=prod":                          {"h1"},
		"release.web>=1.0,fact.rack=b12":    {"h1"},
		"os~*,!fact.rack":                   {"h2"},
		"env=prod,memory_gib>=100000000000": nil,
	} {
		hosts, err := c.Admin.Hosts(ctx, client.HostQuery{Where: where})
		if err != nil {
			t.Fatalf("where %q: %v", where, err)
		}
		var got []string
		for _, h := range hosts {
			got = append(got, h.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("where %q: %v; want %v", where, got, want)
		}
	}
	_, err = c.Admin.Hosts(ctx, client.HostQuery{Where: "memory_gib>>8"})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInvalid || !strings.Contains(apiErr.Message, "where") {
		t.Errorf("a malformed where: %v; want an invalid-request error naming it", err)
	}

	// Exports, by a viewer.
	export := func(format string, q client.HostQuery) []byte {
		var buf bytes.Buffer
		if err := viewer.Export(ctx, format, q, &buf); err != nil {
			t.Fatalf("export %s: %v", format, err)
		}
		return buf.Bytes()
	}
	rows, err := csv.NewReader(bytes.NewReader(export("csv", client.HostQuery{}))).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[0], inventory.CSVColumns) {
		t.Fatalf("CSV: %d rows, %v; want header and 2 hosts", len(rows), err)
	}
	if h1Row := rows[1]; h1Row[0] != "h1" || !strings.Contains(strings.Join(h1Row, "|"), "web=1.0.0") || h1Row[len(h1Row)-1] == "" {
		t.Errorf("CSV row of h1 = %q; want its release and drift time", h1Row)
	}
	lines := splitLines(export("jsonl", client.HostQuery{Where: "env=prod"}))
	var rec inventory.HostRecord
	if len(lines) != 1 || json.Unmarshal(lines[0], &rec) != nil || rec.Host != "h1" || rec.System == nil || rec.System.Facts["rack"] != "b12" {
		t.Errorf("JSON Lines for env=prod: %s", bytes.Join(lines, []byte("\n")))
	}
	payloads := splitLines(export("servicenow", client.HostQuery{}))
	if len(payloads) != 2 {
		t.Fatalf("ServiceNow: %d payloads; want one per host", len(payloads))
	}
	var p inventory.IREPayload
	if err := json.Unmarshal(payloads[0], &p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Items[0].ClassName, "cmdb_ci_") || p.Items[0].InternalID != "h1" ||
		!slices.ContainsFunc(p.Items, func(it inventory.IREItem) bool { return it.ClassName == "cmdb_ci_appl" && it.Values["name"] == "web" }) {
		t.Errorf("ServiceNow payload of h1: %s", payloads[0])
	}
	if len(p.Relations) != len(p.Items)-1 {
		t.Errorf("%d relations for %d items; want every software item related to the host", len(p.Relations), len(p.Items))
	}

	err = viewer.Export(ctx, "xml", client.HostQuery{}, &bytes.Buffer{})
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInvalid || !strings.Contains(apiErr.Message, "csv, jsonl, servicenow") {
		t.Errorf("format xml: %v; want the allowed formats named", err)
	}

	// An agent speaks only for itself: h1 naming itself h2 in its
	// inventory changes h1's record, never h2's.
	cert, keyPEM := readAgentIdentity(t, h1.Dir)
	asH1 := c.ClientWith(cert, keyPEM)
	before, _ := c.Admin.Host(ctx, "h2")
	if _, err := asH1.Do(ctx, client.Request{Method: "PUT", Path: api.PathInventory, JSON: map[string]any{"HostName": "h2", "host": "h2"}}, nil); err == nil {
		t.Errorf("an inventory with a host field was accepted")
	}
	if _, err := asH1.Do(ctx, client.Request{Method: "PUT", Path: api.PathInventory, JSON: inventory.System{HostName: "h2"}}, nil); err != nil {
		t.Fatalf("h1's own inventory: %v", err)
	}
	if after, _ := c.Admin.Host(ctx, "h2"); after.Host.InventoryDigest != before.Host.InventoryDigest {
		t.Errorf("h1 changed h2's inventory")
	}
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		out = append(out, slices.Clone(sc.Bytes()))
	}
	return out
}
