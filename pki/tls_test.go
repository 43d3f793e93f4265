package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

// tlsFixture is a cluster CA with a server certificate, plus a second CA
// of the same cluster name (so its certificates look plausible).
type tlsFixture struct {
	now                 time.Time
	ca, foreign         *CA
	srvCert, srvKey     []byte
	serverTLS           *tls.Config
	peerSrv, peerCli    *tls.Config
	opCert, opKey       []byte
	agentCert, agentKey []byte
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	now := time.Now()
	// The CAs were made a month ago so certificates can be issued in the
	// past, already expired.
	f := &tlsFixture{now: now, ca: mustCA(t, "prod", now.Add(-30*day)), foreign: mustCA(t, "prod", now.Add(-30*day))}
	f.srvCert, f.srvKey = mustServer(t, f.ca, "cp-1", now, day)
	f.opCert, f.opKey = mustOperator(t, f.ca, "alice", RoleAdmin, now, day)
	f.agentCert, f.agentKey = mustAgent(t, f.ca, "web-1", now)
	var err error
	if f.serverTLS, err = ServerTLS(f.srvCert, f.srvKey, f.ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	if f.peerSrv, f.peerCli, err = PeerTLS(f.srvCert, f.srvKey, f.ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustClientTLS(t *testing.T, certPEM, keyPEM, caPEM []byte) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rawServerTLS serves certPEM with the given extra chain certificates and
// none of this package's checks, to impersonate misbehaving servers.
func rawServerTLS(t *testing.T, certPEM, keyPEM []byte, chain ...*x509.Certificate) *tls.Config {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
}

// fakeServer issues a certificate that is good for server authentication
// but names an agent, which only a compromised CA would produce.
func fakeServer(t *testing.T, ca *CA, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := leafTemplate(Identity{Kind: KindAgent, Name: "evil"})
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.DNSNames = []string{"localhost"}
	key, keyPEM, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err = ca.sign(tmpl, &key.PublicKey, now, day)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// trusting returns a copy of a client configuration (holding a certificate
// from another CA) that trusts ca's servers.
func trusting(cfg *tls.Config, ca *CA) *tls.Config {
	cfg = cfg.Clone()
	cfg.RootCAs = certPool([]*x509.Certificate{ca.Cert})
	return cfg
}

func wantCertError(t *testing.T, err error, reason x509.InvalidReason) {
	t.Helper()
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != reason {
		t.Fatalf("error = %v, want x509 invalid reason %v", err, reason)
	}
}

func TestServerTLSClients(t *testing.T) {
	f := newTLSFixture(t)
	now := f.now
	foreignOp, foreignOpKey := mustOperator(t, f.foreign, "alice", RoleAdmin, now, day)
	otherCA := mustCA(t, "staging", now)
	otherOp, otherOpKey := mustOperator(t, otherCA, "alice", RoleAdmin, now, day)
	expiredOp, expiredOpKey := mustOperator(t, f.ca, "alice", RoleAdmin, now.Add(-2*day), day)

	tests := []struct {
		name    string
		cli     *tls.Config
		want    Identity
		idErr   error // from PeerIdentity on the server side
		refused bool  // the server fails the handshake
	}{
		{name: "operator", cli: mustClientTLS(t, f.opCert, f.opKey, f.ca.CertPEM),
			want: Identity{Kind: KindOperator, Name: "alice", Role: RoleAdmin}},
		{name: "agent", cli: mustClientTLS(t, f.agentCert, f.agentKey, f.ca.CertPEM),
			want: Identity{Kind: KindAgent, Name: "web-1"}},
		{name: "no certificate", cli: mustClientTLS(t, nil, nil, f.ca.CertPEM), idErr: ErrNoClientCert},
		{name: "foreign CA, same subject", cli: trusting(mustClientTLS(t, foreignOp, foreignOpKey, f.foreign.CertPEM), f.ca), refused: true},
		// A client offers only certificates from the CAs the server names,
		// so this one connects without a certificate and has no identity.
		{name: "foreign CA, other subject", cli: trusting(mustClientTLS(t, otherOp, otherOpKey, otherCA.CertPEM), f.ca), idErr: ErrNoClientCert},
		{name: "expired", cli: mustClientTLS(t, expiredOp, expiredOpKey, f.ca.CertPEM), refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, f.serverTLS, tt.cli)
			if tt.refused {
				if r.srvErr == nil || r.cliErr == nil {
					t.Fatalf("handshake accepted: server %v, client %v", r.srvErr, r.cliErr)
				}
				t.Logf("refused: %v", r.srvErr)
				return
			}
			if r.srvErr != nil || r.cliErr != nil {
				t.Fatalf("handshake: server %v, client %v", r.srvErr, r.cliErr)
			}
			got, err := PeerIdentity(&r.srv)
			wantErr(t, err, tt.idErr)
			if got != tt.want {
				t.Errorf("PeerIdentity = %v, want %v", got, tt.want)
			}
			// The client sees the server's identity and the CA after the leaf.
			if id, err := PeerIdentity(&r.cli); err != nil || id != (Identity{Kind: KindServer, Name: "cp-1"}) {
				t.Errorf("client PeerIdentity = %v, %v", id, err)
			}
			if pc := r.cli.PeerCertificates; len(pc) != 2 || !bytes.Equal(pc[1].Raw, f.ca.Cert.Raw) {
				t.Errorf("server sent %d certificates, want leaf and CA", len(pc))
			}
		})
	}
	t.Run("expired reason", func(t *testing.T) {
		r := handshake(t, f.serverTLS, tests[len(tests)-1].cli)
		wantCertError(t, r.srvErr, x509.Expired)
	})
}

func TestClientTLSServers(t *testing.T) {
	f := newTLSFixture(t)
	now := f.now
	foreignSrv, foreignSrvKey := mustServer(t, f.foreign, "cp-1", now, day)
	expiredSrv, expiredSrvKey := mustServer(t, f.ca, "cp-1", now.Add(-2*day), day)
	fakeSrv, fakeSrvKey := fakeServer(t, f.ca, now)
	client := mustClientTLS(t, f.opCert, f.opKey, f.ca.CertPEM)
	otherHost := client.Clone()
	otherHost.ServerName = "cp-9.example.com"

	tests := []struct {
		name  string
		srv   *tls.Config
		cli   *tls.Config
		check func(t *testing.T, err error)
	}{
		{"good", f.serverTLS, client, func(t *testing.T, err error) { wantErr(t, err, nil) }},
		{"foreign CA", rawServerTLS(t, foreignSrv, foreignSrvKey, f.foreign.Cert), client, func(t *testing.T, err error) {
			var ua x509.UnknownAuthorityError
			if !errors.As(err, &ua) {
				t.Fatalf("error = %v, want unknown authority", err)
			}
		}},
		{"expired", rawServerTLS(t, expiredSrv, expiredSrvKey, f.ca.Cert), client, func(t *testing.T, err error) { wantCertError(t, err, x509.Expired) }},
		{"wrong host", f.serverTLS, otherHost, func(t *testing.T, err error) {
			var he x509.HostnameError
			if !errors.As(err, &he) {
				t.Fatalf("error = %v, want hostname error", err)
			}
		}},
		{"not a server identity", rawServerTLS(t, fakeSrv, fakeSrvKey, f.ca.Cert), client, func(t *testing.T, err error) { wantErr(t, err, ErrWrongKind) }},
		{"peer client, not a server identity", rawServerTLS(t, fakeSrv, fakeSrvKey, f.ca.Cert), f.peerCli, func(t *testing.T, err error) { wantErr(t, err, ErrWrongKind) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, handshake(t, tt.srv, tt.cli).cliErr)
		})
	}
}

func TestPeerTLS(t *testing.T) {
	f := newTLSFixture(t)
	now := f.now
	cp2, cp2Key := mustServer(t, f.ca, "cp-2", now, day)
	_, peer2, err := PeerTLS(cp2, cp2Key, f.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	foreign, foreignKey := mustServer(t, f.foreign, "cp-2", now, day)
	_, foreignPeer, err := PeerTLS(foreign, foreignKey, f.foreign.CertPEM)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cli  *tls.Config
		err  error // server-side; nil means accepted
	}{
		{"server peer", peer2, nil},
		{"operator", mustClientTLS(t, f.opCert, f.opKey, f.ca.CertPEM), ErrWrongKind},
		{"agent", mustClientTLS(t, f.agentCert, f.agentKey, f.ca.CertPEM), ErrWrongKind},
		{"no certificate", mustClientTLS(t, nil, nil, f.ca.CertPEM), errAny},
		{"foreign CA", trusting(foreignPeer, f.ca), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, f.peerSrv, tt.cli)
			switch tt.err {
			case nil:
				if r.srvErr != nil || r.cliErr != nil {
					t.Fatalf("handshake: server %v, client %v", r.srvErr, r.cliErr)
				}
				srvSees, err1 := PeerIdentity(&r.srv)
				cliSees, err2 := PeerIdentity(&r.cli)
				if err1 != nil || err2 != nil || srvSees != (Identity{Kind: KindServer, Name: "cp-2"}) || cliSees != (Identity{Kind: KindServer, Name: "cp-1"}) {
					t.Errorf("identities %v (%v), %v (%v)", srvSees, err1, cliSees, err2)
				}
			case errAny:
				if r.srvErr == nil || r.cliErr == nil {
					t.Fatalf("handshake accepted: server %v, client %v", r.srvErr, r.cliErr)
				}
				t.Logf("refused: %v", r.srvErr)
			default:
				wantErr(t, r.srvErr, tt.err)
				if r.cliErr == nil {
					t.Error("client did not see the refusal")
				}
			}
		})
	}
}

func TestPinnedTLS(t *testing.T) {
	f := newTLSFixture(t)
	now := f.now
	foreignSrv, foreignSrvKey := mustServer(t, f.foreign, "cp-1", now, day)
	expiredSrv, expiredSrvKey := mustServer(t, f.ca, "cp-1", now.Add(-2*day), day)
	fakeSrv, fakeSrvKey := fakeServer(t, f.ca, now)
	pin := f.ca.Pin()

	tests := []struct {
		name string
		srv  *tls.Config
		pin  string
		err  error // client-side; errAny for any error
	}{
		{"right pin", f.serverTLS, pin, nil},
		{"right pin, no prefix", f.serverTLS, pin[len("sha256:"):], nil},
		{"peer server", f.peerSrv, pin, errAny}, // requires a client certificate
		{"wrong pin", f.serverTLS, f.foreign.Pin(), ErrPinMismatch},
		{"empty pin", f.serverTLS, "", ErrPinMismatch},
		{"CA not sent", rawServerTLS(t, f.srvCert, f.srvKey), pin, ErrPinMismatch},
		{"pinned CA sent but did not sign the leaf", rawServerTLS(t, foreignSrv, foreignSrvKey, f.ca.Cert), pin, errAny},
		{"expired", rawServerTLS(t, expiredSrv, expiredSrvKey, f.ca.Cert), pin, errAny},
		{"not a server identity", rawServerTLS(t, fakeSrv, fakeSrvKey, f.ca.Cert), pin, ErrWrongKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, tt.srv, PinnedTLS(tt.pin))
			switch tt.err {
			case nil:
				if r.srvErr != nil || r.cliErr != nil {
					t.Fatalf("handshake: server %v, client %v", r.srvErr, r.cliErr)
				}
				// No verified chain exists on a pinned connection.
				_, err := PeerIdentity(&r.cli)
				wantErr(t, err, ErrNoClientCert)
			case errAny:
				if r.cliErr == nil {
					t.Fatal("client accepted the server")
				}
				t.Logf("refused: %v", r.cliErr)
			default:
				wantErr(t, r.cliErr, tt.err)
			}
		})
	}
	t.Run("expired reason", func(t *testing.T) {
		r := handshake(t, rawServerTLS(t, expiredSrv, expiredSrvKey, f.ca.Cert), PinnedTLS(pin))
		wantCertError(t, r.cliErr, x509.Expired)
	})
}

func TestTLSConfigs(t *testing.T) {
	f := newTLSFixture(t)
	foreignSrv, foreignSrvKey := mustServer(t, f.foreign, "cp-1", f.now, day)
	_, otherKey := mustServer(t, f.ca, "cp-2", f.now, day)
	bundled := append(append([]byte{}, f.srvCert...), f.ca.CertPEM...)

	tests := []struct {
		name  string
		build func() error
		err   error
	}{
		{"server with operator cert", func() error { _, err := ServerTLS(f.opCert, f.opKey, f.ca.CertPEM); return err }, ErrWrongKind},
		{"peer with agent cert", func() error { _, _, err := PeerTLS(f.agentCert, f.agentKey, f.ca.CertPEM); return err }, ErrWrongKind},
		{"server cert from other CA", func() error { _, err := ServerTLS(foreignSrv, foreignSrvKey, f.ca.CertPEM); return err }, ErrNotSignedByCA},
		{"client cert from other CA", func() error { _, err := ClientTLS(foreignSrv, foreignSrvKey, f.ca.CertPEM); return err }, ErrNotSignedByCA},
		{"garbage CA", func() error { _, err := ServerTLS(f.srvCert, f.srvKey, []byte("x")); return err }, ErrInvalidPEM},
		{"key as CA", func() error { _, err := ClientTLS(nil, nil, f.srvKey); return err }, ErrInvalidPEM},
		{"wrong key", func() error { _, err := ServerTLS(f.srvCert, otherKey, f.ca.CertPEM); return err }, errAny},
		{"cert without key", func() error { _, err := ClientTLS(f.opCert, nil, f.ca.CertPEM); return err }, errAny},
	}
	for _, tt := range tests {
		err := tt.build()
		if tt.err == errAny && err == nil || tt.err != errAny && !errors.Is(err, tt.err) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.err)
		}
	}

	// A certificate PEM that already carries the CA is not given it twice.
	cfg, err := ServerTLS(bundled, f.srvKey, f.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Certificates[0].Certificate); n != 2 {
		t.Errorf("chain has %d certificates, want 2", n)
	}
	for name, c := range map[string]*tls.Config{"server": f.serverTLS, "peer server": f.peerSrv, "peer client": f.peerCli, "pinned": PinnedTLS("x"), "client": cfg} {
		if c.MinVersion != tls.VersionTLS13 {
			t.Errorf("%s: MinVersion %x", name, c.MinVersion)
		}
	}
	if f.serverTLS.ClientAuth != tls.VerifyClientCertIfGiven || f.peerSrv.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Error("wrong ClientAuth modes")
	}
}

// errAny in a test table means "some error".
var errAny = errors.New("any error")
