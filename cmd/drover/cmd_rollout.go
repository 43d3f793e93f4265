package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/report"
	"github.com/drover-dev/drover/deploy"
	"github.com/drover-dev/drover/inventory"
)

func (a *app) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Plan, start, watch, promote, pause, abort and roll back rollouts"}
	var (
		pf                  planFlags
		queue, start, watch bool
		override            string
	)
	create := &cobra.Command{
		Use:   "create NAME@VERSION [flags] | create -f PLAN.yaml [flags]",
		Short: "Plan a rollout of a release (and start it with --start)",
		Long: `Plan a rollout of a release to the enrolled hosts matching --selector. The
rollout is pending until started (drover rollout start, or --start here);
starting runs the readiness review (drover release readiness) and refuses
to start with a failed gate unless an admin overrides it with a reason.

The plan comes from flags, or from a YAML file (-f) whose fields are the
flags' names with underscores; flags given on the command line win:

  release: web@1.2.0
  selector: {env: prod}
  where: os=debian,memory_gib>=8
  waves: [1, 10%, 50%, 100%]
  max_parallel: 10
  max_failures: 5%
  wave_max_failures: 1
  bake_time: 30m
  auto_promote: true
  on_failure: rollback
  not_before: 2026-12-01T22:00:00+01:00
  deadline: 2026-12-02T06:00:00+01:00
  host_timeout: 45m

Waves are cumulative: "1,50%,100%" updates one host, then half of the
targets, then all. A percentage is of the target set, rounded up to at least
one host. The next wave starts when every host of the current one has
finished and the bake time has passed (and, with --auto-promote=false, when
an operator promotes it).

Failure thresholds: --max-failures over the whole rollout and
--wave-max-failures within each wave, each a host count or a percentage
(rounded down) of the hosts it covers. A threshold trips when more hosts
than allowed have ended reverted or failed (a host that makes no progress
for --host-timeout, not counting time waiting for its window, counts as
failed). Hosts still in flight count as neither; when a threshold trips no
new host starts and those in flight finish. Then --on-failure pause stops
for an operator; rollback takes every updated host back, in waves.

A host has one change at a time: a rollout that would touch a host another
active rollout touches in an overlapping period (from not_before, or now,
to the deadline; open-ended without one) is refused, naming the other;
--queue places it after the other instead. A rollout scheduled inside a
change freeze is refused; an admin may --override with a reason.`,
		Example: `  drover rollout create web@1.2.0 --waves 1,50%,100% --start --watch
  drover rollout create web@1.2.0 --selector env=prod --max-parallel 10 --max-failures 5% \
      --bake-time 30m --on-failure rollback --deadline 2026-12-02T06:00:00+01:00
  drover rollout create web@1.2.0 --where 'os=debian,os_version>=12' --waves 10%,100%
  drover rollout create -f plan.yaml --queue
  drover rollout create web@1.2.1 --selector env=prod --start --override "CVE fix approved by CAB"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := pf.request(cmd.Flags(), args)
			if err != nil {
				return err
			}
			req.Queue, req.Start, req.Override = queue, start, override
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			created, err := c.CreateRollout(cmd.Context(), req)
			if err != nil {
				return err
			}
			if watch && (a.output == formatJSON || a.output == formatYAML) {
				// stdout is the stream of events, each naming the rollout.
				fmt.Fprintf(a.stderr, "rollout %s created\n", created.ID)
			} else {
				fmt.Fprintln(a.stdout, created.ID)
			}
			if !watch {
				return nil
			}
			return a.watch(cmd.Context(), c, created.ID, created.Index-1)
		},
	}
	pf.register(create.Flags())
	f := create.Flags()
	f.BoolVar(&queue, "queue", false, "if the rollout conflicts with others, queue it after them instead of refusing it")
	f.BoolVar(&start, "start", false, "start it now (if its readiness gates pass)")
	f.StringVar(&override, "override", "", "admin: schedule inside a freeze and start despite failed gates, for this reason (recorded)")
	f.BoolVar(&watch, "watch", false, "watch the rollout until it ends")

	watchCmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a rollout until it ends",
		Long: `Follow a rollout until it ends, and its rollback if it rolls back. On a
terminal each wave is a progress bar with its hosts' states (succeeded,
reverted, failed, in flight, waiting for a maintenance window and when
that window opens), and failures and changes of the rollout's state are
printed above the bars as they happen. Elsewhere (a pipe, a log, or with
NO_COLOR set) it prints one line per change. With -o json it prints one
JSON event per line: type rollout, wave, host, and a last event of type
end with the final host counts and the exit code (-o yaml: one YAML
document per event).

Exits 0 when the rollout completes; 3 when it ends paused, aborted,
rolled back or pending; 1 on an error (it keeps retrying for two minutes
when it loses contact with the control plane).`,
		Example: `  drover rollout watch r-42
  drover rollout watch r-42 -o json | jq .`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			return a.watch(cmd.Context(), c, args[0], 0)
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List rollouts",
		Example: `  drover rollout list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out []*api.Rollout
			if err := a.get(cmd, api.PathRollouts, &out); err != nil {
				return err
			}
			return a.printOut(out, func(w io.Writer) {
				row(w, "ID", "KIND", "RELEASE", "STATE", "WAVE", "HOSTS", "CREATED BY", "REASON")
				for _, r := range out {
					row(w, r.ID, r.Kind, r.Release, r.State, fmt.Sprintf("%d/%d", r.Wave+1, len(r.Sizes)), len(r.Targets), r.CreatedBy, dash(r.Reason))
				}
			})
		},
	}
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show a rollout and its hosts",
		Example: `  drover rollout show r-42 -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.RolloutStatus
			if err := a.get(cmd, api.PathRollouts+"/"+args[0], &st); err != nil {
				return err
			}
			return a.printOut(st, func(w io.Writer) {
				r := st.Rollout
				fmt.Fprintf(w, "rollout %s (%s): %s, %s, wave %d of %d (%s)\n", r.ID, r.Kind, r.Release, r.State, r.Wave+1, len(r.Sizes), r.Plan.Waves)
				if r.Reason != "" {
					fmt.Fprintf(w, "reason: %s\n", r.Reason)
				}
				if len(r.After) > 0 {
					fmt.Fprintf(w, "queued after: %s\n", strings.Join(r.After, ", "))
				}
				if r.RollbackID != "" {
					fmt.Fprintf(w, "rolled back by: %s\n", r.RollbackID)
				}
				if r.RollbackOf != "" {
					fmt.Fprintf(w, "rolls back: %s\n", r.RollbackOf)
				}
				for _, o := range r.Overrides {
					fmt.Fprintf(w, "override by %s at %s of %s: %s\n", o.By, o.At.Format(time.RFC3339), strings.Join(o.Gates, ", "), o.Reason)
				}
				fmt.Fprintln(w)
				row(w, "HOST", "WAVE", "STATE", "FROM", "CURRENT", "REASON")
				for _, d := range st.Hosts {
					row(w, d.Host, d.Wave+1, d.State, dash(d.From), dash(d.Current), dash(d.Reason))
				}
			})
		},
	}
	cmd.AddCommand(create, a.startCommand(), watchCmd, list, show, a.reportCommand(), a.changeRecordCommand(),
		a.controlCommand(api.ActionPause, "paused", "Stop starting hosts (those in flight finish)",
			"drover rollout pause r-42 --reason 'customer call'"),
		a.controlCommand(api.ActionResume, "resumed", "Resume a paused rollout",
			"drover rollout resume r-42"),
		a.controlCommand(api.ActionPromote, "promoted", "Let the next wave start now (ends the bake time; needed with auto_promote false)",
			"drover rollout promote r-42 --reason 'canary metrics look good'"),
		a.controlCommand(api.ActionAbort, "aborted", "Stop a rollout for good: hosts not started are skipped, those in flight finish",
			"drover rollout abort r-42 --reason 'superseded by 1.2.1'"),
		a.controlCommand(api.ActionRollback, "rolling back", "Take every updated host back to its previous release, in waves",
			"drover rollout rollback r-42 --reason 'error rate up'"),
	)
	return cmd
}

func (a *app) startCommand() *cobra.Command {
	var override string
	var watch bool
	cmd := &cobra.Command{
		Use:   "start ID",
		Short: "Start a pending rollout, after its readiness review",
		Long: `Start a pending rollout. The readiness review runs first (see drover release
readiness); a failed gate refuses the start, unless an admin gives
--override with a reason, which is recorded in the rollout and the audit
trail.`,
		Example: `  drover rollout start r-42 --watch
  drover rollout start r-42 --override "host db-3 is being replaced; approved in CHG-1234"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.StartRollout(cmd.Context(), args[0], override); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "rollout %s started\n", args[0])
			if watch {
				return a.watch(cmd.Context(), c, args[0], 0)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&override, "override", "", "admin: start despite failed readiness gates, for this reason (recorded)")
	cmd.Flags().BoolVar(&watch, "watch", false, "watch the rollout until it ends")
	return cmd
}

func (a *app) controlCommand(action, done, short, example string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     action + " ID",
		Short:   short,
		Example: "  " + example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.ControlRollout(cmd.Context(), args[0], action, reason); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "rollout %s %s\n", args[0], done)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record")
	return cmd
}

func (a *app) reportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "report ID",
		Short: "Post-release review: timeline, waves, failures, deviations, approvals, digests",
		Long: `Print the post-release review of a rollout, built from the replicated
record: who created, approved, started and promoted it; the artifact's
digests and provenance; per wave its hosts, successes, failures with
reasons, reverts, durations and time spent waiting for maintenance windows;
deviations from the plan (overrides, pauses, timeouts, skipped hosts, a
missed deadline); the timeline of decisions; and its rollback, if any.

-o md (the default) writes Markdown; -o json or -o yaml the same as data.`,
		Example: `  drover rollout report r-42 > r-42.md
  drover rollout report r-42 -o json | jq .waves`,
		Annotations: map[string]string{annotationForms: "md,markdown"},
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Report(cmd.Context(), args[0], time.Now())
			if err != nil {
				return err
			}
			switch a.output {
			case "md", "markdown", "table", "":
				return rep.WriteMarkdown(a.stdout)
			case formatJSON, formatYAML:
				return a.printOut(rep, nil)
			}
			return usageErr("--output %q: allowed values are md, json, yaml", a.output)
		},
	}
}

func (a *app) changeRecordCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "change-record ID",
		Short: "A finished rollout as a change record (JSON) for the CMDB's change module",
		Long: `Print what a finished rollout changed, as JSON for a CMDB's change module:
who requested and approved it, when it ran, every host touched with the
version before and after and its outcome, the back-out plan and the
back-out carried out, deviations, and a close code (successful,
successful_issues, unsuccessful). Field by field: docs/cmdb.md.`,
		Example: `  drover rollout change-record r-42 > CHG-r-42.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Report(cmd.Context(), args[0], time.Now())
			if err != nil {
				return err
			}
			rec, err := report.Change(*rep)
			if err != nil {
				return fmt.Errorf("rollout %s (%s): %w", args[0], rep.State, err)
			}
			return a.printOut(rec, nil) // JSON, or YAML with -o yaml
		},
	}
}

// planFlags are a rollout plan given as flags, over a plan file.
type planFlags struct {
	file, waves, maxFailures, waveMaxFailures, selector, where, env, onFailure, notBefore, deadline string
	maxParallel                                                                                     int
	bakeTime, hostTimeout                                                                           time.Duration
	autoPromote                                                                                     bool
}

func (p *planFlags) register(f *pflag.FlagSet) {
	f.StringVarP(&p.file, "file", "f", "", "read the plan from a YAML file (flags given win)")
	p.registerPlan(f)
}

// registerPlan registers every flag but the plan file's.
func (p *planFlags) registerPlan(f *pflag.FlagSet) {
	f.StringVar(&p.waves, "waves", deploy.DefaultWaves, "cumulative wave sizes: host counts or percentages")
	f.StringVar(&p.maxFailures, "max-failures", "0", "failed hosts tolerated over the whole rollout: a count or a percentage")
	f.StringVar(&p.waveMaxFailures, "wave-max-failures", "", "failed hosts tolerated within each wave: a count or a percentage (default: no per-wave limit)")
	f.StringVar(&p.selector, "selector", "", "target hosts by labels: key=value,... (default every host)")
	f.StringVar(&p.where, "where", "", "target hosts by labels and inventory facts too: os=debian,memory_gib>=8,release.web<2.0")
	f.StringVar(&p.env, "env", "", "deploy into a lifecycle environment: its hosts only, after the stage before it (drover env list)")
	f.IntVar(&p.maxParallel, "max-parallel", 0, "most hosts updating at once (0: the whole wave)")
	f.DurationVar(&p.bakeTime, "bake-time", 0, "how long a finished wave runs before the next starts")
	f.BoolVar(&p.autoPromote, "auto-promote", true, "start the next wave automatically; false: wait for drover rollout promote")
	f.StringVar(&p.onFailure, "on-failure", deploy.OnFailurePause, "when a threshold trips: pause or rollback")
	f.StringVar(&p.notBefore, "not-before", "", "no host starts before this time (RFC 3339)")
	f.StringVar(&p.deadline, "deadline", "", "the rollout pauses if not complete by this time (RFC 3339)")
	f.DurationVar(&p.hostTimeout, "host-timeout", 0, "a host with no progress this long (outside window waits) counts as failed (default 30m)")
}

// request builds the rollout request: the plan file if given, then every
// flag set on the command line (or, without a file, every flag).
func (p *planFlags) request(f *pflag.FlagSet, args []string) (api.RolloutRequest, error) {
	var req api.RolloutRequest
	set := func(name string) bool { return p.file == "" || f.Changed(name) }
	if p.file != "" {
		file, err := os.Open(p.file)
		if err != nil {
			return req, usageErr("--file: %v", err)
		}
		defer file.Close()
		pf, err := deploy.ParsePlanFile(file)
		if err != nil {
			return req, usageErr("%s: %v", p.file, err)
		}
		req.Release, req.Selector, req.Where, req.Env, req.Plan = pf.Release, pf.Selector, pf.Where, pf.Env, pf.Plan
	}
	if len(args) == 1 {
		req.Release = args[0]
	}
	if req.Release == "" {
		return req, usageErr("name the release (NAME@VERSION) or give a plan file with -f")
	}
	var err error
	pl := &req.Plan
	if set("waves") {
		if pl.Waves, err = deploy.ParseWaves(p.waves); err != nil {
			return req, usageErr("--waves: %v", err)
		}
	}
	if set("max-failures") {
		if pl.MaxFailures, err = deploy.ParseThreshold(p.maxFailures); err != nil {
			return req, usageErr("--max-failures: %v", err)
		}
	}
	if set("wave-max-failures") && p.waveMaxFailures != "" {
		t, err := deploy.ParseThreshold(p.waveMaxFailures)
		if err != nil {
			return req, usageErr("--wave-max-failures: %v", err)
		}
		pl.WaveMaxFailures = &t
	}
	if set("selector") {
		if req.Selector, err = api.ParseLabels(p.selector); err != nil {
			return req, usageErr("--selector: %v", err)
		}
	}
	if set("where") {
		if _, err := inventory.ParseWhere(p.where); err != nil {
			return req, usageErr("--where: %v", err)
		}
		req.Where = p.where
	}
	if set("env") && p.env != "" {
		req.Env = p.env
	}
	if set("max-parallel") {
		pl.MaxParallel = p.maxParallel
	}
	if set("bake-time") {
		pl.BakeTime = p.bakeTime
	}
	if set("auto-promote") {
		pl.ManualPromote = !p.autoPromote
	}
	if set("on-failure") {
		pl.OnFailure = p.onFailure
	}
	if set("host-timeout") {
		pl.HostTimeout = p.hostTimeout
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"not-before", p.notBefore, &pl.NotBefore}, {"deadline", p.deadline, &pl.Deadline}} {
		if set(t.flag) && t.v != "" {
			if *t.dst, err = deploy.ParseTime(t.v); err != nil {
				return req, usageErr("--%s: %v", t.flag, err)
			}
		}
	}
	if err := pl.Validate(); err != nil {
		return req, usageErr("%v", err)
	}
	return req, nil
}

// rolloutRequest is a plan in the simplest form, for the demo and benches.
func rolloutRequest(release, waves, maxFailures, selector string, maxParallel int) (api.RolloutRequest, error) {
	w, err := deploy.ParseWaves(waves)
	if err != nil {
		return api.RolloutRequest{}, &exitErr{code: exitUsage, err: err}
	}
	th, err := deploy.ParseThreshold(maxFailures)
	if err != nil {
		return api.RolloutRequest{}, &exitErr{code: exitUsage, err: err}
	}
	sel, err := api.ParseLabels(selector)
	if err != nil {
		return api.RolloutRequest{}, &exitErr{code: exitUsage, err: fmt.Errorf("--selector: %w", err)}
	}
	if maxParallel < 0 {
		return api.RolloutRequest{}, usageErr("--max-parallel: must be 0 or more")
	}
	return api.RolloutRequest{Release: release, Selector: sel, Plan: deploy.Plan{Waves: w, MaxParallel: maxParallel, MaxFailures: th}}, nil
}
