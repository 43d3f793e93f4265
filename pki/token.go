package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

const (
	tokenVersion = "drv1"
	tokenIDLen   = 12
	// tokenIDAlphabet is lower-case base32 (RFC 4648 alphabet).
	tokenIDAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
	secretBytes     = 32
	// b64Len32 is the unpadded base64 length of 32 bytes.
	b64Len32    = 43
	maxTokenLen = 256
)

// JoinToken is an agent enrollment token, one string an operator copies:
//
//	drv1.<id>.<secret>.<pin>
//
// ID is 12 characters of lower-case base32 and names the token in server
// state; Secret is 32 random bytes, unpadded base64url, which servers store
// only as [HashSecret]; CAPin is the CA pin including its "sha256:" prefix
// (the string form omits the prefix), ready for [PinnedTLS].
//
// The string form contains the secret: do not log a JoinToken.
type JoinToken struct {
	ID, Secret, CAPin string
}

// NewJoinToken mints a token for the CA with pin caPin (with or without the
// "sha256:" prefix), drawing randomness from random (crypto/rand if nil).
func NewJoinToken(caPin string, random io.Reader) (JoinToken, error) {
	pin := strings.TrimPrefix(caPin, pinPrefix)
	if !validB64Bytes32(pin) {
		return JoinToken{}, fmt.Errorf("new join token: %w: CA pin must be %s followed by %d base64url characters", ErrMalformedToken, pinPrefix, b64Len32)
	}
	if random == nil {
		random = rand.Reader
	}
	buf := make([]byte, tokenIDLen+secretBytes)
	if _, err := io.ReadFull(random, buf); err != nil {
		return JoinToken{}, fmt.Errorf("new join token: read random: %w", err)
	}
	id := make([]byte, tokenIDLen)
	for i := range id {
		id[i] = tokenIDAlphabet[buf[i]&31] // 256 is a multiple of 32: unbiased
	}
	return JoinToken{
		ID:     string(id),
		Secret: base64.RawURLEncoding.EncodeToString(buf[tokenIDLen:]),
		CAPin:  pinPrefix + pin,
	}, nil
}

// ParseJoinToken parses the string form of a token. It is strict: at most
// 256 characters, exactly drv1.<id>.<secret>.<pin> with each part of its
// exact length and alphabet and no surrounding space; callers reading a
// token from a file or terminal trim it first. Errors wrap
// ErrMalformedToken and never quote the input, which may hold a secret.
func ParseJoinToken(s string) (JoinToken, error) {
	if len(s) > maxTokenLen {
		return JoinToken{}, fmt.Errorf("%w: longer than %d characters", ErrMalformedToken, maxTokenLen)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return JoinToken{}, fmt.Errorf("%w: want drv1.<id>.<secret>.<pin>, got %d dot-separated parts", ErrMalformedToken, len(parts))
	}
	if parts[0] != tokenVersion {
		return JoinToken{}, fmt.Errorf("%w: does not start with %q", ErrMalformedToken, tokenVersion+".")
	}
	if !validTokenID(parts[1]) {
		return JoinToken{}, fmt.Errorf("%w: id must be %d characters of a-z and 2-7", ErrMalformedToken, tokenIDLen)
	}
	if !validB64Bytes32(parts[2]) {
		return JoinToken{}, fmt.Errorf("%w: secret must be %d base64url characters", ErrMalformedToken, b64Len32)
	}
	if !validB64Bytes32(parts[3]) {
		return JoinToken{}, fmt.Errorf("%w: CA pin must be %d base64url characters", ErrMalformedToken, b64Len32)
	}
	return JoinToken{ID: parts[1], Secret: parts[2], CAPin: pinPrefix + parts[3]}, nil
}

// String is the form an operator copies, drv1.<id>.<secret>.<pin>.
func (t JoinToken) String() string {
	return tokenVersion + "." + t.ID + "." + t.Secret + "." + strings.TrimPrefix(t.CAPin, pinPrefix)
}

// HashSecret returns the lower-case hex SHA-256 of a token secret, the only
// form in which servers store it.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether t's secret hashes to hash
// (hex, either case). A token with an empty secret matches nothing.
func (t JoinToken) Matches(hash string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size || t.Secret == "" {
		return false
	}
	got := sha256.Sum256([]byte(t.Secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

func validTokenID(s string) bool {
	if len(s) != tokenIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(tokenIDAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// validB64Bytes32 reports whether s is the canonical unpadded base64url
// encoding of exactly 32 bytes.
func validB64Bytes32(s string) bool {
	if len(s) != b64Len32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}
