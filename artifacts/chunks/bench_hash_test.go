package chunks

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
)

// Benchmarks of the hashing an agent does on every download: checking
// each chunk against its digest, and decoding and digesting the chunk
// list the signed manifest names.

// BenchmarkVerifyChunk measures checking one 1 MiB chunk against its
// SHA-256, as an agent does for every chunk it fetches and a server
// before it first serves one.
func BenchmarkVerifyChunk(b *testing.B) {
	data := randomBytes(13, 1<<20)
	ref := refOf(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := verify(data, ref); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListDecodeDigest measures decoding a chunk list and computing
// its digest (what the manifest names), for payloads of 10 MiB to 4 GiB
// at the average chunk size of 1 MiB.
func BenchmarkListDecodeDigest(b *testing.B) {
	for _, n := range []int{10, 1000, 4096} {
		l := make(List, n)
		for i := range l {
			sum := sha256.Sum256(fmt.Appendf(nil, "chunk %d", i))
			l[i] = Ref{SHA256: fmt.Sprintf("%x", sum), Size: 1 << 20}
		}
		enc := l.Encode()
		want := l.Digest()
		b.Run(fmt.Sprintf("chunks=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				got, err := DecodeList(enc)
				if err != nil {
					b.Fatal(err)
				}
				if got.Digest() != want {
					b.Fatal("digest differs")
				}
			}
		})
	}
}

// BenchmarkSplitSmall measures chunking and hashing a payload of 10 MiB,
// the size of a typical application release (BenchmarkSplit: 64 MiB).
func BenchmarkSplitSmall(b *testing.B) {
	data := randomBytes(14, 10<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Split(bytes.NewReader(data), func(Ref, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
