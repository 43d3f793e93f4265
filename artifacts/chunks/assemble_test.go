package chunks

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

func TestAssemble(t *testing.T) {
	t.Parallel()
	payload := append(textBytes(6, 3<<20), randomBytes(6, 5<<20)...)
	list, chunks, digest, size := split(t, bytes.NewReader(payload), true)
	if len(list) < 3 {
		t.Fatalf("payload split into %d chunks, want at least 3", len(list))
	}
	s, _ := newStore(t)
	byDigest := map[string][]byte{}
	for i, r := range list {
		byDigest[r.SHA256] = chunks[i]
		if err := s.Put(chunks[i], r); err != nil {
			t.Fatal(err)
		}
	}
	fromMap := func(r Ref) ([]byte, error) { return byDigest[r.SHA256], nil }

	for _, get := range []func(Ref) ([]byte, error){fromMap, s.Get} {
		var out bytes.Buffer
		if err := Assemble(&out, list, digest, size, get); err != nil {
			t.Fatalf("Assemble() error: %v", err)
		}
		if !bytes.Equal(out.Bytes(), payload) {
			t.Error("Assemble() wrote other bytes than the payload")
		}
	}
	empty := digestOf(nil)
	if err := Assemble(io.Discard, nil, empty, 0, fromMap); err != nil {
		t.Errorf("Assemble(empty payload) error: %v", err)
	}

	errGet := errors.New("peer unreachable")
	other, otherChunks, otherDigest, otherSize := split(t, bytes.NewReader(randomBytes(7, 1<<20)), true)
	byDigest[other[0].SHA256] = otherChunks[0]
	swapped := slices.Clone(list)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	tests := []struct {
		name   string
		list   List
		digest string
		size   int64
		get    func(Ref) ([]byte, error)
		err    error
	}{
		{"wrong bytes", list, digest, size, func(r Ref) ([]byte, error) {
			b := slices.Clone(byDigest[r.SHA256])
			b[0] ^= 1
			return b, nil
		}, ErrCorrupt},
		{"short bytes", list, digest, size, func(r Ref) ([]byte, error) { return byDigest[r.SHA256][1:], nil }, ErrCorrupt},
		{"get fails", list, digest, size, func(Ref) ([]byte, error) { return nil, errGet }, errGet},
		{"size differs from list", list, digest, size + 1, fromMap, ErrBadList},
		{"wrong payload digest", list, otherDigest, size, fromMap, ErrBadList},
		{"chunks out of order", swapped, digest, size, fromMap, ErrBadList},
		{"list of another payload", other, digest, otherSize, fromMap, ErrBadList},
		{"malformed payload digest", list, "xyz", size, fromMap, ErrBadList},
		{"invalid list", List{{"xyz", 1}}, digest, 1, fromMap, ErrBadList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Assemble(io.Discard, tt.list, tt.digest, tt.size, tt.get)
			if !errors.Is(err, tt.err) {
				t.Errorf("Assemble() error = %v, want %v", err, tt.err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestAssembleWriteError(t *testing.T) {
	data := []byte("payload")
	list := List{refOf(data)}
	errWrite := errors.New("disk full")
	err := Assemble(failingWriter{errWrite}, list, digestOf(data), int64(len(data)), func(Ref) ([]byte, error) { return data, nil })
	if !errors.Is(err, errWrite) {
		t.Errorf("Assemble() error = %v, want %v", err, errWrite)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
