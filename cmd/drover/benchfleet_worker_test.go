package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dev/drover/controlplane/testcluster"
)

// TestFleetWorker drives a simulator worker over its stdin and stdout, as
// `drover bench fleet` does beyond one process's open-file limit: its
// agents enroll, start, send their inventories to a real cluster and are
// counted, and closing stdin ends the worker.
func TestFleetWorker(t *testing.T) {
	c := testcluster.Start(t, 3)
	ca, err := os.ReadFile(filepath.Join(c.Boot.CADir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := workerConfig{CA: ca, PollWait: 2 * time.Second, InventoryPackages: 10, StartRate: 100, SourceAddrs: []string{"127.0.0.2"}}
	for i := range c.IDs {
		cfg.Servers = append(cfg.Servers, "https://"+c.ServerAPI(i))
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serveWorker(context.Background(), inR, outW)
		outW.Close()
	}()
	w := &workerShard{in: inW}
	w.out = newLineScanner(outR)
	if err := writeJSONLine(inW, cfg); err != nil {
		t.Fatal(err)
	}
	const n = 4
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("worker-host-%d", i)
	}
	if err := w.enroll(context.Background(), c.Token(map[string]string{"fleet": "sim"}, n), names); err != nil {
		t.Fatal(err)
	}
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 60*time.Second, "the worker's agents to send their inventories", func() bool {
		cnt, err := w.counters()
		return err == nil && cnt.Inventories >= n
	})
	if on, err := w.onServer(cfg.Servers[1]); err != nil || on != 1 {
		t.Errorf("onServer(%s) = %d, %v; want 1 of the 4 agents (agent i starts on server i mod 3)", cfg.Servers[1], on, err)
	}
	if _, err := w.call(workerRequest{Op: "no-such-op"}); err == nil {
		t.Error("an unknown op was accepted")
	}
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker ended with %v; want a clean end when its stdin closes", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the worker did not end when its stdin closed")
	}
}
