package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/pki"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/bootstrap"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

func (a *app) hostCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Enrolled hosts: list, show with history, decommission"}
	var q hostQueryFlags
	list := &cobra.Command{
		Use:   "list [--where EXPR] [--since TIME]",
		Short: "List enrolled hosts with their releases and system facts",
		Long: `List enrolled hosts. --where selects hosts by labels and inventory facts:
comma-separated terms, all of which must hold, such as os=debian or
memory_gib>=8 (keys and operators: docs/cmdb.md). --since keeps hosts whose
configuration or status changed after a time (RFC 3339, or a duration back
from now such as 24h). DRIFT shows when a host last changed in a way no
rollout explains.`,
		Example: `  drover host list
  drover host list --where 'os=debian,memory_gib>=8'
  drover host list --where 'env=prod,release.web<2.0' -o json
  drover host list --since 24h
  drover host list --running-commit 3f2a9c1d   # which hosts run code built from this commit?`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hq, err := q.query()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			hosts, err := c.Hosts(cmd.Context(), hq)
			if err != nil {
				return err
			}
			if hosts == nil {
				hosts = []*api.Host{} // JSON: an empty list, not null
			}
			return a.printOut(hosts, hostTable(hosts))
		},
	}
	q.register(list)
	var historyLen int
	show := &cobra.Command{
		Use:   "show HOST [--history N]",
		Short: "Show a host's inventory and its configuration history",
		Long: `Show one host: identity, status, hardware, operating system, network,
releases, custom facts, and its configuration history — each fact that
changed, from what, to what, when, and the rollout that made the change.
A change no rollout made is marked DRIFT. -o json prints everything,
including the OS packages.`,
		Example: `  drover host show web-1
  drover host show web-1 --history 50
  drover host show web-1 -o json | jq '.history[] | select(.drift)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.Host(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printOut(d, func(w io.Writer) { hostDetail(w, d, historyLen) })
		},
	}
	show.Flags().IntVar(&historyLen, "history", 20, "how many of the latest history entries the table shows (0: all)")
	var reason string
	decommission := &cobra.Command{
		Use:   "decommission HOST [--reason TEXT]",
		Short: "Remove a host and revoke its certificates (admin)",
		Long: `Remove a host from the fleet: its agent's certificates are revoked at once
on every server, its part in any active rollout is marked skipped, and it
no longer counts as a target. To bring the machine back, enroll it again
with a new join token.`,
		Example: `  drover host decommission web-7 --reason 'hardware retired'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.post(cmd, api.PathHosts+"/"+args[0]+"/decommission", api.DecommissionRequest{Reason: reason},
				fmt.Sprintf("host %s decommissioned; its certificates are revoked", args[0]))
		},
	}
	decommission.Flags().StringVar(&reason, "reason", "", "why, for the record")
	cmd.AddCommand(list, show, decommission)
	return cmd
}

// hostQueryFlags are --where and --since, shared by host list and
// inventory export.
type hostQueryFlags struct{ where, since, runningCommit string }

func (q *hostQueryFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&q.where, "where", "", "select hosts by labels and facts, e.g. 'os=debian,memory_gib>=8'")
	cmd.Flags().StringVar(&q.since, "since", "", "only hosts changed after TIME (RFC 3339) or within a duration (24h)")
	cmd.Flags().StringVar(&q.runningCommit, "running-commit", "", "only hosts running a release built from this source commit (7+ hex digits)")
}

func (q *hostQueryFlags) query() (client.HostQuery, error) {
	out := client.HostQuery{Where: q.where, RunningCommit: q.runningCommit}
	if q.where != "" {
		if _, err := inventory.ParseWhere(q.where); err != nil {
			return out, usageErr("--%v", err)
		}
	}
	if q.since != "" {
		if d, err := time.ParseDuration(q.since); err == nil && d > 0 {
			out.Since = time.Now().Add(-d)
		} else if t, err := deploy.ParseTime(q.since); err == nil {
			out.Since = t
		} else {
			return out, usageErr("--since %q: give an RFC 3339 time such as 2030-01-02T15:04:05Z, or a duration such as 24h", q.since)
		}
	}
	return out, nil
}

// hostTable prints hosts with their releases and main system facts.
func hostTable(hosts []*api.Host) func(w io.Writer) {
	return func(w io.Writer) {
		row(w, "HOST", "STATUS", "LABELS", "RELEASES", "OS", "CPUS", "MEMORY", "AGENT", "LAST REPORT", "DRIFT")
		for _, h := range hosts {
			var sys inventory.System
			_ = json.Unmarshal(h.Inventory, &sys)
			osName := strings.TrimSpace(sys.OperatingSystem.Name + " " + sys.OperatingSystem.Version)
			mem, cpus := "", ""
			if sys.MemorySummary.TotalSystemMemoryGiB > 0 {
				mem = fmt.Sprintf("%.1f GiB", sys.MemorySummary.TotalSystemMemoryGiB)
			}
			if n := sys.ProcessorSummary.LogicalProcessorCount; n > 0 {
				cpus = fmt.Sprint(n)
			}
			drift := "-"
			if !h.DriftAt.IsZero() {
				drift = ago(h.DriftAt)
			}
			row(w, h.ID, dash(h.Status), dash(api.FormatLabels(h.Labels)), dash(api.FormatLabels(h.Releases)), dash(osName),
				dash(cpus), dash(mem), dash(sys.AgentVersion), ago(h.LastReport), drift)
		}
	}
}

// hostDetail prints one host and the last n entries of its history.
func hostDetail(w io.Writer, d *api.HostDetail, n int) {
	h := d.Host
	var sys inventory.System
	_ = json.Unmarshal(h.Inventory, &sys)
	field := func(k string, v any) { row(w, k+":", dash(fmt.Sprint(v))) }
	field("Host", h.ID)
	field("Status", fmt.Sprintf("%s since %s", h.Status, h.StatusSince.UTC().Format(time.RFC3339)))
	field("Labels", api.FormatLabels(h.Labels))
	field("Last report", ago(h.LastReport))
	field("Hardware", strings.TrimSpace(sys.Manufacturer+" "+sys.Model))
	field("Serial number", sys.SerialNumber)
	field("Processors", fmt.Sprintf("%d logical, %s", sys.ProcessorSummary.LogicalProcessorCount, dash(sys.ProcessorSummary.Model)))
	field("Memory", fmt.Sprintf("%.2f GiB", sys.MemorySummary.TotalSystemMemoryGiB))
	field("OS", strings.TrimSpace(fmt.Sprintf("%s %s, kernel %s, %s", sys.OperatingSystem.Name, sys.OperatingSystem.Version, sys.OperatingSystem.Kernel, sys.OperatingSystem.Architecture)))
	for _, n := range sys.NetworkInterfaces {
		field("Interface "+n.Name, strings.TrimSpace(n.MACAddress+" "+strings.Join(append(slices.Clone(n.IPv4Addresses), n.IPv6Addresses...), " ")))
	}
	field("Releases", api.FormatLabels(h.Releases))
	field("Agent", sys.AgentVersion)
	field("Packages", len(sys.Packages))
	field("Facts", api.FormatLabels(sys.Facts))
	if !h.DriftAt.IsZero() {
		field("Drift", "last change no rollout made: "+h.DriftAt.UTC().Format(time.RFC3339))
	}
	hist := d.History
	if n > 0 && len(hist) > n {
		fmt.Fprintf(w, "\nHistory (latest %d of %d; --history 0 for all):\n", n, len(hist))
		hist = hist[len(hist)-n:]
	} else {
		fmt.Fprintf(w, "\nHistory:\n")
	}
	row(w, "TIME", "FACT", "FROM", "TO", "BY")
	for _, e := range hist {
		at := e.At.UTC().Format(time.RFC3339)
		if e.Initial {
			row(w, at, "(first inventory)", "-", fmt.Sprintf("%d facts", e.Facts), "-")
			continue
		}
		for _, c := range e.Changes {
			by := c.Rollout
			if by == "" {
				by = "DRIFT"
			}
			row(w, at, c.Fact, dash(clip(c.From, 40)), dash(clip(c.To, 40)), by)
		}
		if e.Omitted > 0 {
			row(w, at, fmt.Sprintf("(%d more)", e.Omitted), "", "", "")
		}
	}
}

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (a *app) inventoryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "inventory", Short: "Export the fleet's inventory for the CMDB"}
	var format, out string
	var q hostQueryFlags
	export := &cobra.Command{
		Use:   "export [--format csv|jsonl|servicenow] [--since TIME] [--where EXPR] [-o FILE]",
		Short: "Export the inventory as CSV, JSON Lines or ServiceNow IRE payloads",
		Long: `Export the inventory of the selected hosts (all by default), streamed:

  csv         one row per host, stable documented columns, RFC 4180 quoting,
              cells a spreadsheet would run as a formula neutralised
  jsonl       one complete host record per line
  servicenow  one Identification and Reconciliation payload per line,
              {"items":[...],"relations":[...]}, ready to POST to
              /api/now/identifyreconcile

--since gives only hosts whose configuration or status changed after a time,
for incremental feeds. docs/cmdb.md documents every column and field.`,
		Example: `  drover inventory export > fleet.csv
  drover inventory export --format jsonl -o fleet.jsonl
  drover inventory export --format servicenow --since 24h --where env=prod -o ire.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(inventory.Formats, format) {
				return usageErr("--format %q: allowed values are %s", format, strings.Join(inventory.Formats, ", "))
			}
			hq, err := q.query()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if out == "" || out == "-" {
				return c.Export(cmd.Context(), format, hq, a.stdout)
			}
			// Write beside the target and rename, so that a failed export
			// never leaves a truncated file where the last good one was.
			f, err := os.CreateTemp(filepath.Dir(out), ".drover-export-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			defer f.Close()
			if err := c.Export(cmd.Context(), format, hq, f); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), out)
		},
	}
	export.Flags().StringVar(&format, "format", inventory.FormatCSV, strings.Join(inventory.Formats, ", "))
	export.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	export.Flags().StringVarP(&out, "file", "f", "", "same as --output")
	q.register(export)
	cmd.AddCommand(export)
	return cmd
}

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Join tokens for enrolling agents"}
	var labels, ttl, host string
	var uses int
	create := &cobra.Command{
		Use:   "create [--labels k=v,...] [--ttl 24h] [--uses 1]",
		Short: "Create a join token",
		Long: `Create a join token. Hosts that enroll with it get its labels. It expires
after --ttl and can be used --uses times. The token also carries the
cluster CA's fingerprint, so the agent can check it talks to this cluster.
It is shown once: the servers keep only a hash of its secret.`,
		Example: `  drover token create --labels env=prod,site=berlin --ttl 24h
  drover-agent enroll --server https://10.0.0.1:7400 --token "$(drover token create --uses 50)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := api.ParseLabels(labels)
			if err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("--labels: %w", err)}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			var tok api.TokenResponse
			if _, err := c.Do(cmd.Context(), client.Request{Method: "POST", Path: api.PathTokens,
				JSON: api.TokenRequest{Labels: l, TTL: ttl, Uses: uses, Host: host}}, &tok); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, tok.Token)
			fmt.Fprintf(a.stderr, "token %s expires %s, %d use(s)\n", tok.ID, tok.ExpiresAt, uses)
			return nil
		},
	}
	create.Flags().StringVar(&labels, "labels", "", "labels of the hosts that enroll: key=value,...")
	create.Flags().StringVar(&ttl, "ttl", "24h", "lifetime")
	create.Flags().IntVar(&uses, "uses", 1, "how many hosts may enroll with it")
	create.Flags().StringVar(&host, "host", "", "grant the token to this host name only")
	cmd.AddCommand(create)
	return cmd
}

func (a *app) trustCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "trust", Short: "Trust policies: whose signatures a release needs"}
	var app string
	var pubkeys, builders, repos []string
	var threshold int
	set := &cobra.Command{
		Use:   "set --app APP --pubkey FILE.pub [--pubkey ...] [--threshold K] [--require-builder ID ...] [--require-repo URI ...]",
		Short: "Set an application's first trust policy (admin)",
		Long: `Set the first trust policy of an application ("*" for every application
without its own): the minisign public keys whose signatures count, and how
many distinct ones a release needs. Agents pin it and check every release
against it themselves. Once set, a policy changes only by 'drover trust
rotate', signed by its current keys.

--require-builder and --require-repo make every release carry build
provenance (drover artifact push --provenance) from one of the builders and
source repositories named; the readiness review and every agent check it.`,
		Example: `  drover trust set --app '*' --pubkey release.pub
  drover trust set --app web --pubkey alice.pub --pubkey bob.pub --threshold 2
  drover trust set --app web --pubkey ci.pub \
      --require-builder https://github.com/actions/runner/github-hosted --require-repo https://github.com/acme/web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := policyFromFlags(app, pubkeys, threshold)
			if err != nil {
				return err
			}
			if len(builders)+len(repos) > 0 {
				p.Provenance = &artifacts.ProvenanceRule{Builders: builders, Repositories: repos}
				if err := p.Validate(); err != nil {
					return usageErr("%v", err)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.SetTrust(cmd.Context(), artifacts.SignedPolicy{Policy: p, Serial: 1})
		},
	}
	for _, c := range []*cobra.Command{set} {
		c.Flags().StringVar(&app, "app", artifacts.AnyApp, "application name, or * for all")
		c.Flags().StringArrayVar(&pubkeys, "pubkey", nil, "minisign public key file (repeatable)")
		c.Flags().IntVar(&threshold, "threshold", 1, "signatures needed from distinct keys")
	}
	set.Flags().StringArrayVar(&builders, "require-builder", nil, "releases must be built by this builder id (repeatable)")
	set.Flags().StringArrayVar(&repos, "require-repo", nil, "releases must be built from this source repository (repeatable)")
	var signKeys, sigFiles []string
	var writeDoc string
	rotate := &cobra.Command{
		Use:   "rotate --app APP --pubkey NEW.pub [...] --threshold K (--key OLD.key ... | --signature FILE ...)",
		Short: "Replace an application's signers, signed by the current ones",
		Long: `Rotate a trust policy: the new keys and threshold take effect only with the
signatures of at least the current policy's threshold of its current keys
over the new policy's document. Agents accept the rotation by the same
rule, so neither the control plane nor an admin alone can change who signs
releases.

Sign here with the current secret keys (--key, password from
$DROVER_KEY_PASSWORD), or have each key holder sign elsewhere: write the
document with --write-document FILE, have it signed (drover sign FILE, or
minisign -S), then run rotate again with --signature FILE.minisig for each.`,
		Example: `  drover trust rotate --app web --pubkey carol.pub --pubkey dave.pub --threshold 2 \
      --key alice.key --key bob.key
  drover trust rotate --app web --pubkey carol.pub --write-document rotate.json
  drover trust rotate --app web --pubkey carol.pub --signature rotate.json.minisig`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := policyFromFlags(app, pubkeys, threshold)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			var current []artifacts.SignedPolicy
			if _, err := c.Do(cmd.Context(), client.Request{Method: "GET", Path: api.PathTrust}, &current); err != nil {
				return err
			}
			i := slices.IndexFunc(current, func(sp artifacts.SignedPolicy) bool { return sp.App == app })
			if i < 0 {
				return usageErr("application %q has no trust policy yet: use drover trust set", app)
			}
			next := artifacts.SignedPolicy{Policy: p, Serial: current[i].Serial + 1}
			doc := next.Document()
			if writeDoc != "" {
				if err := pki.WriteFileAtomic(writeDoc, doc, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "wrote %s (serial %d); have it signed by %d of the current keys\n", writeDoc, next.Serial, current[i].Threshold)
				return nil
			}
			for _, k := range signKeys {
				key, err := artifacts.LoadSecretKey(k, os.Getenv("DROVER_KEY_PASSWORD"))
				if err != nil {
					return &exitErr{code: exitUsage, err: err}
				}
				next.Signatures = append(next.Signatures, artifacts.Sign(key, doc, fmt.Sprintf("trust rotation %s serial %d", app, next.Serial)))
			}
			for _, f := range sigFiles {
				sig, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				next.Signatures = append(next.Signatures, sig)
			}
			if err := current[i].VerifySuccessor(next); err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			if err := c.SetTrust(cmd.Context(), next); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "trust policy of %s rotated to serial %d\n", app, next.Serial)
			return nil
		},
	}
	rotate.Flags().StringVar(&app, "app", artifacts.AnyApp, "application name, or * for all")
	rotate.Flags().StringArrayVar(&pubkeys, "pubkey", nil, "new minisign public key file (repeatable)")
	rotate.Flags().IntVar(&threshold, "threshold", 1, "signatures the new policy needs from distinct keys")
	rotate.Flags().StringArrayVar(&signKeys, "key", nil, "a current secret key to sign the rotation with (repeatable)")
	rotate.Flags().StringArrayVar(&sigFiles, "signature", nil, "a signature of the rotation document made elsewhere (repeatable)")
	rotate.Flags().StringVar(&writeDoc, "write-document", "", "write the document to sign to this file and stop")
	show := &cobra.Command{
		Use:     "show",
		Short:   "Show the trust policies",
		Example: `  drover trust show -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []artifacts.SignedPolicy
			if err := a.get(cmd, api.PathTrust, &ps); err != nil {
				return err
			}
			return a.printOut(ps, func(w io.Writer) {
				row(w, "APP", "SERIAL", "THRESHOLD", "KEYS")
				for _, p := range ps {
					row(w, p.App, p.Serial, p.Threshold, strings.Join(keyIDs(p.Keys), ","))
				}
			})
		},
	}
	cmd.AddCommand(set, rotate, show)
	return cmd
}

// policyFromFlags builds a policy from public key files.
func policyFromFlags(app string, pubkeys []string, threshold int) (artifacts.Policy, error) {
	p := artifacts.Policy{App: app, Threshold: threshold}
	for _, path := range pubkeys {
		b, err := os.ReadFile(path)
		if err != nil {
			return p, err
		}
		k, err := artifacts.ParsePublicKey(b)
		if err != nil {
			return p, &exitErr{code: exitUsage, err: fmt.Errorf("%s: %w", path, err)}
		}
		p.Keys = append(p.Keys, k.String())
	}
	if err := p.Validate(); err != nil {
		return p, &exitErr{code: exitUsage, err: err}
	}
	return p, nil
}

func keyIDs(keys []string) []string {
	var out []string
	for _, k := range keys {
		if pk, err := artifacts.ParsePublicKey([]byte(k)); err == nil {
			out = append(out, fmt.Sprintf("%X", pk.ID()))
		}
	}
	return out
}

func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The control plane's servers"}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the leader, voters and non-voters, and how far each server lags",
		Long: `Show every server in the Raft configuration or the gossip pool: its
suffrage (voter, non-voter, or none when only gossip knows it), its gossip
state, whether it leads, and how many log entries it lags behind the
leader.`,
		Example: `  drover cluster status
  drover cluster status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.ClusterStatus
			if err := a.get(cmd, api.PathClusterStatus, &st); err != nil {
				return err
			}
			return a.printOut(st, func(w io.Writer) {
				row(w, "SERVER", "SUFFRAGE", "LEADER", "GOSSIP", "RAFT STATE", "APPLIED", "LAG")
				for _, s := range st.Servers {
					leader, raftState, applied := "", "unreachable", "-"
					if s.Leader {
						leader = "*"
					}
					if s.Health != nil {
						raftState, applied = s.Health.State, fmt.Sprint(s.Health.AppliedIndex)
					}
					row(w, s.ID, s.Suffrage, leader, s.Gossip, raftState, applied, s.Lag)
				}
				fmt.Fprintf(w, "\nleader %s, term %d (answered by %s)\n", dash(st.Leader), st.Term, st.AnsweredBy)
			})
		},
	}
	members := &cobra.Command{
		Use:     "members",
		Short:   "Show the servers of the gossip pool and their addresses",
		Example: `  drover cluster members`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.ClusterStatus
			if err := a.get(cmd, api.PathClusterStatus, &st); err != nil {
				return err
			}
			return a.printOut(st.Servers, func(w io.Writer) {
				row(w, "SERVER", "GOSSIP", "API", "RAFT", "SUFFRAGE")
				for _, s := range st.Servers {
					row(w, s.ID, s.Gossip, dash(s.API), s.Raft, s.Suffrage)
				}
			})
		},
	}
	var dir string
	var servers []string
	initCmd := &cobra.Command{
		Use:   "init --server ID=HOST [--server ...] --dir DIR",
		Short: "Create the files a new cluster starts from",
		Long: `Create a cluster CA, a gossip key, each server's certificate and
configuration, and an admin operator's CLI bundle, in DIR:

  DIR/servers/ID/           everything server ID needs: copy it to that host
                            (server.yaml, tls/, ca/ with the CA key, gossip.key)
  DIR/admin.yaml            the admin's CLI configuration (DIR/operators/admin/)
  DIR/ca/, DIR/gossip.key   the originals: keep them offline and safe

Each server listens on HOST:7400 (API), :7401 (Raft) and :7402 (gossip);
write HOST:PORT to choose the API port (the next two follow). Start
every server with: drover server --config DIR/servers/ID/server.yaml
(paths in it are relative to the file).`,
		Example: `  drover cluster init --server s1=10.0.0.1 --server s2=10.0.0.2 --server s3=10.0.0.3 --dir ./cluster`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageErr("--dir is required")
			}
			if n := len(servers); n != 1 && n != 3 && n != 5 {
				return usageErr("--server: give 1, 3 or 5 servers, got %d", n)
			}
			if _, err := os.Stat(filepath.Join(dir, "ca")); err == nil {
				return usageErr("%s already holds a cluster; choose another --dir", dir)
			}
			plan := bootstrap.Plan{Dir: dir, Now: time.Now()}
			for _, spec := range servers {
				s, err := parseServerSpec(spec)
				if err != nil {
					return &exitErr{code: exitUsage, err: err}
				}
				plan.Servers = append(plan.Servers, s)
			}
			cl, err := bootstrap.Write(plan)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote the cluster's files to %s\n", dir)
			fmt.Fprintf(a.stdout, "export DROVER_CONFIG=%s\n", cl.AdminConfig)
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "directory to write to")
	initCmd.Flags().StringArrayVar(&servers, "server", nil, "ID=HOST or ID=HOST:PORT (repeatable)")
	cmd.AddCommand(status, members, initCmd)
	return cmd
}

// parseServerSpec reads ID=HOST[:PORT]; the API is on PORT (default 7400),
// Raft on PORT+1 and gossip on PORT+2.
func parseServerSpec(spec string) (bootstrap.Server, error) {
	id, hostport, ok := strings.Cut(spec, "=")
	if !ok || id == "" || hostport == "" {
		return bootstrap.Server{}, fmt.Errorf("--server %q: write ID=HOST or ID=HOST:PORT", spec)
	}
	host, port := hostport, 7400
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65533 {
			return bootstrap.Server{}, fmt.Errorf("--server %q: bad port", spec)
		}
		host, port = h, n
	}
	addr := func(p int) string { return net.JoinHostPort(host, strconv.Itoa(p)) }
	return bootstrap.Server{ID: id, APIAddr: addr(port), RaftAddr: addr(port + 1), GossipAddr: addr(port + 2)}, nil
}
