package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
)

// testKey is a minisign key pair made by GenerateKey for a test.
type testKey struct {
	pubFile    []byte // contents of the .pub file
	secretFile []byte // contents of the secret key file
	line       string // the public key's base64 line, as policies hold it
	pub        minisign.PublicKey
	priv       minisign.PrivateKey
}

// newTestKey makes an unencrypted key pair with GenerateKey.
func newTestKey(t testing.TB) testKey {
	t.Helper()
	pubFile, secretFile, err := GenerateKey("")
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return keyFromFiles(t, pubFile, secretFile)
}

func keyFromFiles(t testing.TB, pubFile, secretFile []byte) testKey {
	t.Helper()
	k := testKey{pubFile: pubFile, secretFile: secretFile}
	var err error
	if k.pub, err = ParsePublicKey(pubFile); err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if err := k.priv.UnmarshalText(secretFile); err != nil {
		t.Fatalf("cannot read secret key: %v", err)
	}
	k.line = k.pub.String()
	return k
}

// seededKey makes a key pair from a fixed seed, for fuzz targets whose
// corpus must mean the same thing on every run.
func seededKey(t testing.TB, seed byte) testKey {
	t.Helper()
	var s [32]byte
	s[0] = seed
	pub, priv, err := minisign.GenerateKey(rand.NewChaCha8(s))
	if err != nil {
		t.Fatalf("minisign.GenerateKey: %v", err)
	}
	return testKey{line: pub.String(), pub: pub, priv: priv}
}

// idHex is how error messages print a key ID.
func idHex(id uint64) string { return strings.ToUpper(strconv.FormatUint(id, 16)) }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// validManifest is a manifest that uses every field, each within its limits.
func validManifest() *Manifest {
	return &Manifest{
		Schema:  1,
		Name:    "web-api",
		Version: "1.4.2+build.7",
		Payload: Payload{Chunks: digestOf([]byte("chunks")), Format: "tar.gz", SHA256: digestOf([]byte("payload")), Size: 7},
		HealthChecks: []HealthCheck{
			{Name: "http", Command: []string{"curl", "-fsS", "http://127.0.0.1:8080/health?a=1&b=<2>"}, Timeout: Duration(5 * time.Second)},
			{Name: "ready", Command: []string{"./bin/ready"}},
		},
		Provenance: &Provenance{BuildID: "ci-1234", Builder: "github-actions", SourceCommit: strings.Repeat("ab", 20)},
	}
}

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func file(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body: body}
}

func dir(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// makeTarGz builds a tar.gz archive by hand, so tests can craft entries
// that Pack would never write.
func makeTarGz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar header %q: %v", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar body %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// umask returns the process umask, which applies to files Unpack creates.
func umask(t testing.TB) os.FileMode {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return os.FileMode(m)
				}
			}
		}
	}
	return 0o022
}

// countingReader is an endless stream of 'x' that counts what it hands out.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += int64(len(p))
	return len(p), nil
}

// failingReader returns some bytes and then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

var errBoom = errors.New("boom")
