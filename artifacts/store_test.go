package artifacts

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newStore(t *testing.T) (*BlobStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs", "sha256")
	s, err := OpenBlobStore(dir)
	if err != nil {
		t.Fatalf("OpenBlobStore() error: %v", err)
	}
	return s, dir
}

// dirNames lists the names in dir, temporary files included.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestBlobStorePutOpen(t *testing.T) {
	s, dir := newStore(t)
	data := bytes.Repeat([]byte("0123456789"), 10_000)
	digest := digestOf(data)

	if s.Has(digest) {
		t.Fatal("Has() = true before Put")
	}
	if err := s.Put(bytes.NewReader(data), digest, int64(len(data))); err != nil {
		t.Fatalf("Put() error: %v", err)
	}
	if !s.Has(digest) {
		t.Error("Has() = false after Put")
	}
	f, size, err := s.Open(digest)
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) || size != int64(len(data)) {
		t.Errorf("Open() read %d bytes (size %d), %v; want the %d bytes put", len(got), size, err, len(data))
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != digest {
		t.Errorf("store directory holds %q; want only %q", names, digest)
	}

	// Idempotent: the same blob again, whatever the reader, changes nothing.
	if err := s.Put(bytes.NewReader(data), digest, int64(len(data))); err != nil {
		t.Errorf("second Put() = %v; want nil", err)
	}
	if err := s.Put(&failingReader{err: errBoom}, digest, int64(len(data))); err != nil {
		t.Errorf("Put() of a blob already held = %v; want nil without reading", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, digest)); err != nil || !bytes.Equal(got, data) {
		t.Errorf("blob after repeated Puts: %d bytes, %v; want the original", len(got), err)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("store directory holds %q after repeated Puts; want one blob", names)
	}

	// A store reopened on the same directory sees the blob.
	s2, err := OpenBlobStore(dir)
	if err != nil || !s2.Has(digest) {
		t.Errorf("reopened store: Has() = false, %v; want true", err)
	}
}

func TestBlobStorePutRefuses(t *testing.T) {
	data := []byte("the payload bytes")
	digest := digestOf(data)
	size := int64(len(data))
	tests := []struct {
		name   string
		r      io.Reader
		digest string
		size   int64
		want   error
	}{
		{"wrong digest", bytes.NewReader(data), digestOf([]byte("other")), size, ErrDigestMismatch},
		{"other bytes, same length", bytes.NewReader(bytes.ToUpper(data)), digest, size, ErrDigestMismatch},
		{"fewer bytes", bytes.NewReader(data[:len(data)-1]), digest, size, ErrDigestMismatch},
		{"no bytes", bytes.NewReader(nil), digest, size, ErrDigestMismatch},
		{"one more byte", bytes.NewReader(append(data[:len(data):len(data)], '!')), digest, size, ErrTooLarge},
		{"many more bytes", io.MultiReader(bytes.NewReader(data), &countingReader{}), digest, size, ErrTooLarge},
		{"size too small", bytes.NewReader(data), digest, size - 1, ErrTooLarge},
		{"size too large", bytes.NewReader(data), digest, size + 1, ErrDigestMismatch},
		{"upper-case digest", bytes.NewReader(data), strings.ToUpper(digest), size, ErrDigestMismatch},
		{"short digest", bytes.NewReader(data), digest[:10], size, ErrDigestMismatch},
		{"path as digest", bytes.NewReader(data), "../../../../etc/passwd", size, ErrDigestMismatch},
		{"reader fails", &failingReader{data: data[:5], err: errBoom}, digest, size, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newStore(t)
			err := s.Put(tt.r, tt.digest, tt.size)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Put() = %v; want %v", err, tt.want)
			}
			if s.Has(tt.digest) || s.Has(digest) {
				t.Error("Has() = true after a failed Put")
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("store directory holds %q after a failed Put; want nothing", names)
			}
			if _, _, err := s.Open(digest); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open() after a failed Put = %v; want %v", err, ErrNotFound)
			}
			// The right bytes still go in afterwards.
			if err := s.Put(bytes.NewReader(data), digest, size); err != nil {
				t.Errorf("Put() of the right bytes after a failure = %v", err)
			}
		})
	}
}

func TestBlobStorePutEndlessReader(t *testing.T) {
	s, dir := newStore(t)
	const size = 100_000
	r := &countingReader{}
	err := s.Put(r, digestOf(bytes.Repeat([]byte("x"), size)), size)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put() of an endless stream = %v; want %v", err, ErrTooLarge)
	}
	if r.n > size+1 {
		t.Errorf("Put() read %d bytes of an endless stream; want at most %d", r.n, size+1)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("store directory holds %q; want nothing", names)
	}
}

func TestCopyVerified(t *testing.T) {
	data := []byte("exactly these bytes")
	digest, size := digestOf(data), int64(len(data))

	var out bytes.Buffer
	if err := CopyVerified(&out, bytes.NewReader(data), digest, size); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("CopyVerified() = %v, copied %q; want nil, %q", err, out.Bytes(), data)
	}
	for _, size := range []int64{0, 1, 4096, 1 << 20} {
		r := &countingReader{}
		err := CopyVerified(io.Discard, r, digest, size)
		if !errors.Is(err, ErrTooLarge) || r.n != size+1 {
			t.Errorf("CopyVerified(endless, size %d) = %v after reading %d bytes; want %v after %d", size, err, r.n, ErrTooLarge, size+1)
		}
	}
	if err := CopyVerified(io.Discard, &failingReader{data: data, err: errBoom}, digest, size+5); !errors.Is(err, errBoom) {
		t.Errorf("CopyVerified() of a failing reader = %v; want %v", err, errBoom)
	}
}

func TestBlobStoreOpenAndHas(t *testing.T) {
	s, dir := newStore(t)
	data := []byte("blob")
	digest := digestOf(data)
	if err := s.Put(bytes.NewReader(data), digest, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// Names in the directory that are not valid digests are never served.
	for _, name := range []string{strings.ToUpper(digest), "not-a-digest", ".upload-123"} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for _, d := range []string{"", "not-a-digest", ".upload-123", strings.ToUpper(digest), digest[:63], digest + "0", "../" + digest[3:], "."} {
		if s.Has(d) {
			t.Errorf("Has(%q) = true; want false", d)
		}
		if f, _, err := s.Open(d); !errors.Is(err, ErrNotFound) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v; want %v", d, err, ErrNotFound)
		}
	}
	missing := digestOf([]byte("never stored"))
	if s.Has(missing) {
		t.Error("Has(missing) = true")
	}
	f, size, err := s.Open(missing)
	if !errors.Is(err, ErrNotFound) || f != nil || size != 0 {
		t.Errorf("Open(missing) = %v, %d, %v; want nil, 0, %v", f, size, err, ErrNotFound)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("Open(missing) = %q; want it to name the digest", err)
	}
}

func TestOpenBlobStoreOnFile(t *testing.T) {
	path := writeFile(t, t.TempDir(), "file", []byte("x"))
	if _, err := OpenBlobStore(path); err == nil {
		t.Error("OpenBlobStore() on a regular file = nil error; want one")
	}
}
