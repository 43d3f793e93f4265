package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCASaveLoad(t *testing.T) {
	now := fixedNow()
	ca := mustCA(t, "prod", now)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"ca.crt": 0o644, "ca.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	got, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Cert.Raw, ca.Cert.Raw) || !bytes.Equal(got.CertPEM, ca.CertPEM) || got.Pin() != ca.Pin() {
		t.Fatal("loaded CA differs from saved CA")
	}
	// The loaded key signs certificates the original certificate verifies.
	certPEM, _ := mustOperator(t, got, "alice", RoleViewer, now, day)
	if err := mustParseCert(t, certPEM).CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("certificate from loaded CA: %v", err)
	}
}

func TestLoadCAKeyPermissions(t *testing.T) {
	ca := mustCA(t, "prod", fixedNow())
	tests := []struct {
		mode fs.FileMode
		err  error
	}{
		{0o600, nil},
		{0o400, nil},
		{0o640, ErrKeyPermissions},
		{0o604, ErrKeyPermissions},
		{0o644, ErrKeyPermissions},
		{0o666, ErrKeyPermissions},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := ca.Save(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "ca.key"), tt.mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCA(dir)
		wantErr(t, err, tt.err)
		if err != nil && !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %v: error %q does not say to chmod 600", tt.mode, err)
		}
	}
}

func TestLoadCAErrors(t *testing.T) {
	now := fixedNow()
	ca, other := mustCA(t, "prod", now), mustCA(t, "prod", now)
	otherDir := t.TempDir()
	if err := other.Save(otherDir); err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(otherDir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := mustServer(t, ca, "cp-1", now, day)

	tests := []struct {
		name   string
		mutate func(dir string) error
		err    error
	}{
		{"missing dir", func(dir string) error { return os.RemoveAll(dir) }, fs.ErrNotExist},
		{"foreign key", func(dir string) error { return os.WriteFile(filepath.Join(dir, "ca.key"), otherKey, 0o600) }, ErrKeyMismatch},
		{"garbage key", func(dir string) error { return os.WriteFile(filepath.Join(dir, "ca.key"), []byte("nope"), 0o600) }, ErrInvalidPEM},
		{"garbage cert", func(dir string) error { return os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("nope"), 0o644) }, ErrInvalidPEM},
		{"leaf as CA", func(dir string) error { return os.WriteFile(filepath.Join(dir, "ca.crt"), leaf, 0o644) }, ErrInvalidPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := ca.Save(dir); err != nil {
				t.Fatal(err)
			}
			if err := tt.mutate(dir); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCA(dir)
			wantErr(t, err, tt.err)
		})
	}
	wantErr(t, (&CA{Cert: ca.Cert}).Save(t.TempDir()), ErrNoCAKey)
}

func TestNewCA(t *testing.T) {
	now := fixedNow()
	ca, err := NewCA("prod-eu", now, 10*365*day)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("not a CA certificate: IsCA=%v MaxPathLenZero=%v usage=%v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if !c.NotBefore.Equal(now.Add(-5*time.Minute)) || !c.NotAfter.Equal(now.Add(10*365*day)) {
		t.Errorf("validity %v..%v", c.NotBefore, c.NotAfter)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if !strings.HasPrefix(ca.Pin(), "sha256:") || len(ca.Pin()) != len("sha256:")+43 {
		t.Errorf("Pin() = %q", ca.Pin())
	}

	tests := []struct {
		name     string
		cluster  string
		now      time.Time
		validity time.Duration
		err      error
	}{
		{"empty name", "", now, day, ErrInvalidName},
		{"bad name", "prod eu", now, day, ErrInvalidName},
		{"zero time", "prod", time.Time{}, day, ErrInvalidValidity},
		{"zero validity", "prod", now, 0, ErrInvalidValidity},
		{"negative validity", "prod", now, -day, ErrInvalidValidity},
	}
	for _, tt := range tests {
		_, err := NewCA(tt.cluster, tt.now, tt.validity)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestIssueServer(t *testing.T) {
	now := fixedNow()
	ca := mustCA(t, "prod", now)
	certPEM, keyPEM, err := ca.IssueServer("cp-1", []string{"localhost", "cp-1.example.com", "10.0.0.7", "::1"}, now, 30*day)
	if err != nil {
		t.Fatal(err)
	}
	c := mustParseCert(t, certPEM)
	if !slices.Equal(c.DNSNames, []string{"localhost", "cp-1.example.com"}) {
		t.Errorf("DNSNames = %v", c.DNSNames)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IPAddresses = %v", c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("leaf is a CA")
	}
	if !c.NotBefore.Equal(now.Add(-5*time.Minute)) || !c.NotAfter.Equal(now.Add(30*day)) {
		t.Errorf("validity %v..%v", c.NotBefore, c.NotAfter)
	}
	if _, err := x509.ParsePKCS8PrivateKey(pemBytes(t, keyPEM)); err != nil {
		t.Errorf("key: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: certPool([]*x509.Certificate{ca.Cert}), CurrentTime: now, DNSName: "cp-1.example.com"}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestIssueLimits(t *testing.T) {
	now := fixedNow()
	ca, err := NewCA("prod", now, 10*day)
	if err != nil {
		t.Fatal(err)
	}

	// A certificate never outlives the CA.
	certPEM, _ := mustOperator(t, ca, "alice", RoleAdmin, now, 100*day)
	if c := mustParseCert(t, certPEM); !c.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want CA's %v", c.NotAfter, ca.Cert.NotAfter)
	}

	// Serials are random, positive and at most 128 bits.
	seen := map[string]bool{}
	for range 20 {
		certPEM, _ := mustOperator(t, ca, "alice", RoleAdmin, now, day)
		c := mustParseCert(t, certPEM)
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("serial %v", c.SerialNumber)
		}
		s := SerialString(c)
		if seen[s] || s != strings.ToLower(s) {
			t.Errorf("serial %q repeated or not lower case", s)
		}
		seen[s] = true
	}

	tests := []struct {
		name  string
		issue func() error
		err   error
	}{
		{"CA expired", func() error { _, _, err := ca.IssueOperator("a", RoleAdmin, ca.Cert.NotAfter, day); return err }, ErrCAExpired},
		{"zero validity", func() error { _, _, err := ca.IssueOperator("a", RoleAdmin, now, 0); return err }, ErrInvalidValidity},
		{"zero time", func() error { _, _, err := ca.IssueServer("a", nil, time.Time{}, day); return err }, ErrInvalidValidity},
		{"bad operator role", func() error { _, _, err := ca.IssueOperator("a", "root", now, day); return err }, ErrInvalidIdentity},
		{"bad operator name", func() error { _, _, err := ca.IssueOperator("a b", RoleAdmin, now, day); return err }, ErrInvalidIdentity},
		{"bad server name", func() error { _, _, err := ca.IssueServer("", nil, now, day); return err }, ErrInvalidIdentity},
		{"bad host", func() error { _, _, err := ca.IssueServer("a", []string{"bad host"}, now, day); return err }, ErrInvalidName},
		{"wildcard host", func() error { _, _, err := ca.IssueServer("a", []string{"*.example.com"}, now, day); return err }, ErrInvalidName},
		{"zoned IP", func() error { _, _, err := ca.IssueServer("a", []string{"fe80::1%eth0"}, now, day); return err }, ErrInvalidName},
		{"no key", func() error { _, _, err := (&CA{Cert: ca.Cert}).IssueOperator("a", RoleAdmin, now, day); return err }, ErrNoCAKey},
	}
	for _, tt := range tests {
		if err := tt.issue(); !errors.Is(err, tt.err) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestValidDNSName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"localhost", true},
		{"cp-1.example.com", true},
		{"A1.b2", true},
		{"x", true},
		{strings.Repeat("a", 63) + ".com", true},
		{strings.Repeat("a", 64) + ".com", false},
		{strings.Repeat("a.", 127) + "ab", false}, // 256 characters
		{"", false},
		{".example.com", false},
		{"example.com.", false},
		{"a..b", false},
		{"-a.b", false},
		{"a-.b", false},
		{"a.b-", false},
		{"a_b", false},
		{"*.b", false},
		{"a b", false},
	}
	for _, tt := range tests {
		if got := validDNSName(tt.in); got != tt.ok {
			t.Errorf("validDNSName(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

func TestSignCSR(t *testing.T) {
	now := fixedNow()
	ca := mustCA(t, "prod", now)
	agent := Identity{Kind: KindAgent, Name: "web-1"}

	_, goodCSR, err := NewKeyAndCSR("web-1")
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(goodCSR)
	i := bytes.Index(tampered, []byte("web-1"))
	if i < 0 {
		t.Fatal("name not found in CSR")
	}
	tampered[i+4] = 'x' // still parses; CN now "web-x"; signature broken

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := func(key any, cn string, uris ...string) []byte {
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
		for _, s := range uris {
			u, _ := url.Parse(s)
			tmpl.URIs = append(tmpl.URIs, u)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	tests := []struct {
		name string
		csr  []byte
		id   Identity
		err  error
		eku  []x509.ExtKeyUsage
	}{
		{"ecdsa agent", goodCSR, agent, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"ed25519 agent", csr(edKey, "web-1"), agent, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"identity not from CSR", csr(p256, "web-1", "drover:server/web-1", "drover:operator/web-1?role=admin"), agent, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"server identity", csr(p256, "cp-4"), Identity{Kind: KindServer, Name: "cp-4"}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{"CN differs", goodCSR, Identity{Kind: KindAgent, Name: "web-2"}, ErrCSRName, nil},
		{"empty CN", csr(p256, ""), agent, ErrCSRName, nil},
		{"tampered", tampered, agent, ErrBadCSR, nil},
		{"tampered with matching id", tampered, Identity{Kind: KindAgent, Name: "web-x"}, ErrBadCSR, nil},
		{"truncated", goodCSR[:len(goodCSR)-10], agent, ErrBadCSR, nil},
		{"garbage", []byte("not a csr"), agent, ErrBadCSR, nil},
		{"RSA key", csr(rsaKey, "web-1"), agent, ErrUnsupportedKey, nil},
		{"P-384 key", csr(p384, "web-1"), agent, ErrUnsupportedKey, nil},
		{"invalid identity", goodCSR, Identity{Kind: KindAgent, Name: "web-1", Role: RoleAdmin}, ErrInvalidIdentity, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, err := ca.SignCSR(tt.csr, tt.id, now, day)
			wantErr(t, err, tt.err)
			if err != nil {
				return
			}
			c := mustParseCert(t, certPEM)
			got, err := IdentityFromCert(c)
			if err != nil || got != tt.id || len(c.URIs) != 1 {
				t.Errorf("identity %v, %v (URIs %v), want %v", got, err, c.URIs, tt.id)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.eku) {
				t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, tt.eku)
			}
			if err := c.CheckSignatureFrom(ca.Cert); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestNewKeyAndCSR(t *testing.T) {
	keyPEM, der, err := NewKeyAndCSR("web-1")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "web-1" || csr.CheckSignature() != nil {
		t.Errorf("CSR CN %q, signature %v", csr.Subject.CommonName, csr.CheckSignature())
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || !isP256(pub) || !pub.Equal(csr.PublicKey) {
		t.Error("key is not the CSR's P-256 key")
	}
	_, _, err = NewKeyAndCSR("web 1")
	wantErr(t, err, ErrInvalidIdentity)
}

func TestSerialString(t *testing.T) {
	if got := SerialString(nil); got != "" {
		t.Errorf("SerialString(nil) = %q", got)
	}
	c := &x509.Certificate{SerialNumber: bigHex(t, "00ABCDEF0123")}
	if got := SerialString(c); got != "abcdef0123" {
		t.Errorf("SerialString = %q", got)
	}
}
