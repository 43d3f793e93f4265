package pki

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
)

// ServerTLS is the configuration for a drover server's listener. It
// presents the server certificate followed by the CA certificate (so
// [PinnedTLS] clients can check the pin) and verifies a client certificate
// against the CA if one is given. Clients without a certificate are let
// through so an enrollment endpoint can serve them: handlers that need an
// identity call [PeerIdentity]. The certificate must name a server.
func ServerTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	cert, pool, err := loadOwn(certPEM, keyPEM, caPEM, KindServer)
	if err != nil {
		return nil, fmt.Errorf("server TLS: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}, nil
}

// ClientTLS is the configuration for dialing a drover server: it presents
// the client certificate, trusts only the CA, and accepts only a server
// whose identity is of kind server. certPEM and keyPEM may both be empty
// for a client that has the CA but no certificate yet. The dialer sets
// ServerName (tls.Dial does so from the address).
func ClientTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	cas, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("client TLS: CA: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS13,
		RootCAs:          certPool(cas),
		VerifyConnection: requirePeerKind(KindServer),
	}
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return cfg, nil
	}
	cert, _, err := loadCert(certPEM, keyPEM, cas)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

// PeerTLS is the pair of configurations for server-to-server traffic such
// as Raft. The server side requires a client certificate, and both sides
// accept only a peer whose identity is of kind server (ErrWrongKind). The
// client side also checks the host name as usual, so a dialer wrapping a
// raw connection with tls.Client must set ServerName to a host the peer's
// certificate lists.
func PeerTLS(certPEM, keyPEM, caPEM []byte) (server, client *tls.Config, err error) {
	cert, pool, err := loadOwn(certPEM, keyPEM, caPEM, KindServer)
	if err != nil {
		return nil, nil, fmt.Errorf("peer TLS: %w", err)
	}
	server = &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pool,
		VerifyConnection: requirePeerKind(KindServer),
	}
	client = &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		RootCAs:          pool,
		VerifyConnection: requirePeerKind(KindServer),
	}
	return server, client, nil
}

// PinnedTLS is the configuration for a client that has no CA certificate
// yet, only its pin (from a [JoinToken]). The usual chain verification is
// replaced: the connection is accepted only if a certificate in the
// server's presented chain has the pin (ErrPinMismatch otherwise), the
// leaf verifies against that certificate as the sole root for server
// authentication, and the leaf names a server. Host names are not checked;
// the pinned CA vouches for every server. pin may omit the "sha256:" prefix.
func PinnedTLS(pin string) *tls.Config {
	if !strings.HasPrefix(pin, pinPrefix) {
		pin = pinPrefix + pin
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, pin)
		},
	}
}

// PeerIdentity returns the identity of the verified peer certificate of a
// connection (ErrNoClientCert if there is none, as for a client without a
// certificate or a [PinnedTLS] connection).
func PeerIdentity(state *tls.ConnectionState) (Identity, error) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Identity{}, ErrNoClientCert
	}
	return IdentityFromCert(state.VerifiedChains[0][0])
}

func verifyPinned(chain []*x509.Certificate, pin string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: peer presented no certificate", ErrPinMismatch)
	}
	var root *x509.Certificate
	for _, c := range chain {
		if subtle.ConstantTimeCompare([]byte(PinOf(c.Raw)), []byte(pin)) == 1 {
			root = c
			break
		}
	}
	if root == nil {
		return fmt.Errorf("%w: no certificate in the peer's chain has the pinned hash", ErrPinMismatch)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{
		Roots:     certPool([]*x509.Certificate{root}),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("verify pinned server: %w", err)
	}
	return checkKind(chains[0][0], KindServer)
}

// requirePeerKind returns a VerifyConnection hook that demands a verified
// peer of kind k.
func requirePeerKind(k Kind) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
			return ErrNoClientCert
		}
		return checkKind(cs.VerifiedChains[0][0], k)
	}
}

func checkKind(c *x509.Certificate, k Kind) error {
	id, err := IdentityFromCert(c)
	if err != nil {
		return err
	}
	if id.Kind != k {
		return fmt.Errorf("%w: peer is %s, want %s", ErrWrongKind, id, k)
	}
	return nil
}

// loadOwn loads this process's certificate, which must name kind k, and
// the CA pool.
func loadOwn(certPEM, keyPEM, caPEM []byte, k Kind) (tls.Certificate, *x509.CertPool, error) {
	cas, err := parseCertsPEM(caPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("CA: %w", err)
	}
	cert, leaf, err := loadCert(certPEM, keyPEM, cas)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := checkKind(leaf, k); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("own certificate: %w", err)
	}
	return cert, certPool(cas), nil
}

// loadCert parses a key pair and appends the certificate of the CA among
// cas that signed it, unless the chain already holds it.
func loadCert(certPEM, keyPEM []byte, cas []*x509.Certificate) (tls.Certificate, *x509.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("key pair: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("key pair: %w", err)
		}
	}
	var signer *x509.Certificate
	for _, ca := range cas {
		if leaf.CheckSignatureFrom(ca) == nil {
			signer = ca
			break
		}
	}
	if signer == nil {
		return tls.Certificate{}, nil, ErrNotSignedByCA
	}
	for _, der := range cert.Certificate {
		if bytes.Equal(der, signer.Raw) {
			return cert, leaf, nil
		}
	}
	cert.Certificate = append(cert.Certificate, signer.Raw)
	return cert, leaf, nil
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
