// Package bootstrap writes the files a new cluster starts from: the
// cluster CA, each server's certificate and configuration, and an admin
// operator's certificate with a CLI configuration. `drover dev`, `drover
// demo`, `drover cluster init` and the integration tests all build their
// clusters with it.
package bootstrap

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/controlplane"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

// Validity of what bootstrap issues.
const (
	CAValidity       = 10 * 365 * 24 * time.Hour
	ServerValidity   = 365 * 24 * time.Hour
	OperatorValidity = 90 * 24 * time.Hour
)

// Server describes one server to create.
type Server struct {
	ID         string
	APIAddr    string // host:port
	RaftAddr   string // host:port
	GossipAddr string // host:port
	// Names are extra DNS names or IPs for the certificate; the hosts of
	// APIAddr and RaftAddr are always included.
	Names []string
}

// Plan is a cluster to create in Dir.
type Plan struct {
	Dir     string
	Name    string // cluster name, in the CA's subject
	Servers []Server
	// Expect is each server's bootstrap_expect; default len(Servers).
	// With fewer, the first Expect servers form the cluster and the others
	// join it later as non-voters.
	Expect int
	Now    time.Time
}

// Cluster is what Write created.
type Cluster struct {
	CADir         string
	GossipKey     string            // path of the gossip key file
	ServerConfigs map[string]string // server ID -> path of its server.yaml
	AdminConfig   string            // CLI configuration of the admin operator
}

// Write creates the CA, the gossip key, every server's files and an admin
// operator. Each server's configuration joins the others' gossip addresses
// and expects all of them to bootstrap the cluster.
//
//	DIR/ca/ca.crt, ca.key
//	DIR/servers/ID/server.yaml, tls/, data/
//	DIR/operators/admin/ (certificate) and DIR/admin.yaml (CLI config)
func Write(p Plan) (*Cluster, error) {
	if p.Name == "" {
		p.Name = "drover"
	}
	if p.Expect == 0 {
		p.Expect = len(p.Servers)
	}
	dir, err := filepath.Abs(p.Dir)
	if err != nil {
		return nil, err
	}
	p.Dir = dir
	ca, err := pki.NewCA(p.Name, p.Now, CAValidity)
	if err != nil {
		return nil, err
	}
	out := &Cluster{CADir: filepath.Join(p.Dir, "ca"), ServerConfigs: map[string]string{}}
	if err := ca.Save(out.CADir); err != nil {
		return nil, err
	}
	out.GossipKey = filepath.Join(p.Dir, "gossip.key")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := pki.WriteFileAtomic(out.GossipKey, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	var seeds []string
	for _, s := range p.Servers {
		seeds = append(seeds, s.GossipAddr)
	}
	for _, s := range p.Servers {
		path, err := writeServer(ca, p, s, seeds, out)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", s.ID, err)
		}
		out.ServerConfigs[s.ID] = path
	}
	var urls []string
	for _, s := range p.Servers {
		urls = append(urls, "https://"+s.APIAddr)
	}
	out.AdminConfig = filepath.Join(p.Dir, "admin.yaml")
	if err := WriteOperator(ca, "admin", pki.RoleAdmin, p.Now, filepath.Join(p.Dir, "operators", "admin"), urls, out.AdminConfig); err != nil {
		return nil, err
	}
	return out, nil
}

func writeServer(ca *pki.CA, p Plan, s Server, seeds []string, out *Cluster) (string, error) {
	dir := filepath.Join(p.Dir, "servers", s.ID)
	names := append([]string{"localhost"}, s.Names...)
	for _, addr := range []string{s.APIAddr, s.RaftAddr, s.GossipAddr} {
		if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
			names = append(names, host)
		}
	}
	certPEM, keyPEM, err := ca.IssueServer(s.ID, dedup(names), p.Now, ServerValidity)
	if err != nil {
		return "", err
	}
	if err := writeBundle(filepath.Join(dir, "tls"), "server", certPEM, keyPEM, ca.CertPEM); err != nil {
		return "", err
	}
	var join []string
	for _, seed := range seeds {
		if seed != s.GossipAddr {
			join = append(join, seed)
		}
	}
	// Each server's directory is self-contained, with relative paths, so
	// that it can be copied to the server's host as it is.
	if err := ca.Save(filepath.Join(dir, "ca")); err != nil {
		return "", err
	}
	key, err := os.ReadFile(out.GossipKey)
	if err != nil {
		return "", err
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, "gossip.key"), key, 0o600); err != nil {
		return "", err
	}
	cfg := controlplane.Config{
		ID: s.ID, DataDir: "data", APIAddr: s.APIAddr, RaftAddr: s.RaftAddr, GossipAddr: s.GossipAddr,
		Join: join, BootstrapExpect: p.Expect, GossipKeyFile: "gossip.key",
		TLS:   controlplane.TLSFiles{CA: "tls/ca.crt", Cert: "tls/server.crt", Key: "tls/server.key"},
		CADir: "ca",
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "server.yaml")
	return path, pki.WriteFileAtomic(path, b, 0o600)
}

// WriteOperator issues an operator certificate into dir and writes a CLI
// configuration for it at configPath.
func WriteOperator(ca *pki.CA, name string, role pki.Role, now time.Time, dir string, servers []string, configPath string) error {
	certPEM, keyPEM, err := ca.IssueOperator(name, role, now, OperatorValidity)
	if err != nil {
		return err
	}
	if err := writeBundle(dir, name, certPEM, keyPEM, ca.CertPEM); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cfg := client.Config{Servers: servers, CA: filepath.Join(abs, "ca.crt"),
		Cert: filepath.Join(abs, name+".crt"), Key: filepath.Join(abs, name+".key")}
	return cfg.Save(configPath)
}

func writeBundle(dir, name string, certPEM, keyPEM, caPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{{name + ".crt", certPEM, 0o644}, {name + ".key", keyPEM, 0o600}, {"ca.crt", caPEM, 0o644}} {
		if err := pki.WriteFileAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// FreeLoopbackAddr picks a 127.0.0.1 port free for both TCP and UDP, below
// Linux's ephemeral range (32768 and up) so that no outgoing connection can
// take it between now and the server's start.
func FreeLoopbackAddr() (string, error) {
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free port on 127.0.0.1")
}
