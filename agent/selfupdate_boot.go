package agent

// What a drover-agent process does about a self-update before anything
// else (Boot), and how the previous binary is put back (restore).

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// Boot is the first thing drover-agent run does, before New. With no
// self-update in progress it removes what an interrupted one left beside
// the binary (.NAME.new and the like; .NAME.old, the previous binary, is
// kept). Otherwise it settles it:
//
//   - interrupted during the swap: whichever binary is in place wins — the
//     new one goes on probation, or the update is reported reverted;
//   - the new binary starting: its start is counted; past
//     SelfUpdate.MaxBoots starts (a crash loop), or past its deadline, the
//     previous binary is restored;
//   - interrupted while restoring: the restore is finished.
//
// It returns ErrRestart when the binary that must run is not the one
// running: the caller then starts cfg.SelfUpdate.Binary again. While a new
// binary is on probation, Boot arms a watchdog that ends the process if it
// has not confirmed itself by its deadline plus SelfUpdate.WatchdogGrace.
func Boot(cfg Config) error {
	cfg.setDefaults()
	if cfg.SelfUpdate.Binary == "" {
		return nil
	}
	l := layout{cfg.Dir}
	j, err := loadJournal(l.journal())
	if err != nil {
		return err
	}
	u := &selfUpdater{files: l, cfg: cfg.SelfUpdate, log: cfg.Logger.With("component", "self-update"),
		now: cfg.Clock.Now, j: j, self: runningDigest, exit: os.Exit}
	if err := u.boot(); err != nil {
		return err
	}
	if buildFault != "" && faultIn(cfg.Dir) == faultCrashAtStart {
		panic("drover-agent test build: crashing at start, as it was built to")
	}
	return nil
}

// AbortSwap is for a process that swapped in a new binary and then could
// not start it (exec failed): it restores the previous binary — the one
// running — and records the update reverted. The caller then runs the
// agent again.
func AbortSwap(cfg Config, cause error) error {
	cfg.setDefaults()
	l := layout{cfg.Dir}
	j, err := loadJournal(l.journal())
	if err != nil {
		return err
	}
	u := &selfUpdater{files: l, cfg: cfg.SelfUpdate, log: cfg.Logger.With("component", "self-update"),
		now: cfg.Clock.Now, j: j, self: runningDigest, exit: os.Exit}
	return u.abort(cause)
}

// abort restores the previous binary after the new one could not be
// started, if the previous one is the one running; otherwise it returns
// the cause.
func (u *selfUpdater) abort(cause error) error {
	s := u.j.SelfUpdate
	self, err := u.self()
	if err != nil || s == nil || s.Step != selfSwapped || self != s.OldSHA256 {
		return fmt.Errorf("cannot start %s: %w", u.cfg.Binary, cause)
	}
	return u.restore(self, fmt.Sprintf("cannot start the new agent binary: %v", cause))
}

// selfUpdater settles, confirms or undoes the self-update recorded in a
// journal. Boot uses it before the agent exists; the agent on its own
// journal. It is used by one goroutine at a time.
type selfUpdater struct {
	files layout
	cfg   SelfUpdate
	log   *slog.Logger
	now   func() time.Time
	j     *journal
	// self returns the SHA-256 of the running binary.
	self func() (string, error)
	// exit ends the process (the watchdog's last resort).
	exit func(code int)
}

func (a *Agent) updater() *selfUpdater {
	return &selfUpdater{files: a.files, cfg: a.cfg.SelfUpdate, log: a.log.With("component", "self-update"),
		now: a.cfg.Clock.Now, j: a.journal, self: runningDigest, exit: os.Exit}
}

func (u *selfUpdater) save() error { return u.j.save(u.files.journal()) }

func (u *selfUpdater) boot() error {
	s := u.j.SelfUpdate
	if s == nil {
		u.removeLeftovers()
		return nil
	}
	self, err := u.self()
	if err != nil {
		return fmt.Errorf("cannot read the running agent binary: %w", err)
	}
	u.log.Info("self-update in progress", "step", s.Step, "rollout", s.Rollout, "boots", s.Boots)
	switch s.Step {
	case selfSwapping:
		return u.settle(self)
	case selfSwapped:
		return u.bootNew(self)
	case selfRestoring:
		return u.restore(self, s.Reason)
	default:
		return u.restore(self, fmt.Sprintf("the journal holds an unknown self-update step %q", s.Step))
	}
}

// settle finishes a swap a crash interrupted, by the binary in place.
func (u *selfUpdater) settle(self string) error {
	s := u.j.SelfUpdate
	// A .new is never trusted after a crash: whatever happened, the
	// binary in place decides.
	_ = os.Remove(newPath(s.Binary))
	have, _, _ := artifacts.DigestFile(s.Binary)
	switch have {
	case s.NewSHA256:
		u.log.Info("the interrupted swap had put the new binary in place; it goes on probation")
		if rec := u.active(); rec != nil {
			if err := u.files.switchCurrent(SelfApp, rec.Version); err != nil {
				u.log.Warn("cannot switch the current link", "err", err)
			}
			rec.Step = stepProbation
		}
		s.swapped(u.now())
		if err := u.save(); err != nil {
			return err
		}
		return u.bootNew(self)
	case s.OldSHA256:
		reason := "the agent stopped during the swap, before the new binary was in place; the previous binary runs"
		if v := s.OldVersion; v != "" {
			reason += " (" + v + ")"
		}
		u.log.Warn("self-update interrupted before the swap", "rollout", s.Rollout)
		oldSHA := s.OldSHA256
		u.end(deploy.Reverted, reason, u.previous())
		if err := u.save(); err != nil {
			return err
		}
		if self != oldSHA {
			return ErrRestart
		}
		return nil
	default:
		return u.restore(self, fmt.Sprintf("the agent stopped during the swap and %s is neither the previous nor the new binary", s.Binary))
	}
}

// bootNew counts a start during probation and restores the previous
// binary after too many, or after the deadline.
func (u *selfUpdater) bootNew(self string) error {
	s := u.j.SelfUpdate
	if self != s.NewSHA256 {
		return u.restore(self, "the previous binary was started instead of the new one, which therefore could not start")
	}
	s.Boots++
	now := u.now()
	switch {
	case s.Boots > u.cfg.MaxBoots:
		return u.restore(self, fmt.Sprintf("the new agent binary died %d time(s) before confirming itself (crash loop); gave up after %d starts",
			s.Boots-1, u.cfg.MaxBoots))
	case !s.Reached && now.After(s.ReachBy):
		return u.restore(self, fmt.Sprintf("the new agent binary did not reach a server within %v of the swap", s.ReachBy.Sub(s.SwappedAt)))
	case now.After(s.HealthyBy):
		return u.restore(self, fmt.Sprintf("the new agent binary was not healthy within %v of the swap", s.HealthyBy.Sub(s.SwappedAt)))
	}
	if err := u.save(); err != nil {
		return err
	}
	u.log.Info("new agent binary on probation", "start", s.Boots, "max_starts", u.cfg.MaxBoots, "reach_server_by", s.ReachBy, "healthy_by", s.HealthyBy)
	u.armWatchdog()
	return nil
}

// armWatchdog ends the process if the new binary has neither confirmed
// itself nor given up by its last deadline plus the grace: it hangs. The
// service manager starts it again, and that start, past the deadline,
// restores the previous binary. It reads the journal from disk, so it
// shares no memory with the agent.
func (u *selfUpdater) armWatchdog() *time.Timer {
	s := u.j.SelfUpdate
	at := s.HealthyBy
	if s.ReachBy.After(at) {
		at = s.ReachBy
	}
	newSHA := s.NewSHA256
	return time.AfterFunc(at.Add(u.cfg.WatchdogGrace).Sub(u.now()), func() { u.watchdog(newSHA) })
}

// watchdog exits if the journal on disk still has the new binary newSHA
// unconfirmed.
func (u *selfUpdater) watchdog(newSHA string) {
	j, err := loadJournal(u.files.journal())
	if err != nil || j.SelfUpdate == nil || j.SelfUpdate.Step != selfSwapped || j.SelfUpdate.NewSHA256 != newSHA {
		return
	}
	u.log.Error("the new agent binary has not confirmed itself past its deadline and seems to hang; exiting so that it is restarted and the previous binary restored")
	u.exit(1)
}

// restore puts the previous binary back, switches the current link back,
// and records the update reverted with the reason (reported by whichever
// agent next reaches a server). It returns ErrRestart unless the previous
// binary is the one running. If the previous binary cannot be restored,
// the agent halts and reports failed.
func (u *selfUpdater) restore(self, reason string) error {
	s := u.j.SelfUpdate
	if s.Step != selfRestoring {
		s.Step, s.Reason = selfRestoring, reason
		if rec := u.active(); rec != nil {
			rec.Step, rec.Reason = stepReverting, reason
		}
		if err := u.save(); err != nil {
			return err
		}
	}
	u.log.Warn("restoring the previous agent binary", "binary", s.Binary, "from", s.Old, "reason", reason)
	killAt(u.log, "self-restoring")
	if err := restoreBinary(s); err != nil {
		msg := fmt.Sprintf("%s; and the previous binary cannot be restored: %v", reason, err)
		u.log.Error("HOST NEEDS AN OPERATOR: the previous agent binary cannot be restored; the agent will not touch the host until drover-agent clear-halt", "err", err)
		u.j.Halted = msg
		current, _ := u.files.Current(SelfApp)
		u.end(deploy.Failed, msg, current)
		return u.save()
	}
	previous := u.previous()
	if rec := u.active(); rec != nil {
		if err := u.files.switchCurrent(SelfApp, previous); err != nil {
			u.log.Warn("cannot switch the current link back", "err", err)
		}
	}
	oldSHA := s.OldSHA256
	u.end(deploy.Reverted, reason, previous)
	if err := u.save(); err != nil {
		return err
	}
	if self != oldSHA {
		return ErrRestart
	}
	return nil
}

// active is the apply record of the self-update, if the journal has it.
func (u *selfUpdater) active() *applyRecord {
	rec, s := u.j.Active, u.j.SelfUpdate
	if rec == nil || s == nil || rec.App != SelfApp || rec.Rollout != s.Rollout {
		return nil
	}
	return rec
}

// previous is the SelfApp release the host ran before the update.
func (u *selfUpdater) previous() string {
	if rec := u.active(); rec != nil {
		return rec.Previous
	}
	current, _ := u.files.Current(SelfApp)
	return current
}

// end closes the self-update and its rollout with a report in the outbox;
// the caller saves the journal.
func (u *selfUpdater) end(state deploy.HostState, reason, current string) {
	rollout := u.j.SelfUpdate.Rollout
	u.j.SelfUpdate = nil
	u.j.finish(rollout, string(state))
	u.j.Outbox = append(u.j.Outbox, api.Report{Rollout: rollout, State: state, Reason: reason, Current: current})
}

// restoreBinary puts the previous binary (kept at s.Old) back at s.Binary
// through a rename, which is atomic, unless it is there already.
func restoreBinary(s *selfUpdateState) error {
	if have, _, err := artifacts.DigestFile(s.Binary); err == nil && have == s.OldSHA256 {
		return nil
	}
	if have, _, err := artifacts.DigestFile(s.Old); err != nil || have != s.OldSHA256 {
		return fmt.Errorf("the previous binary kept at %s is missing or altered (%v)", s.Old, err)
	}
	tmp := sidePath(s.Binary, "restore")
	_ = os.Remove(tmp)
	if err := os.Link(s.Old, tmp); err != nil {
		if err := copyFile(s.Old, tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, s.Binary); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return artifacts.SyncDir(filepath.Dir(s.Binary))
}

// removeLeftovers deletes what an interrupted update or permission check
// left beside the binary. The previous binary (.NAME.old) stays: it is
// kept on purpose.
func (u *selfUpdater) removeLeftovers() {
	for _, what := range []string{"new", "restore", "check-perm"} {
		p := sidePath(u.cfg.Binary, what)
		if err := os.Remove(p); err == nil {
			u.log.Info("removed the leftover of an interrupted self-update", "file", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			u.log.Warn("cannot remove the leftover of an interrupted self-update", "file", p, "err", err)
		}
	}
}

// runningDigest is the SHA-256 of the binary this process runs — the file
// it was started from, even if another has since been renamed over it.
func runningDigest() (string, error) {
	if d, _, err := artifacts.DigestFile("/proc/self/exe"); err == nil {
		return d, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	d, _, err := artifacts.DigestFile(exe)
	return d, err
}

// killAt is the failpoint of code that runs without an Agent: it kills
// the process, as a power cut would, when DROVER_FAILPOINT names it.
func killAt(log *slog.Logger, name string) {
	if os.Getenv("DROVER_FAILPOINT") == name {
		log.Warn("failpoint reached: killing the agent", "failpoint", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
