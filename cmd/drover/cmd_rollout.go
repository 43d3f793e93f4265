package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/deploy"
)

func (a *app) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Roll releases out in waves, watch, pause and resume them"}
	var (
		waves, maxFailures, selector string
		maxParallel                  int
		watch                        bool
	)
	create := &cobra.Command{
		Use:   "create NAME@VERSION [--waves 1,10%,50%,100%]",
		Short: "Start rolling a release out",
		Long: `Start rolling a release out to the enrolled hosts matching --selector.

Waves are cumulative: "1,50%,100%" updates one host, then half of the
targets, then all of them. A percentage is of the target set, rounded up to
at least one host; the last wave always takes every remaining host. The next
wave starts when every host of the current one has finished.

--max-failures is how many hosts may end reverted or failed (a count, or a
percentage of the targets) before the rollout pauses; hosts still in flight
count as neither. When it trips, no new host starts; hosts in flight finish.
A host takes part in one active rollout at a time.`,
		Example: `  drover rollout create web@1.2.0 --waves 1,50%,100% --watch
  drover rollout create web@1.2.0 --selector env=prod,site=berlin --max-parallel 10 --max-failures 5%`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := rolloutRequest(args[0], waves, maxFailures, selector, maxParallel)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			created, err := c.CreateRollout(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, created.ID)
			if !watch {
				return nil
			}
			return a.watch(cmd.Context(), c, created.ID, created.Index-1)
		},
	}
	f := create.Flags()
	f.StringVar(&waves, "waves", "1,10%,50%,100%", "cumulative wave sizes: host counts or percentages")
	f.StringVar(&maxFailures, "max-failures", "0", "failed hosts tolerated before the rollout pauses: a count or a percentage")
	f.StringVar(&selector, "selector", "", "target hosts by labels: key=value,... (default every host)")
	f.IntVar(&maxParallel, "max-parallel", 0, "most hosts updating at once (0: the whole wave)")
	f.BoolVar(&watch, "watch", false, "watch the rollout until it ends")

	watchCmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a rollout until it ends",
		Long: `Print a rollout's progress — waves, host states, failures with their
reasons — as it happens. Exits 0 when the rollout completes and 3 when it
pauses; with -o json it prints one JSON event per line.`,
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
				row(w, "ID", "RELEASE", "STATE", "WAVE", "HOSTS", "CREATED BY", "REASON")
				for _, r := range out {
					row(w, r.ID, r.Release, r.State, fmt.Sprintf("%d/%d", r.Wave+1, len(r.Sizes)), len(r.Targets), r.CreatedBy, dash(r.Reason))
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
				fmt.Fprintf(w, "rollout %s: %s, %s, wave %d of %d (%s)\n\n", r.ID, r.Release, r.State, r.Wave+1, len(r.Sizes), r.Plan.Waves)
				row(w, "HOST", "WAVE", "STATE", "CURRENT", "REASON")
				for _, d := range st.Hosts {
					row(w, d.Host, d.Wave+1, d.State, dash(d.Current), dash(d.Reason))
				}
			})
		},
	}
	cmd.AddCommand(create, watchCmd, list, show, a.controlCommand("pause"), a.controlCommand("resume"))
	return cmd
}

func (a *app) controlCommand(action string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     action + " ID",
		Short:   strings.ToUpper(action[:1]) + action[1:] + " a rollout",
		Example: fmt.Sprintf("  drover rollout %s r-42 --reason 'customer call'", action),
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
			fmt.Fprintf(a.stderr, "rollout %s: %s\n", args[0], action+"d")
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record")
	return cmd
}

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
