package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

// t0 is the time stamped into the first command of every test. The store
// reads no clock: like the leader, tests stamp each command with a time.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

// entry builds a Raft log entry the way the leader does: NewCommand, set
// the time, Encode.
func entry(tb testing.TB, typ CmdType, key string, at time.Time, body any) []byte {
	tb.Helper()
	return entryBy(tb, "tester", typ, key, at, body)
}

// entryBy is entry with the command's actor.
func entryBy(tb testing.TB, actor string, typ CmdType, key string, at time.Time, body any) []byte {
	tb.Helper()
	cmd, err := NewCommand(typ, actor, key, body)
	if err != nil {
		tb.Fatalf("NewCommand(%s): %v", typ, err)
	}
	cmd.Time = at
	data, err := cmd.Encode()
	if err != nil {
		tb.Fatalf("Encode(%s): %v", typ, err)
	}
	return data
}

// harness applies commands to one store at increasing Raft indexes.
type harness struct {
	tb     testing.TB
	store  *Store
	index  uint64    // of the last entry applied
	now    time.Time // time of the last entry applied
	signer *signer   // made by the first addRelease
	actor  string    // of the commands applied; "" means "tester"
}

func newHarness(tb testing.TB) *harness {
	return &harness{tb: tb, store: NewStore(), now: t0}
}

// apply applies a command without idempotency key at the next index, one
// second after the previous command.
func (h *harness) apply(typ CmdType, body any) Result {
	h.tb.Helper()
	return h.applyAt(h.now.Add(time.Second), typ, "", body)
}

// applyKey is apply with an idempotency key.
func (h *harness) applyKey(typ CmdType, key string, body any) Result {
	h.tb.Helper()
	return h.applyAt(h.now.Add(time.Second), typ, key, body)
}

// applyAt applies a command stamped with time at, at the next index.
func (h *harness) applyAt(at time.Time, typ CmdType, key string, body any) Result {
	h.tb.Helper()
	res := h.retryAt(at, typ, key, body)
	if res.Index != h.index {
		h.tb.Fatalf("%s at index %d: result index %d; want %d", typ, h.index, res.Index, h.index)
	}
	return res
}

// retry applies a keyed command at the next index, one second after the
// previous command. Unlike apply, it accepts a result of an earlier index:
// that of the first command with the same key.
func (h *harness) retry(typ CmdType, key string, body any) Result {
	h.tb.Helper()
	return h.retryAt(h.now.Add(time.Second), typ, key, body)
}

func (h *harness) retryAt(at time.Time, typ CmdType, key string, body any) Result {
	h.tb.Helper()
	h.index++
	h.now = at
	actor := h.actor
	if actor == "" {
		actor = "tester"
	}
	return h.store.Apply(h.index, entryBy(h.tb, actor, typ, key, at, body))
}

// must applies a command that must succeed.
func (h *harness) must(typ CmdType, body any) Result {
	h.tb.Helper()
	res := h.apply(typ, body)
	if res.Err != nil {
		h.tb.Fatalf("%s at index %d: got error %v; want none", typ, h.index, res.Err)
	}
	return res
}

// noChange applies a command without key that must end with error code want
// ("" for success) and must leave the state byte for byte as it was: a
// refused command, or one that has nothing left to do.
func (h *harness) noChange(typ CmdType, body any, want api.Code) Result {
	h.tb.Helper()
	before := objects(h.tb, h.store)
	res := h.apply(typ, body)
	if got := codeOf(res); got != want {
		h.tb.Errorf("%s: got error code %q (%v); want %q", typ, got, res.Err, want)
	}
	if after := objects(h.tb, h.store); !bytes.Equal(before, after) {
		h.tb.Errorf("%s changed the state:\n%s", typ, diffLines(before, after))
	}
	return res
}

// diffLines lists the snapshot lines only in before (-) and only in after (+).
func diffLines(before, after []byte) string {
	in := func(lines [][]byte, l []byte) bool {
		return slices.ContainsFunc(lines, func(x []byte) bool { return bytes.Equal(x, l) })
	}
	a, b := bytes.Split(before, []byte("\n")), bytes.Split(after, []byte("\n"))
	var out strings.Builder
	for _, l := range a {
		if !in(b, l) {
			fmt.Fprintf(&out, "- %s\n", l)
		}
	}
	for _, l := range b {
		if !in(a, l) {
			fmt.Fprintf(&out, "+ %s\n", l)
		}
	}
	return out.String()
}

// codeOf is the error code of a result, "" when it succeeded.
func codeOf(r Result) api.Code {
	if r.Err == nil {
		return ""
	}
	return r.Err.Code
}

// persist writes a snapshot of s and returns its bytes.
func persist(tb testing.TB, s *Store) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		tb.Fatalf("Persist: %v", err)
	}
	return buf.Bytes()
}

// objects is persist without the snapshot's header, which carries the
// applied index: it moves with every entry, even one that changes nothing.
func objects(tb testing.TB, s *Store) []byte {
	_, objs, _ := bytes.Cut(persist(tb, s), []byte("\n"))
	return objs
}

// fires reports whether ws fires within wait.
func fires(ws memdb.WatchSet, wait time.Duration) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-ws.WatchCh(ctx):
		return err == nil
	case <-timer.C:
		return false
	}
}

// Waits for watch sets: a watch that must fire has normally fired already,
// so mustFire only bounds a failure; mustNotFire is the negative check.
const (
	mustFire    = 5 * time.Second
	mustNotFire = 50 * time.Millisecond
)

// --- tokens and hosts ---

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// secretHash is the secret hash of a test token.
func secretHash(tokenID string) string { return sha("secret of " + tokenID) }

// keyPin is the key pin of a test host's agent.
func keyPin(host string) string { return sha("key of " + host) }

func tokenBody(id string, uses int, labels map[string]string, expires time.Time) TokenCreate {
	return TokenCreate{ID: id, SecretHash: secretHash(id), Labels: labels, ExpiresAt: expires, Uses: uses}
}

func enrollBody(token, host string) Enroll {
	return Enroll{TokenID: token, SecretHash: secretHash(token), Host: host, KeyPin: keyPin(host),
		Cert: api.IssuedCert{Serial: "serial-" + host, NotAfter: t0.Add(7 * 24 * time.Hour)}}
}

// addHosts enrolls hosts, in the order given, through a new token carrying
// labels.
func (h *harness) addHosts(labels map[string]string, ids ...string) {
	h.tb.Helper()
	tok := fmt.Sprintf("tok-%d", h.index+1)
	h.must(CmdTokenCreate, tokenBody(tok, len(ids), labels, h.now.Add(24*time.Hour)))
	for _, id := range ids {
		h.must(CmdEnroll, enrollBody(tok, id))
	}
}

func (h *harness) host(id string) *api.Host {
	h.tb.Helper()
	host, ok := h.store.Host(nil, id)
	if !ok {
		h.tb.Fatalf("host %s does not exist", id)
	}
	return host
}

func (h *harness) token(id string) *api.Token {
	h.tb.Helper()
	tok, ok := h.store.Token(id)
	if !ok {
		h.tb.Fatalf("token %s does not exist", id)
	}
	return tok
}

// --- keys, trust and releases ---

// signer is a real minisign key pair.
type signer struct {
	pub  string // base64 line of the public key, as trust policies hold it
	sign func(message []byte) []byte
}

func newSigner(tb testing.TB) signer {
	tb.Helper()
	pubFile, secretFile, err := artifacts.GenerateKey("")
	if err != nil {
		tb.Fatalf("GenerateKey: %v", err)
	}
	path := filepath.Join(tb.TempDir(), "release.key")
	if err := os.WriteFile(path, secretFile, 0o600); err != nil {
		tb.Fatal(err)
	}
	key, err := artifacts.LoadSecretKey(path, "")
	if err != nil {
		tb.Fatalf("LoadSecretKey: %v", err)
	}
	pub, err := artifacts.ParsePublicKey(pubFile)
	if err != nil {
		tb.Fatalf("ParsePublicKey: %v", err)
	}
	return signer{pub: pub.String(), sign: func(m []byte) []byte { return artifacts.Sign(key, m, "test release") }}
}

// policyBody is the first version (serial 1) of app's trust policy: at
// least threshold signatures by signers.
func policyBody(app string, threshold int, signers ...signer) TrustSet {
	return TrustSet{Policy: signedPolicy(app, 1, threshold, signers...)}
}

// signedPolicy is version serial of app's policy, not signed yet.
func signedPolicy(app string, serial uint64, threshold int, signers ...signer) artifacts.SignedPolicy {
	p := artifacts.SignedPolicy{Policy: artifacts.Policy{App: app, Threshold: threshold}, Serial: serial}
	for _, s := range signers {
		p.Keys = append(p.Keys, s.pub)
	}
	return p
}

// rotationBody is version serial of app's policy, trusting keys with
// threshold, signed over its document by signedBy (the keys of the version
// it replaces, normally).
func rotationBody(app string, serial uint64, threshold int, keys []signer, signedBy ...signer) TrustSet {
	p := signedPolicy(app, serial, threshold, keys...)
	p.Signatures = sigs(p.Document(), signedBy...)
	return TrustSet{Policy: p}
}

// payloadDigest is the (made-up) payload digest of a test release.
func payloadDigest(app, version string) string { return sha("payload of " + app + "@" + version) }

// chunkList is a chunk list of made-up chunks of the given sizes, whose
// digests derive from seed: the same seed and sizes give the same list.
func chunkList(seed string, sizes ...int64) chunks.List {
	l := make(chunks.List, len(sizes))
	for i, n := range sizes {
		l[i] = chunks.Ref{SHA256: sha(fmt.Sprintf("chunk %d of %s", i, seed)), Size: n}
	}
	return l
}

// payloadList is the chunk list of the payload of app@version when it is
// size bytes: chunks of at most 600 bytes.
func payloadList(app, version string, size int64) chunks.List {
	var sizes []int64
	for left := size; left > 0; left -= 600 {
		sizes = append(sizes, min(left, 600))
	}
	return chunkList(app+"@"+version, sizes...)
}

// payloadBody registers the payload that manifest(app, version, size)
// names, held by holders.
func payloadBody(app, version string, size int64, holders ...string) PayloadRegister {
	return PayloadRegister{SHA256: payloadDigest(app, version), Size: size, Format: artifacts.FormatTar,
		List: payloadList(app, version, size).Encode(), Holders: holders}
}

// manifest returns the canonical manifest of app@version with a tar
// payload of size bytes, as payloadBody registers it.
func manifest(tb testing.TB, app, version string, size int64) []byte {
	tb.Helper()
	return manifestWith(tb, app, version, size, nil)
}

// manifestWith is manifest changed by edit (if not nil) before encoding.
func manifestWith(tb testing.TB, app, version string, size int64, edit func(m *artifacts.Manifest)) []byte {
	tb.Helper()
	m := &artifacts.Manifest{Schema: 1, Name: app, Version: version,
		Payload: artifacts.Payload{Format: artifacts.FormatTar, SHA256: payloadDigest(app, version), Size: size,
			Chunks: payloadList(app, version, size).Digest()},
		HealthChecks: []artifacts.HealthCheck{{Name: "up", Command: []string{"true"}}}}
	if edit != nil {
		edit(m)
	}
	b, err := m.Canonical()
	if err != nil {
		tb.Fatalf("Canonical: %v", err)
	}
	return b
}

func sigs(m []byte, signers ...signer) [][]byte {
	var out [][]byte
	for _, s := range signers {
		out = append(out, s.sign(m))
	}
	return out
}

// addRelease creates release app@version, signed by the harness's key,
// which the first call makes trusted for every application.
func (h *harness) addRelease(app, version string) string {
	h.tb.Helper()
	return h.addReleaseWith(app, version, nil)
}

// addReleaseWith is addRelease with the manifest changed by edit (if not
// nil); its payload is registered as manifest describes it.
func (h *harness) addReleaseWith(app, version string, edit func(m *artifacts.Manifest)) string {
	h.tb.Helper()
	if h.signer == nil {
		s := newSigner(h.tb)
		h.signer = &s
		h.must(CmdTrustSet, policyBody(artifacts.AnyApp, 1, s))
	}
	m := manifestWith(h.tb, app, version, 1000, edit)
	h.must(CmdPayloadRegister, payloadBody(app, version, 1000, "s1"))
	return h.must(CmdReleaseCreate, ReleaseCreate{Manifest: m, Signatures: sigs(m, *h.signer)}).ID
}

// --- rollouts ---

func plan(tb testing.TB, waves string, maxParallel int) deploy.Plan {
	tb.Helper()
	w, err := deploy.ParseWaves(waves)
	if err != nil {
		tb.Fatalf("ParseWaves(%q): %v", waves, err)
	}
	return deploy.Plan{Waves: w, MaxParallel: maxParallel}
}

// addRollout creates a rollout and starts it.
func (h *harness) addRollout(release string, selector map[string]string, waves string, maxParallel int) string {
	h.tb.Helper()
	return h.createAndStart(RolloutCreate{Release: release, Selector: selector, Plan: plan(h.tb, waves, maxParallel)})
}

// createAndStart creates a rollout and starts it; both must succeed.
func (h *harness) createAndStart(b RolloutCreate) string {
	h.tb.Helper()
	id := h.must(CmdRolloutCreate, b).ID
	h.must(CmdRolloutStart, RolloutStart{Rollout: id})
	return id
}

func (h *harness) rollout(id string) *api.Rollout {
	h.tb.Helper()
	r, ok := h.store.Rollout(nil, id)
	if !ok {
		h.tb.Fatalf("rollout %s does not exist", id)
	}
	return r
}

// deployment returns host's deployment in rollout.
func (h *harness) deployment(rollout, host string) *api.Deployment {
	h.tb.Helper()
	for _, d := range h.store.HostDeployments(nil, host) {
		if d.Rollout == rollout {
			return d
		}
	}
	h.tb.Fatalf("host %s has no deployment in rollout %s", host, rollout)
	return nil
}

// stepBody is an engine decision based on the rollout as committed now.
func (h *harness) stepBody(rollout string, wave int, outcome deploy.Outcome, start ...string) RolloutStep {
	h.tb.Helper()
	return RolloutStep{Rollout: rollout, ExpectIndex: h.rollout(rollout).ModifyIndex, Start: start, Wave: wave, Outcome: outcome}
}

// start applies a decision that starts hosts in wave and must succeed.
func (h *harness) start(rollout string, wave int, hosts ...string) {
	h.tb.Helper()
	h.must(CmdRolloutStep, h.stepBody(rollout, wave, deploy.Continue, hosts...))
}

func reportBody(host, rollout string, st deploy.HostState, current string) AgentReport {
	return AgentReport{Host: host, Rollout: rollout, State: st, Current: current}
}
