package chunks

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func benchInputs() []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"random", randomBytes(10, 1<<20)},
		{"text", textBytes(10, 1<<20)},
	}
}

func BenchmarkSplit(b *testing.B) {
	data := randomBytes(11, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Split(bytes.NewReader(data), func(Ref, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompress(b *testing.B) {
	for _, in := range benchInputs() {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			var n int
			for b.Loop() {
				n = len(Compress(in.data))
			}
			b.ReportMetric(float64(n)/float64(len(in.data)), "ratio")
		})
	}
}

// BenchmarkCompressLevel compares the levels considered for Compress.
func BenchmarkCompressLevel(b *testing.B) {
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false))
		if err != nil {
			b.Fatal(err)
		}
		for _, in := range benchInputs() {
			b.Run(fmt.Sprintf("%v/%s", level, in.name), func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				var n int
				for b.Loop() {
					n = len(enc.EncodeAll(in.data, nil))
				}
				b.ReportMetric(float64(n)/float64(len(in.data)), "ratio")
			})
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	for _, in := range benchInputs() {
		b.Run(in.name, func(b *testing.B) {
			c, ref := Compress(in.data), refOf(in.data)
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decompress(c, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkStorePut(b *testing.B) {
	s, _ := newStore(b)
	const chunks = 64
	data := make([][]byte, chunks)
	refs := make([]Ref, chunks)
	for i := range data {
		data[i] = textBytes(uint64(i), 1<<20)
		refs[i] = refOf(data[i])
	}
	b.SetBytes(1 << 20)
	i := 0
	for b.Loop() {
		if err := s.Put(data[i%chunks], refs[i%chunks]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkStoreGet(b *testing.B) {
	s, _ := newStore(b)
	data := textBytes(12, 1<<20)
	ref := refOf(data)
	if err := s.Put(data, ref); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	for b.Loop() {
		if _, err := s.Get(ref); err != nil {
			b.Fatal(err)
		}
	}
}
