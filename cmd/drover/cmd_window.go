package main

import (
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/deploy"
)

func (a *app) windowCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "window", Short: "Maintenance windows: when hosts may activate releases"}
	var w deploy.Window
	var selector string
	set := &cobra.Command{
		Use:   "set NAME --schedule RRULE --duration D [--time-zone TZ] [--cutoff D] [--selector k=v,...]",
		Short: "Create or replace a maintenance window (admin)",
		Long: `Create or replace a maintenance window. Hosts matching --selector (all
hosts if empty) activate releases only inside one of their windows, and
not after its cutoff; they download and stage before, and wait. Agents
enforce their windows themselves, with their own clock, so a host that is
offline when a window opens still keeps to it.

--schedule is an RRULE subset: FREQ=DAILY or FREQ=WEEKLY with BYDAY,
BYHOUR, BYMINUTE, BYSECOND, in --time-zone (IANA; default UTC).`,
		Example: `  drover window set berlin-nights --schedule 'FREQ=DAILY;BYHOUR=2' --time-zone Europe/Berlin \
      --duration 3h --cutoff 2h --selector site=berlin
  drover window set weekends --schedule 'FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=6' --duration 12h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w.Name = args[0]
			sel, err := api.ParseLabels(selector)
			if err != nil {
				return &exitErr{code: exitUsage, err: fmt.Errorf("--selector: %w", err)}
			}
			w.Selector = sel
			if err := w.Validate(); err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Do(cmd.Context(), client.Request{Method: "PUT", Path: "/v1/windows/" + url.PathEscape(w.Name), JSON: w}, nil); err != nil {
				return err
			}
			start, end, _ := w.Occurrence(time.Now())
			fmt.Fprintf(a.stderr, "window %s set; next occurrence %s to %s\n", w.Name, start.Format(time.RFC3339), end.Format(time.RFC3339))
			return nil
		},
	}
	set.Flags().StringVar(&w.Schedule, "schedule", "", "RRULE subset, e.g. FREQ=WEEKLY;BYDAY=SA;BYHOUR=2")
	set.Flags().StringVar(&w.TimeZone, "time-zone", "", "IANA time zone of the schedule (default UTC)")
	set.Flags().DurationVar(&w.Duration, "duration", 0, "length of each occurrence")
	set.Flags().DurationVar(&w.Cutoff, "cutoff", 0, "nothing new starts this long after the start (default: the whole duration)")
	set.Flags().StringVar(&selector, "selector", "", "hosts the window applies to: key=value,... (default all)")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List maintenance windows with their next occurrence",
		Example: `  drover window list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ws []*api.Window
			if err := a.get(cmd, "/v1/windows", &ws); err != nil {
				return err
			}
			return a.printOut(ws, func(out io.Writer) {
				row(out, "WINDOW", "SCHEDULE", "TIME ZONE", "DURATION", "CUTOFF", "HOSTS", "NEXT")
				for _, w := range ws {
					next := "-"
					if start, _, err := w.Occurrence(time.Now()); err == nil {
						next = start.Format(time.RFC3339)
					}
					row(out, w.Name, w.Schedule, dash(w.TimeZone), w.Duration, w.Cutoff, dash(api.FormatLabels(w.Selector)), next)
				}
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Remove a maintenance window (admin)",
		Example: `  drover window delete weekends`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Do(cmd.Context(), client.Request{Method: "DELETE", Path: "/v1/windows/" + url.PathEscape(args[0])}, nil)
			return err
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}
