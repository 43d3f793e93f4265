package chunks

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// storedNames lists the names in the fan-out directory of digest, temporary
// files included.
func storedNames(t *testing.T, dir, digest string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, digest[:2]))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func walkAll(t *testing.T, s *Store) []string {
	t.Helper()
	var got []string
	if err := s.Walk(func(digest string, mod time.Time) error {
		if time.Since(mod) > time.Hour {
			t.Errorf("Walk: %s modified %v, want about now", digest, mod)
		}
		got = append(got, digest)
		return nil
	}); err != nil {
		t.Fatalf("Walk() error: %v", err)
	}
	return got
}

func TestStore(t *testing.T) {
	s, dir := newStore(t)
	a, b := textBytes(1, 700<<10), randomBytes(2, 300<<10)
	ra, rb := refOf(a), refOf(b)

	if s.Has(ra.SHA256) {
		t.Fatal("Has() = true before Put")
	}
	if err := s.Put(a, ra); err != nil {
		t.Fatalf("Put() error: %v", err)
	}
	if err := s.PutCompressed(Compress(b), rb); err != nil {
		t.Fatalf("PutCompressed() error: %v", err)
	}
	for _, c := range []struct {
		data []byte
		ref  Ref
	}{{a, ra}, {b, rb}} {
		if !s.Has(c.ref.SHA256) {
			t.Errorf("Has(%s) = false after Put", c.ref.SHA256)
		}
		got, err := s.Get(c.ref)
		if err != nil || !bytes.Equal(got, c.data) {
			t.Errorf("Get() = %d bytes, %v; want the %d bytes put", len(got), err, len(c.data))
		}
		comp, err := s.GetCompressed(c.ref.SHA256)
		if err != nil {
			t.Fatalf("GetCompressed() error: %v", err)
		}
		if got, err := Decompress(comp, c.ref); err != nil || !bytes.Equal(got, c.data) {
			t.Errorf("Decompress(GetCompressed()) = %d bytes, %v", len(got), err)
		}
		if names := storedNames(t, dir, c.ref.SHA256); !slices.Equal(names, []string{c.ref.SHA256}) {
			t.Errorf("fan-out directory holds %v, want just the chunk", names)
		}
	}
	if comp, _ := s.GetCompressed(ra.SHA256); len(comp) >= len(a) {
		t.Errorf("text chunk stored in %d bytes, want it compressed", len(comp))
	}

	want := []string{ra.SHA256, rb.SHA256}
	slices.Sort(want)
	if got := walkAll(t, s); !slices.Equal(got, want) {
		t.Errorf("Walk() = %v, want %v", got, want)
	}

	rc := refOf([]byte("not stored"))
	list := List{rc, ra, rc, rb, refOf([]byte("nor this"))}
	if got := s.Missing(list); !slices.Equal(got, []Ref{rc, list[4]}) {
		t.Errorf("Missing() = %v, want %v", got, []Ref{rc, list[4]})
	}

	if err := s.Remove(ra.SHA256); err != nil {
		t.Fatalf("Remove() error: %v", err)
	}
	if s.Has(ra.SHA256) {
		t.Error("Has() = true after Remove")
	}
	if _, err := s.Get(ra); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get() after Remove error = %v, want ErrNotFound", err)
	}
	if err := s.Remove(ra.SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove() error = %v, want ErrNotFound", err)
	}
	if got := walkAll(t, s); !slices.Equal(got, []string{rb.SHA256}) {
		t.Errorf("Walk() after Remove = %v, want %v", got, []string{rb.SHA256})
	}

	// Reopening finds what was stored.
	s2, err := OpenStore(dir)
	if err != nil || !s2.Has(rb.SHA256) {
		t.Errorf("reopened store: %v, Has() = %v", err, s2 != nil && s2.Has(rb.SHA256))
	}
}

func TestStorePutIdempotent(t *testing.T) {
	s, dir := newStore(t)
	data := textBytes(3, 100<<10)
	ref := refOf(data)
	for i := range 3 {
		if err := s.Put(data, ref); err != nil {
			t.Fatalf("Put() #%d error: %v", i, err)
		}
		if err := s.PutCompressed(Compress(data), ref); err != nil {
			t.Fatalf("PutCompressed() #%d error: %v", i, err)
		}
	}
	if names := storedNames(t, dir, ref.SHA256); !slices.Equal(names, []string{ref.SHA256}) {
		t.Errorf("fan-out directory holds %v, want just the chunk", names)
	}
	if got, err := s.Get(ref); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get() = %d bytes, %v", len(got), err)
	}
}

func TestStoreRefusesBadChunks(t *testing.T) {
	data := textBytes(4, 200<<10)
	ref := refOf(data)
	other := refOf([]byte("other"))
	tests := []struct {
		name string
		put  func(s *Store) error
		err  error
	}{
		{"Put: wrong digest", func(s *Store) error { return s.Put(data, Ref{other.SHA256, ref.Size}) }, ErrCorrupt},
		{"Put: wrong size", func(s *Store) error { return s.Put(data[1:], ref) }, ErrCorrupt},
		{"Put: bad ref", func(s *Store) error { return s.Put(data, Ref{"../../etc/passwd", ref.Size}) }, ErrBadList},
		{"PutCompressed: other chunk", func(s *Store) error { return s.PutCompressed(Compress([]byte("other")), ref) }, ErrCorrupt},
		{"PutCompressed: not zstd", func(s *Store) error { return s.PutCompressed(data, ref) }, ErrCorrupt},
		{"PutCompressed: too long", func(s *Store) error { return s.PutCompressed(Compress(data), Ref{ref.SHA256, ref.Size - 1}) }, ErrTooLarge},
		{"PutCompressed: bad ref", func(s *Store) error {
			return s.PutCompressed(Compress(data), Ref{strings.ToUpper(ref.SHA256), ref.Size})
		}, ErrBadList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			if err := tt.put(s); !errors.Is(err, tt.err) {
				t.Errorf("error = %v, want %v", err, tt.err)
			}
			if got := walkAll(t, s); len(got) != 0 {
				t.Errorf("store holds %v, want nothing", got)
			}
			for _, d := range []string{ref.SHA256, other.SHA256} {
				if names := storedNames(t, s.dir, d); len(names) != 0 {
					t.Errorf("fan-out directory holds %v, want nothing", names)
				}
			}
		})
	}
}

func TestStoreCorruptFile(t *testing.T) {
	data := textBytes(5, 500<<10)
	ref := refOf(data)
	tests := []struct {
		name    string
		corrupt func(b []byte) []byte
	}{
		{"bit flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"empty", func([]byte) []byte { return nil }},
		{"other chunk", func([]byte) []byte { return Compress([]byte("other")) }},
		{"huge", func([]byte) []byte { return make([]byte, MaxCompressedSize+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newStore(t)
			if err := s.Put(data, ref); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, ref.SHA256[:2], ref.SHA256)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.corrupt(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ref); !errors.Is(err, ErrCorrupt) || got != nil {
				t.Errorf("Get() = %d bytes, %v; want ErrCorrupt", len(got), err)
			}
			// The repair: the right bytes from a peer replace the file.
			if err := s.PutCompressed(Compress(data), ref); err != nil {
				t.Fatalf("PutCompressed() error: %v", err)
			}
			if got, err := s.Get(ref); err != nil || !bytes.Equal(got, data) {
				t.Errorf("Get() after repair = %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestStoreNotFound(t *testing.T) {
	s, _ := newStore(t)
	absent := refOf([]byte("absent"))
	for _, d := range []string{absent.SHA256, "", "../x", strings.Repeat("A", 64)} {
		if s.Has(d) {
			t.Errorf("Has(%q) = true", d)
		}
		if _, err := s.GetCompressed(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetCompressed(%q) error = %v, want ErrNotFound", d, err)
		}
		if err := s.Remove(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q) error = %v, want ErrNotFound", d, err)
		}
	}
	if _, err := s.Get(absent); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get() error = %v, want ErrNotFound", err)
	}
}

func TestStoreWalk(t *testing.T) {
	s, dir := newStore(t)
	var refs []Ref
	for i := range 20 {
		data := randomBytes(uint64(100+i), 1000+i)
		refs = append(refs, refOf(data))
		if err := s.Put(data, refs[i]); err != nil {
			t.Fatal(err)
		}
	}
	first := refs[0].SHA256
	sub := filepath.Join(dir, first[:2])
	// Names Walk must skip or clean up.
	stale, fresh := filepath.Join(sub, tmpPrefix+"stale"), filepath.Join(sub, tmpPrefix+"fresh")
	for _, p := range []string{stale, fresh, filepath.Join(sub, "README"), filepath.Join(dir, "stray")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTmp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	// A chunk filed under the wrong prefix is not the store's.
	misfiled := refs[1].SHA256
	if misfiled[:2] == first[:2] {
		t.Fatal("test needs two chunks with different prefixes")
	}
	if err := os.Link(filepath.Join(dir, misfiled[:2], misfiled), filepath.Join(sub, misfiled)); err != nil {
		t.Fatal(err)
	}

	var want []string
	for _, r := range refs {
		want = append(want, r.SHA256)
	}
	slices.Sort(want)
	if got := walkAll(t, s); !slices.Equal(got, want) {
		t.Errorf("Walk() = %v, want %v", got, want)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file still there after Walk: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file gone after Walk: %v", err)
	}

	// fn may remove what it is given; its error stops the walk.
	errStop := errors.New("stop")
	n := 0
	err := s.Walk(func(digest string, _ time.Time) error {
		if n++; n == 10 {
			return errStop
		}
		return s.Remove(digest)
	})
	if err != errStop || n != 10 {
		t.Errorf("Walk() = %v after %d calls, want %v after 10", err, n, errStop)
	}
	if got := walkAll(t, s); !slices.Equal(got, want[9:]) {
		t.Errorf("Walk() after removals = %d chunks, want %d", len(got), len(want[9:]))
	}
}
