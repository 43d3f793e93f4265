package agent

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/drover-dev/drover/artifacts/chunks"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// handle carries out one instruction, as far as it can now. It is called
// with every desired state, so an apply resumes where it stopped: staged
// releases wait for their window, and activation happens only when a
// server has just confirmed the instruction. Each step is reported; a
// failure is reported, not returned: the error returned is one the agent
// could not even report.
func (a *Agent) handle(ctx context.Context, in api.Instruction) error {
	if a.journal.Halted != "" {
		return nil // an operator must look at this host first
	}
	if _, done := a.journal.done(in.Rollout); done {
		return nil
	}
	rec := a.journal.Active
	if rec != nil && rec.Rollout != in.Rollout {
		return nil // one change at a time; the other finishes first
	}
	if rec == nil {
		var err error
		if rec, err = a.prepare(ctx, in); rec == nil || err != nil {
			return err
		}
	}
	m, err := artifacts.ParseManifest(rec.Manifest)
	if err != nil {
		return a.fail(ctx, rec, fmt.Sprintf("journal holds a bad manifest: %v", err), "")
	}
	switch rec.Step {
	case stepStaged, stepWaiting:
		now := a.cfg.Clock.Now()
		from, until, ok := deploy.NextStart(in.Windows, now)
		switch {
		case !ok:
			return a.fail(ctx, rec, "none of this host's maintenance windows ever opens", "")
		case now.Before(from):
			return a.waitForWindow(ctx, rec, from, until)
		case rec.Step == stepWaiting && rec.StartAt.IsZero():
			// The window just opened: start at a random moment early in it.
			rec.StartAt = now.Add(a.jitter(until.Sub(now)))
			if err := a.journal.save(a.files.journal()); err != nil {
				return err
			}
		}
		if now.Before(rec.StartAt) {
			a.wake(rec.StartAt)
			return nil
		}
		if rec.App == SelfApp {
			return a.selfUpdate(ctx, rec, m)
		}
		return a.activate(ctx, rec, m)
	}
	return nil
}

// prepare verifies an instruction, downloads and stages its release. It
// returns the record of a staged apply, or nil when the instruction is
// finished already (refused, failed, or nothing to do).
func (a *Agent) prepare(ctx context.Context, in api.Instruction) (*applyRecord, error) {
	log := a.log.With("rollout", in.Rollout, "app", in.App, "version", in.Version)
	current, err := a.files.Current(in.App)
	if err != nil {
		return nil, err
	}
	m, list, err := a.verify(in, current)
	if err != nil {
		log.Warn("release refused", "err", err)
		return nil, a.finish(ctx, in.Rollout, deploy.Failed, err.Error(), "", current)
	}
	if current == in.Version {
		log.Info("already running this version")
		return nil, a.finish(ctx, in.Rollout, deploy.Succeeded, "already running "+in.Version, "", current)
	}
	rec := &applyRecord{Rollout: in.Rollout, App: in.App, Version: in.Version, Previous: current, Manifest: in.Manifest}
	if err := a.setStep(ctx, rec, stepDownloading, deploy.Downloading); err != nil {
		return nil, err
	}
	log.Info("applying", "previous", current)
	a.failpoint("downloading")
	if err := a.fetchChunks(ctx, list); err != nil {
		return nil, a.stageFailed(ctx, rec, err)
	}
	if err := a.setStep(ctx, rec, stepVerifying, ""); err != nil {
		return nil, err
	}
	a.failpoint("verifying")
	if err := a.stage(ctx, m, list); err != nil {
		return nil, a.stageFailed(ctx, rec, err)
	}
	if err := a.saveManifest(m, in.Manifest); err != nil {
		return nil, a.stageFailed(ctx, rec, err)
	}
	if rec.App == SelfApp {
		if err := a.checkSelfPayload(rec); err != nil {
			return nil, a.stageFailed(ctx, rec, err)
		}
	}
	if err := a.setStep(ctx, rec, stepStaged, deploy.Staged); err != nil {
		return nil, err
	}
	a.failpoint("staged")
	return rec, nil
}

func (a *Agent) stageFailed(ctx context.Context, rec *applyRecord, err error) error {
	if ctx.Err() != nil {
		// Shutting down: forget the attempt; the instruction is picked up
		// again, and the chunk cache keeps what was downloaded.
		a.journal.Active = nil
		return a.journal.save(a.files.journal())
	}
	a.log.Warn("staging failed", "rollout", rec.Rollout, "err", err)
	return a.fail(ctx, rec, err.Error(), "")
}

// waitForWindow records that the apply waits for a window and arranges to
// be woken when it opens.
func (a *Agent) waitForWindow(ctx context.Context, rec *applyRecord, from, until time.Time) error {
	a.wake(from)
	if rec.Step == stepWaiting && rec.StartAt.IsZero() {
		return nil
	}
	rec.StartAt = time.Time{} // chosen when the window opens
	a.log.Info("waiting for a maintenance window", "rollout", rec.Rollout, "opens", from, "closes", until)
	return a.setStep(ctx, rec, stepWaiting, deploy.WaitingForWindow)
}

// jitter is a random delay early in a window of the given length.
func (a *Agent) jitter(open time.Duration) time.Duration {
	limit := min(open/2, a.cfg.WindowJitter)
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// wake makes the next long poll return by t, so that a waiting apply
// resumes on time.
func (a *Agent) wake(t time.Time) {
	if a.wakeAt.IsZero() || t.Before(a.wakeAt) {
		a.wakeAt = t
	}
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
	if err := policy.CheckProvenance(m.Provenance); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	list, err := chunks.DecodeList(in.Chunks)
	if err != nil || list.Digest() != m.Payload.Chunks || list.Size() != m.Payload.Size {
		return nil, nil, fmt.Errorf("%w: the chunk list does not belong to this manifest", ErrUntrusted)
	}
	if err := m.Targets.Matches(runtime.GOARCH, a.labels); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if m.Name == SelfApp {
		if err := a.verifySelfRelease(m); err != nil {
			return nil, nil, err
		}
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
