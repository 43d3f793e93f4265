package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

func (a *app) operatorCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "operator", Short: "Operator certificates and their roles (admin)"}
	var role, out, ttl string
	issue := &cobra.Command{
		Use:   "issue NAME --role viewer|deployer|approver|admin [--out DIR]",
		Short: "Issue an operator certificate and write a CLI bundle",
		Long: `Issue a certificate for an operator with a role, and write the bundle the
operator's CLI needs to DIR (default ./NAME): NAME.key (made here, mode
0600, never sent), NAME.crt, ca.crt and config.yaml. Roles form a ladder:
viewer reads; deployer also creates releases and rollouts; approver also
approves releases (never their own); admin also manages tokens, operators,
hosts and trust.`,
		Example: `  drover operator issue alice --role approver --out /secure/alice
  # then, for alice: export DROVER_CONFIG=/secure/alice/config.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			r, err := pki.ParseRole(role)
			if err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("--role: %w", err)}
			}
			if err := (pki.Identity{Kind: pki.KindOperator, Name: name, Role: r}).Validate(); err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			if out == "" {
				out = name
			}
			if _, err := os.Stat(filepath.Join(out, name+".key")); err == nil {
				return usageErr("%s already holds a key for %s; choose another --out", out, name)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			keyPEM, csrDER, err := pki.NewKeyAndCSR(name)
			if err != nil {
				return err
			}
			var resp api.EnrollResponse
			if _, err := c.Do(cmd.Context(), client.Request{Method: "POST", Path: api.PathOperators,
				JSON: api.OperatorRequest{Name: name, Role: string(r), TTL: ttl, CSR: csrDER}}, &resp); err != nil {
				return err
			}
			cfgPath, err := writeOperatorBundle(out, name, keyPEM, resp)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", cfgPath)
			fmt.Fprintf(a.stderr, "issued %s (%s); give %s to them: export DROVER_CONFIG=%s\n", name, r, out, cfgPath)
			return nil
		},
	}
	issue.Flags().StringVar(&role, "role", "", "viewer, deployer, approver or admin")
	issue.Flags().StringVar(&out, "out", "", "directory for the bundle (default ./NAME)")
	issue.Flags().StringVar(&ttl, "ttl", "", "certificate lifetime, e.g. 720h (default 90 days)")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List operators and their certificates",
		Example: `  drover operator list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ops []*api.Operator
			if err := a.get(cmd, api.PathOperators, &ops); err != nil {
				return err
			}
			return a.printOut(ops, func(w io.Writer) {
				row(w, "OPERATOR", "ROLE", "CERTIFICATES", "EXPIRES", "ISSUED BY")
				for _, o := range ops {
					expires := "-"
					if n := len(o.Certs); n > 0 {
						expires = o.Certs[n-1].NotAfter.Format("2006-01-02")
					}
					row(w, o.Name, o.Role, len(o.Certs), expires, o.IssuedBy)
				}
			})
		},
	}
	var reason string
	revoke := &cobra.Command{
		Use:     "revoke NAME [--reason TEXT]",
		Short:   "Revoke every certificate of an operator",
		Example: `  drover operator revoke bob --reason 'left the team'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.post(cmd, api.PathOperators+"/"+args[0]+"/revoke", api.RevokeRequest{Reason: reason},
				fmt.Sprintf("operator %s revoked", args[0]))
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why, for the record")
	cmd.AddCommand(issue, list, revoke)
	return cmd
}

// writeOperatorBundle writes an operator's key, certificate, CA and CLI
// configuration into dir and returns the configuration's path.
func writeOperatorBundle(dir, name string, keyPEM []byte, resp api.EnrollResponse) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", err
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{{name + ".key", keyPEM, 0o600}, {name + ".crt", resp.Certificate, 0o644}, {"ca.crt", resp.CA, 0o644}}
	for _, f := range files {
		if err := pki.WriteFileAtomic(filepath.Join(abs, f.name), f.data, f.perm); err != nil {
			return "", err
		}
	}
	cfg := client.Config{Servers: resp.Servers, CA: filepath.Join(abs, "ca.crt"),
		Cert: filepath.Join(abs, name+".crt"), Key: filepath.Join(abs, name+".key")}
	path := filepath.Join(abs, "config.yaml")
	return path, cfg.Save(path)
}

// post sends a write and prints msg on success.
func (a *app) post(cmd *cobra.Command, path string, body any, msg string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Do(cmd.Context(), client.Request{Method: "POST", Path: path, JSON: body}, nil); err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, msg)
	return nil
}
