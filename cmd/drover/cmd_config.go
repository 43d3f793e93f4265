package main

// drover config: the CLI's named contexts (a cluster's servers and an
// operator certificate) in its configuration file.

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/client"
)

// contextView is one context as get-contexts shows it.
type contextView struct {
	Name     string    `json:"name"`
	Current  bool      `json:"current"`
	Servers  []string  `json:"servers"`
	CA       string    `json:"ca"`
	Cert     string    `json:"cert"`
	Key      string    `json:"key"`
	Operator string    `json:"operator,omitempty"` // operator/NAME, from the certificate
	Role     string    `json:"role,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	Problem  string    `json:"problem,omitempty"` // why the certificate could not be read
}

// configView is the configuration in use, as config view shows it.
type configView struct {
	File     string            `json:"file"`
	Context  string            `json:"context,omitempty"`
	Servers  []string          `json:"servers"`
	CA       string            `json:"ca"`
	Cert     string            `json:"cert"`
	Key      string            `json:"key"`
	From     map[string]string `json:"from"` // setting -> where it came from
	Operator string            `json:"operator,omitempty"`
	Role     string            `json:"role,omitempty"`
	Expires  time.Time         `json:"expires,omitzero"`
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Contexts of the CLI configuration: which cluster, as whom",
		Long: `The CLI's configuration file (--config, else $DROVER_CONFIG, else
~/.config/drover/config.yaml) holds named contexts, each a cluster's
servers and an operator certificate, and names the current one:

  current_context: prod
  contexts:
    - name: prod
      servers: [https://10.0.0.1:7400, https://10.0.0.2:7400, https://10.0.0.3:7400]
      ca: prod/ca.crt            # relative paths are relative to the file
      cert: prod/alice.crt
      key: prod/alice.key
    - name: staging
      servers: [https://10.1.0.1:7400]
      ...

The single-cluster files that drover cluster init, drover dev and drover
operator issue write (servers, ca, cert and key at the top level) are read
as one context named "default".

Each setting comes from the first of: a flag (--context, --server,
--ca-cert, --client-cert, --client-key), an environment variable
(DROVER_CONTEXT, DROVER_SERVERS, DROVER_CA_CERT, DROVER_CLIENT_CERT,
DROVER_CLIENT_KEY), the context. drover config view shows which.`,
	}
	getContexts := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts, with each one's operator and certificate expiry",
		Example: `  drover config get-contexts
  drover config get-contexts -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := a.configFile()
			f, err := a.readConfigFile(path)
			if err != nil {
				return err
			}
			out := []contextView{}
			for _, name := range f.Names() {
				c, _ := f.Lookup(name)
				cfg := resolvedContext(path, c)
				v := contextView{Name: name, Current: name == f.Current(), Servers: cfg.Servers, CA: cfg.CA, Cert: cfg.Cert, Key: cfg.Key}
				if id, notAfter, err := cfg.Operator(); err != nil {
					v.Problem = err.Error()
				} else {
					v.Operator, v.Role, v.Expires = id.Principal(), string(id.Role), notAfter.UTC()
				}
				out = append(out, v)
			}
			return a.printOut(out, func(w io.Writer) {
				row(w, "CURRENT", "NAME", "SERVERS", "OPERATOR", "ROLE", "CERTIFICATE EXPIRES")
				for _, v := range out {
					cur, expires := "", "-"
					if v.Current {
						cur = "*"
					}
					if !v.Expires.IsZero() {
						expires = v.Expires.In(a.loc).Format("2006-01-02") + " (" + until(v.Expires, a.now()) + ")"
					} else if v.Problem != "" {
						expires = "cannot read: " + v.Problem
					}
					row(w, dash(cur), v.Name, strings.Join(v.Servers, ","), dash(v.Operator), dash(v.Role), expires)
				}
			})
		},
	}
	currentContext := &cobra.Command{
		Use:     "current-context",
		Short:   "Print the name of the context in use",
		Example: `  drover config current-context`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if cfg.Context == "" {
				return &exitErr{code: exitUsage, err: fmt.Errorf("no context is in use: the settings come from flags and the environment (%s does not exist)", cfg.Path())}
			}
			return a.printOut(map[string]string{"context": cfg.Context, "from": cfg.From[client.SettingContext]}, func(w io.Writer) {
				fmt.Fprintln(w, cfg.Context)
			})
		},
	}
	useContext := &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context the current one",
		Example: `  drover config use-context prod
  DROVER_CONTEXT=staging drover status     # one command only`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configFile()
			f, err := a.readConfigFile(path)
			if err != nil {
				return err
			}
			if err := f.Use(args[0]); err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("config %s: %w", path, err)}
			}
			if err := f.Write(path); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "now using context %s\n", args[0])
			return nil
		},
	}
	var from string
	setContext := &cobra.Command{
		Use:   "set-context NAME [--from FILE] [--server URL ...] [--ca-cert FILE] [--client-cert FILE] [--client-key FILE]",
		Short: "Add a context, or change one",
		Long: `Add a context to the configuration file (creating the file if need be), or
change one. --from copies the settings of another configuration file, such
as the config.yaml of a bundle drover operator issue wrote; --server,
--ca-cert, --client-cert and --client-key set (or override) each setting.
Paths are stored absolute. The first context of a file becomes the
current one.`,
		Example: `  drover config set-context prod --from /secure/alice-prod/config.yaml
  drover config set-context staging --server https://10.1.0.1:7400 --server https://10.1.0.2:7400 \
      --ca-cert staging/ca.crt --client-cert staging/alice.crt --client-key staging/alice.key
  drover config set-context prod --server https://10.0.0.9:7400    # a server moved`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configFile()
			f, err := client.ReadFile(path)
			if errors.Is(err, client.ErrNoConfigFile) {
				f, err = &client.File{}, nil
			}
			if err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			c, _ := f.Lookup(args[0])
			c.Name = args[0]
			if c.CA != "" || c.Cert != "" || c.Key != "" { // keep them valid when written back
				base := resolvedContext(path, c)
				c.CA, c.Cert, c.Key = base.CA, base.Cert, base.Key
			}
			if from != "" {
				src, err := client.LoadConfig(from)
				if err != nil {
					return &exitErr{code: exitUsage, err: fmt.Errorf("--from: %w", err)}
				}
				c.Servers, c.CA, c.Cert, c.Key = src.Servers, src.CA, src.Cert, src.Key
			}
			if len(a.servers) > 0 {
				c.Servers = a.servers
			}
			for _, s := range []struct {
				flag, v string
				dst     *string
			}{{"--ca-cert", a.caCert, &c.CA}, {"--client-cert", a.clientCert, &c.Cert}, {"--client-key", a.clientKey, &c.Key}} {
				if s.v == "" {
					continue
				}
				abs, err := filepath.Abs(s.v)
				if err != nil {
					return usageErr("%s: %v", s.flag, err)
				}
				*s.dst = abs
			}
			// Check it as it will be read back: every setting present and
			// each server a URL.
			if c, err = c.Check(); err != nil {
				return &exitErr{code: exitUsage, err: err, hint: "Give --from FILE, or --server, --ca-cert, --client-cert and --client-key."}
			}
			first := len(f.Names()) == 0
			if err := f.SetContext(c); err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			if first {
				_ = f.Use(c.Name)
			}
			if err := f.Write(path); err != nil {
				return err
			}
			if f.Current() == c.Name {
				fmt.Fprintf(a.stderr, "context %s set in %s; it is the current context\n", c.Name, path)
			} else {
				fmt.Fprintf(a.stderr, "context %s set in %s; use it with: drover config use-context %s\n", c.Name, path, c.Name)
			}
			return nil
		},
	}
	setContext.Flags().StringVar(&from, "from", "", "copy the settings of this configuration file (its current context)")
	deleteContext := &cobra.Command{
		Use:     "delete-context NAME",
		Short:   "Remove a context from the configuration file",
		Example: `  drover config delete-context old-lab`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configFile()
			f, err := a.readConfigFile(path)
			if err != nil {
				return err
			}
			if err := f.DeleteContext(args[0]); err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("config %s: %w", path, err)}
			}
			if err := f.Write(path); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "context %s deleted from %s\n", args[0], path)
			return nil
		},
	}
	view := &cobra.Command{
		Use:   "view",
		Short: "Show the settings in use and where each one came from",
		Long: `Show the configuration the other commands would use — the file, the
context, the servers and certificate files — and, for each setting, where
it came from: a flag, an environment variable or the file.`,
		Example: `  drover config view
  DROVER_SERVERS=https://10.0.0.9:7400 drover config view -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			v := configView{File: cfg.Path(), Context: cfg.Context, Servers: cfg.Servers, CA: cfg.CA, Cert: cfg.Cert, Key: cfg.Key, From: cfg.From}
			id, notAfter, idErr := cfg.Operator()
			if idErr == nil {
				v.Operator, v.Role, v.Expires = id.Principal(), string(id.Role), notAfter.UTC()
			}
			return a.printOut(v, func(w io.Writer) {
				from := func(k string) string {
					if s := v.From[k]; s != "" {
						return "(from " + s + ")"
					}
					return ""
				}
				row(w, "file", v.File, "")
				row(w, "context", dash(v.Context), from(client.SettingContext))
				row(w, "servers", strings.Join(v.Servers, ", "), from(client.SettingServers))
				row(w, "ca", v.CA, from(client.SettingCA))
				row(w, "cert", v.Cert, from(client.SettingCert))
				row(w, "key", v.Key, from(client.SettingKey))
				if idErr != nil {
					row(w, "operator", "cannot read the certificate: "+idErr.Error(), "")
				} else {
					row(w, "operator", fmt.Sprintf("%s (%s), certificate expires %s (%s)", v.Operator, v.Role, v.Expires.In(a.loc).Format("2006-01-02"), until(v.Expires, a.now())), "")
				}
			})
		},
	}
	cmd.AddCommand(getContexts, currentContext, useContext, setContext, deleteContext, view)
	return cmd
}

// readConfigFile reads the configuration file, as a configuration error.
func (a *app) readConfigFile(path string) (*client.File, error) {
	f, err := client.ReadFile(path)
	if err != nil {
		hint := ""
		if errors.Is(err, client.ErrNoConfigFile) {
			hint = "Add a context with `drover config set-context NAME --from BUNDLE/config.yaml`."
		}
		return nil, &exitErr{code: exitUsage, err: err, hint: hint}
	}
	return f, nil
}

// resolvedContext is a context of the file at path with its relative
// paths made absolute.
func resolvedContext(path string, c client.Context) *client.Config {
	base := filepath.Dir(path)
	abs := func(p string) string {
		if p != "" && !filepath.IsAbs(p) {
			return filepath.Join(base, p)
		}
		return p
	}
	return &client.Config{Servers: c.Servers, CA: abs(c.CA), Cert: abs(c.Cert), Key: abs(c.Key), Context: c.Name}
}
