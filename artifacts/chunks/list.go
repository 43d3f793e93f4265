package chunks

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Ref is one chunk in a payload.
type Ref struct {
	SHA256 string `json:"sha256"` // lower-case hex of the uncompressed bytes
	Size   int64  `json:"size"`   // uncompressed length
}

// List is a payload's chunks in order.
type List []Ref

// refLen is the length of one ref in the canonical encoding.
const refLen = sha256.Size + 8

// Size returns the length of the payload the list describes.
func (l List) Size() int64 {
	var n int64
	for _, r := range l {
		n += r.Size
	}
	return n
}

// Validate checks that every ref is well formed, every size is within
// 1..MaxSize, and the list holds at most MaxChunks refs.
func (l List) Validate() error {
	if len(l) > MaxChunks {
		return fmt.Errorf("%w: %d chunks, at most %d allowed", ErrBadList, len(l), MaxChunks)
	}
	for i, r := range l {
		if err := r.check(); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return nil
}

// Encode returns the canonical encoding of the list: for each chunk the 32
// raw digest bytes followed by the size as 8-byte big-endian, nothing else.
// It returns nil for a list that fails Validate.
func (l List) Encode() []byte {
	if l.Validate() != nil {
		return nil
	}
	b := make([]byte, 0, len(l)*refLen)
	for _, r := range l {
		b, _ = hex.AppendDecode(b, []byte(r.SHA256)) // checked by Validate
		b = binary.BigEndian.AppendUint64(b, uint64(r.Size))
	}
	return b
}

// Digest returns the hex SHA-256 of the canonical encoding, which is what a
// signed manifest names, so that a list belonging to another payload is
// refused. It returns "" for a list that fails Validate.
func (l List) Digest() string {
	b := l.Encode()
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DecodeList is the strict inverse of Encode: it refuses input that is not
// a whole number of refs, more than MaxChunks refs, and sizes outside
// 1..MaxSize (ErrBadList).
func DecodeList(b []byte) (List, error) {
	if len(b)%refLen != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte refs", ErrBadList, len(b), refLen)
	}
	n := len(b) / refLen
	if n > MaxChunks {
		return nil, fmt.Errorf("%w: %d chunks, at most %d allowed", ErrBadList, n, MaxChunks)
	}
	l := make(List, n)
	for i := range l {
		rec := b[i*refLen : (i+1)*refLen]
		size := binary.BigEndian.Uint64(rec[sha256.Size:])
		if size == 0 || size > MaxSize {
			return nil, fmt.Errorf("%w: chunk %d: size %d not within 1..%d", ErrBadList, i, size, MaxSize)
		}
		l[i] = Ref{SHA256: hex.EncodeToString(rec[:sha256.Size]), Size: int64(size)}
	}
	return l, nil
}

// check reports whether r is well formed (ErrBadList).
func (r Ref) check() error {
	if !validDigest(r.SHA256) {
		return fmt.Errorf("%w: sha256 %q is not 64 lower-case hex characters", ErrBadList, r.SHA256)
	}
	if r.Size < 1 || r.Size > MaxSize {
		return fmt.Errorf("%w: size %d not within 1..%d", ErrBadList, r.Size, MaxSize)
	}
	return nil
}

// validDigest reports whether s is a lower-case hex SHA-256.
func validDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// verify checks data against want (ErrCorrupt).
func verify(data []byte, want Ref) error {
	if int64(len(data)) != want.Size {
		return fmt.Errorf("%w: chunk %s has %d bytes, expected %d", ErrCorrupt, want.SHA256, len(data), want.Size)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want.SHA256 {
		return fmt.Errorf("%w: chunk %s has sha256 %s", ErrCorrupt, want.SHA256, got)
	}
	return nil
}
