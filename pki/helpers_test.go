package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

const day = 24 * time.Hour

// fixedNow is a deterministic issue time for tests that do no handshake.
func fixedNow() time.Time { return time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC) }

func mustCA(t *testing.T, name string, now time.Time) *CA {
	t.Helper()
	ca, err := NewCA(name, now, 365*day)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func mustServer(t *testing.T, ca *CA, name string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueServer(name, []string{"localhost", "127.0.0.1"}, now, validity)
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	return certPEM, keyPEM
}

func mustOperator(t *testing.T, ca *CA, name string, role Role, now time.Time, validity time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueOperator(name, role, now, validity)
	if err != nil {
		t.Fatalf("IssueOperator: %v", err)
	}
	return certPEM, keyPEM
}

func mustAgent(t *testing.T, ca *CA, name string, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	keyPEM, csr, err := NewKeyAndCSR(name)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	certPEM, err = ca.SignCSR(csr, Identity{Kind: KindAgent, Name: name}, now, day)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	return certPEM, keyPEM
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

type hsResult struct {
	srv, cli       tls.ConnectionState
	srvErr, cliErr error
}

// handshake runs a TLS handshake over a 127.0.0.1 TCP connection. After a
// successful handshake the server writes one byte the client reads: in TLS
// 1.3 the client finishes before the server has judged its certificate, so
// a server-side refusal reaches the client only on that read.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config) hsResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type srvRes struct {
		state tls.ConnectionState
		err   error
	}
	ch := make(chan srvRes, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- srvRes{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, srvCfg)
		if err := tc.Handshake(); err != nil {
			ch <- srvRes{err: err}
			return
		}
		st := tc.ConnectionState()
		_, err = tc.Write([]byte{1})
		_, _ = io.Copy(io.Discard, tc) // until the client closes
		ch <- srvRes{state: st, err: err}
	}()

	var r hsResult
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cfg := cliCfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = "localhost"
	}
	tc := tls.Client(c, cfg)
	if r.cliErr = tc.Handshake(); r.cliErr == nil {
		r.cli = tc.ConnectionState()
		_, r.cliErr = io.ReadFull(tc, make([]byte, 1))
	}
	_ = c.Close()
	s := <-ch
	r.srv, r.srvErr = s.state, s.err
	return r
}

func pemBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

func bigHex(t *testing.T, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return n
}
