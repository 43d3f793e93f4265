package agent

// Self-update: the agent's own binary is a signed release of the reserved
// application SelfApp, downloaded, verified and staged by the same pipeline
// as any release, rolled out with the same waves, windows and approvals.
// Where another release would switch apps/NAME/current, the agent instead:
//
//  1. checks the staged binary: its SHA-256 against the digest taken when
//     the payload was verified against the signed manifest, and its
//     minisign signature against the SelfApp trust policy;
//  2. preflights it: runs "drover-agent selftest --dir DIR" with a timeout;
//     the new binary must open this directory as an agent would and print
//     its version, which must be the release's;
//  3. swaps it in with minio/selfupdate (Checksum, Verifier, OldSavePath),
//     journaling first, so that a crash at any point ends on one binary or
//     the other (selfupdate_boot.go settles an interrupted swap);
//  4. restarts into it (ErrRestart: re-exec, or exit for a service
//     manager). The new binary counts its starts in the journal, must
//     reach a server and pass the release's checks by a deadline, and
//     otherwise puts the previous binary back and restarts into it, which
//     reports the rollout reverted (selfupdate_confirm.go).
//
// Payload layout (docs/agent-update.md): the binary at the root of the
// payload as "drover-agent", or per platform as "GOOS-GOARCH/drover-agent"
// (e.g. linux-arm64/drover-agent) in a payload for several architectures;
// beside it "drover-agent.minisig", a minisign signature of the binary by
// a key of the SelfApp trust policy. The manifest must name the
// architectures it is for.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/minio/selfupdate"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/deploy"
)

// SelfApp is the reserved application whose releases carry the agent's
// own binary.
const SelfApp = "drover-agent"

// Limits on a SelfApp payload's files (selfupdate reads the whole binary
// into memory).
const (
	selfBinaryName    = "drover-agent"
	maxBinaryBytes    = 256 << 20
	maxSignatureBytes = 4 << 10
)

// Steps of a self-update, as journal.SelfUpdate records them; each is
// written durably before the agent acts on it.
//
//	swapping → swapped → (confirmed: the record is removed)
//	swapping | swapped → restoring → (reverted: the record is removed)
const (
	selfSwapping  = "swapping"  // replacing the binary; may be partly done
	selfSwapped   = "swapped"   // the new binary is in place and must confirm itself
	selfRestoring = "restoring" // putting the previous binary back
)

// SelfUpdate configures how the agent replaces its own binary.
type SelfUpdate struct {
	// Binary is the agent's executable: the file a release of SelfApp
	// replaces, and the one started again afterwards. Empty: the agent
	// refuses releases of SelfApp. drover-agent run sets it to its own
	// executable.
	Binary string
	// PreflightTimeout bounds the new binary's self-test. Default 30s.
	PreflightTimeout time.Duration
	// MaxBoots is how many times a new binary may start without
	// confirming itself before the previous one is restored: a new binary
	// that dies at start ends on the old one after this many attempts.
	// Default 3.
	MaxBoots int
	// WatchdogGrace: a new binary that has neither confirmed itself nor
	// given up this long after its deadline is taken to hang, and exits
	// so that its service manager restarts it (and the restart restores
	// the previous binary). Default 30s.
	WatchdogGrace time.Duration
}

func (s *SelfUpdate) setDefaults() {
	if s.PreflightTimeout == 0 {
		s.PreflightTimeout = 30 * time.Second
	}
	if s.MaxBoots == 0 {
		s.MaxBoots = 3
	}
	if s.WatchdogGrace == 0 {
		s.WatchdogGrace = 30 * time.Second
	}
}

// selfUpdateState is the journal's record of a self-update in progress.
type selfUpdateState struct {
	Rollout string `json:"rollout"`
	Step    string `json:"step"`
	// Binary is the file replaced; Old is where the previous binary is
	// kept (selfupdate's OldSavePath).
	Binary    string `json:"binary"`
	Old       string `json:"old"`
	OldSHA256 string `json:"old_sha256"`
	NewSHA256 string `json:"new_sha256"`
	// OldVersion is the version the previous binary reported, for messages.
	OldVersion string `json:"old_version,omitempty"`
	// ReachWithin and HealthyWithin are the release's probation: once
	// the new binary is in place (SwappedAt), it must reach a server by
	// ReachBy and be confirmed (checks passed) by HealthyBy.
	ReachWithin   artifacts.Duration `json:"reach_within"`
	HealthyWithin artifacts.Duration `json:"healthy_within"`
	SwappedAt     time.Time          `json:"swapped_at,omitzero"`
	ReachBy       time.Time          `json:"reach_by,omitzero"`
	HealthyBy     time.Time          `json:"healthy_by,omitzero"`
	// Reached is set once the new binary delivered its reports to a server.
	Reached bool `json:"reached,omitempty"`
	// Boots counts the starts of the new binary; more than MaxBoots is a
	// crash loop.
	Boots int `json:"boots,omitempty"`
	// Reason says why the previous binary is being restored.
	Reason string `json:"reason,omitempty"`
}

// swapped records that the new binary is in place, and starts its
// probation's clocks.
func (s *selfUpdateState) swapped(now time.Time) {
	s.Step, s.SwappedAt = selfSwapped, now
	s.ReachBy = now.Add(time.Duration(s.ReachWithin))
	s.HealthyBy = now.Add(time.Duration(s.HealthyWithin))
}

// Files beside the binary. newPath is the name selfupdate writes the new
// binary to; oldPath is the OldSavePath this agent uses.
func newPath(bin string) string { return sidePath(bin, "new") }
func oldPath(bin string) string { return sidePath(bin, "old") }
func sidePath(bin, what string) string {
	return filepath.Join(filepath.Dir(bin), "."+filepath.Base(bin)+"."+what)
}

// selfBinary finds the binary of a staged SelfApp release and names its
// signature: GOOS-GOARCH/drover-agent first, else drover-agent.
func (l layout) selfBinary(version string) (bin, sig string, err error) {
	dir := l.release(SelfApp, version)
	for _, p := range []string{filepath.Join(dir, runtime.GOOS+"-"+runtime.GOARCH, selfBinaryName), filepath.Join(dir, selfBinaryName)} {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		if !st.Mode().IsRegular() {
			return "", "", fmt.Errorf("%s is not a regular file", p)
		}
		return p, p + ".minisig", nil
	}
	return "", "", fmt.Errorf("release %s@%s holds no agent binary: want %s or %s/%s at the root of its payload",
		SelfApp, version, selfBinaryName, runtime.GOOS+"-"+runtime.GOARCH, selfBinaryName)
}

// verifySelfRelease adds the rules of SelfApp releases to verify: this
// agent must know its binary, the manifest must name its architectures,
// and the agent is not downgraded below the running binary's version
// unless back to a release still on disk.
func (a *Agent) verifySelfRelease(m *artifacts.Manifest) error {
	if a.cfg.SelfUpdate.Binary == "" {
		return errors.New("this agent does not update itself: it was started without the path of its binary (drover-agent run sets it)")
	}
	if m.Targets == nil || len(m.Targets.Architectures) == 0 {
		return fmt.Errorf("%w: a release of %s must name the architectures its binary is for (drover release create --arch)", ErrUntrusted, SelfApp)
	}
	if isVersion(a.cfg.Version) && artifacts.CompareVersions(m.Version, a.cfg.Version) < 0 && !a.installed(SelfApp, m.Version) {
		return fmt.Errorf("%w: %s is older than the running agent %s; downgrades are only allowed back to a release still on this host",
			ErrUntrusted, m.Version, a.cfg.Version)
	}
	return nil
}

// isVersion tells a release version from a development build's "dev".
func isVersion(v string) bool { return v != "" && v[0] >= '0' && v[0] <= '9' }

// checkSelfPayload checks a staged SelfApp release's files and records
// the binary's SHA-256: the payload was just checked against the signed
// manifest's digest, so this is the digest the swap must find again.
func (a *Agent) checkSelfPayload(rec *applyRecord) error {
	bin, sig, err := a.files.selfBinary(rec.Version)
	if err != nil {
		return err
	}
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	if st.Size() == 0 || st.Size() > maxBinaryBytes {
		return fmt.Errorf("the agent binary %s is %d bytes; allowed 1 to %d", bin, st.Size(), maxBinaryBytes)
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("the agent binary %s is not executable in the payload; pack it with mode 0755", bin)
	}
	if st, err := os.Stat(sig); err != nil || st.Size() > maxSignatureBytes {
		return fmt.Errorf("%w: the release has no signature of its binary (%s beside it): %v", ErrUntrusted, filepath.Base(sig), err)
	}
	digest, _, err := artifacts.DigestFile(bin)
	if err != nil {
		return err
	}
	rec.BinarySHA256 = digest
	return nil
}

// selfUpdate replaces the agent's binary with a staged SelfApp release, in
// place of activate. Anything failing before the swap leaves the host as
// it was and is reported failed; after the swap it returns ErrRestart,
// and the new binary takes over (Boot, resumeSelfUpdate).
func (a *Agent) selfUpdate(ctx context.Context, rec *applyRecord, m *artifacts.Manifest) error {
	log := a.log.With("rollout", rec.Rollout, "app", SelfApp, "version", rec.Version)
	target := a.cfg.SelfUpdate.Binary
	bin, sig, err := a.files.selfBinary(rec.Version)
	if err != nil {
		return a.fail(ctx, rec, err.Error(), "")
	}
	opts, err := a.updateOptions(rec, sig)
	if err != nil {
		return a.fail(ctx, rec, err.Error(), "")
	}
	if err := opts.CheckPermissions(); err != nil {
		return a.fail(ctx, rec, fmt.Sprintf("cannot replace the agent binary: its directory %s is not writable: %v", filepath.Dir(target), err), "")
	}
	// The signature is checked before the binary is ever run.
	if err := checkBinary(bin, opts); err != nil {
		return a.fail(ctx, rec, err.Error(), "")
	}
	if out, err := a.preflight(ctx, bin, rec.Version); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: still staged, tried again later
		}
		log.Warn("the new agent binary failed its preflight", "err", err)
		return a.fail(ctx, rec, "preflight of the new agent binary failed: "+err.Error(), out)
	}
	a.failpoint("self-preflighted")
	oldDigest, _, err := artifacts.DigestFile(target)
	if err != nil {
		return a.fail(ctx, rec, fmt.Sprintf("cannot read the running agent binary: %v", err), "")
	}
	p := probationSettings(m)
	s := &selfUpdateState{Rollout: rec.Rollout, Step: selfSwapping, Binary: target, Old: opts.OldSavePath,
		OldSHA256: oldDigest, NewSHA256: rec.BinarySHA256, OldVersion: a.cfg.Version,
		ReachWithin: p.UnreachableAfter, HealthyWithin: p.HealthyDeadline}
	// Journaled before the first file changes: a crash from here on is
	// settled at the next start by looking at which binary is in place.
	a.journal.SelfUpdate = s
	if err := a.setStep(ctx, rec, stepActivating, deploy.Activating); err != nil {
		a.journal.SelfUpdate = nil
		return err
	}
	a.failpoint("self-swapping")
	swapped, err := swapBinary(opts, bin, a.failpoint)
	if !swapped {
		a.journal.SelfUpdate = nil
		log.Error("cannot replace the agent binary", "binary", target, "err", err)
		return a.fail(ctx, rec, fmt.Sprintf("cannot replace the agent binary %s: %v", target, err), "")
	}
	if err != nil {
		log.Warn("the new binary is in place but its directory could not be synced", "err", err)
	}
	if err := a.files.switchCurrent(SelfApp, rec.Version); err != nil {
		log.Warn("cannot switch the current link", "err", err)
	}
	s.swapped(a.cfg.Clock.Now())
	rec.Step = stepProbation
	if err := a.journal.save(a.files.journal()); err != nil {
		log.Warn("cannot record the swap; the next start finds the new binary in place", "err", err)
	}
	a.failpoint("self-swapped")
	log.Info("agent binary replaced; restarting into it", "binary", target, "previous_kept_at", opts.OldSavePath)
	return ErrRestart
}

// updateOptions are the selfupdate options of a swap: the binary to
// replace, the SHA-256 the new one must have, a Verifier of its minisign
// signature, and where to keep the previous binary.
func (a *Agent) updateOptions(rec *applyRecord, sigPath string) (selfupdate.Options, error) {
	sum, err := hex.DecodeString(rec.BinarySHA256)
	if err != nil || len(sum) != sha256.Size {
		return selfupdate.Options{}, errors.New("the journal holds no digest of the staged agent binary; the release must be staged again")
	}
	v, err := a.binaryVerifier(sigPath)
	if err != nil {
		return selfupdate.Options{}, err
	}
	target := a.cfg.SelfUpdate.Binary
	mode := os.FileMode(0o755)
	if st, err := os.Stat(target); err == nil {
		mode = st.Mode().Perm() | 0o100
	}
	return selfupdate.Options{TargetPath: target, TargetMode: mode, Checksum: sum, Verifier: v, OldSavePath: oldPath(target)}, nil
}

// binaryVerifier loads the binary's minisign signature into a selfupdate
// Verifier with the key of the SelfApp trust policy that made it.
func (a *Agent) binaryVerifier(sigPath string) (*selfupdate.Verifier, error) {
	st, err := os.Stat(sigPath)
	if err != nil || st.Size() > maxSignatureBytes {
		return nil, fmt.Errorf("%w: no usable signature of the agent binary at %s: %v", ErrUntrusted, sigPath, err)
	}
	sig, err := minisign.SignatureFromFile(sigPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a minisign signature: %v", ErrUntrusted, filepath.Base(sigPath), err)
	}
	policy, ok := artifacts.PolicyFor(a.trustPolicies(), SelfApp)
	if !ok {
		return nil, fmt.Errorf("%w: this host has no trust policy for %s", ErrUntrusted, SelfApp)
	}
	for _, k := range policy.Keys {
		pub, err := artifacts.ParsePublicKey([]byte(k))
		if err != nil || pub.ID() != sig.KeyID {
			continue
		}
		v := selfupdate.NewVerifier()
		if err := v.LoadFromFile(sigPath, k); err != nil {
			return nil, fmt.Errorf("%w: cannot load the binary's signature: %v", ErrUntrusted, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: the agent binary is signed by key %X, which the %s trust policy does not list", ErrUntrusted, sig.KeyID, SelfApp)
}

// checkBinary checks a binary's SHA-256 and signature as selfupdate will
// when it writes it, so that nothing unverified is ever run.
func checkBinary(path string, opts selfupdate.Options) error {
	b, err := readBounded(path, maxBinaryBytes)
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(b); !bytes.Equal(sum[:], opts.Checksum) {
		return fmt.Errorf("%w: the staged agent binary has SHA-256 %x; the verified payload held %x", ErrUntrusted, sum, opts.Checksum)
	}
	if err := opts.Verifier.Verify(b); err != nil {
		return fmt.Errorf("%w: the agent binary's minisign signature does not verify: %v", ErrUntrusted, err)
	}
	return nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// preflight runs "BIN selftest --dir DIR" with a timeout and checks that
// it succeeds and prints "drover-agent VERSION" with the release's
// version (build metadata after '+' aside). It returns the tail of the
// binary's output.
func (a *Agent) preflight(ctx context.Context, bin, version string) (string, error) {
	timeout := a.cfg.SelfUpdate.PreflightTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "selftest", "--dir", a.cfg.Dir)
	cmd.Dir = filepath.Dir(bin)
	var stdout, all tailBuffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, &all), &all
	setProcessGroup(cmd)
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return all.String(), fmt.Errorf("selftest did not finish within %v", timeout)
	}
	if err != nil {
		return all.String(), fmt.Errorf("selftest: %w", err)
	}
	want := "drover-agent " + baseVersion(version)
	line, _, _ := strings.Cut(stdout.String(), "\n")
	if strings.TrimSpace(line) != want {
		return all.String(), fmt.Errorf("selftest printed %q; want %q (the binary must be the release's version)", line, want)
	}
	return all.String(), nil
}

// baseVersion drops build metadata: drover-agent@1.4.0+arm64 holds an
// agent of version 1.4.0.
func baseVersion(v string) string {
	base, _, _ := strings.Cut(v, "+")
	return base
}

// swapBinary puts the staged binary in place of the running one. The
// order makes each step durable before the next depends on it:
//
//  1. selfupdate.PrepareAndCheckBinary reads the staged binary, checks its
//     Checksum and Verifier, and writes it to .NAME.new;
//  2. .NAME.new is synced (selfupdate does not sync);
//  3. the previous binary is kept at OldSavePath (a hard link, or a synced
//     copy), and the directory synced;
//  4. .NAME.new is renamed over the binary, and the directory synced.
//
// selfupdate.CommitBinary is not used: it first renames the binary away
// and then the new one in, so a power cut between the two renames leaves
// no binary at all where the service manager looks for it. A rename over
// the binary is atomic: at every instant the path names a whole binary,
// the old or the new. swapped says whether step 4 happened.
func swapBinary(opts selfupdate.Options, staged string, failpoint func(string)) (swapped bool, err error) {
	target := opts.TargetPath
	dir := filepath.Dir(target)
	defer func() {
		if !swapped {
			_ = os.Remove(newPath(target))
		}
	}()
	f, err := os.Open(staged)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := selfupdate.PrepareAndCheckBinary(io.LimitReader(f, maxBinaryBytes+1), opts); err != nil {
		return false, fmt.Errorf("cannot write the new binary: %w", err)
	}
	failpoint("self-new-written")
	if err := syncFile(newPath(target)); err != nil {
		return false, err
	}
	_ = os.Remove(opts.OldSavePath)
	if err := os.Link(target, opts.OldSavePath); err != nil {
		if err := copyFile(target, opts.OldSavePath); err != nil {
			return false, fmt.Errorf("cannot keep the previous binary at %s: %w", opts.OldSavePath, err)
		}
	}
	if err := artifacts.SyncDir(dir); err != nil {
		return false, err
	}
	failpoint("self-old-saved")
	if err := os.Rename(newPath(target), target); err != nil {
		return false, fmt.Errorf("cannot move the new binary into place: %w", err)
	}
	failpoint("self-renamed")
	return true, artifacts.SyncDir(dir)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// copyFile copies src to dst (same mode) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
