package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/deploy"
)

// Unit tests of the self-update's pieces on files: payload layout,
// signature and checksum, the swap, the preflight, and what Boot makes of
// every state a crash can leave. test/selfupdate_test.go runs the whole
// thing with real agent binaries and a real cluster.

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeFile(t *testing.T, path string, body []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, mode); err != nil {
		t.Fatal(err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestSelfBinaryLayout(t *testing.T) {
	platform := runtime.GOOS + "-" + runtime.GOARCH
	tests := []struct {
		name  string
		files []string
		want  string // relative to the release; "" = error
	}{
		{"binary at the root", []string{"drover-agent"}, "drover-agent"},
		{"binary per platform", []string{platform + "/drover-agent", "other-arch/drover-agent"}, platform + "/drover-agent"},
		{"platform wins over the root", []string{"drover-agent", platform + "/drover-agent"}, platform + "/drover-agent"},
		{"another platform only", []string{"plan9-mips/drover-agent"}, ""},
		{"no binary", []string{"README"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := layout{t.TempDir()}
			for _, f := range tt.files {
				writeFile(t, filepath.Join(l.release(SelfApp, "2.0.0"), f), []byte("x"), 0o755)
			}
			bin, sig, err := l.selfBinary("2.0.0")
			if tt.want == "" {
				if err == nil {
					t.Fatalf("found %s; want an error", bin)
				}
				return
			}
			want := filepath.Join(l.release(SelfApp, "2.0.0"), tt.want)
			if err != nil || bin != want || sig != want+".minisig" {
				t.Errorf("got %q, %q, %v; want %q and its .minisig", bin, sig, err, want)
			}
		})
	}
}

// selfAgent is an agent whose SelfApp policy trusts key, with its binary
// (content old) in a directory of its own.
func selfAgent(t *testing.T, key signer, old []byte) *Agent {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "bin", "drover-agent")
	writeFile(t, bin, old, 0o755)
	return &Agent{
		cfg: Config{Dir: dir, Version: "1.0.0", Clock: fixedClock{testNow}, Logger: slog.New(slog.DiscardHandler),
			SelfUpdate: SelfUpdate{Binary: bin, PreflightTimeout: 5 * time.Second, MaxBoots: 3}},
		log:     slog.New(slog.DiscardHandler),
		files:   layout{dir},
		journal: &journal{},
		trust:   []artifacts.SignedPolicy{{Policy: artifacts.Policy{App: SelfApp, Keys: []string{key.pub}, Threshold: 1}, Serial: 1}},
	}
}

// stageSelf puts a SelfApp release's binary and its signature by key
// (over signed, the binary itself when nil) into the agent's releases.
func stageSelf(t *testing.T, a *Agent, version string, bin []byte, key signer, signed []byte) *applyRecord {
	t.Helper()
	if signed == nil {
		signed = bin
	}
	dir := a.files.release(SelfApp, version)
	writeFile(t, filepath.Join(dir, "drover-agent"), bin, 0o755)
	writeFile(t, filepath.Join(dir, "drover-agent.minisig"), artifacts.Sign(key.key, signed, "test"), 0o644)
	rec := &applyRecord{Rollout: "r1", App: SelfApp, Version: version}
	if err := a.checkSelfPayload(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestBinarySignatureAndChecksum(t *testing.T) {
	trusted, stranger := newSigner(t), newSigner(t)
	newBin := []byte("#!/bin/sh\necho new agent\n")
	tests := []struct {
		name    string
		key     signer
		signed  []byte
		tamper  bool // the staged binary changes after staging
		wantErr string
	}{
		{"signed by the policy's key", trusted, nil, false, ""},
		{"signed by a key the policy does not list", stranger, nil, false, "does not list"},
		{"signature of other bytes", trusted, []byte("another binary"), false, "signature does not verify"},
		{"binary changed after staging", trusted, nil, true, "the verified payload held"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := selfAgent(t, trusted, []byte("old"))
			rec := stageSelf(t, a, "2.0.0", newBin, tt.key, tt.signed)
			bin, sig, err := a.files.selfBinary("2.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper {
				writeFile(t, bin, []byte("#!/bin/sh\necho evil\n"), 0o755)
			}
			opts, err := a.updateOptions(rec, sig)
			if err == nil {
				err = checkBinary(bin, opts)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrUntrusted) {
				t.Fatalf("err = %v; want ErrUntrusted containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSwapKeepsThePreviousBinary(t *testing.T) {
	key := newSigner(t)
	a := selfAgent(t, key, []byte("old binary"))
	newBin := []byte("new binary")
	rec := stageSelf(t, a, "2.0.0", newBin, key, nil)
	bin, sig, _ := a.files.selfBinary("2.0.0")
	opts, err := a.updateOptions(rec, sig)
	if err != nil {
		t.Fatal(err)
	}
	var passed []string
	swapped, err := swapBinary(opts, bin, func(fp string) { passed = append(passed, fp) })
	if !swapped || err != nil {
		t.Fatalf("swap: %v, %v", swapped, err)
	}
	target := a.cfg.SelfUpdate.Binary
	if got := readString(t, target); got != "new binary" {
		t.Errorf("binary holds %q; want the new one", got)
	}
	if got := readString(t, oldPath(target)); got != "old binary" {
		t.Errorf("OldSavePath holds %q; want the previous binary", got)
	}
	if exists(newPath(target)) {
		t.Error(".new left behind")
	}
	if want := "self-new-written,self-old-saved,self-renamed"; strings.Join(passed, ",") != want {
		t.Errorf("failpoints passed %v; want %s", passed, want)
	}
	// A signature that does not verify stops selfupdate before any file changes.
	opts.Checksum = make([]byte, 32)
	if swapped, err := swapBinary(opts, bin, func(string) {}); swapped || err == nil {
		t.Fatalf("swap with a wrong checksum: %v, %v", swapped, err)
	}
	if got := readString(t, target); got != "new binary" || exists(newPath(target)) {
		t.Errorf("a refused swap changed files: binary %q, .new exists %v", got, exists(newPath(target)))
	}
}

func TestPreflight(t *testing.T) {
	key := newSigner(t)
	tests := []struct {
		name, script, wantErr string
	}{
		{"prints its version", "echo 'drover-agent 2.0.0'", ""},
		{"another version", "echo 'drover-agent 1.9.0'", `want "drover-agent 2.0.0"`},
		{"fails", "echo 'cannot open journal' >&2; exit 1", "exit status 1"},
		{"hangs", "sleep 30", "did not finish within"},
		{"not the selftest it expects", `[ "$1" = selftest ] && [ "$2" = --dir ] && [ -d "$3" ] && echo 'drover-agent 2.0.0' || exit 7`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := selfAgent(t, key, []byte("old"))
			a.cfg.SelfUpdate.PreflightTimeout = 300 * time.Millisecond
			if tt.wantErr == "" {
				a.cfg.SelfUpdate.PreflightTimeout = 10 * time.Second
			}
			stageSelf(t, a, "2.0.0", []byte("#!/bin/sh\n"+tt.script+"\n"), key, nil)
			bin, _, _ := a.files.selfBinary("2.0.0")
			out, err := a.preflight(context.Background(), bin, "2.0.0+amd64")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("preflight failed: %v (%s)", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifySelfRelease(t *testing.T) {
	key := newSigner(t)
	arch := &artifacts.Targets{Architectures: []string{runtime.GOARCH}}
	tests := []struct {
		name    string
		binary  bool
		running string
		m       artifacts.Manifest
		wantErr string
	}{
		{"upgrade", true, "1.0.0", artifacts.Manifest{Version: "2.0.0", Targets: arch}, ""},
		{"agent without its binary's path", false, "1.0.0", artifacts.Manifest{Version: "2.0.0", Targets: arch}, "does not update itself"},
		{"no architectures", true, "1.0.0", artifacts.Manifest{Version: "2.0.0"}, "must name the architectures"},
		{"older than the running binary", true, "3.0.0", artifacts.Manifest{Version: "2.0.0+amd64", Targets: arch}, "older than the running agent"},
		{"development build", true, "dev", artifacts.Manifest{Version: "2.0.0", Targets: arch}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := selfAgent(t, key, []byte("old"))
			a.cfg.Version = tt.running
			if !tt.binary {
				a.cfg.SelfUpdate.Binary = ""
			}
			tt.m.Name = SelfApp
			err := a.verifySelfRelease(&tt.m)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

// host is an agent directory and binary in the middle of a self-update
// from release 1.0.0 (binary "old") to 2.0.0 (binary "new").
type host struct {
	u         *selfUpdater
	bin       string
	oldSHA    string
	newSHA    string
	restarted error
}

func newHost(t *testing.T, step string, onDisk string) *host {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "drover-agent")
	l := layout{dir}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if err := os.MkdirAll(l.release(SelfApp, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.switchCurrent(SelfApp, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, oldPath(bin), []byte("old"), 0o755)
	if onDisk != "" {
		writeFile(t, bin, []byte(onDisk), 0o755)
	}
	h := &host{bin: bin, oldSHA: sha([]byte("old")), newSHA: sha([]byte("new"))}
	j := &journal{
		Active: &applyRecord{Rollout: "r1", App: SelfApp, Version: "2.0.0", Previous: "1.0.0", Step: stepActivating},
		SelfUpdate: &selfUpdateState{Rollout: "r1", Step: step, Binary: bin, Old: oldPath(bin), OldSHA256: h.oldSHA, NewSHA256: h.newSHA,
			OldVersion: "1.0.0", ReachWithin: artifacts.Duration(time.Minute), HealthyWithin: artifacts.Duration(5 * time.Minute)},
	}
	if step != selfSwapping {
		j.SelfUpdate.swapped(testNow)
		j.SelfUpdate.Step = step
	}
	h.u = &selfUpdater{files: l, cfg: SelfUpdate{Binary: bin, MaxBoots: 3, WatchdogGrace: time.Hour}, log: slog.New(slog.DiscardHandler),
		now: func() time.Time { return testNow }, j: j, exit: func(int) { t.Error("the watchdog fired") }}
	return h
}

// running makes the host's process run the binary with this content.
func (h *host) running(content string) *host {
	h.u.self = func() (string, error) { return sha([]byte(content)), nil }
	return h
}

func TestBootSettlesEveryState(t *testing.T) {
	tests := []struct {
		name    string
		step    string
		onDisk  string // the binary at its path when the process starts
		running string // the binary the process runs
		edit    func(*selfUpdateState)
		// want
		restart bool
		binary  string // content at the binary's path afterwards
		state   deploy.HostState
		reason  string
		current string
		boots   int // when the update goes on
	}{
		{name: "killed before the rename", step: selfSwapping, onDisk: "old", running: "old",
			binary: "old", state: deploy.Reverted, reason: "before the new binary was in place", current: "1.0.0"},
		{name: "killed after the rename", step: selfSwapping, onDisk: "new", running: "new",
			binary: "new", boots: 1, current: "2.0.0"},
		{name: "killed after the rename, started by an old copy", step: selfSwapping, onDisk: "new", running: "old",
			binary: "old", state: deploy.Reverted, reason: "could not start", current: "1.0.0"},
		{name: "binary missing", step: selfSwapping, onDisk: "", running: "new",
			restart: true, binary: "old", state: deploy.Reverted, reason: "neither the previous nor the new", current: "1.0.0"},
		{name: "new binary, second start", step: selfSwapped, onDisk: "new", running: "new", edit: func(s *selfUpdateState) { s.Boots = 1 },
			binary: "new", boots: 2, current: "1.0.0"},
		{name: "crash loop", step: selfSwapped, onDisk: "new", running: "new", edit: func(s *selfUpdateState) { s.Boots = 3 },
			restart: true, binary: "old", state: deploy.Reverted, reason: "died 3 time(s)", current: "1.0.0"},
		{name: "started after the deadline to reach a server", step: selfSwapped, onDisk: "new", running: "new",
			edit:    func(s *selfUpdateState) { s.ReachBy = testNow.Add(-time.Second) },
			restart: true, binary: "old", state: deploy.Reverted, reason: "did not reach a server", current: "1.0.0"},
		{name: "reached a server; restarted before the healthy deadline", step: selfSwapped, onDisk: "new", running: "new",
			edit:   func(s *selfUpdateState) { s.ReachBy, s.Reached = testNow.Add(-time.Second), true },
			binary: "new", boots: 1, current: "1.0.0"},
		{name: "started after the healthy deadline", step: selfSwapped, onDisk: "new", running: "new",
			edit:    func(s *selfUpdateState) { s.Reached, s.HealthyBy = true, testNow.Add(-time.Second) },
			restart: true, binary: "old", state: deploy.Reverted, reason: "not healthy within", current: "1.0.0"},
		{name: "killed while restoring", step: selfRestoring, onDisk: "new", running: "new", edit: func(s *selfUpdateState) { s.Reason = "it hung" },
			restart: true, binary: "old", state: deploy.Reverted, reason: "it hung", current: "1.0.0"},
		{name: "killed after restoring", step: selfRestoring, onDisk: "old", running: "old", edit: func(s *selfUpdateState) { s.Reason = "it hung" },
			binary: "old", state: deploy.Reverted, reason: "it hung", current: "1.0.0"},
		{name: "unknown step", step: "teleporting", onDisk: "new", running: "new",
			restart: true, binary: "old", state: deploy.Reverted, reason: "unknown self-update step", current: "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.step, tt.onDisk).running(tt.running)
			if tt.step == selfSwapping {
				writeFile(t, newPath(h.bin), []byte("partial"), 0o755)
			}
			if tt.edit != nil {
				tt.edit(h.u.j.SelfUpdate)
			}
			err := h.u.boot()
			if tt.restart != errors.Is(err, ErrRestart) || (err != nil && !errors.Is(err, ErrRestart)) {
				t.Fatalf("boot = %v; want a restart: %v", err, tt.restart)
			}
			if got := readString(t, h.bin); got != tt.binary {
				t.Errorf("binary holds %q; want %q", got, tt.binary)
			}
			if exists(newPath(h.bin)) {
				t.Error(".new left behind")
			}
			if cur, _ := h.u.files.Current(SelfApp); cur != tt.current {
				t.Errorf("current -> %q; want %q", cur, tt.current)
			}
			// The journal on disk says the same.
			j, err := loadJournal(h.u.files.journal())
			if err != nil {
				t.Fatal(err)
			}
			if tt.state == "" {
				if j.SelfUpdate == nil || j.SelfUpdate.Step != selfSwapped || j.SelfUpdate.Boots != tt.boots {
					t.Fatalf("self-update %+v; want swapped, start %d", j.SelfUpdate, tt.boots)
				}
				return
			}
			if j.SelfUpdate != nil || j.Active != nil {
				t.Errorf("journal still holds the update: %+v %+v", j.SelfUpdate, j.Active)
			}
			if state, _ := j.done("r1"); state != string(tt.state) {
				t.Errorf("rollout r1 ended %q; want %s", state, tt.state)
			}
			if n := len(j.Outbox); n != 1 || j.Outbox[0].State != tt.state || !strings.Contains(j.Outbox[0].Reason, tt.reason) || j.Outbox[0].Current != tt.current {
				t.Errorf("outbox %+v; want one %s report with %q, current %q", j.Outbox, tt.state, tt.reason, tt.current)
			}
			if got := readString(t, oldPath(h.bin)); got != "old" {
				t.Errorf("the previous binary was not kept: %q", got)
			}
		})
	}
}

// TestExecFailureRestores: the old process swapped the binary in and
// could not execute it; the previous binary, the one running, goes back.
func TestExecFailureRestores(t *testing.T) {
	cause := errors.New("exec format error")
	h := newHost(t, selfSwapped, "new").running("old")
	if err := h.u.abort(cause); err != nil {
		t.Fatalf("abort: %v", err)
	}
	j, _ := loadJournal(h.u.files.journal())
	if got := readString(t, h.bin); got != "old" || j.SelfUpdate != nil || len(j.Outbox) != 1 ||
		j.Outbox[0].State != deploy.Reverted || !strings.Contains(j.Outbox[0].Reason, "cannot start the new agent binary: exec format error") {
		t.Errorf("binary %q, journal %+v %+v; want the old binary back and a reverted report", got, j.SelfUpdate, j.Outbox)
	}
	// Nothing to undo: the cause is the error.
	if err := h.u.abort(cause); !errors.Is(err, cause) {
		t.Errorf("abort without an update = %v; want the cause", err)
	}
}

// TestBootWithoutThePreviousBinary: a crash loop whose previous binary was
// deleted cannot be undone; the agent halts and says so.
func TestBootWithoutThePreviousBinary(t *testing.T) {
	h := newHost(t, selfSwapped, "new").running("new")
	h.u.j.SelfUpdate.Boots = 3
	if err := os.Remove(oldPath(h.bin)); err != nil {
		t.Fatal(err)
	}
	if err := h.u.boot(); err != nil {
		t.Fatal(err)
	}
	j, _ := loadJournal(h.u.files.journal())
	if !strings.Contains(j.Halted, "cannot be restored") || len(j.Outbox) != 1 || j.Outbox[0].State != deploy.Failed {
		t.Errorf("halted %q, outbox %+v; want halted and a failed report", j.Halted, j.Outbox)
	}
}

func TestBootRemovesLeftovers(t *testing.T) {
	h := newHost(t, selfSwapped, "new").running("new")
	h.u.j.SelfUpdate = nil
	for _, what := range []string{"new", "restore", "check-perm"} {
		writeFile(t, sidePath(h.bin, what), []byte("x"), 0o755)
	}
	if err := h.u.boot(); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"new", "restore", "check-perm"} {
		if exists(sidePath(h.bin, what)) {
			t.Errorf(".%s left behind", what)
		}
	}
	if got := readString(t, oldPath(h.bin)); got != "old" {
		t.Errorf("the previous binary was removed: %q", got)
	}
}

func TestWatchdog(t *testing.T) {
	h := newHost(t, selfSwapped, "new").running("new")
	fired := make(chan int, 1)
	h.u.exit = func(code int) { fired <- code }
	if err := h.u.save(); err != nil {
		t.Fatal(err)
	}
	// Still unconfirmed when it is due: exit, with a failure.
	h.u.cfg.WatchdogGrace = 0
	s := h.u.j.SelfUpdate
	s.ReachBy, s.HealthyBy = testNow, testNow
	h.u.armWatchdog()
	select {
	case code := <-fired:
		if code == 0 {
			t.Error("the watchdog exited with 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not fire for a hung new binary")
	}
	// Confirmed, or another update since: nothing happens.
	for _, j := range []*journal{{}, {SelfUpdate: &selfUpdateState{Step: selfSwapped, NewSHA256: "other"}}} {
		h.u.j = j
		if err := h.u.save(); err != nil {
			t.Fatal(err)
		}
		h.u.watchdog(h.newSHA)
		select {
		case <-fired:
			t.Errorf("the watchdog fired with %+v on disk", j.SelfUpdate)
		default:
		}
	}
}

// TestSignatureFormats: the binary may be signed by the stock minisign
// tool in either of its forms (legacy Ed25519 or prehashed).
func TestSignatureFormats(t *testing.T) {
	key := newSigner(t)
	bin := []byte("binary")
	a := selfAgent(t, key, []byte("old"))
	for _, sig := range [][]byte{minisign.Sign(key.key, bin), artifacts.Sign(key.key, bin, "prehashed")} {
		dir := a.files.release(SelfApp, "2.0.0")
		writeFile(t, filepath.Join(dir, "drover-agent"), bin, 0o755)
		writeFile(t, filepath.Join(dir, "drover-agent.minisig"), sig, 0o644)
		rec := &applyRecord{Rollout: "r1", App: SelfApp, Version: "2.0.0"}
		if err := a.checkSelfPayload(rec); err != nil {
			t.Fatal(err)
		}
		p, s, _ := a.files.selfBinary("2.0.0")
		opts, err := a.updateOptions(rec, s)
		if err == nil {
			err = checkBinary(p, opts)
		}
		if err != nil {
			t.Errorf("signature refused: %v", err)
		}
	}
}
