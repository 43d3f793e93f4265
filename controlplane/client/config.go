package client

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/pki"
)

// DefaultContext is the name of the one context of a single-cluster file:
// the form `drover cluster init`, `drover dev` and `drover operator issue`
// write, with servers, ca, cert and key at the top level.
const DefaultContext = "default"

// Setting names, as configuration files, messages and Config.From use them.
const (
	SettingContext = "context"
	SettingServers = "servers"
	SettingCA      = "ca"
	SettingCert    = "cert"
	SettingKey     = "key"
)

// Config is how a client reaches one cluster: its servers and the operator
// certificate to present. It is the resolved form — one context of a
// configuration File with the environment and flags applied (Resolve) —
// and also the single-cluster file form that Save writes.
type Config struct {
	Servers []string `yaml:"servers"` // base URLs, e.g. https://10.0.0.1:7400
	CA      string   `yaml:"ca"`
	Cert    string   `yaml:"cert"`
	Key     string   `yaml:"key"`

	// Context names the context the settings came from ("" when no file
	// was read).
	Context string `yaml:"-"`
	// From says where each setting came from, by setting name: a flag
	// ("--server"), an environment variable ("DROVER_SERVERS") or the file
	// ("/home/alice/.config/drover/config.yaml, context prod").
	From map[string]string `yaml:"-"`

	path string
}

// File is the CLI's configuration file: named contexts, each a cluster's
// servers and an operator certificate, and the context in use. Relative
// paths in it are relative to the file's directory.
//
//	current_context: prod
//	contexts:
//	  - name: prod
//	    servers: [https://10.0.0.1:7400, https://10.0.0.2:7400]
//	    ca: prod/ca.crt
//	    cert: prod/alice.crt
//	    key: prod/alice.key
//
// The single-cluster form — servers, ca, cert and key at the top level —
// is read as the context named "default".
type File struct {
	CurrentContext string    `yaml:"current_context,omitempty"`
	Contexts       []Context `yaml:"contexts,omitempty"`

	Servers []string `yaml:"servers,omitempty"`
	CA      string   `yaml:"ca,omitempty"`
	Cert    string   `yaml:"cert,omitempty"`
	Key     string   `yaml:"key,omitempty"`
}

// Context is one named cluster and operator certificate.
type Context struct {
	Name    string   `yaml:"name" json:"name"`
	Servers []string `yaml:"servers" json:"servers"`
	CA      string   `yaml:"ca" json:"ca"`
	Cert    string   `yaml:"cert" json:"cert"`
	Key     string   `yaml:"key" json:"key"`
}

// Errors of configuration, for errors.Is.
var (
	// ErrNoConfigFile: the configuration file does not exist.
	ErrNoConfigFile = errors.New("no CLI configuration file")
	// ErrNoContext: the context asked for is not in the file.
	ErrNoContext = errors.New("no such context")
	// ErrIncomplete: a setting the client needs is set nowhere.
	ErrIncomplete = errors.New("incomplete CLI configuration")
)

// ReadFile reads and checks a configuration file. A file that does not
// exist is ErrNoConfigFile.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoConfigFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &f, nil
}

func (f *File) hasFlat() bool {
	return len(f.Servers) > 0 || f.CA != "" || f.Cert != "" || f.Key != ""
}

func (f *File) validate() error {
	seen := map[string]bool{}
	if f.hasFlat() {
		seen[DefaultContext] = true
	}
	for i, c := range f.Contexts {
		if err := validContextName(c.Name); err != nil {
			return fmt.Errorf("contexts[%d].name: %w", i, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("contexts[%d].name: %q is used twice (the top-level servers, ca, cert and key are the context %q)", i, c.Name, DefaultContext)
		}
		seen[c.Name] = true
	}
	if f.CurrentContext != "" && !seen[f.CurrentContext] {
		return fmt.Errorf("current_context: %q is not one of the contexts (%s)", f.CurrentContext, strings.Join(f.Names(), ", "))
	}
	return nil
}

// validContextName allows what a shell word and a file name allow without
// quoting.
func validContextName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("%q: a context name has 1 to 63 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: a context name has only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Names lists the file's contexts in file order.
func (f *File) Names() []string {
	var out []string
	if f.hasFlat() {
		out = append(out, DefaultContext)
	}
	for _, c := range f.Contexts {
		out = append(out, c.Name)
	}
	return out
}

// Current is the context in use: current_context, or the file's only
// context; "" when the file has several and names none.
func (f *File) Current() string {
	if f.CurrentContext != "" {
		return f.CurrentContext
	}
	if names := f.Names(); len(names) == 1 {
		return names[0]
	}
	return ""
}

// Lookup returns the named context as written in the file.
func (f *File) Lookup(name string) (Context, bool) {
	if name == DefaultContext && f.hasFlat() {
		return Context{Name: DefaultContext, Servers: f.Servers, CA: f.CA, Cert: f.Cert, Key: f.Key}, true
	}
	for _, c := range f.Contexts {
		if c.Name == name {
			return c, true
		}
	}
	return Context{}, false
}

// unflatten turns the single-cluster form into the context "default", so
// that contexts can be added beside it.
func (f *File) unflatten() {
	if !f.hasFlat() {
		return
	}
	c, _ := f.Lookup(DefaultContext)
	f.Contexts = append([]Context{c}, f.Contexts...)
	f.Servers, f.CA, f.Cert, f.Key = nil, "", "", ""
	if f.CurrentContext == "" {
		f.CurrentContext = DefaultContext
	}
}

// SetContext adds a context or replaces the one of the same name.
func (f *File) SetContext(c Context) error {
	if err := validContextName(c.Name); err != nil {
		return err
	}
	f.unflatten()
	if i := slices.IndexFunc(f.Contexts, func(x Context) bool { return x.Name == c.Name }); i >= 0 {
		f.Contexts[i] = c
	} else {
		f.Contexts = append(f.Contexts, c)
	}
	return nil
}

// DeleteContext removes a context; if it was current, none is.
func (f *File) DeleteContext(name string) error {
	if _, ok := f.Lookup(name); !ok {
		return f.noContext(name)
	}
	f.unflatten()
	f.Contexts = slices.DeleteFunc(f.Contexts, func(c Context) bool { return c.Name == name })
	if f.CurrentContext == name {
		f.CurrentContext = ""
	}
	return nil
}

// Use makes a context current.
func (f *File) Use(name string) error {
	if _, ok := f.Lookup(name); !ok {
		return f.noContext(name)
	}
	f.CurrentContext = name
	return nil
}

func (f *File) noContext(name string) error {
	names := f.Names()
	if len(names) == 0 {
		return fmt.Errorf("%w %q: the file has no contexts yet (drover config set-context)", ErrNoContext, name)
	}
	return fmt.Errorf("%w %q; the contexts are %s", ErrNoContext, name, strings.Join(names, ", "))
}

// Write saves the file atomically, readable by its owner only, creating
// its directory if need be.
func (f *File) Write(path string) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, b, 0o600)
}

// Setting is one value given outside the file, and where it was given.
type Setting struct {
	Value string
	From  string // e.g. "--server" or "DROVER_SERVERS"
}

// Overrides are settings given by flags or the environment. An empty
// value overrides nothing. Servers is a comma- or space-separated list.
type Overrides struct {
	Context, Servers, CA, Cert, Key Setting
}

// Resolve builds the client's configuration: the context chosen by the
// first of layers that names one (else the file's current context), then
// each setting from the first of layers that sets it, else from that
// context. Layers come first to last in priority order: flags, then the
// environment. path is the configuration file; it may be missing when
// the layers set everything.
func Resolve(path string, layers ...Overrides) (*Config, error) {
	pick := func(get func(Overrides) Setting) Setting {
		for _, l := range layers {
			if s := get(l); strings.TrimSpace(s.Value) != "" {
				return s
			}
		}
		return Setting{}
	}
	ctxPick := pick(func(o Overrides) Setting { return o.Context })
	cfg := &Config{path: path, From: map[string]string{}}

	var ctx Context
	f, err := ReadFile(path)
	noFile := err
	switch {
	case errors.Is(err, ErrNoConfigFile):
		if ctxPick.Value != "" {
			return nil, fmt.Errorf("%s asks for context %q, but %w", ctxPick.From, ctxPick.Value, err)
		}
		f = nil
	case err != nil:
		return nil, err
	default:
		name := ctxPick.Value
		cfg.From[SettingContext] = ctxPick.From
		if name == "" {
			name = f.Current()
			cfg.From[SettingContext] = path
		}
		if name == "" {
			if len(f.Names()) > 1 {
				return nil, fmt.Errorf("config %s: its contexts are %s and none is current: choose one with `drover config use-context NAME`, --context or DROVER_CONTEXT",
					path, strings.Join(f.Names(), ", "))
			}
			break // an empty file: the layers must set everything
		}
		var ok bool
		if ctx, ok = f.Lookup(name); !ok {
			return nil, fmt.Errorf("config %s: %w", path, f.noContext(name))
		}
		cfg.Context = name
		origin := path
		if len(f.Contexts) > 0 || f.CurrentContext != "" {
			origin += ", context " + name
		}
		base := filepath.Dir(path)
		rel := func(p string) string {
			if p != "" && !filepath.IsAbs(p) {
				return filepath.Join(base, p)
			}
			return p
		}
		cfg.Servers, cfg.CA, cfg.Cert, cfg.Key = slices.Clone(ctx.Servers), rel(ctx.CA), rel(ctx.Cert), rel(ctx.Key)
		for _, k := range []string{SettingServers, SettingCA, SettingCert, SettingKey} {
			cfg.From[k] = origin
		}
	}

	if s := pick(func(o Overrides) Setting { return o.Servers }); s.Value != "" {
		cfg.Servers = strings.FieldsFunc(s.Value, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
		cfg.From[SettingServers] = s.From
	}
	for _, o := range []struct {
		name string
		get  func(Overrides) Setting
		dst  *string
	}{
		{SettingCA, func(o Overrides) Setting { return o.CA }, &cfg.CA},
		{SettingCert, func(o Overrides) Setting { return o.Cert }, &cfg.Cert},
		{SettingKey, func(o Overrides) Setting { return o.Key }, &cfg.Key},
	} {
		s := pick(o.get)
		if s.Value == "" {
			continue
		}
		abs, err := filepath.Abs(s.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.From, err)
		}
		*o.dst, cfg.From[o.name] = abs, s.From
	}
	where := fmt.Sprintf("config %s", path)
	if cfg.Context != "" {
		where += ", context " + cfg.Context
	}
	if f == nil {
		if len(cfg.Servers) == 0 && cfg.CA == "" && cfg.Cert == "" && cfg.Key == "" {
			return nil, noFile
		}
		where = fmt.Sprintf("%s does not exist, and flags and the environment do not set everything", path)
	}
	if err := cfg.normalise(where); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Check returns the context with its servers' URLs in canonical form, or
// what it lacks.
func (c Context) Check() (Context, error) {
	cfg := &Config{Servers: slices.Clone(c.Servers), CA: c.CA, Cert: c.Cert, Key: c.Key,
		From: map[string]string{SettingServers: "context " + c.Name}}
	if err := cfg.normalise("context " + c.Name); err != nil {
		return c, err
	}
	c.Servers = cfg.Servers
	return c, nil
}

// normalise checks the servers' URLs (a bare HOST:PORT means https) and
// that every setting is present, naming where each may be set.
func (c *Config) normalise(where string) error {
	for i, s := range c.Servers {
		u := strings.TrimRight(strings.TrimSpace(s), "/")
		if !strings.Contains(u, "://") {
			u = "https://" + u
		}
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host == "" || (p.Path != "" && p.Path != "/") {
			return fmt.Errorf("servers[%d] %q (from %s): want an https URL of a server's API such as https://10.0.0.1:7400", i, s, c.From[SettingServers])
		}
		c.Servers[i] = "https://" + p.Host
	}
	var missing []string
	for _, m := range []struct {
		name, where string
		set         bool
	}{
		{SettingServers, "--server or DROVER_SERVERS", len(c.Servers) > 0},
		{SettingCA, "--ca-cert or DROVER_CA_CERT", c.CA != ""},
		{SettingCert, "--client-cert or DROVER_CLIENT_CERT", c.Cert != ""},
		{SettingKey, "--client-key or DROVER_CLIENT_KEY", c.Key != ""},
	} {
		if !m.set {
			missing = append(missing, fmt.Sprintf("%s (%s)", m.name, m.where))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; missing %s", ErrIncomplete, where, strings.Join(missing, ", "))
}

// LoadConfig reads a configuration file's current context (or its only
// one), with no overrides.
func LoadConfig(path string) (*Config, error) {
	return Resolve(path)
}

// Path is the file the configuration was read from (it may not exist when
// flags and the environment gave every setting).
func (c *Config) Path() string { return c.path }

// Save writes the configuration as a single-cluster file.
func (c *Config) Save(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, b, 0o600)
}

// Operator reads the identity the configuration's certificate speaks for
// and when the certificate expires.
func (c *Config) Operator() (pki.Identity, time.Time, error) {
	b, err := os.ReadFile(c.Cert)
	if err != nil {
		return pki.Identity{}, time.Time{}, fmt.Errorf("operator certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return pki.Identity{}, time.Time{}, fmt.Errorf("operator certificate %s: no PEM certificate in it", c.Cert)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return pki.Identity{}, time.Time{}, fmt.Errorf("operator certificate %s: %w", c.Cert, err)
	}
	id, err := pki.IdentityFromCert(cert)
	if err != nil {
		return pki.Identity{}, cert.NotAfter, fmt.Errorf("operator certificate %s: %w", c.Cert, err)
	}
	return id, cert.NotAfter, nil
}

// Client connects with the configuration's certificate.
func (c *Config) Client() (*Client, error) {
	certPEM, keyPEM, caPEM, err := pki.LoadKeyPair(c.Cert, c.Key, c.CA)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.where(), err)
	}
	tlsCfg, err := pki.ClientTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.where(), err)
	}
	cl := New(c.Servers, tlsCfg)
	cl.ReadFromLeader = true // operators read their own writes
	return cl, nil
}

func (c *Config) where() string {
	if c.Context != "" && c.Context != DefaultContext {
		return c.path + ", context " + c.Context
	}
	return c.path
}
