package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/report"
)

// releaseSpec is one version of the test application. Its health check
// fails on a host whose directory holds a file fail-VERSION; its activate
// hook appends the version to HOST_DIR/activations (so each host keeps its
// own record of every activation), then sleeps ActivateSleep.
type releaseSpec struct {
	Version          string
	ActivateSleep    time.Duration
	MinHealthy       time.Duration // default 3s
	HealthyDeadline  time.Duration // default 10s
	UnreachableAfter time.Duration // default the agent's (2m)
}

// release packs, signs and records a release as a release manager does
// (drover artifact pack, drover release create) and returns the SHA-256 of
// the payload file, computed here.
func (c *cluster) release(ctx context.Context, r releaseSpec) (string, error) {
	dir := filepath.Join(c.dir, "build", r.Version)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return "", err
	}
	script := fmt.Sprintf("#!/bin/sh\n# %s %s, built by the e2e run %s\necho \"%s %s\"\n", app, r.Version, c.run, app, r.Version)
	if err := os.WriteFile(filepath.Join(dir, "bin", app), []byte(script), 0o755); err != nil {
		return "", err
	}
	specPath := filepath.Join(c.dir, "build", r.Version+".spec.json")
	if err := writeSpec(specPath, r); err != nil {
		return "", err
	}
	payload := filepath.Join(c.dir, "build", app+"-"+r.Version+".tar")
	if _, err := c.cli(ctx, "", "artifact", "pack", dir, "--out", payload); err != nil {
		return "", err
	}
	sum, err := fileSHA256(payload)
	if err != nil {
		return "", err
	}
	if _, err := c.cli(ctx, c.deployer, "release", "create", app+"@"+r.Version, "--payload", payload,
		"--key", c.key, "--spec", specPath, "--builder", "drover-e2e", "--build-id", c.run+"-"+r.Version); err != nil {
		return "", err
	}
	return sum, nil
}

// writeSpec writes the manifest fields of a release spec for --spec.
func writeSpec(path string, r releaseSpec) error {
	def := func(d, v time.Duration) string {
		if d == 0 {
			d = v
		}
		return d.String()
	}
	check := `test ! -e "$DROVER_HOST_DIR/fail-$DROVER_VERSION" || { echo "$DROVER_HOST_DIR/fail-$DROVER_VERSION: this version is broken here"; exit 1; }`
	activate := `echo "$DROVER_VERSION" >> "$DROVER_HOST_DIR/activations"`
	if r.ActivateSleep > 0 {
		activate += "; sleep " + strconv.FormatFloat(r.ActivateSleep.Seconds(), 'f', -1, 64)
	}
	probation := map[string]string{
		"healthy_deadline": def(r.HealthyDeadline, 10*time.Second),
		"interval":         "500ms",
		"min_healthy_time": def(r.MinHealthy, 3*time.Second),
		"unreachable":      "revert",
	}
	if r.UnreachableAfter > 0 {
		probation["unreachable_after"] = r.UnreachableAfter.String()
	}
	spec := map[string]any{
		"health_checks": []any{map[string]any{"name": "marker", "command": []string{"sh", "-c", check}, "timeout": "10s"}},
		"hooks":         map[string]any{"activate": map[string]any{"command": []string{"sh", "-c", activate}, "timeout": "60s"}},
		"probation":     probation,
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// plan is a rollout plan, as flags of drover rollout create.
type plan struct {
	Waves       string // default 1,50%,100%
	MaxParallel int
	MaxFailures string // default 0
	OnFailure   string // default pause
	Where       string // default: the whole fleet
}

// createRollout plans and starts a rollout of the application's version
// over the fleet (or the hosts plan.Where picks) and returns its ID.
func (c *cluster) createRollout(ctx context.Context, version string, p plan) (string, error) {
	args := []string{"rollout", "create", app + "@" + version, "--selector", fleetLabel, "--start",
		"--waves", or(p.Waves, "1,50%,100%"), "--max-parallel", strconv.Itoa(p.MaxParallel),
		"--max-failures", or(p.MaxFailures, "0"), "--on-failure", or(p.OnFailure, "pause")}
	if p.Where != "" {
		args = append(args, "--where", p.Where)
	}
	out, err := c.cli(ctx, c.deployer, args...)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" {
		return "", fmt.Errorf("drover rollout create printed no rollout ID")
	}
	return id, nil
}

// rollout reads a rollout and its hosts.
func (c *cluster) rollout(ctx context.Context, id string) (*api.RolloutStatus, error) {
	var st api.RolloutStatus
	if err := c.readJSON(ctx, c.viewer, 2*time.Minute, &st, "rollout", "show", id); err != nil {
		return nil, err
	}
	if st.Rollout == nil {
		return nil, fmt.Errorf("drover rollout show %s: no rollout in the answer", id)
	}
	return &st, nil
}

// report reads a rollout's post-release report.
func (c *cluster) report(ctx context.Context, id string) (*report.Report, error) {
	var rep report.Report
	err := c.readJSON(ctx, c.viewer, 2*time.Minute, &rep, "rollout", "report", id)
	return &rep, err
}

// audit reads the whole audit trail.
func (c *cluster) audit(ctx context.Context) ([]api.AuditEntry, error) {
	var entries []api.AuditEntry
	err := c.readJSON(ctx, c.viewer, 2*time.Minute, &entries, "audit", "list")
	return entries, err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
