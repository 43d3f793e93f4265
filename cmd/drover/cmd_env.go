package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/artifacts"
	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
	"github.com/drover-dev/drover/inventory"
)

func (a *app) envCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Environments: named sets of hosts (test, staging, prod)"}
	var where string
	create := &cobra.Command{
		Use:     "create NAME --where EXPR",
		Aliases: []string{"set"},
		Short:   "Create or replace an environment (admin)",
		Long: `Create or replace an environment: the hosts whose labels and inventory facts
match --where (see drover host list --help). Lifecycles order environments;
drover rollout create --env NAME deploys into one.`,
		Example: `  drover env create staging --where env=staging
  drover env create prod --where 'env=prod,site~eu-*'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e := api.Environment{Name: args[0], Where: where}
			if err := e.Validate(); err != nil {
				return usageErr("%v", err)
			}
			return a.withClient(func(c *client.Client) error {
				if err := c.SetEnvironment(cmd.Context(), e); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "environment %s set: hosts where %s\n", e.Name, e.Where)
				return nil
			})
		},
	}
	create.Flags().StringVar(&where, "where", "", "the environment's hosts, e.g. env=staging")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List environments",
		Example: "  drover env list\n  drover env list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				envs, err := c.Environments(cmd.Context())
				if err != nil {
					return err
				}
				hosts, err := c.Hosts(cmd.Context(), client.HostQuery{})
				if err != nil {
					return err
				}
				return a.printOut(nonNilList(envs), func(w io.Writer) {
					row(w, "NAME", "WHERE", "HOSTS")
					for _, e := range envs {
						row(w, e.Name, e.Where, countMatching(e.Where, hosts))
					}
				})
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete an environment no lifecycle uses (admin)",
		Example: "  drover env delete qa",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteEnvironment(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "environment %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func countMatching(where string, hosts []*api.Host) int {
	w, err := inventory.ParseWhere(where)
	if err != nil {
		return 0
	}
	n := 0
	for _, h := range hosts {
		var sys *inventory.System
		if len(h.Inventory) > 0 {
			sys = new(inventory.System)
			if json.Unmarshal(h.Inventory, sys) != nil {
				sys = nil
			}
		}
		if w.Match(inventory.Attributes(h.Labels, sys)) {
			n++
		}
	}
	return n
}

func (a *app) lifecycleCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "lifecycle", Short: "Lifecycles: the environments a release goes through, in order"}
	var apps, stages, file string
	set := &cobra.Command{
		Use:   "set NAME --apps APP,... --stages ENV[:SOAK],... | set NAME -f FILE",
		Short: "Create or replace a lifecycle (admin)",
		Long: `Create or replace a lifecycle: an ordered list of environments with a minimum
soak time in each. A rollout of a release into a stage is refused until the
release has completed a rollout in the stage before, soaked there, and
passed that stage's verification jobs; an admin may override with a
recorded reason (drover rollout start --override).

--stages gives environments in order, each optionally with its soak time.
Verification jobs need a file (YAML or JSON):

  apps: [web]
  stages:
    - env: test
    - env: staging
      soak: 24h
      verify:
        - name: smoke
          command: [./bin/smoke-test, --junit]
          hosts: role=canary      # which targets run it (default: the first)
          timeout: 10m
    - env: prod

A job runs in the release's directory on the designated hosts after a
rollout completes in its stage, and may write a JUnit XML report to
$DROVER_JUNIT_FILE. Its result is evidence, shown by drover release show.`,
		Example: `  drover lifecycle set default --apps '*' --stages test,staging:24h,prod
  drover lifecycle set web -f web-lifecycle.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lifecycleFromFlags(args[0], file, apps, stages)
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				if err := c.SetLifecycle(cmd.Context(), l); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "lifecycle %s set for %s: %s\n", l.Name, strings.Join(l.Apps, ", "), l.Describe())
				return nil
			})
		},
	}
	set.Flags().StringVar(&apps, "apps", "", "applications it governs, comma-separated, or '*'")
	set.Flags().StringVar(&stages, "stages", "", "environments in order, each ENV or ENV:SOAK, e.g. test,staging:24h,prod")
	set.Flags().StringVarP(&file, "file", "f", "", "read the lifecycle from a YAML or JSON file (flags given win)")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List lifecycles",
		Example: "  drover lifecycle list\n  drover lifecycle list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				ls, err := c.Lifecycles(cmd.Context())
				if err != nil {
					return err
				}
				return a.printOut(nonNilList(ls), func(w io.Writer) {
					row(w, "NAME", "APPS", "STAGES")
					for _, l := range ls {
						row(w, l.Name, strings.Join(l.Apps, ","), l.Describe())
					}
				})
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a lifecycle (admin)",
		Example: "  drover lifecycle delete web",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteLifecycle(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "lifecycle %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}

// lifecycleFromFlags builds a lifecycle from a file and flags over it.
func lifecycleFromFlags(name, file, apps, stages string) (api.Lifecycle, error) {
	var l api.Lifecycle
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return l, usageErr("%v", err)
		}
		// YAML is a superset of JSON; decode generically, then through
		// JSON so that the field names and durations are the API's.
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return l, usageErr("%s: %v", file, err)
		}
		j, err := json.Marshal(doc)
		if err != nil {
			return l, usageErr("%s: %v", file, err)
		}
		if err := json.Unmarshal(j, &l); err != nil {
			return l, usageErr("%s: %v", file, err)
		}
	}
	l.Name = name
	if apps != "" {
		l.Apps = strings.Split(apps, ",")
	}
	if stages != "" {
		l.Stages = nil
		for _, s := range strings.Split(stages, ",") {
			env, soak, _ := strings.Cut(strings.TrimSpace(s), ":")
			st := api.Stage{Env: env}
			if soak != "" {
				d, err := time.ParseDuration(soak)
				if err != nil {
					return l, usageErr("--stages: %s: soak %q is not a duration such as 24h", env, soak)
				}
				st.Soak = artifacts.Duration(d)
			}
			l.Stages = append(l.Stages, st)
		}
	}
	if err := l.Validate(); err != nil {
		return l, usageErr("lifecycle: %v", err)
	}
	return l, nil
}

func (a *app) lineageCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lineage NAME@VERSION",
		Short: "Trace a release: source commit → build → artifact → environments → hosts",
		Long: `Trace a release from its source to the hosts running it now: the source
repository and commit and the builder (from the signed manifest, and from
the in-toto provenance statement when one was pushed), the artifact's
digest, each environment it was rolled out to with dates, the verification
evidence, and the hosts that run it now.`,
		Example: `  drover release lineage web@2.1.0
  drover release lineage web@2.1.0 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				l, err := c.Lineage(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printOut(l, func(w io.Writer) { printLineage(w, l) })
			})
		},
	}
}

func printLineage(w io.Writer, l *api.Lineage) {
	p := l.Provenance
	if p == nil {
		p = &artifacts.Provenance{}
	}
	row(w, "Release:", l.Release)
	row(w, "Source:", dash(strings.TrimSpace(p.Repository+" "+p.SourceCommit)))
	row(w, "Build:", dash(strings.TrimSpace(p.Builder+" "+p.BuildID)))
	if p.Statement != "" {
		row(w, "Provenance:", "in-toto statement sha256:"+p.Statement+" (signed into the manifest)")
	}
	row(w, "Artifact:", "sha256:"+l.Payload)
	for _, s := range l.Stages {
		row(w, "Environment:", fmt.Sprintf("%s  %s  %s → %s  (%s)", s.Env, s.Rollout, stamp(s.StartedAt), stamp(s.EndedAt), s.State))
	}
	printEvidence(w, l.Evidence)
	row(w, "Hosts now:", fmt.Sprintf("%d: %s", len(l.Hosts), dash(strings.Join(l.Hosts, ", "))))
}

func printEvidence(w io.Writer, runs []*api.JobRun) {
	for _, r := range runs {
		detail := fmt.Sprintf("%s on %s in %s: %s", r.Job, r.Host, r.Env, strings.ToUpper(r.State))
		if r.State != api.JobPending {
			detail += fmt.Sprintf(" (exit %d, %s", r.ExitCode, r.Duration.Round(time.Millisecond))
			if j := r.JUnit; j != nil {
				detail += fmt.Sprintf(", %d tests, %d failed", j.Tests, j.Failures+j.Errors)
			}
			detail += ")"
		}
		row(w, "Evidence:", detail)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// withClient runs fn with a client of the configured cluster.
func (a *app) withClient(fn func(*client.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// nonNilList makes a nil list encode as [] rather than null.
func nonNilList[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
