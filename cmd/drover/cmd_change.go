package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

func (a *app) readinessCommand() *cobra.Command {
	var pf planFlags
	cmd := &cobra.Command{
		Use:   "readiness [NAME@VERSION] [--rollout PLAN.yaml] [plan flags]",
		Short: "Review whether a planned rollout of a release may start",
		Long: `Run the readiness review of a planned rollout, without creating it, and
print each gate as pass or fail with its reason:

  signatures     the release carries the signatures its trust policy needs
  approvals      enough approvals from people other than the creators, as
                 the approval rules (drover settings) require for the hosts
  hosts          every target host is known and online
  windows        the forecast, from the hosts' maintenance windows,
                 max_parallel, bake times and probation, ends before the
                 deadline
  conflicts      no other active change touches these hosts in the period
  freeze         no change freeze covers these hosts in the period
  back-out       every host runs a release it can go back to (a first
                 install has none, and passes with a note)
  health-checks  the release declares health checks

The plan is the same as for drover rollout create: a YAML file (--rollout)
and flags. Exits 0 when every gate passes and 1 when one fails.`,
		Example: `  drover release readiness web@1.2.0 --rollout plan.yaml
  drover release readiness web@1.2.0 --selector env=prod --waves 1,25%,100% --deadline 2026-12-02T06:00:00+01:00
  drover release readiness web@1.2.0 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := pf.request(cmd.Flags(), args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			rv, err := c.ReviewPlan(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := a.printOut(rv, func(w io.Writer) { printReview(w, rv) }); err != nil {
				return err
			}
			if failed := rv.Failed(); len(failed) > 0 {
				return fmt.Errorf("%d gate(s) failed: %s", len(failed), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pf.file, "rollout", "", "the rollout plan, a YAML file as for drover rollout create -f")
	pf.registerPlan(cmd.Flags())
	return cmd
}

func printReview(w io.Writer, rv *api.Review) {
	fmt.Fprintf(w, "readiness of %s for %d host(s) in waves of %s\n\n", rv.Release, len(rv.Targets), joinInts(rv.Sizes))
	row(w, "GATE", "RESULT", "REASON")
	for _, g := range rv.Gates {
		result := "pass"
		if !g.OK {
			result = "FAIL"
		}
		row(w, g.Name, result, g.Detail)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "forecast:")
	row(w, "WAVE", "HOSTS", "START", "END")
	for _, f := range rv.Forecast.Waves {
		row(w, f.Wave, f.Hosts, f.Start.Local().Format(time.RFC3339), f.End.Local().Format(time.RFC3339))
	}
	switch {
	case rv.Forecast.Reason != "":
		fmt.Fprintf(w, "%s\n", rv.Forecast.Reason)
	case !rv.Forecast.End.IsZero():
		fmt.Fprintf(w, "expected end\t%s\n", rv.Forecast.End.Local().Format(time.RFC3339))
	}
}

func (a *app) freezeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "freeze", Short: "Change freezes: periods in which no change starts"}
	var (
		f                     deploy.Freeze
		from, until, selector string
	)
	set := &cobra.Command{
		Use:   "set NAME --start TIME --end TIME [--selector k=v,...] --reason TEXT",
		Short: "Create or replace a change freeze (admin)",
		Long: `Create or replace a change freeze. While it is in force no host it covers
(--selector; every host if empty) starts a change; hosts already in flight
finish. A rollout scheduled inside a freeze is refused when it is created,
unless an admin overrides it with a recorded reason. Times are RFC 3339.`,
		Example: `  drover freeze set year-end --start 2026-12-20T00:00:00Z --end 2027-01-04T00:00:00Z --reason "year-end close"
  drover freeze set berlin-move --start 2026-12-01T18:00:00+01:00 --end 2026-12-02T06:00:00+01:00 --selector site=berlin --reason "rack move"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Name = args[0]
			var err error
			if f.Start, err = deploy.ParseTime(from); err != nil {
				return usageErr("--start: %v", err)
			}
			if f.End, err = deploy.ParseTime(until); err != nil {
				return usageErr("--end: %v", err)
			}
			if f.Selector, err = api.ParseLabels(selector); err != nil {
				return usageErr("--selector: %v", err)
			}
			if err := f.Validate(); err != nil {
				return usageErr("%v", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.SetFreeze(cmd.Context(), f); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "freeze %s set: %s to %s\n", f.Name, f.Start.Format(time.RFC3339), f.End.Format(time.RFC3339))
			return nil
		},
	}
	set.Flags().StringVar(&from, "start", "", "when the freeze begins (RFC 3339)")
	set.Flags().StringVar(&until, "end", "", "when it ends (RFC 3339)")
	set.Flags().StringVar(&selector, "selector", "", "hosts it covers: key=value,... (default all)")
	set.Flags().StringVar(&f.Reason, "reason", "", "why, for the record and the calendar")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List change freezes",
		Example: `  drover freeze list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var fs []*api.Freeze
			if err := a.get(cmd, api.PathFreezes, &fs); err != nil {
				return err
			}
			now := time.Now()
			return a.printOut(fs, func(w io.Writer) {
				row(w, "FREEZE", "START", "END", "HOSTS", "IN FORCE", "BY", "REASON")
				for _, f := range fs {
					row(w, f.Name, f.Start.Format(time.RFC3339), f.End.Format(time.RFC3339), dash(api.FormatLabels(f.Selector)), f.Active(now), f.CreatedBy, dash(f.Reason))
				}
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "End a change freeze now (admin)",
		Example: `  drover freeze delete year-end`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.DeleteFreeze(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "freeze %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit trail: every decision, hash-chained"}
	var subject string
	var after uint64
	var limit int
	list := &cobra.Command{
		Use:   "list [--subject ID] [--after N] [--limit N]",
		Short: "List audit entries",
		Example: `  drover audit list
  drover audit list --subject r-42
  drover audit list -o json > audit.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			var entries []api.AuditEntry
			switch {
			case subject != "":
				entries, err = c.AuditAbout(cmd.Context(), subject)
			case limit > 0:
				var page *api.AuditPage
				if page, err = c.Audit(cmd.Context(), after, limit); err == nil {
					entries = page.Entries
				}
			default:
				entries, err = c.AuditAll(cmd.Context())
				if err == nil && after > 0 {
					entries = entries[min(int(after), len(entries)):]
				}
			}
			if err != nil {
				return err
			}
			return a.printOut(entries, func(w io.Writer) {
				row(w, "SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL")
				for _, e := range entries {
					row(w, e.Seq, e.Time.Local().Format(time.RFC3339), e.Actor, e.Action, e.Subject, dash(e.Detail))
				}
			})
		},
	}
	list.Flags().StringVar(&subject, "subject", "", "only entries about this subject (a rollout ID, release, freeze/NAME, ...)")
	list.Flags().Uint64Var(&after, "after", 0, "only entries after this sequence number")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many entries (default all)")
	var file string
	verify := &cobra.Command{
		Use:   "verify [--file audit.json]",
		Short: "Check the audit trail's hash chain: detects any altered or missing entry",
		Long: `Fetch the whole audit trail (or read one exported with drover audit list -o
json) and check it here: sequence numbers without gaps, each entry linked
to the hash of the one before, each hash matching its entry's content.
Exits 0 when the chain holds and 1 naming the first entry that breaks it.`,
		Example: `  drover audit verify
  drover audit list -o json > audit.json && drover audit verify --file audit.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var entries []api.AuditEntry
			if file != "" {
				data, err := os.ReadFile(file)
				if err != nil {
					return usageErr("--file: %v", err)
				}
				if err := json.Unmarshal(data, &entries); err != nil {
					return usageErr("--file %s: %v", file, err)
				}
			} else {
				c, err := a.client()
				if err != nil {
					return err
				}
				defer c.Close()
				if entries, err = c.AuditAll(cmd.Context()); err != nil {
					return err
				}
			}
			if err := api.VerifyAudit(entries); err != nil {
				return fmt.Errorf("audit trail broken: %w", err)
			}
			if len(entries) == 0 {
				return errors.New("the audit trail is empty")
			}
			last := entries[len(entries)-1]
			res := struct {
				Intact  bool      `json:"intact"`
				Entries int       `json:"entries"`
				Head    string    `json:"head"`
				Seq     uint64    `json:"seq"`
				Time    time.Time `json:"time"`
			}{true, len(entries), last.Hash, last.Seq, last.Time}
			return a.printOut(res, func(w io.Writer) {
				fmt.Fprintf(w, "audit trail intact: %d entries, head %s (entry %d, %s)\n", len(entries), last.Hash, last.Seq, last.Time.Format(time.RFC3339))
			})
		},
	}
	verify.Flags().StringVar(&file, "file", "", "verify an exported trail (JSON) instead of the cluster's")
	cmd.AddCommand(list, verify)
	return cmd
}

func (a *app) scheduleCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "The change schedule: rollouts, maintenance windows and freezes"}
	var out string
	ics := &cobra.Command{
		Use:   "ics [-f FILE]",
		Short: "Export the schedule as an iCalendar feed",
		Long: `Write the schedule — rollouts (planned and running), maintenance windows
for the next 30 days, and change freezes — as iCalendar (RFC 5545), for
calendar programs. The same feed is served at /v1/calendar.ics to clients
with a viewer certificate.`,
		Example: `  drover schedule ics > drover.ics
  drover schedule ics --file /var/www/calendar/drover.ics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			w := a.stdout
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return c.Calendar(cmd.Context(), w)
		},
	}
	ics.Flags().StringVar(&out, "file", "", "write to FILE instead of stdout")
	cmd.AddCommand(ics)
	return cmd
}

// settingsFile is the YAML form of the change-management settings.
type settingsFile struct {
	Budget *struct {
		Label string `yaml:"label"`
		Max   int    `yaml:"max"`
	} `yaml:"budget"`
	Approvals []struct {
		Selector map[string]string `yaml:"selector"`
		Count    int               `yaml:"count"`
	} `yaml:"approvals"`
	Webhooks []struct {
		URL        string   `yaml:"url"`
		Secret     string   `yaml:"secret"`
		SecretFile string   `yaml:"secret_file"`
		Events     []string `yaml:"events"`
	} `yaml:"webhooks"`
}

func (a *app) settingsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Change-management settings: change budget, approval rules, webhooks"}
	show := &cobra.Command{
		Use:     "show",
		Short:   "Show the settings (webhook secrets redacted)",
		Example: `  drover settings show -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s api.Settings
			if err := a.get(cmd, api.PathSettings, &s); err != nil {
				return err
			}
			return a.printOut(s, func(w io.Writer) {
				if s.Budget != nil {
					fmt.Fprintf(w, "change budget:\tat most %d host(s) changing at once per %s\n", s.Budget.Max, s.Budget.Label)
				} else {
					fmt.Fprintln(w, "change budget:\tnone")
				}
				for _, r := range s.Approvals {
					fmt.Fprintf(w, "approvals:\t%d for hosts matching %s\n", r.Count, dash(api.FormatLabels(r.Selector)))
				}
				for _, h := range s.Webhooks {
					events := "all rollout events"
					if len(h.Events) > 0 {
						events = strings.Join(h.Events, ", ")
					}
					fmt.Fprintf(w, "webhook:\t%s (%s)\n", h.URL, events)
				}
			})
		},
	}
	var file string
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the settings with a YAML file's (admin)",
		Long: `Replace the change-management settings with those of a YAML file:

  budget: {label: site, max: 2}        # at most 2 hosts of one site changing at once, across rollouts
  approvals:                           # rollouts touching matching hosts need this many approvals
    - selector: {env: prod}            #   of their release, from people other than its creators
      count: 2
  webhooks:                            # rollout events as JSON, signed with HMAC-SHA256
    - url: https://hooks.example.com/drover
      secret_file: /etc/drover/webhook.secret   # or secret: ...; 16 to 256 bytes
      events: [rollout.started, rollout.completed, rollout.rolled_back]  # default: every rollout event

A webhook given without a secret keeps the secret it had.`,
		Example: `  drover settings apply -f settings.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := readSettingsFile(file)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.SetSettings(cmd.Context(), s); err != nil {
				return err
			}
			fmt.Fprintln(a.stderr, "settings applied")
			return nil
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "the settings, as YAML")
	_ = apply.MarkFlagRequired("file")
	cmd.AddCommand(show, apply)
	return cmd
}

func readSettingsFile(path string) (api.Settings, error) {
	var out api.Settings
	data, err := os.ReadFile(path)
	if err != nil {
		return out, usageErr("--file: %v", err)
	}
	var f settingsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return out, usageErr("%s: %v", path, err)
	}
	if f.Budget != nil {
		out.Budget = &api.Budget{Label: f.Budget.Label, Max: f.Budget.Max}
	}
	for _, r := range f.Approvals {
		out.Approvals = append(out.Approvals, api.ApprovalRule{Selector: r.Selector, Count: r.Count})
	}
	for i, h := range f.Webhooks {
		secret := h.Secret
		if h.SecretFile != "" {
			b, err := os.ReadFile(h.SecretFile)
			if err != nil {
				return out, usageErr("webhooks[%d].secret_file: %v", i, err)
			}
			secret = strings.TrimSpace(string(b))
		}
		out.Webhooks = append(out.Webhooks, api.Webhook{URL: h.URL, Secret: secret, Events: h.Events})
	}
	return out, nil
}
