package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
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
	m, err := a.verify(in)
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
	if err := a.stage(ctx, m); err != nil {
		log.Warn("staging failed", "err", err)
		return a.finish(ctx, in.Rollout, deploy.Failed, err.Error(), "", current)
	}
	if err := a.setStep(ctx, rec, stepStaged, deploy.Staged); err != nil {
		return err
	}
	return a.activate(ctx, rec, m)
}

// verify checks the instruction's manifest against this agent's own trust
// policy and that it is the release the instruction names.
func (a *Agent) verify(in api.Instruction) (*artifacts.Manifest, error) {
	m, err := artifacts.ParseManifest(in.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if m.Name != in.App || m.Version != in.Version {
		return nil, fmt.Errorf("%w: manifest is for %s, instruction for %s@%s", ErrUntrusted, m.ID(), in.App, in.Version)
	}
	policy, ok := artifacts.PolicyFor(a.trust, m.Name)
	if !ok {
		return nil, fmt.Errorf("%w: this host has no trust policy for %s", ErrUntrusted, m.Name)
	}
	if err := policy.Verify(in.Manifest, in.Signatures); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	return m, nil
}

// stage downloads the payload, checks it against the signed digest and
// size, and unpacks it into releases/VERSION (via a temporary directory,
// so a half-unpacked release never carries the version's name).
func (a *Agent) stage(ctx context.Context, m *artifacts.Manifest) error {
	payload, err := a.download(ctx, m.Payload)
	if err != nil {
		return err
	}
	dest := a.files.release(m.Name, m.Version)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+m.Version+".unpack-")
	if err != nil {
		return fmt.Errorf("cannot stage release: %w", err)
	}
	defer os.RemoveAll(tmp)
	f, err := os.Open(payload)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := artifacts.Unpack(f, tmp, artifacts.DefaultUnpackLimits); err != nil {
		return fmt.Errorf("cannot unpack payload: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("cannot stage release: %w", err)
	}
	return artifacts.SyncDir(filepath.Dir(dest))
}

// download fetches a payload into the cache unless it is there already,
// refusing more bytes than the signed size and any other digest.
func (a *Agent) download(ctx context.Context, p artifacts.Payload) (string, error) {
	path := filepath.Join(a.files.cache(), p.SHA256)
	if digest, size, err := artifacts.DigestFile(path); err == nil && digest == p.SHA256 && size == p.Size {
		return path, nil
	}
	if err := os.MkdirAll(a.files.cache(), 0o700); err != nil {
		return "", err
	}
	resp, err := a.client.Send(ctx, client.Request{Method: http.MethodGet, Path: api.PathBlobs + p.SHA256})
	if err != nil {
		return "", fmt.Errorf("cannot download payload: %w", err)
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(a.files.cache(), ".download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := artifacts.CopyVerified(tmp, resp.Body, p.SHA256, p.Size); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
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
