package client

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/pki"
)

// Config is the CLI's configuration file: where the cluster is and which
// operator certificate to present. Relative paths are relative to the
// file's directory.
type Config struct {
	Servers []string `yaml:"servers"` // base URLs, e.g. https://10.0.0.1:7400
	CA      string   `yaml:"ca"`
	Cert    string   `yaml:"cert"`
	Key     string   `yaml:"key"`

	path string
}

// LoadConfig reads a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.path = path
	base := filepath.Dir(path)
	for _, p := range []*string{&c.CA, &c.Cert, &c.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if len(c.Servers) == 0 {
		return nil, fmt.Errorf("config %s: servers: at least one server URL is required", path)
	}
	if c.CA == "" || c.Cert == "" || c.Key == "" {
		return nil, fmt.Errorf("config %s: ca, cert and key are required", path)
	}
	return &c, nil
}

// Path is the file the configuration was read from.
func (c *Config) Path() string { return c.path }

// Save writes the configuration file.
func (c *Config) Save(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, b, 0o600)
}

// Client connects with the configuration's certificate.
func (c *Config) Client() (*Client, error) {
	certPEM, keyPEM, caPEM, err := pki.LoadKeyPair(c.Cert, c.Key, c.CA)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.path, err)
	}
	tlsCfg, err := pki.ClientTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.path, err)
	}
	cl := New(c.Servers, tlsCfg)
	cl.ReadFromLeader = true // operators read their own writes
	return cl, nil
}
