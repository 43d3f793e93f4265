package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

func (a *app) artifactCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "artifact", Short: "Upload release payloads"}
	push := &cobra.Command{
		Use:   "push FILE",
		Short: "Upload a payload (a tar.gz) to the cluster",
		Long: `Upload a payload. It is stored by its SHA-256 on the servers and
acknowledged once a quorum of them holds a durable copy.`,
		Example: `  drover artifact push web-1.2.0.tar.gz`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.PushBlob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printOut(res, func(w io.Writer) {
				row(w, "DIGEST", "SIZE", "HELD BY")
				row(w, "sha256:"+res.Digest, res.Size, strings.Join(res.Holders, ","))
			})
		},
	}
	pack := &cobra.Command{
		Use:     "pack DIR --out FILE",
		Short:   "Pack a directory as a payload (a reproducible tar.gz)",
		Example: `  drover artifact pack ./build --out web-1.2.0.tar.gz`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return usageErr("--out is required")
			}
			return packDir(args[0], out)
		},
	}
	pack.Flags().String("out", "", "payload file to write")
	cmd.AddCommand(push, pack)
	return cmd
}

func packDir(dir, out string) error {
	f, err := os.CreateTemp(".", ".pack-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := artifacts.Pack(dir, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

// releaseFlags build a manifest from the command line.
type releaseFlags struct {
	payload, key, manifest string
	signatures             []string
	checks                 []string
	checkTimeout           time.Duration
	prov                   artifacts.Provenance
}

func (a *app) releaseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Create and list signed releases"}
	var f releaseFlags
	create := &cobra.Command{
		Use:   "create NAME@VERSION --payload FILE --key KEY | --manifest FILE",
		Short: "Record a signed release",
		Long: `Record a release: a manifest naming the payload's SHA-256 and size, its
health checks and provenance, signed with minisign.

Either let drover build and sign the manifest (--payload and --key), or
bring a manifest signed elsewhere (--manifest, with FILE.minisig beside it
or --signature). The payload is uploaded first when --payload is given.`,
		Example: `  drover release create web@1.2.0 --payload web-1.2.0.tar.gz --key release.key \
      --health-check 'bin/web --self-test'
  drover release create --manifest web-1.2.0.json --payload web-1.2.0.tar.gz`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, sigs, err := f.build(args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if f.payload != "" {
				if _, err := c.PushBlob(cmd.Context(), f.payload); err != nil {
					return fmt.Errorf("cannot upload payload: %w", err)
				}
			}
			res, err := c.CreateRelease(cmd.Context(), body, sigs)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", res.ID)
			return nil
		},
	}
	fl := create.Flags()
	fl.StringVar(&f.payload, "payload", "", "payload file (tar.gz) to upload and describe")
	fl.StringVar(&f.key, "key", "", "minisign secret key to sign the manifest with ($DROVER_KEY_PASSWORD for its password)")
	fl.StringVar(&f.manifest, "manifest", "", "a manifest file signed elsewhere")
	fl.StringSliceVar(&f.signatures, "signature", nil, "signature file of --manifest (default MANIFEST.minisig); repeat for several signers")
	fl.StringArrayVar(&f.checks, "health-check", nil, "shell command run in the release directory after activation; exit 0 = healthy (repeatable)")
	fl.DurationVar(&f.checkTimeout, "check-timeout", 30*time.Second, "timeout of each health check")
	fl.StringVar(&f.prov.SourceCommit, "source-commit", "", "provenance: source commit")
	fl.StringVar(&f.prov.BuildID, "build-id", "", "provenance: build id")
	fl.StringVar(&f.prov.Builder, "builder", "", "provenance: builder")

	var manifestOut string
	manifest := &cobra.Command{
		Use:   "manifest NAME@VERSION --payload FILE --out FILE",
		Short: "Write a release manifest to sign elsewhere",
		Example: `  drover release manifest web@1.2.0 --payload web-1.2.0.tar.gz --out web-1.2.0.json
  minisign -S -s release.key -m web-1.2.0.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if manifestOut == "" {
				return usageErr("--out is required")
			}
			m, err := f.newManifest(args[0])
			if err != nil {
				return err
			}
			body, err := m.Canonical()
			if err != nil {
				return err
			}
			return pki.WriteFileAtomic(manifestOut, body, 0o644)
		},
	}
	manifest.Flags().AddFlagSet(fl)
	manifest.Flags().StringVar(&manifestOut, "out", "", "manifest file to write")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List releases",
		Example: `  drover release list -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out []*api.Release
			if err := a.get(cmd, api.PathReleases, &out); err != nil {
				return err
			}
			return a.printOut(out, func(w io.Writer) {
				row(w, "RELEASE", "PAYLOAD", "CREATED BY", "CREATED")
				for _, r := range out {
					row(w, r.ID, "sha256:"+r.Payload[:12], r.CreatedBy, r.CreatedAt.Format(time.RFC3339))
				}
			})
		},
	}
	var comment string
	approve := &cobra.Command{
		Use:   "approve NAME@VERSION [--comment TEXT]",
		Short: "Approve a release (approver; never your own)",
		Long: `Record your approval of a release. Separation of duties: the operator who
created a release cannot approve it, and each approver approves once.`,
		Example: `  drover release approve web@1.2.0 --comment 'CAB-1234 approved'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.post(cmd, api.PathReleases+"/"+args[0]+"/approve", api.ApproveRequest{Comment: comment},
				fmt.Sprintf("approved %s", args[0]))
		},
	}
	approve.Flags().StringVar(&comment, "comment", "", "a note for the record, such as a change ticket")
	cmd.AddCommand(create, manifest, list, approve)
	return cmd
}

// build returns the signed manifest bytes and signatures.
func (f *releaseFlags) build(args []string) ([]byte, [][]byte, error) {
	if f.manifest != "" {
		body, err := os.ReadFile(f.manifest)
		if err != nil {
			return nil, nil, err
		}
		if _, err := artifacts.ParseManifest(body); err != nil {
			return nil, nil, &exitErr{code: exitUsage, err: err}
		}
		paths := f.signatures
		if len(paths) == 0 {
			paths = []string{f.manifest + ".minisig"}
		}
		var sigs [][]byte
		for _, p := range paths {
			sig, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, err
			}
			sigs = append(sigs, sig)
		}
		return body, sigs, nil
	}
	if len(args) != 1 || f.payload == "" || f.key == "" {
		return nil, nil, usageErr("give NAME@VERSION with --payload and --key, or --manifest (see --help)")
	}
	m, err := f.newManifest(args[0])
	if err != nil {
		return nil, nil, err
	}
	body, err := m.Canonical()
	if err != nil {
		return nil, nil, err
	}
	key, err := artifacts.LoadSecretKey(f.key, os.Getenv("DROVER_KEY_PASSWORD"))
	if err != nil {
		return nil, nil, &exitErr{code: exitUsage, err: err}
	}
	return body, [][]byte{artifacts.Sign(key, body, "release "+m.ID())}, nil
}

func (f *releaseFlags) newManifest(id string) (*artifacts.Manifest, error) {
	name, ver, ok := strings.Cut(id, "@")
	if !ok {
		return nil, usageErr("release %q: write NAME@VERSION, such as web@1.2.0", id)
	}
	if f.payload == "" {
		return nil, usageErr("--payload is required")
	}
	var checks []artifacts.HealthCheck
	for i, c := range f.checks {
		checks = append(checks, artifacts.HealthCheck{Name: fmt.Sprintf("check-%d", i+1),
			Command: []string{"sh", "-c", c}, Timeout: artifacts.Duration(f.checkTimeout)})
	}
	m, err := artifacts.NewManifest(name, ver, f.payload, checks)
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: err}
	}
	if f.prov != (artifacts.Provenance{}) {
		p := f.prov
		m.Provenance = &p
	}
	return m, nil
}

// get reads one JSON resource.
func (a *app) get(cmd *cobra.Command, path string, out any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do(cmd.Context(), client.Request{Method: "GET", Path: path}, out)
	return err
}
