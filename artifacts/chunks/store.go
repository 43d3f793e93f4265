package chunks

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Store keeps chunks on disk, one file per chunk holding its compressed
// bytes, under dir/ab/abcdef... (fanned out by the digest's first two hex
// characters). A chunk file either exists whole and verified or not at all.
type Store struct {
	dir string
}

const (
	// tmpPrefix names files being written; Walk skips them.
	tmpPrefix = ".tmp-"
	// staleTmp is the age past which Walk removes a file left behind by a
	// write that crashed.
	staleTmp = time.Hour
)

// OpenStore opens (creating if needed) a store rooted at dir, with its 256
// fan-out directories.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create chunk store: %w", err)
	}
	created := false
	for i := range 256 {
		err := os.Mkdir(filepath.Join(dir, fmt.Sprintf("%02x", i)), 0o750)
		if err == nil {
			created = true
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cannot create chunk store: %w", err)
		}
	}
	if created {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(digest string) string { return filepath.Join(s.dir, digest[:2], digest) }

// Has reports whether the store holds the chunk. It does not verify it.
func (s *Store) Has(digest string) bool {
	if !validDigest(digest) {
		return false
	}
	_, err := os.Stat(s.path(digest))
	return err == nil
}

// PutCompressed stores compressed bytes of a chunk as they are, after
// checking that they decompress to want (ErrCorrupt otherwise, and nothing is
// stored). It replaces a stored copy, which repairs a corrupt one, and
// returns once the chunk is durable.
func (s *Store) PutCompressed(compressed []byte, want Ref) error {
	if _, err := Decompress(compressed, want); err != nil {
		return err
	}
	return s.write(want.SHA256, compressed)
}

// PutUnverified stores compressed bytes of a chunk without decompressing
// them, for a copy from a peer that verified them already. Whoever reads the
// chunk later must verify it (Get does; GetCompressed does not).
func (s *Store) PutUnverified(compressed []byte, ref Ref) error {
	if err := ref.check(); err != nil {
		return err
	}
	if len(compressed) > MaxCompressedSize {
		return fmt.Errorf("%w: %w: chunk %s is %d bytes compressed", ErrCorrupt, ErrTooLarge, ref.SHA256, len(compressed))
	}
	return s.write(ref.SHA256, compressed)
}

// Put compresses and stores the bytes of a chunk whose ref the caller
// computed, after checking them against it (ErrCorrupt). Like PutCompressed
// it is durable on return and replaces a stored copy.
func (s *Store) Put(data []byte, ref Ref) error {
	if err := ref.check(); err != nil {
		return err
	}
	if err := verify(data, ref); err != nil {
		return err
	}
	return s.write(ref.SHA256, Compress(data))
}

// write stores b under digest: temporary file, fsync, rename, fsync of the
// directory, so that the name never points at partial bytes and the chunk
// is on disk before the caller acknowledges it.
func (s *Store) write(digest string, b []byte) error {
	sub := filepath.Dir(s.path(digest))
	tmp, err := os.CreateTemp(sub, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("cannot create chunk: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("cannot write chunk: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cannot sync chunk: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot close chunk: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(digest)); err != nil {
		return fmt.Errorf("cannot store chunk: %w", err)
	}
	return syncDir(sub)
}

// GetCompressed returns the stored bytes of a chunk, as they are
// (ErrNotFound if the store does not hold it).
func (s *Store) GetCompressed(digest string) ([]byte, error) {
	if !validDigest(digest) {
		return nil, fmt.Errorf("%w: %q is not a sha256", ErrNotFound, digest)
	}
	f, err := os.Open(s.path(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read chunk: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read chunk: %w", err)
	}
	if st.Size() > MaxCompressedSize {
		return nil, fmt.Errorf("%w: %w: chunk %s is %d bytes on disk", ErrCorrupt, ErrTooLarge, digest, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("cannot read chunk: %w", err)
	}
	return b, nil
}

// Get returns the bytes of a chunk, decompressed and checked against ref.
// A stored file that does not match is ErrCorrupt: the caller fetches the
// chunk from a peer and stores it again with PutCompressed.
func (s *Store) Get(ref Ref) ([]byte, error) {
	if err := ref.check(); err != nil {
		return nil, err
	}
	b, err := s.GetCompressed(ref.SHA256)
	if err != nil {
		return nil, err
	}
	return Decompress(b, ref)
}

// Remove deletes a chunk (ErrNotFound if the store does not hold it). The
// removal is not synced: a chunk that comes back after a crash is harmless.
func (s *Store) Remove(digest string) error {
	if !validDigest(digest) {
		return fmt.Errorf("%w: %q is not a sha256", ErrNotFound, digest)
	}
	err := os.Remove(s.path(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	if err != nil {
		return fmt.Errorf("cannot remove chunk: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}
