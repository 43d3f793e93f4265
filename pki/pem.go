package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

const (
	pemCert   = "CERTIFICATE"
	pemPKCS8  = "PRIVATE KEY"
	pemECKey  = "EC PRIVATE KEY"
	maxPEMLen = 1 << 20
)

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// parseCertsPEM parses every block of data, which must all be certificates;
// there must be at least one.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != pemCert {
			return nil, fmt.Errorf("%w: unexpected %q block", ErrInvalidPEM, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPEM, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificate found", ErrInvalidPEM)
	}
	return certs, nil
}

// parseKeyPEM parses the first PEM block of data as a PKCS #8 or SEC 1
// private key.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no private key found", ErrInvalidPEM)
	}
	var key any
	var err error
	switch b.Type {
	case pemPKCS8:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case pemECKey:
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("%w: unexpected %q block", ErrInvalidPEM, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPEM, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
	return s, nil
}

// newKey generates an ECDSA P-256 key and its PKCS #8 PEM encoding.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return key, encodePEM(pemPKCS8, der), nil
}
