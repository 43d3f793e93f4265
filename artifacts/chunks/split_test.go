package chunks

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
)

func TestPolIrreducible(t *testing.T) {
	if !Pol.Irreducible() || Pol.Deg() != 53 {
		t.Errorf("Pol %v: degree %d, irreducible %v; want degree 53, irreducible", Pol, Pol.Deg(), Pol.Irreducible())
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{42}},
		{"below min size", randomBytes(1, MinSize-1)},
		{"random 24 MiB", randomBytes(2, 24<<20)},
		{"text 12 MiB", textBytes(3, 12<<20)},
		{"zeros 10 MiB", make([]byte, 10<<20)}, // the fingerprint of zeros is 0: cut at every MinSize
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, chunks, digest, size := split(t, bytes.NewReader(tt.data), true)
			if len(tt.data) == 0 && len(list) != 0 {
				t.Fatalf("Split(empty) gave %d chunks, want none", len(list))
			}
			if digest != digestOf(tt.data) || size != int64(len(tt.data)) {
				t.Errorf("Split() = %s, %d; want %s, %d", digest, size, digestOf(tt.data), len(tt.data))
			}
			if err := list.Validate(); err != nil {
				t.Errorf("Validate() error: %v", err)
			}
			for i, ref := range list {
				if ref != refOf(chunks[i]) {
					t.Errorf("chunk %d: ref %v, bytes have %v", i, ref, refOf(chunks[i]))
				}
				if ref.Size > MaxSize || (ref.Size < MinSize && i != len(list)-1) {
					t.Errorf("chunk %d of %d: size %d out of bounds", i, len(list), ref.Size)
				}
			}
			if !bytes.Equal(bytes.Join(chunks, nil), tt.data) {
				t.Error("chunks do not concatenate to the input")
			}
			if list.Size() != size {
				t.Errorf("List.Size() = %d, want %d", list.Size(), size)
			}
			// Same input, same list, however the reader hands out its bytes.
			again, _, _, _ := split(t, iotest.HalfReader(bytes.NewReader(tt.data)), false)
			if !slices.Equal(list, again) {
				t.Error("Split() is not deterministic")
			}
			t.Logf("%d bytes: %d chunks", len(tt.data), len(list))
		})
	}
}

func TestSplitErrors(t *testing.T) {
	errRead := errors.New("disk on fire")
	_, _, err := Split(io.MultiReader(bytes.NewReader(randomBytes(4, 3<<20)), &failingReader{errRead}),
		func(Ref, []byte) error { return nil })
	if !errors.Is(err, errRead) {
		t.Errorf("Split(failing reader) error = %v, want %v", err, errRead)
	}
	errStop := errors.New("stop")
	calls := 0
	_, _, err = Split(bytes.NewReader(randomBytes(5, 8<<20)), func(Ref, []byte) error {
		calls++
		return errStop
	})
	if err != errStop || calls != 1 {
		t.Errorf("Split(fn fails) = %v after %d calls, want %v after 1", err, calls, errStop)
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }
