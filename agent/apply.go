package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/drover-dev/drover/artifacts/chunks"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// handle carries out one instruction, unless this host already finished
// that rollout. It reports each step; a failure is reported, not returned:
// the error returned is one the agent could not even report.
func (a *Agent) handle(ctx context.Context, in api.Instruction) error {
	if _, done := a.journal.done(in.Rollout); done {
		return nil
	}
	log := a.log.With("rollout", in.Rollout, "app", in.App, "version", in.Version)
	current, err := a.files.Current(in.App)
	if err != nil {
		return err
	}
	m, list, err := a.verify(in, current)
	if err != nil {
		log.Warn("release refused", "err", err)
		return a.finish(ctx, in.Rollout, deploy.Failed, err.Error(), "", current)
	}
	if current == in.Version {
		log.Info("already running this version")
		return a.finish(ctx, in.Rollout, deploy.Succeeded, "already running "+in.Version, "", current)
	}
	rec := &applyRecord{Rollout: in.Rollout, App: in.App, Version: in.Version, Previous: current, Manifest: in.Manifest}
	if err := a.setStep(ctx, rec, stepDownloading, deploy.Downloading); err != nil {
		return err
	}
	log.Info("applying", "previous", current)
	if err := a.stage(ctx, m, list); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: the instruction is picked up again
		}
		log.Warn("staging failed", "err", err)
		return a.finish(ctx, in.Rollout, deploy.Failed, err.Error(), "", current)
	}
	if err := a.setStep(ctx, rec, stepStaged, deploy.Staged); err != nil {
		return err
	}
	return a.activate(ctx, rec, m)
}

// verify decides whether this host may install the instruction's release,
// trusting nothing the control plane says without checking it here: the
// manifest's signatures against this agent's own trust policy, the chunk
// list against the digest the manifest names, the release's targets
// against this host, the version against the one running (no downgrade,
// except back to a release still on disk), and the instruction's expiry.
func (a *Agent) verify(in api.Instruction, current string) (*artifacts.Manifest, chunks.List, error) {
	m, err := artifacts.ParseManifest(in.Manifest)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if m.Name != in.App || m.Version != in.Version {
		return nil, nil, fmt.Errorf("%w: manifest is for %s, instruction for %s@%s", ErrUntrusted, m.ID(), in.App, in.Version)
	}
	policy, ok := artifacts.PolicyFor(a.trustPolicies(), m.Name)
	if !ok {
		return nil, nil, fmt.Errorf("%w: this host has no trust policy for %s", ErrUntrusted, m.Name)
	}
	if err := policy.Verify(in.Manifest, in.Signatures); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	list, err := chunks.DecodeList(in.Chunks)
	if err != nil || list.Digest() != m.Payload.Chunks || list.Size() != m.Payload.Size {
		return nil, nil, fmt.Errorf("%w: the chunk list does not belong to this manifest", ErrUntrusted)
	}
	if err := m.Targets.Matches(runtime.GOARCH, a.labels); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if current != "" && artifacts.CompareVersions(m.Version, current) < 0 && !a.installed(m.Name, m.Version) {
		return nil, nil, fmt.Errorf("%w: %s is older than the running %s and not installed here; downgrades are only allowed back to a release still on this host",
			ErrUntrusted, m.Version, current)
	}
	if !in.ExpiresAt.IsZero() && a.cfg.Clock.Now().After(in.ExpiresAt) {
		return nil, nil, fmt.Errorf("instruction expired at %s; it must be issued again", in.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return m, list, nil
}

// installed reports whether a release's directory is on this host.
func (a *Agent) installed(app, version string) bool {
	st, err := os.Stat(a.files.release(app, version))
	return err == nil && st.IsDir()
}

// stage makes releases/VERSION from the payload's chunks (those not in the
// local chunk cache are downloaded), unpacking through a temporary
// directory so that a half-unpacked release never carries the version's
// name. The payload streams from the chunk cache into the unpacker; every
// chunk was verified when it entered the cache, and the whole payload's
// digest is checked at its end.
func (a *Agent) stage(ctx context.Context, m *artifacts.Manifest, list chunks.List) error {
	dest := a.files.release(m.Name, m.Version)
	if a.installed(m.Name, m.Version) {
		return nil // back-out to a release still on disk
	}
	if err := a.fetchChunks(ctx, list); err != nil {
		return err
	}
	if err := a.saveList(m, list); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+m.Version+".unpack-")
	if err != nil {
		return fmt.Errorf("cannot stage release: %w", err)
	}
	defer os.RemoveAll(tmp)
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(chunks.Assemble(pw, list, m.Payload.SHA256, m.Payload.Size, a.cache.Get))
	}()
	err = artifacts.Unpack(pr, tmp, artifacts.DefaultUnpackLimits)
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("cannot unpack payload: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("cannot stage release: %w", err)
	}
	return artifacts.SyncDir(filepath.Dir(dest))
}

// activate switches to the staged release and puts it on probation: the
// health checks decide between committing and switching back.
func (a *Agent) activate(ctx context.Context, rec *applyRecord, m *artifacts.Manifest) error {
	if err := a.setStep(ctx, rec, stepActivating, deploy.Activating); err != nil {
		return err
	}
	if err := a.files.switchCurrent(rec.App, rec.Version); err != nil {
		return a.revert(ctx, rec, fmt.Sprintf("activation failed: %v", err), "")
	}
	if err := a.setStep(ctx, rec, stepProbation, deploy.Probation); err != nil {
		return err
	}
	return a.probation(ctx, rec, m)
}

// probation runs the health checks of the active release and commits or
// reverts.
func (a *Agent) probation(ctx context.Context, rec *applyRecord, m *artifacts.Manifest) error {
	env := checkEnv{App: rec.App, Version: rec.Version, ReleaseDir: a.files.release(rec.App, rec.Version),
		Host: a.name, HostDir: a.cfg.Dir}
	if err := runChecks(ctx, m.HealthChecks, env); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: the journal resumes probation on restart
		}
		var cf *checkFailure
		output := ""
		if errors.As(err, &cf) {
			output = cf.Output
		}
		return a.revert(ctx, rec, err.Error(), output)
	}
	a.log.Info("release committed", "rollout", rec.Rollout, "app", rec.App, "version", rec.Version)
	if err := a.files.prune(rec.App, a.cfg.KeepReleases, rec.Version, rec.Previous); err != nil {
		a.log.Warn("cannot remove old releases", "err", err)
	}
	if err := a.pruneCache(); err != nil {
		a.log.Warn("cannot prune the chunk cache", "err", err)
	}
	a.lastInventory = a.lastInventory.AddDate(-1, 0, 0) // collect again: the releases changed
	return a.finish(ctx, rec.Rollout, deploy.Succeeded, "", "", rec.Version)
}

// revert switches back to the previous release and reports why.
func (a *Agent) revert(ctx context.Context, rec *applyRecord, reason, output string) error {
	a.log.Warn("reverting", "rollout", rec.Rollout, "app", rec.App, "to", rec.Previous, "reason", reason)
	if err := a.files.switchCurrent(rec.App, rec.Previous); err != nil {
		// Neither version can be made current: stop touching the host.
		return a.finish(ctx, rec.Rollout, deploy.Failed,
			fmt.Sprintf("%s; and switching back to %q failed: %v", reason, rec.Previous, err), output, rec.Version)
	}
	return a.finish(ctx, rec.Rollout, deploy.Reverted, reason, output, rec.Previous)
}

// setStep records the step durably, then reports it.
func (a *Agent) setStep(ctx context.Context, rec *applyRecord, step string, state deploy.HostState) error {
	rec.Step = step
	a.journal.Active = rec
	if err := a.journal.save(a.files.journal()); err != nil {
		return err
	}
	a.report(ctx, api.Report{Rollout: rec.Rollout, State: state, Current: rec.Previous})
	return nil
}

// finish records the outcome of a rollout on this host and reports it.
func (a *Agent) finish(ctx context.Context, rollout string, state deploy.HostState, reason, output, current string) error {
	a.journal.finish(rollout, string(state))
	a.report(ctx, api.Report{Rollout: rollout, State: state, Reason: reason, Output: output, Current: current})
	return nil
}

// recover deals with an apply that a crash interrupted. Before activation
// nothing changed: the apply is forgotten and the instruction, still
// desired, starts again. During activation the switch may or may not have
// happened: switch back. During probation the new release is active: run
// its checks again from the start.
func (a *Agent) recover(ctx context.Context) error {
	rec := a.journal.Active
	if rec == nil {
		return nil
	}
	a.log.Warn("resuming interrupted apply", "rollout", rec.Rollout, "step", rec.Step)
	switch rec.Step {
	case stepActivating:
		return a.revert(ctx, rec, "agent restarted during activation", "")
	case stepProbation:
		m, err := artifacts.ParseManifest(rec.Manifest)
		if err != nil {
			return a.revert(ctx, rec, fmt.Sprintf("agent restarted during probation and cannot re-check: %v", err), "")
		}
		return a.probation(ctx, rec, m)
	default:
		a.journal.Active = nil
		return a.journal.save(a.files.journal())
	}
}
