package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/pki"
)

func (a *app) keygenCommand() *cobra.Command {
	var out, passwordFile string
	var noPassword, force bool
	cmd := &cobra.Command{
		Use:   "keygen --out PREFIX",
		Short: "Create a minisign key pair for signing releases",
		Long: `Create a minisign key pair: PREFIX.key (the secret key, encrypted with a
password read from --password-file or $DROVER_KEY_PASSWORD, unless
--no-password) and PREFIX.pub.
Both files work with the stock minisign tool.`,
		Example: `  drover keygen --out release
  DROVER_KEY_PASSWORD=... drover keygen --out /secure/release`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			password, err := keyPassword(passwordFile)
			if err != nil {
				return err
			}
			if password == "" && !noPassword {
				return usageErr("give --password-file or set DROVER_KEY_PASSWORD to protect the secret key, or pass --no-password")
			}
			if noPassword {
				password = ""
			}
			for _, p := range []string{out + ".key", out + ".pub"} {
				if _, err := os.Stat(p); err == nil && !force {
					return usageErr("%s exists; pass --force to overwrite it", p)
				}
			}
			pub, sec, err := artifacts.GenerateKey(password)
			if err != nil {
				return err
			}
			if err := pki.WriteFileAtomic(out+".key", sec, 0o600); err != nil {
				return err
			}
			if err := pki.WriteFileAtomic(out+".pub", pub, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %s.key (secret: keep it safe) and %s.pub\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "path prefix of the key files")
	cmd.Flags().BoolVar(&noPassword, "no-password", false, "leave the secret key unencrypted")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the secret key's password from this file")
	return cmd
}

// keyPassword reads a key password from a file (first line), else from
// $DROVER_KEY_PASSWORD.
func keyPassword(file string) (string, error) {
	if file == "" {
		return os.Getenv("DROVER_KEY_PASSWORD"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read the password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

func (a *app) signCommand() *cobra.Command {
	var keyPath, comment, passwordFile string
	cmd := &cobra.Command{
		Use:   "sign FILE --key KEY",
		Short: "Sign a file (a release manifest) and write FILE.minisig",
		Long: `Sign FILE with a minisign secret key and write FILE.minisig, in the
prehashed (ED) form current minisign releases write. A password-protected
key takes its password from --password-file or $DROVER_KEY_PASSWORD.`,
		Example: `  drover sign web-1.2.0.json --key release.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return usageErr("--key is required")
			}
			password, err := keyPassword(passwordFile)
			if err != nil {
				return err
			}
			key, err := artifacts.LoadSecretKey(keyPath, password)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			sig := artifacts.Sign(key, data, comment)
			if err := pki.WriteFileAtomic(args[0]+".minisig", sig, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %s.minisig\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "minisign secret key file")
	cmd.Flags().StringVar(&comment, "comment", "signed by drover", "trusted comment embedded in the signature")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the secret key's password from this file")
	return cmd
}

func (a *app) verifyCommand() *cobra.Command {
	var pubPath, sigPath string
	cmd := &cobra.Command{
		Use:     "verify FILE --pubkey KEY.pub",
		Short:   "Check FILE.minisig against a public key",
		Example: `  drover verify web-1.2.0.json --pubkey release.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pubPath == "" {
				return usageErr("--pubkey is required")
			}
			if sigPath == "" {
				sigPath = args[0] + ".minisig"
			}
			pubText, err := os.ReadFile(pubPath)
			if err != nil {
				return err
			}
			pub, err := artifacts.ParsePublicKey(pubText)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			sig, err := os.ReadFile(sigPath)
			if err != nil {
				return err
			}
			if err := artifacts.VerifySignature(pub, data, sig); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "signature of %s is valid (key %s)\n", args[0], strings.ToUpper(fmt.Sprintf("%x", pub.ID())))
			return nil
		},
	}
	cmd.Flags().StringVar(&pubPath, "pubkey", "", "minisign public key file")
	cmd.Flags().StringVar(&sigPath, "signature", "", "signature file (default FILE.minisig)")
	return cmd
}
