package chunks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestCompressRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		maxRatio float64
	}{
		{"one byte", []byte{7}, 100},
		{"text 1 MiB", textBytes(1, 1<<20), 0.5},
		{"random 1 MiB", randomBytes(1, 1<<20), 1.01},
		{"random MaxSize", randomBytes(2, MaxSize), 1.01},
		{"zeros MaxSize", make([]byte, MaxSize), 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compress(tt.data)
			if len(c) > MaxCompressedSize {
				t.Errorf("Compress() gave %d bytes, more than MaxCompressedSize", len(c))
			}
			ratio := float64(len(c)) / float64(len(tt.data))
			if ratio > tt.maxRatio {
				t.Errorf("Compress() ratio %.3f, want at most %.3f", ratio, tt.maxRatio)
			}
			got, err := Decompress(c, refOf(tt.data))
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("Decompress() = %d bytes, %v; want the %d bytes compressed", len(got), err, len(tt.data))
			}
			t.Logf("%d -> %d bytes (%.3f)", len(tt.data), len(c), ratio)
		})
	}
}

func TestDecompressRefuses(t *testing.T) {
	data := textBytes(2, 300<<10)
	c := Compress(data)
	ref := refOf(data)
	tests := []struct {
		name       string
		compressed []byte
		want       Ref
		err        error
	}{
		{"wrong digest", c, Ref{refOf([]byte("other")).SHA256, ref.Size}, ErrCorrupt},
		{"size too small", c, Ref{ref.SHA256, ref.Size - 1}, ErrTooLarge},
		{"size too large", c, Ref{ref.SHA256, ref.Size + 1}, ErrCorrupt},
		{"truncated", c[:len(c)/2], ref, ErrCorrupt},
		{"not zstd", data, ref, ErrCorrupt},
		{"empty", nil, ref, ErrCorrupt},
		{"compressed too large", make([]byte, MaxCompressedSize+1), ref, ErrTooLarge},
		{"bad ref", c, Ref{"abc", ref.Size}, ErrBadList},
		{"ref over MaxSize", c, Ref{ref.SHA256, MaxSize + 1}, ErrBadList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decompress(tt.compressed, tt.want)
			if !errors.Is(err, tt.err) || got != nil {
				t.Errorf("Decompress() = %d bytes, %v; want %v", len(got), err, tt.err)
			}
		})
	}
}

// encodedBomb returns a zstd stream made by the encoder that expands to
// 100 MiB of zeros, with no content size in its frame header.
func encodedBomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 100 {
		if _, err := enc.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rleBomb returns frames zstd frames of 4-byte RLE blocks that expand to
// 100 MiB of zeros in all. A frame header declares the content size or not,
// in a single segment (whose window is the content size) or not.
func rleBomb(frames int, declare, single bool) []byte {
	const total, block = 100 << 20, 128 << 10
	var b []byte
	for range frames {
		b = append(b, 0x28, 0xb5, 0x2f, 0xfd) // magic number
		switch {
		case single:
			b = append(b, 0xe0) // 8-byte content size, single segment
		case declare:
			b = append(b, 0xc0, 10<<3) // 8-byte content size, 1 MiB window
		default:
			b = append(b, 0x00, 10<<3) // no content size, 1 MiB window
		}
		if declare || single {
			b = binary.LittleEndian.AppendUint64(b, total/uint64(frames))
		}
		n := total / frames / block
		for i := range n {
			hdr := uint32(block<<3 | 1<<1) // RLE block of 128 KiB
			if i == n-1 {
				hdr |= 1 // last block
			}
			b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
		}
	}
	return b
}

// TestDecompressBomb checks that output past want.Size is refused after
// want.Size+1 bytes, without decoding or allocating the whole expansion.
func TestDecompressBomb(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"made by the encoder", encodedBomb(t)},
		{"size unknown", rleBomb(1, false, false)},
		{"size declared", rleBomb(1, true, false)},
		{"single segment", rleBomb(1, true, true)},
		{"100 frames", rleBomb(100, true, false)},
	}
	want := Ref{digestOf(make([]byte, 1<<20)), 1 << 20}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			got, err := Decompress(tt.b, want)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrCorrupt) || got != nil {
				t.Errorf("Decompress(bomb) = %d bytes, %v; want ErrTooLarge and ErrCorrupt", len(got), err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > 16<<20 {
				t.Errorf("Decompress(bomb) allocated %d bytes, want at most 16 MiB", alloc)
			}
			t.Logf("%d compressed bytes refused in %v, %.1f MiB allocated: %v", len(tt.b), elapsed, float64(alloc)/(1<<20), err)
		})
	}
}
