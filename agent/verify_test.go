package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/artifacts/chunks"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

// signer is a release signing key.
type signer struct {
	key minisign.PrivateKey
	pub string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return signer{priv, pub.String()}
}

type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time { return c.now }

var testNow = time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)

// testAgent is an agent with a 2-of-3 trust policy for "web", labels
// site=berlin, running web 2.0.0, and a directory of its own; it has no
// server (verify needs none).
func testAgent(t *testing.T, keys []signer) *Agent {
	t.Helper()
	dir := t.TempDir()
	var pubs []string
	for _, k := range keys {
		pubs = append(pubs, k.pub)
	}
	a := &Agent{
		cfg:    Config{Dir: dir, Clock: fixedClock{testNow}, Logger: slog.New(slog.DiscardHandler)},
		log:    slog.New(slog.DiscardHandler),
		files:  layout{dir},
		labels: map[string]string{"site": "berlin"},
		trust:  []artifacts.SignedPolicy{{Policy: artifacts.Policy{App: "web", Keys: pubs, Threshold: 2}, Serial: 1}},
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if err := os.MkdirAll(a.files.release("web", v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.files.switchCurrent("web", "2.0.0"); err != nil {
		t.Fatal(err)
	}
	return a
}

// instruction builds an instruction for web@version signed by signers,
// with a chunk list of one chunk; edit changes the manifest before signing.
func instruction(t *testing.T, version string, edit func(*artifacts.Manifest), signers ...signer) api.Instruction {
	t.Helper()
	list := chunks.List{{SHA256: strings.Repeat("a", 64), Size: 1000}}
	m := &artifacts.Manifest{Schema: 1, Name: "web", Version: version,
		Payload: artifacts.Payload{Format: "tar", SHA256: strings.Repeat("b", 64), Size: 1000, Chunks: list.Digest()}}
	if edit != nil {
		edit(m)
	}
	body, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	in := api.Instruction{Rollout: "r-1", App: "web", Version: version, Manifest: body, Chunks: list.Encode(),
		ExpiresAt: testNow.Add(time.Hour)}
	for _, s := range signers {
		in.Signatures = append(in.Signatures, artifacts.Sign(s.key, body, "test"))
	}
	return in
}

// TestAgentRefusesWhatItCannotVerify is TUF's attack list as the agent
// sees it: whatever a (compromised) control plane sends, the agent installs
// only releases its own trust policy accepts, for this host, no older than
// what runs unless still on disk, under an unexpired instruction.
func TestAgentRefusesWhatItCannotVerify(t *testing.T) {
	keys := []signer{newSigner(t), newSigner(t), newSigner(t)}
	stranger := newSigner(t)
	other := runtime.GOARCH + "x"
	otherList := chunks.List{{SHA256: strings.Repeat("c", 64), Size: 1000}}
	tests := []struct {
		name string
		in   func() api.Instruction
		want string // "" means accepted
	}{
		{"signed by 2 of 3", func() api.Instruction { return instruction(t, "3.0.0", nil, keys[0], keys[1]) }, ""},
		{"unsigned", func() api.Instruction { return instruction(t, "3.0.0", nil) }, "0 valid signature(s)"},
		{"unknown key", func() api.Instruction { return instruction(t, "3.0.0", nil, stranger, stranger) }, "not in the \"web\" policy"},
		{"below threshold", func() api.Instruction { return instruction(t, "3.0.0", nil, keys[0]) }, "1 valid signature(s) from distinct policy keys, 2 required"},
		{"same key twice", func() api.Instruction { return instruction(t, "3.0.0", nil, keys[0], keys[0]) }, "2 required"},
		{"manifest altered after signing", func() api.Instruction {
			in := instruction(t, "3.0.0", nil, keys[0], keys[1])
			in.Manifest = []byte(strings.Replace(string(in.Manifest), `"size":1000`, `"size":1001`, 1))
			return in
		}, "bad signature"},
		{"wrong architecture", func() api.Instruction {
			return instruction(t, "3.0.0", func(m *artifacts.Manifest) { m.Targets = &artifacts.Targets{Architectures: []string{other}} }, keys[0], keys[1])
		}, "this host is " + runtime.GOARCH},
		{"wrong labels", func() api.Instruction {
			return instruction(t, "3.0.0", func(m *artifacts.Manifest) {
				m.Targets = &artifacts.Targets{Labels: map[string]string{"site": "paris"}}
			}, keys[0], keys[1])
		}, "site=paris"},
		{"chunk list of another payload (mix-and-match)", func() api.Instruction {
			in := instruction(t, "3.0.0", nil, keys[0], keys[1])
			in.Chunks = otherList.Encode()
			return in
		}, "chunk list does not belong"},
		{"instruction for another release than its manifest", func() api.Instruction {
			in := instruction(t, "3.0.0", nil, keys[0], keys[1])
			in.Version = "4.0.0"
			return in
		}, "manifest is for web@3.0.0"},
		{"downgrade to a release not on disk (rollback)", func() api.Instruction { return instruction(t, "1.5.0", nil, keys[0], keys[1]) }, "older than the running 2.0.0"},
		{"back-out to a release still on disk", func() api.Instruction { return instruction(t, "1.0.0", nil, keys[0], keys[1]) }, ""},
		{"expired instruction (freeze)", func() api.Instruction {
			in := instruction(t, "3.0.0", nil, keys[0], keys[1])
			in.ExpiresAt = testNow.Add(-time.Minute)
			return in
		}, "instruction expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testAgent(t, keys)
			_, _, err := a.verify(tt.in(), "2.0.0")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("verify: %v; want accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("verify: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestAgentFollowsOnlySignedRotations checks learnTrust: a rotation signed
// by the pinned keys is followed; a policy swapped without their
// signatures is not.
func TestAgentFollowsOnlySignedRotations(t *testing.T) {
	keys := []signer{newSigner(t), newSigner(t), newSigner(t)}
	evil, fresh := newSigner(t), newSigner(t)
	a := testAgent(t, keys)
	pinned := a.trust[0]

	swapped := artifacts.SignedPolicy{Policy: artifacts.Policy{App: "web", Keys: []string{evil.pub}, Threshold: 1}, Serial: 2}
	swapped.Signatures = [][]byte{artifacts.Sign(evil.key, swapped.Document(), "evil")}
	a.learnTrust([]artifacts.SignedPolicy{pinned, swapped})
	if a.trust[0].Serial != 1 {
		t.Fatalf("the agent followed a rotation its keys did not sign")
	}
	rotated := artifacts.SignedPolicy{Policy: artifacts.Policy{App: "web", Keys: []string{fresh.pub}, Threshold: 1}, Serial: 2}
	rotated.Signatures = [][]byte{artifacts.Sign(keys[0].key, rotated.Document(), "r"), artifacts.Sign(keys[2].key, rotated.Document(), "r")}
	a.learnTrust([]artifacts.SignedPolicy{pinned, rotated})
	if a.trust[0].Serial != 2 || a.trust[0].Keys[0] != fresh.pub {
		t.Fatalf("the agent did not follow a properly signed rotation: %+v", a.trust[0])
	}
	// A release signed by the old keys is now refused; by the new key, accepted.
	if _, _, err := a.verify(instruction(t, "3.0.0", nil, keys[0], keys[1]), "2.0.0"); !errors.Is(err, ErrUntrusted) {
		t.Errorf("old keys after rotation: %v; want refused", err)
	}
	if _, _, err := a.verify(instruction(t, "3.0.0", nil, fresh), "2.0.0"); err != nil {
		t.Errorf("new key after rotation: %v", err)
	}
	// Saved: a restarted agent keeps the rotated policy.
	saved, err := loadTrust(a.files)
	if err != nil || len(saved) != 1 || saved[0].Serial != 2 {
		t.Errorf("saved trust = %+v, %v; want serial 2", saved, err)
	}
}

// maliciousServer is an HTTPS server of the cluster's CA that answers
// chunk requests with handler.
func maliciousServer(t *testing.T, handler http.HandlerFunc) (*client.Client, func()) {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer("s1", []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := pki.ServerTLS(certPEM, keyPEM, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, TLSConfig: srvTLS}
	go srv.ServeTLS(ln, "", "")
	cliTLS, err := pki.ClientTLS(nil, nil, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New([]string{"https://" + ln.Addr().String()}, cliTLS)
	return c, func() { c.Close(); srv.Close() }
}

func TestDownloadRefusesEndlessAndSlowServers(t *testing.T) {
	ref := chunks.Ref{SHA256: strings.Repeat("d", 64), Size: 1 << 20}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"endless data", func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 64<<10)
			for {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}, "more than"},
		{"slow retrieval", func(w http.ResponseWriter, r *http.Request) {
			for range 100 {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}, "slower than"},
		{"bytes that are not the chunk", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "not the chunk")
		}, "every server sent bad data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, stop := maliciousServer(t, tt.handler)
			defer stop()
			cache, err := chunks.OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			a := &Agent{client: c, cache: cache, log: slog.New(slog.DiscardHandler),
				cfg: Config{DownloadMinRate: 1 << 20, DownloadGrace: 300 * time.Millisecond}}
			start := time.Now()
			err = a.fetchChunk(context.Background(), ref)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("fetchChunk: %v; want an error containing %q", err, tt.want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the download took %v to give up", took)
			}
			if cache.Has(ref.SHA256) {
				t.Error("a bad chunk entered the cache")
			}
		})
	}
}
