package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// enabled reports whether the Docker scenarios run (DROVER_E2E=1).
func enabled() bool { return os.Getenv("DROVER_E2E") == "1" }

// suite is the state shared by the scenarios of one run.
var suite struct {
	run string
	dir string
	ctx context.Context

	once sync.Once
	c    *cluster
	err  error

	mu        sync.Mutex
	summaries []*scenarioRun
}

// TestMain sets up the run's cleanup: leftovers of earlier runs are swept
// first; at the end — also on Ctrl-C, SIGTERM, or shortly before go test's
// own timeout would kill the binary — every container, network and image
// labelled with this run is removed. The cluster itself starts with the
// first scenario, so `go test` without DROVER_E2E=1 runs only the
// checker's unit tests and touches no Docker.
func TestMain(m *testing.M) {
	flag.Parse()
	if !enabled() {
		os.Exit(m.Run())
	}
	suite.run = newRunID()
	ctx, cancel := context.WithCancel(context.Background())
	suite.ctx = ctx
	dir, err := os.MkdirTemp("", "drover-e2e-"+suite.run+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	suite.dir = dir
	if err := sweep(ctx, labelKey); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: sweeping an earlier run's leftovers:", err)
	}
	var cleaned sync.Once
	cleanup := func(failed bool) {
		cleaned.Do(func() { teardown(failed) })
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\ne2e: %v: removing the run's containers, network and image\n", sig)
		cancel()
		cleanup(true)
		os.Exit(130)
	}()
	if t := flag.Lookup("test.timeout"); t != nil {
		if d, err := time.ParseDuration(t.Value.String()); err == nil && d > 3*time.Minute {
			time.AfterFunc(d-2*time.Minute, func() {
				fmt.Fprintf(os.Stderr, "\ne2e: go test's timeout (%v) is near: removing the run's containers, network and image\n", d)
				cancel()
				cleanup(true)
			})
		}
	}
	code := m.Run()
	cancel()
	cleanup(code != 0)
	printSummary(os.Stdout)
	os.Exit(code)
}

// teardown keeps the containers' logs when something failed, then removes
// everything the run created and says if anything is left.
func teardown(failed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	filter := labelKey + "=" + suite.run
	if failed && suite.c != nil {
		logs := filepath.Join(suite.dir, "logs")
		_ = os.MkdirAll(logs, 0o755)
		for _, n := range append(append([]*node{}, suite.c.servers...), suite.c.agents...) {
			out := containerLogs(ctx, n.Container, "", "all")
			_ = os.WriteFile(filepath.Join(logs, n.Name+".log"), []byte(out), 0o644)
		}
	}
	if err := sweep(ctx, filter); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cleanup:", err)
	}
	if left := leftovers(ctx, filter); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: left behind after cleanup: %s\n", strings.Join(left, " "))
	}
	if failed {
		fmt.Fprintf(os.Stderr, "e2e: kept %s (containers' logs in logs/)\n", suite.dir)
	} else {
		_ = os.RemoveAll(suite.dir)
	}
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sharedCluster starts the run's cluster on first use and returns it; a
// test that cannot have it fails (or skips without DROVER_E2E=1).
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	if !enabled() {
		t.Skip("the Docker scenarios run with DROVER_E2E=1 (make e2e)")
	}
	suite.once.Do(func() {
		logf := func(format string, args ...any) {
			fmt.Printf("    e2e: "+format+"\n", args...)
		}
		logf("run %s in %s", suite.run, suite.dir)
		suite.c, suite.err = startCluster(suite.ctx, suite.dir, suite.run, logf)
	})
	if suite.err != nil {
		t.Fatalf("cannot start the cluster: %v", suite.err)
	}
	return suite.c
}

// TestHold starts the cluster and keeps it until Ctrl-C, for looking at it
// by hand: DROVER_E2E=1 DROVER_E2E_HOLD=1 go test -run TestHold -v ./e2e/
// prints the admin's CLI configuration and the containers' names.
func TestHold(t *testing.T) {
	if os.Getenv("DROVER_E2E_HOLD") != "1" {
		t.Skip("set DROVER_E2E_HOLD=1 to keep a cluster up until Ctrl-C")
	}
	c := sharedCluster(t)
	fmt.Printf("export DROVER_CONFIG=%s\nPATH=%s:$PATH\n", c.admin, filepath.Dir(c.drover))
	for _, n := range append(append([]*node{}, c.servers...), c.agents...) {
		fmt.Printf("%-8s %-15s %s\n", n.Name, n.IP, n.Container)
	}
	<-suite.ctx.Done()
}
