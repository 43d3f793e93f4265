package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"time"
)

// IssueServer issues a certificate and a new ECDSA P-256 key for the server
// name. Each of hosts is an IP literal or a DNS name and becomes a SAN.
// Servers dial each other, so the certificate is good for both server and
// client authentication.
func (ca *CA) IssueServer(name string, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	id := Identity{Kind: KindServer, Name: name}
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("issue server: %w", err)
	}
	tmpl := leafTemplate(id)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if !validDNSName(h) {
			return nil, nil, fmt.Errorf("issue server: %w: host %q is neither an IP address nor a DNS name", ErrInvalidName, h)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	return ca.issueWithNewKey(tmpl, now, validity)
}

// IssueOperator issues a client certificate and a new ECDSA P-256 key for
// the operator name with the given role.
func (ca *CA) IssueOperator(name string, role Role, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	id := Identity{Kind: KindOperator, Name: name, Role: role}
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("issue operator: %w", err)
	}
	return ca.issueWithNewKey(leafTemplate(id), now, validity)
}

// SignCSR issues a certificate for id over the public key of a DER CSR. The
// CSR's self-signature must verify (ErrBadCSR), its key must be ECDSA P-256
// or Ed25519 (ErrUnsupportedKey), and its CommonName must equal id.Name
// (ErrCSRName). Nothing else in the CSR is used: the identity comes from id.
// The certificate is for client authentication, and also for server
// authentication when id is a server.
func (ca *CA) SignCSR(csrDER []byte, id Identity, now time.Time, validity time.Duration) (certPEM []byte, err error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign CSR: %w: %w", ErrBadCSR, err)
	}
	if err := checkLeafKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	if csr.Subject.CommonName != id.Name {
		return nil, fmt.Errorf("sign CSR: %w: CSR names %q, identity is %q", ErrCSRName, csr.Subject.CommonName, id.Name)
	}
	certPEM, err = ca.sign(leafTemplate(id), csr.PublicKey, now, validity)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	return certPEM, nil
}

// NewKeyAndCSR generates an ECDSA P-256 key and a DER CSR with
// CommonName name, for [CA.SignCSR].
func NewKeyAndCSR(name string) (keyPEM, csrDER []byte, err error) {
	if !validName(name) {
		return nil, nil, fmt.Errorf("new CSR: %w: name %q %s", ErrInvalidIdentity, name, nameRule)
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("new CSR: %w", err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CSR: %w", err)
	}
	return keyPEM, csrDER, nil
}

// leafTemplate is the certificate template for a valid id, without
// serial or validity.
func leafTemplate(id Identity) *x509.Certificate {
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if id.Kind == KindServer {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: id.Name},
		URIs:                  []*url.URL{id.uri()},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
	}
}

func (ca *CA) issueWithNewKey(tmpl *x509.Certificate, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", tmpl.Subject.CommonName, err)
	}
	certPEM, err = ca.sign(tmpl, &key.PublicKey, now, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", tmpl.Subject.CommonName, err)
	}
	return certPEM, keyPEM, nil
}

// sign completes tmpl with a serial and validity window and signs it.
// The certificate never outlives the CA.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, now time.Time, validity time.Duration) ([]byte, error) {
	if ca == nil || ca.key == nil || ca.Cert == nil {
		return nil, ErrNoCAKey
	}
	if err := checkWindow(now, validity); err != nil {
		return nil, err
	}
	if !now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("%w at %s", ErrCAExpired, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = notAfter
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return encodePEM(pemCert, der), nil
}

// checkLeafKey accepts ECDSA P-256 and Ed25519 public keys.
func checkLeafKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if isP256(k) {
			return nil
		}
		return fmt.Errorf("%w: ECDSA %s, want P-256", ErrUnsupportedKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("%w: %T, want ECDSA P-256 or Ed25519", ErrUnsupportedKey, pub)
}

// isP256 reports whether pub is an ECDSA P-256 key.
func isP256(pub *ecdsa.PublicKey) bool { return pub.Curve == elliptic.P256() }

// validDNSName reports whether s is a plain DNS name: dot-separated labels
// of 1-63 letters, digits and inner hyphens, at most 253 characters, no
// wildcard and no trailing dot.
func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 || s[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0 && s[len(s)-1] != '-'
}
