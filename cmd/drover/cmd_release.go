package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/artifacts/chunks"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/pki"
)

func (a *app) artifactCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "artifact", Short: "Payloads: pack, upload, list, verify"}
	var provenance string
	push := &cobra.Command{
		Use:   "push FILE [--provenance STATEMENT.json]",
		Short: "Upload a payload (a tar or tar.gz) to the cluster",
		Long: `Upload a payload. It is cut into content-defined chunks; only the chunks
the servers do not already hold are sent (compressed), and the payload is
acknowledged once a quorum of servers holds every chunk. Pack payloads as
uncompressed tar (drover artifact pack does): then a new version shares
most chunks with the last one, and costs only its changes to upload and
to download.

--provenance attaches an in-toto statement with a SLSA provenance predicate
(v1 or v0.2, bare or in a DSSE envelope) about this file: its subject must
be the file's SHA-256. drover release create then writes its builder,
source repository and commit, and the statement's SHA-256 into the
manifest it signs.`,
		Example: `  drover artifact push web-1.2.0.tar
  drover artifact push web-1.2.0.tar --provenance web-1.2.0.intoto.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			desc, err := describePayloadFile(args[0])
			if err != nil {
				return err
			}
			var statement []byte
			if provenance != "" {
				// Check before uploading anything: a statement about
				// another file is a mistake worth hearing at once.
				if statement, err = os.ReadFile(provenance); err != nil {
					return usageErr("--provenance: %v", err)
				}
				prov, err := artifacts.ParseProvenance(statement)
				if err == nil {
					err = prov.Check(desc.SHA256)
				}
				if err != nil {
					return usageErr("--provenance %s: %v", provenance, err)
				}
			}
			start := time.Now()
			res, err := c.Upload(cmd.Context(), args[0], desc.Format)
			if err != nil {
				return err
			}
			if statement != nil {
				if err := c.SetProvenance(cmd.Context(), res.SHA256, statement); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "provenance attached; drover release create signs it into the release\n")
			}
			took := time.Since(start)
			fmt.Fprintf(a.stderr, "uploaded %d of %d bytes (compressed) in %v; %d chunks held by %s\n",
				res.Uploaded, res.Size, took.Round(time.Millisecond), res.Count, strings.Join(res.Holders, ", "))
			return a.printOut(res, func(w io.Writer) {
				row(w, "PAYLOAD", "SIZE", "CHUNKS", "HELD BY")
				row(w, "sha256:"+res.SHA256, res.Size, res.Count, strings.Join(res.Holders, ","))
			})
		},
	}
	var format, out string
	pack := &cobra.Command{
		Use:   "pack DIR --out FILE [--format tar|tar.gz]",
		Short: "Pack a directory as a payload (reproducible)",
		Long: `Pack a directory as a payload: files, directories and symbolic links in
lexical order with owners and times cleared, so the same tree always gives
the same bytes. tar (the default) lets new versions share chunks.`,
		Example: `  drover artifact pack ./build --out web-1.2.0.tar`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			if format != artifacts.FormatTar && format != artifacts.FormatTarGz {
				return usageErr("--format %q: allowed values are tar, tar.gz", format)
			}
			return packDir(args[0], out, format)
		},
	}
	pack.Flags().StringVar(&out, "out", "", "payload file to write")
	pack.Flags().StringVar(&format, "format", artifacts.FormatTar, "tar or tar.gz")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List uploaded payloads",
		Example: `  drover artifact list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []*api.Payload
			if err := a.get(cmd, api.PathPayloads, &ps); err != nil {
				return err
			}
			return a.printOut(ps, func(w io.Writer) {
				row(w, "PAYLOAD", "FORMAT", "SIZE", "HELD BY")
				for _, p := range ps {
					row(w, "sha256:"+p.SHA256, p.Format, p.Size, strings.Join(p.Holders, ","))
				}
			})
		},
	}
	show := &cobra.Command{
		Use:     "show SHA256",
		Short:   "Show a payload: size, format, chunks, servers holding it",
		Example: `  drover artifact show 5f2c...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.Payload
			if err := a.get(cmd, api.PathPayloads+"/"+strings.TrimPrefix(args[0], "sha256:"), &p); err != nil {
				return err
			}
			list, _ := chunks.DecodeList(p.List)
			return a.printOut(p, func(w io.Writer) {
				row(w, "payload", "sha256:"+p.SHA256)
				row(w, "format", p.Format)
				row(w, "size", p.Size)
				row(w, "chunks", fmt.Sprintf("%d (list sha256:%s)", len(list), p.Chunks))
				row(w, "held by", strings.Join(p.Holders, ", "))
			})
		},
	}
	var releaseID string
	verify := &cobra.Command{
		Use:   "verify FILE --release NAME@VERSION",
		Short: "Check a local payload against a release's signed manifest",
		Long: `Check that FILE is exactly the payload of a release — its SHA-256, size
and chunk list match the manifest — and that the manifest carries enough
valid signatures for the application's trust policy. Exits non-zero with
the reason otherwise.`,
		Example: `  drover artifact verify web-1.2.0.tar --release web@1.2.0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if releaseID == "" {
				return usageErr("--release is required")
			}
			var rel api.Release
			if err := a.get(cmd, api.PathReleases+"/"+releaseID, &rel); err != nil {
				return err
			}
			var policies []artifacts.SignedPolicy
			if err := a.get(cmd, api.PathTrust, &policies); err != nil {
				return err
			}
			m, err := artifacts.ParseManifest(rel.Manifest)
			if err != nil {
				return err
			}
			plain := make([]artifacts.Policy, len(policies))
			for i, p := range policies {
				plain[i] = p.Policy
			}
			policy, ok := artifacts.PolicyFor(plain, m.Name)
			if !ok {
				return fmt.Errorf("no trust policy covers %s", m.Name)
			}
			if err := policy.Verify(rel.Manifest, rel.Signatures); err != nil {
				return err
			}
			desc, err := describePayloadFile(args[0])
			if err != nil {
				return err
			}
			if desc.SHA256 != m.Payload.SHA256 || desc.Size != m.Payload.Size || desc.Chunks != m.Payload.Chunks {
				return fmt.Errorf("%s is not the payload of %s: sha256 %s size %d, the manifest says sha256 %s size %d",
					args[0], releaseID, desc.SHA256, desc.Size, m.Payload.SHA256, m.Payload.Size)
			}
			fmt.Fprintf(a.stderr, "%s is the payload of %s, and its manifest is signed per the %q policy\n", args[0], releaseID, policy.App)
			return nil
		},
	}
	verify.Flags().StringVar(&releaseID, "release", "", "the release, NAME@VERSION")
	push.Flags().StringVar(&provenance, "provenance", "", "an in-toto SLSA provenance statement about FILE")
	cmd.AddCommand(push, pack, list, show, verify)
	return cmd
}

func packDir(dir, out, format string) error {
	f, err := os.CreateTemp(filepath.Dir(out), ".pack-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	pack := artifacts.PackTar
	if format == artifacts.FormatTarGz {
		pack = artifacts.Pack
	}
	if err := pack(dir, f); err != nil {
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
	arches                 []string
	targetLabels           string
	httpChecks, tcpChecks  []string
	processChecks          []string
	hookPre, hookActivate  string
	hookPost               string
	minHealthy, deadline   time.Duration
	unreachable            string
	spec                   string
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
				desc, err := describePayloadFile(f.payload)
				if err != nil {
					return err
				}
				if _, err := c.Upload(cmd.Context(), f.payload, desc.Format); err != nil {
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
	fl.StringSliceVar(&f.arches, "arch", nil, "targets: Go architectures the release is for (amd64, arm64, ...); default any")
	fl.StringArrayVar(&f.httpChecks, "http-check", nil, "health check: GET URL must answer 200 (URL or URL=STATUS) (repeatable)")
	fl.StringArrayVar(&f.tcpChecks, "tcp-check", nil, "health check: a TCP connection to HOST:PORT must succeed (repeatable)")
	fl.StringArrayVar(&f.processChecks, "process-check", nil, "health check: a process of this name must run (repeatable)")
	fl.StringVar(&f.hookPre, "pre-activate", "", "shell command run in the new release before the switch; failing it aborts")
	fl.StringVar(&f.hookActivate, "activate", "", "shell command run after the switch, and for the previous release on a revert (e.g. restart the service)")
	fl.StringVar(&f.hookPost, "post-activate", "", "shell command run after the activate hook; failing it reverts")
	fl.DurationVar(&f.minHealthy, "min-healthy-time", 0, "probation: every check must pass continuously this long")
	fl.DurationVar(&f.deadline, "healthy-deadline", 5*time.Minute, "probation: revert if not healthy this long after activation")
	fl.StringVar(&f.unreachable, "unreachable", "revert", "probation: when no server is reachable: revert, wait or accept")
	fl.StringVar(&f.spec, "spec", "", "a YAML or JSON file of manifest fields (health_checks, hooks, probation, targets, provenance); flags add to it")
	fl.StringVar(&f.targetLabels, "target-labels", "", "targets: labels a host must have, key=value,...")

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

	showRel := &cobra.Command{
		Use:     "show NAME@VERSION",
		Short:   "Show a release: manifest, signatures, approvals",
		Example: `  drover release show web@1.2.0 -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r api.Release
			if err := a.get(cmd, api.PathReleases+"/"+args[0], &r); err != nil {
				return err
			}
			var l api.Lineage
			if err := a.get(cmd, api.PathReleases+"/"+args[0]+"/lineage", &l); err != nil {
				return err
			}
			out := struct {
				api.Release
				Evidence []*api.JobRun      `json:"evidence"`
				Stages   []api.LineageStage `json:"environments"`
			}{r, l.Evidence, l.Stages}
			return a.printOut(out, func(w io.Writer) {
				row(w, "release", r.ID)
				row(w, "created", r.CreatedAt.Format(time.RFC3339)+" by "+r.CreatedBy)
				row(w, "payload", "sha256:"+r.Payload)
				row(w, "signatures", len(r.Signatures))
				for _, ap := range r.Approvals {
					row(w, "approved", ap.At.Format(time.RFC3339)+" by "+ap.By+" "+ap.Comment)
				}
				for _, s := range l.Stages {
					row(w, "environment", fmt.Sprintf("%s (%s, %s)", s.Env, s.Rollout, s.State))
				}
				printEvidence(w, l.Evidence)
				fmt.Fprintf(w, "\nmanifest:\n%s\n", r.Manifest)
			})
		},
	}
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
	cmd.AddCommand(create, manifest, list, showRel, approve, a.readinessCommand(), a.lineageCommand())
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
	m := &artifacts.Manifest{}
	if f.spec != "" {
		b, err := os.ReadFile(f.spec)
		if err != nil {
			return nil, err
		}
		// YAML is a superset of JSON; field names are the manifest's.
		var generic any
		if err := yaml.Unmarshal(b, &generic); err != nil {
			return nil, &exitErr{code: exitUsage, err: fmt.Errorf("--spec %s: %w", f.spec, err)}
		}
		js, err := json.Marshal(generic)
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			err = dec.Decode(m)
		}
		if err != nil {
			return nil, &exitErr{code: exitUsage, err: fmt.Errorf("--spec %s: %w", f.spec, err)}
		}
	}
	checks := m.HealthChecks
	timeout := artifacts.Duration(f.checkTimeout)
	add := func(hc artifacts.HealthCheck) {
		hc.Name, hc.Timeout = fmt.Sprintf("%s-%d", hc.Kind(), len(checks)+1), timeout
		checks = append(checks, hc)
	}
	for _, c := range f.checks {
		add(artifacts.HealthCheck{Command: []string{"sh", "-c", c}})
	}
	for _, u := range f.httpChecks {
		hc := artifacts.HealthCheck{Type: artifacts.CheckHTTP, URL: u}
		if i := strings.LastIndex(u, "="); i > 0 {
			if st, err := strconv.Atoi(u[i+1:]); err == nil {
				hc.URL, hc.ExpectStatus = u[:i], st
			}
		}
		add(hc)
	}
	for _, addr := range f.tcpChecks {
		add(artifacts.HealthCheck{Type: artifacts.CheckTCP, Address: addr})
	}
	for _, p := range f.processChecks {
		add(artifacts.HealthCheck{Type: artifacts.CheckProcess, Process: p})
	}
	hook := func(cmd string) *artifacts.Hook {
		if cmd == "" {
			return nil
		}
		return &artifacts.Hook{Command: []string{"sh", "-c", cmd}, Timeout: timeout}
	}
	if f.hookPre != "" || f.hookActivate != "" || f.hookPost != "" {
		if m.Hooks == nil {
			m.Hooks = &artifacts.Hooks{}
		}
		for _, h := range []struct {
			dst **artifacts.Hook
			cmd string
		}{{&m.Hooks.PreActivate, f.hookPre}, {&m.Hooks.Activate, f.hookActivate}, {&m.Hooks.PostActivate, f.hookPost}} {
			if h.cmd != "" {
				*h.dst = hook(h.cmd)
			}
		}
	}
	if m.Probation == nil {
		m.Probation = &artifacts.Probation{MinHealthyTime: artifacts.Duration(f.minHealthy),
			HealthyDeadline: artifacts.Duration(f.deadline), Unreachable: f.unreachable}
	}
	payload, err := describePayloadFile(f.payload)
	if err != nil {
		return nil, err
	}
	m.Schema, m.Name, m.Version, m.Payload, m.HealthChecks = 1, name, ver, payload, checks
	if len(f.arches) > 0 || f.targetLabels != "" {
		labels, err := api.ParseLabels(f.targetLabels)
		if err != nil {
			return nil, &exitErr{code: exitUsage, err: fmt.Errorf("--target-labels: %w", err)}
		}
		m.Targets = &artifacts.Targets{Architectures: f.arches, Labels: labels}
	}
	if f.prov != (artifacts.Provenance{}) {
		p := f.prov
		m.Provenance = &p
	}
	if len(m.HealthChecks) == 0 {
		fmt.Fprintln(os.Stderr, "warning: the release has no health checks; hosts will commit it as soon as it is activated")
	}
	if err := m.Validate(); err != nil {
		return nil, &exitErr{code: exitUsage, err: err}
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

func describePayloadFile(path string) (artifacts.Payload, error) {
	p, _, err := artifacts.DescribePayload(path)
	return p, err
}
