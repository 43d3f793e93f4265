package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCollectFacts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("10-static.json", `{"rack": "r12", "cores_licensed": 8, "nested": {"ignored": true}, "enabled": true}`, 0o644)
	write("20-probe", "#!/bin/sh\necho '{\"rack\": \"r13\", \"owner\": \"payments\"}'\n", 0o755)
	write("30-broken.json", `{not json`, 0o644)
	write("40-hangs", "#!/bin/sh\nsleep 60\n", 0o755)
	write("README", "not a facts file", 0o644)
	a := &Agent{cfg: Config{FactsDir: dir}, log: slog.New(slog.DiscardHandler)}
	start := time.Now()
	facts := a.collectFacts(context.Background())
	want := map[string]string{"rack": "r13", "cores_licensed": "8", "enabled": "true", "owner": "payments"}
	if len(facts) != len(want) {
		t.Errorf("facts = %v; want %v", facts, want)
	}
	for k, v := range want {
		if facts[k] != v {
			t.Errorf("fact %s = %q; want %q", k, facts[k], v)
		}
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a hanging facts program held collection for %v", took)
	}
	if (&Agent{cfg: Config{FactsDir: filepath.Join(dir, "missing")}, log: a.log}).collectFacts(context.Background()) != nil {
		t.Error("a missing facts directory gave facts")
	}
}

func TestStatusAndClearHalt(t *testing.T) {
	keys := []signer{newSigner(t), newSigner(t)}
	a := testAgent(t, keys)
	if err := os.WriteFile(a.files.config(), []byte(`{"name":"h1","servers":["https://s1:7400"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a.journal = &journal{Halted: "neither release is healthy",
		LastChecks: []checkResult{{Name: "http", OK: false, Output: "connection refused", At: testNow}},
		Done:       []doneRecord{{Rollout: "r-7", State: "failed"}}}
	if err := a.journal.save(a.files.journal()); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Status(a.cfg.Dir, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host      h1", "HALTED", "neither release is healthy", "* web@2.0.0", "  web@1.0.0", "FAIL http", "connection refused", "r-7: failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	if err := ClearHalt(a.cfg.Dir); err != nil {
		t.Fatal(err)
	}
	a.takeClearHalt()
	if a.journal.Halted != "" {
		t.Error("clear-halt did not clear the halt")
	}
	if err := ClearHalt(a.cfg.Dir); err == nil {
		t.Error("clear-halt on an agent that is not halted succeeded")
	}
}
