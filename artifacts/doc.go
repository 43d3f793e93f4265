// Package artifacts is drover's supply chain: release manifests and their
// minisign signatures, trust policies that say whose signatures count,
// a content-addressed store for payload bytes, and safe unpacking of a
// payload into a release directory.
//
// A manifest is signed as the exact bytes that were produced by
// [Manifest.Canonical]; those bytes travel unchanged from the signer through
// the control plane to the agent, which verifies them against its own copy of
// the trust policy before it trusts anything the manifest says.
package artifacts

import "errors"

// Errors returned by this package. Callers match them with errors.Is.
var (
	// ErrInvalidManifest: a manifest that does not parse or breaks a rule.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrUntrusted: signatures missing, invalid, or below the policy's threshold.
	ErrUntrusted = errors.New("release not trusted")
	// ErrInvalidPolicy: a trust policy that breaks a rule.
	ErrInvalidPolicy = errors.New("invalid trust policy")
	// ErrDigestMismatch: bytes whose SHA-256 differs from the one expected.
	ErrDigestMismatch = errors.New("payload digest mismatch")
	// ErrTooLarge: more bytes than the signed metadata allows.
	ErrTooLarge = errors.New("payload larger than allowed")
	// ErrUnsafeArchive: an archive entry that would escape its directory or is not allowed.
	ErrUnsafeArchive = errors.New("unsafe archive entry")
	// ErrNotFound: a blob the store does not hold.
	ErrNotFound = errors.New("blob not found")
	// ErrBadKey: a key file that cannot be read or decrypted.
	ErrBadKey = errors.New("bad key")
)
