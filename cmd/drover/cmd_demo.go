package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/client"
)

// demoApp is the application the demo releases: a script whose self-test
// fails on a host whose file simulate-failure names its version.
const demoApp = `#!/bin/sh
# hello: drover's demo application.
if [ "$1" = "--self-test" ]; then
  if grep -qx VERSION "$DROVER_HOST_DIR/simulate-failure" 2>/dev/null; then
    echo "hello VERSION: self-test failed on $DROVER_HOST: $DROVER_HOST_DIR/simulate-failure names this version" >&2
    exit 1
  fi
  echo "hello VERSION: self-test passed"
  exit 0
fi
echo "hello from VERSION"
`

func (a *app) demoCommand() *cobra.Command {
	var keep bool
	var agents int
	cmd := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "Show the whole job on a local cluster, in one command",
		Long: `Start 3 servers and 5 agents on loopback (each agent with a directory
standing for its host), create a signing key, then:

  1. sign and push hello@1.0.0 and roll it out in waves 1, 50%, 100%;
  2. break one host, sign and push hello@1.1.0 and roll it out the same way:
     the broken host fails its health check and reverts to 1.0.0, and the
     rollout pauses at its failure threshold;
  3. print a summary and the inventory as CSV for the CMDB.

Everything happens in one temporary directory, removed at the end unless
--keep.`,
		Example: `  drover demo
  drover demo --keep     # keep the directory to look at the hosts and logs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agents < 3 {
				return usageErr("--agents: at least 3")
			}
			dir, err := os.MkdirTemp("", "drover-demo-")
			if err != nil {
				return err
			}
			if keep {
				defer fmt.Fprintf(a.stderr, "\nkept %s (logs in logs/, hosts in hosts/)\n", dir)
			} else {
				defer os.RemoveAll(dir)
			}
			return a.runDemo(cmd.Context(), dir, agents)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo's directory")
	cmd.Flags().IntVar(&agents, "agents", 5, "number of agents")
	return cmd
}

func (a *app) runDemo(ctx context.Context, dir string, agents int) error {
	step := func(format string, args ...any) { fmt.Fprintf(a.stdout, "\n==> "+format+"\n", args...) }
	logf := func(format string, args ...any) { fmt.Fprintf(a.stdout, "    "+format+"\n", args...) }
	start := time.Now()

	step("Starting a control plane of 3 servers and %d agents on loopback", agents)
	d, err := startDevCluster(ctx, dir, agents, logf)
	if err != nil {
		return err
	}
	defer d.stop()
	logf("signing key: %s (trusted for every application)", d.key)

	step("Releasing hello@1.0.0: pack, sign, push")
	if err := a.demoRelease(ctx, d, "1.0.0", logf); err != nil {
		return err
	}
	step("Rolling hello@1.0.0 out in waves 1, 50%%, 100%%")
	if err := a.demoRollout(ctx, d, "hello@1.0.0"); err != nil {
		return err
	}

	broken := filepath.Base(d.agentDir[2])
	step("Breaking %s: hello 1.1.0's health check will fail there", broken)
	if err := os.WriteFile(filepath.Join(d.agentDir[2], "simulate-failure"), []byte("1.1.0\n"), 0o644); err != nil {
		return err
	}
	step("Releasing hello@1.1.0 and rolling it out the same way")
	if err := a.demoRelease(ctx, d, "1.1.0", logf); err != nil {
		return err
	}
	err = a.demoRollout(ctx, d, "hello@1.1.0")
	var ee *exitErr
	if !errors.As(err, &ee) || ee.code != exitIncomplete {
		return fmt.Errorf("the second rollout should have paused at its failure threshold, got: %v", err)
	}
	logf("as expected: %s reverted to 1.0.0 and the rollout paused before its last wave", broken)

	step("Summary")
	hosts, err := d.admin.Hosts(ctx, client.HostQuery{})
	if err != nil {
		return err
	}
	a.output = "table"
	if err := a.printOut(hosts, hostTable(hosts)); err != nil {
		return err
	}
	step("Inventory export for the CMDB (CSV)")
	if err := d.admin.Export(ctx, "csv", client.HostQuery{}, a.stdout); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\ndemo finished in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// demoRelease packs the demo application at version, signs its manifest
// with the cluster's key and records the release.
func (a *app) demoRelease(ctx context.Context, d *devCluster, version string, logf func(string, ...any)) error {
	src := filepath.Join(d.dir, "build", "hello-"+version)
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		return err
	}
	script := strings.ReplaceAll(demoApp, "VERSION", version)
	if err := os.WriteFile(filepath.Join(src, "bin", "hello"), []byte(script), 0o755); err != nil {
		return err
	}
	payload := filepath.Join(d.dir, "build", "hello-"+version+".tar")
	if err := packDir(src, payload, artifacts.FormatTar); err != nil {
		return err
	}
	key, err := artifacts.LoadSecretKey(d.key, "")
	if err != nil {
		return err
	}
	m, err := d.admin.Release(ctx, artifacts.Manifest{Schema: 1, Name: "hello", Version: version,
		HealthChecks: []artifacts.HealthCheck{{Name: "self-test", Command: []string{"bin/hello", "--self-test"}, Timeout: artifacts.Duration(10 * time.Second)}},
		// A demo should not wait the default five minutes for a check
		// that will not pass.
		Probation:  &artifacts.Probation{HealthyDeadline: artifacts.Duration(3 * time.Second), Interval: artifacts.Duration(250 * time.Millisecond)},
		Provenance: &artifacts.Provenance{Builder: "drover demo", BuildID: "demo-" + version},
	}, payload, key)
	if err != nil {
		return err
	}
	logf("payload sha256:%s, %d bytes, in chunks held by every server", m.Payload.SHA256[:16], m.Payload.Size)
	logf("release %s recorded, signature checked against the trust policy", m.ID())
	return nil
}

func (a *app) demoRollout(ctx context.Context, d *devCluster, release string) error {
	req, err := rolloutRequest(release, "1,50%,100%", "0", "", 0)
	if err != nil {
		return err
	}
	req.Start = true
	created, err := d.admin.CreateRollout(ctx, req)
	if err != nil {
		return err
	}
	a.output = "table"
	return a.watch(ctx, d.admin, created.ID, created.Index-1)
}
