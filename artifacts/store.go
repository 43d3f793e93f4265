package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// BlobStore keeps payloads on disk by their SHA-256, one file each, written
// so that a blob either exists whole and verified or not at all.
type BlobStore struct {
	dir string
}

// OpenBlobStore opens (creating if needed) a store rooted at dir.
func OpenBlobStore(dir string) (*BlobStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create blob store: %w", err)
	}
	return &BlobStore{dir: dir}, nil
}

func (s *BlobStore) path(digest string) string { return filepath.Join(s.dir, digest) }

// Has reports whether the store holds the blob.
func (s *BlobStore) Has(digest string) bool {
	if ValidateDigest(digest) != nil {
		return false
	}
	_, err := os.Stat(s.path(digest))
	return err == nil
}

// Open returns the blob for reading and its size.
func (s *BlobStore) Open(digest string) (*os.File, int64, error) {
	if err := ValidateDigest(digest); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	f, err := os.Open(s.path(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Put stores exactly size bytes from r under digest. It refuses more bytes
// than size (ErrTooLarge), fewer, or bytes whose SHA-256 is not digest
// (ErrDigestMismatch). Nothing partial is ever visible under the digest.
func (s *BlobStore) Put(r io.Reader, digest string, size int64) error {
	if err := ValidateDigest(digest); err != nil {
		return fmt.Errorf("%w: %v", ErrDigestMismatch, err)
	}
	if s.Has(digest) {
		return nil
	}
	tmp, err := os.CreateTemp(s.dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("cannot create blob: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	if err := CopyVerified(tmp, r, digest, size); err != nil {
		return err
	}
	// The data must be on disk before the name points at it, and the name
	// must be on disk before the caller acknowledges the upload.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cannot sync blob: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot close blob: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(digest)); err != nil {
		return fmt.Errorf("cannot store blob: %w", err)
	}
	return SyncDir(s.dir)
}

// CopyVerified copies exactly size bytes from r to w and checks their
// SHA-256 against digest. A longer stream is refused after size+1 bytes,
// so that an endless stream costs nothing more than the expected size.
func CopyVerified(w io.Writer, r io.Reader, digest string, size int64) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("cannot copy payload: %w", err)
	}
	if n > size {
		return fmt.Errorf("%w: more than the %d bytes expected", ErrTooLarge, size)
	}
	if n < size {
		return fmt.Errorf("%w: got %d bytes, expected %d", ErrDigestMismatch, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("%w: got sha256 %s, expected %s", ErrDigestMismatch, got, digest)
	}
	return nil
}

// SyncDir fsyncs a directory, making the names in it durable.
func SyncDir(dir string) error {
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

// DigestFile returns the SHA-256 (hex) and size of a file.
func DigestFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
