// Package pki is drover's certificate authority: it creates and stores the
// cluster CA, issues certificates for servers, agents and operators, builds
// the mutual-TLS configurations every drover connection uses, and mints the
// join tokens agents enroll with.
//
// # Identities
//
// Every certificate names exactly one [Identity] in a single URI SAN:
//
//	drover:server/NAME
//	drover:agent/NAME
//	drover:operator/NAME?role=ROLE
//
// The URI is authoritative; Subject.CommonName repeats NAME for humans and
// for tools that only show the subject.
//
// # Keys and certificates
//
// The CA and all keys it generates are ECDSA P-256. Agents send a CSR
// ([NewKeyAndCSR], [CA.SignCSR]) so their private key never leaves the host;
// CSRs may also carry Ed25519 keys. Issued certificates get a random 128-bit
// serial, start five minutes before the issue time to absorb clock skew, and
// never outlive the CA.
//
// # Time
//
// Functions that depend on the current time take it as an argument; the
// package never reads the clock itself. TLS handshakes use the clock the
// [crypto/tls] configuration provides (tls.Config.Time, or the system clock).
//
// # Enrollment
//
// A [JoinToken] is one string an operator copies to a new host. It carries a
// secret the servers know only by its hash ([HashSecret]) and the CA pin
// ([PinOf]) the agent uses, through [PinnedTLS], to authenticate the server
// before it holds the CA certificate.
package pki

import "errors"

// Errors returned by this package. They are wrapped with context; test for
// them with [errors.Is].
var (
	// ErrInvalidIdentity: an identity has an unknown kind, a malformed name,
	// or a role that does not fit its kind.
	ErrInvalidIdentity = errors.New("pki: invalid identity")
	// ErrInvalidRole: a string is not one of the operator roles.
	ErrInvalidRole = errors.New("pki: invalid role")
	// ErrInvalidName: a cluster name or certificate host name is malformed.
	ErrInvalidName = errors.New("pki: invalid name")
	// ErrNoIdentity: a certificate carries no drover: URI SAN.
	ErrNoIdentity = errors.New("pki: certificate has no drover identity")
	// ErrInvalidValidity: the issue time is zero or the validity is not
	// positive.
	ErrInvalidValidity = errors.New("pki: invalid validity period")
	// ErrCAExpired: the CA certificate has expired at the issue time.
	ErrCAExpired = errors.New("pki: CA certificate expired")
	// ErrNoCAKey: the CA value has no private key, so it cannot sign or be
	// saved.
	ErrNoCAKey = errors.New("pki: CA has no private key")
	// ErrKeyPermissions: a private key file is readable or writable by
	// group or others.
	ErrKeyPermissions = errors.New("pki: private key file permissions too open")
	// ErrKeyMismatch: a private key does not belong to its certificate.
	ErrKeyMismatch = errors.New("pki: private key does not match certificate")
	// ErrInvalidPEM: PEM input is missing, of the wrong type or unparsable.
	ErrInvalidPEM = errors.New("pki: invalid PEM data")
	// ErrBadCSR: a certificate signing request does not parse or its
	// self-signature does not verify.
	ErrBadCSR = errors.New("pki: bad certificate signing request")
	// ErrCSRName: a CSR's common name differs from the identity being issued.
	ErrCSRName = errors.New("pki: CSR common name does not match identity")
	// ErrUnsupportedKey: a public or private key is not of an accepted type.
	ErrUnsupportedKey = errors.New("pki: unsupported key type")
	// ErrNotSignedByCA: a certificate was not issued by the given CA.
	ErrNotSignedByCA = errors.New("pki: certificate not signed by the CA")
	// ErrNoClientCert: a connection has no verified peer certificate.
	ErrNoClientCert = errors.New("pki: no verified peer certificate")
	// ErrWrongKind: a peer's identity is not of the kind required.
	ErrWrongKind = errors.New("pki: peer identity has the wrong kind")
	// ErrPinMismatch: no certificate the peer presented matches the CA pin.
	ErrPinMismatch = errors.New("pki: CA pin mismatch")
	// ErrMalformedToken: a join token or CA pin does not have the exact
	// expected shape.
	ErrMalformedToken = errors.New("pki: malformed join token")
)
