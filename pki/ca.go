package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
	// clockSkew is how far before the issue time certificates start.
	clockSkew = 5 * time.Minute
	pinPrefix = "sha256:"
)

// CA is the cluster certificate authority (ECDSA P-256).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA for the cluster clusterName (same rules as
// identity names), valid from now-5min until now+validity.
func NewCA(clusterName string, now time.Time, validity time.Duration) (*CA, error) {
	if !validName(clusterName) {
		return nil, fmt.Errorf("new CA: %w: cluster name %q %s", ErrInvalidName, clusterName, nameRule)
	}
	if err := checkWindow(now, validity); err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	key, _, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"drover"}, CommonName: "drover CA " + clusterName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA: parse: %w", err)
	}
	return &CA{Cert: cert, CertPEM: encodePEM(pemCert, der), key: key}, nil
}

// LoadCA reads dir/ca.crt and dir/ca.key as written by [CA.Save]. It refuses
// a ca.key that group or others may access (ErrKeyPermissions) and a key
// that does not match the certificate (ErrKeyMismatch).
func LoadCA(dir string) (*CA, error) {
	keyPEM, err := readKeyFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %s: %w", caCertFile, err)
	}
	if len(certs) != 1 || !certs[0].IsCA {
		return nil, fmt.Errorf("load CA: %w: %s must hold exactly one CA certificate", ErrInvalidPEM, caCertFile)
	}
	signer, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %s: %w", caKeyFile, err)
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load CA: %w: %s is %T, want ECDSA", ErrUnsupportedKey, caKeyFile, signer)
	}
	if !key.PublicKey.Equal(certs[0].PublicKey) {
		return nil, fmt.Errorf("load CA: %w", ErrKeyMismatch)
	}
	return &CA{Cert: certs[0], CertPEM: encodePEM(pemCert, certs[0].Raw), key: key}, nil
}

// Save writes dir/ca.key (mode 0600) and dir/ca.crt (mode 0644), each
// atomically, creating dir (mode 0700) if needed.
func (ca *CA) Save(dir string) error {
	if ca == nil || ca.key == nil || ca.Cert == nil {
		return fmt.Errorf("save CA: %w", ErrNoCAKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("save CA: encode key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save CA: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, caKeyFile), encodePEM(pemPKCS8, der), 0o600); err != nil {
		return fmt.Errorf("save CA: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, caCertFile), encodePEM(pemCert, ca.Cert.Raw), 0o644); err != nil {
		return fmt.Errorf("save CA: %w", err)
	}
	return nil
}

// Pin is the pin of the CA certificate, PinOf(ca.Cert.Raw).
func (ca *CA) Pin() string { return PinOf(ca.Cert.Raw) }

// PinOf returns "sha256:" followed by the unpadded base64url SHA-256 of a
// DER certificate.
func PinOf(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return pinPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// SerialString renders c's serial number in lower-case hex (no leading
// zeros), the form revocation lists use. It returns "" for a nil c.
func SerialString(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}

func checkWindow(now time.Time, validity time.Duration) error {
	if now.IsZero() {
		return fmt.Errorf("%w: zero issue time", ErrInvalidValidity)
	}
	if validity <= 0 {
		return fmt.Errorf("%w: validity %v is not positive", ErrInvalidValidity, validity)
	}
	return nil
}

// newSerial returns a random, non-zero 128-bit serial number.
func newSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}
