package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

// The agent's key and certificate live in a generation directory,
// tls/gen-N/{agent.key,agent.crt}, and tls/current points at the one in
// use. A renewal writes the next generation whole, then switches the link
// atomically, so a crash never leaves a key with another key's
// certificate.

// credentials is the agent's TLS identity, swapped in place on renewal.
type credentials struct {
	cert atomic.Pointer[tls.Certificate]
}

// load reads the current generation.
func (c *credentials) load(l layout) error {
	certPEM, keyPEM, _, err := pki.LoadKeyPair(l.tls("current/agent.crt"), l.tls("current/agent.key"), l.tls("ca.crt"))
	if err != nil {
		return fmt.Errorf("cannot load the agent's certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return err
		}
	}
	c.cert.Store(&pair)
	return nil
}

// leaf is the certificate in use.
func (c *credentials) leaf() *x509.Certificate { return c.cert.Load().Leaf }

// tlsConfig presents whatever certificate is current at each handshake.
func (c *credentials) tlsConfig(caPEM []byte) (*tls.Config, error) {
	cfg, err := pki.ClientTLS(nil, nil, caPEM)
	if err != nil {
		return nil, err
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.cert.Load(), nil }
	return cfg, nil
}

// writeGeneration stores a key and certificate as a new generation and
// makes it current.
func writeGeneration(l layout, keyPEM, certPEM []byte) error {
	next := 1
	if target, err := os.Readlink(l.tls("current")); err == nil {
		n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(target), "gen-"))
		next = n + 1
	}
	gen := fmt.Sprintf("gen-%d", next)
	dir := l.tls(gen)
	_ = os.RemoveAll(dir) // a half-written generation from a crash
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, "agent.key"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, "agent.crt"), certPEM, 0o644); err != nil {
		return err
	}
	tmp := l.tls("current.new")
	_ = os.Remove(tmp)
	if err := os.Symlink(gen, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, l.tls("current")); err != nil {
		return err
	}
	if err := artifacts.SyncDir(l.tls("")); err != nil {
		return err
	}
	// Older generations are no longer needed.
	entries, _ := os.ReadDir(l.tls(""))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gen-") && e.Name() != gen {
			_ = os.RemoveAll(l.tls(e.Name()))
		}
	}
	return nil
}

// renewDue reports whether the certificate has used two thirds of its life.
func renewDue(cert *x509.Certificate, now time.Time) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return !now.Before(cert.NotBefore.Add(life * 2 / 3))
}

// maybeRenew renews the agent's certificate once it is two thirds through
// its life, with a new key. A failure is retried at the next loop; once
// the certificate has expired only a new enrollment helps, and the agent
// says so.
func (a *Agent) maybeRenew(ctx context.Context) {
	leaf := a.creds.leaf()
	now := a.cfg.Clock.Now()
	if !renewDue(leaf, now) {
		return
	}
	if now.After(leaf.NotAfter) {
		a.log.Error("the agent's certificate has expired; enroll the host again with a new join token", "expired", leaf.NotAfter)
		return
	}
	if err := a.renew(ctx); err != nil {
		a.log.Warn("cannot renew the agent's certificate; will retry", "err", err, "expires", leaf.NotAfter)
	}
}

func (a *Agent) renew(ctx context.Context) error {
	keyPEM, csrDER, err := pki.NewKeyAndCSR(a.name)
	if err != nil {
		return err
	}
	var resp api.EnrollResponse
	if _, err := a.client.Do(ctx, client.Request{Method: http.MethodPost, Path: api.PathRenew, JSON: api.RenewRequest{CSR: csrDER}}, &resp); err != nil {
		return err
	}
	if _, err := pki.ClientTLS(resp.Certificate, keyPEM, resp.CA); err != nil {
		return fmt.Errorf("the server sent an unusable certificate: %w", err)
	}
	if err := writeGeneration(a.files, keyPEM, resp.Certificate); err != nil {
		return err
	}
	if err := a.creds.load(a.files); err != nil {
		return err
	}
	a.log.Info("certificate renewed", "expires", a.creds.leaf().NotAfter)
	return nil
}
