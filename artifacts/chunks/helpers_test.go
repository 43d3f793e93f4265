package chunks

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// textBytes returns n bytes of log-like text, the same for the same seed.
func textBytes(seed uint64, n int) []byte {
	words := []string{"request", "served", "in", "ms", "status", "200", "404", "user", "id",
		"GET", "POST", "/api/v1/orders", "/healthz", "cache", "miss", "hit", "upstream",
		"timeout", "retrying", "connection", "reset", "by", "peer", "level=info", "level=warn"}
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "2025-06-%02d %02d:%02d:%02d.%06d", 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))
		for range 4 + r.IntN(10) {
			b.WriteByte(' ')
			b.WriteString(words[r.IntN(len(words))])
		}
		fmt.Fprintf(&b, " latency=%d\n", r.IntN(5000))
	}
	return b.Bytes()[:n]
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func refOf(b []byte) Ref { return Ref{SHA256: digestOf(b), Size: int64(len(b))} }

// split runs Split on r and returns the list and, if keep, every chunk's bytes.
func split(t testing.TB, r io.Reader, keep bool) (list List, chunks [][]byte, digest string, size int64) {
	t.Helper()
	digest, size, err := Split(r, func(ref Ref, data []byte) error {
		list = append(list, ref)
		if keep {
			chunks = append(chunks, bytes.Clone(data))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Split() error: %v", err)
	}
	return list, chunks, digest, size
}

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "chunks")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("OpenStore() error: %v", err)
	}
	return s, dir
}
