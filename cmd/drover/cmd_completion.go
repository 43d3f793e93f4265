package main

// Shell completion and manual pages, both generated from the command tree,
// and completion of the IDs commands take (rollouts, hosts, releases,
// contexts), read from the cluster in use.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
)

var shells = []string{"bash", "zsh", "fish", "powershell"}

func (a *app) completionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script",
		Long: `Print a script that completes drover's commands, flags, and the IDs they
take (rollouts, hosts, releases, contexts — read from the cluster in use)
in your shell. Load it in the current shell, or install it once:

  bash  drover completion bash > /etc/bash_completion.d/drover
        (needs the bash-completion package)
  zsh   drover completion zsh > "${fpath[1]}/_drover"
        (with compinit enabled: autoload -U compinit; compinit)
  fish  drover completion fish > ~/.config/fish/completions/drover.fish`,
		Example: `  source <(drover completion bash)
  drover completion zsh > "${fpath[1]}/_drover"
  drover completion fish > ~/.config/fish/completions/drover.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: shells,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			case "fish":
				return root.GenFishCompletion(a.stdout, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(a.stdout)
			}
			return usageErr("shell %q: allowed values are bash, zsh, fish, powershell", args[0])
		},
	}
}

func (a *app) docsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "docs", Short: "Generate manual pages or Markdown reference from the command tree"}
	var dir string
	man := &cobra.Command{
		Use:   "man --dir DIR",
		Short: "Write a manual page (section 1) for every command",
		Long: `Write a manual page for every command to DIR: drover.1,
drover-rollout.1, drover-rollout-create.1 and so on. The date is
$SOURCE_DATE_EPOCH when set, for reproducible builds. make man writes
them to bin/man.`,
		Example: `  drover docs man --dir /usr/local/share/man/man1
  make man && man -l bin/man/drover-rollout-watch.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageErr("--dir is required")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			header := &doc.GenManHeader{Title: "DROVER", Section: "1", Source: "drover " + version, Manual: "drover manual"}
			if err := doc.GenManTree(cmd.Root(), header, dir); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote the manual pages to %s\n", dir)
			return nil
		},
	}
	man.Flags().StringVar(&dir, "dir", "", "directory to write the pages to")
	var mdDir string
	markdown := &cobra.Command{
		Use:     "markdown --dir DIR",
		Short:   "Write a Markdown page for every command",
		Example: `  drover docs markdown --dir docs/reference`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mdDir == "" {
				return usageErr("--dir is required")
			}
			if err := os.MkdirAll(mdDir, 0o755); err != nil {
				return err
			}
			return doc.GenMarkdownTree(cmd.Root(), mdDir)
		},
	}
	markdown.Flags().StringVar(&mdDir, "dir", "", "directory to write the pages to")
	cmd.AddCommand(man, markdown)
	return cmd
}

// completerFor returns how to complete c's first argument, if drover
// knows.
func (a *app) completerFor(c *cobra.Command) cobra.CompletionFunc {
	if !c.HasParent() {
		return nil
	}
	name, parent := c.Name(), c.Parent().Name()
	switch {
	case parent == "rollout" && slices.Contains([]string{"watch", "show", "report", "change-record", "start", "pause", "resume", "promote", "abort", "rollback"}, name):
		return completeFromCluster(a, api.PathRollouts, func(v *[]*api.Rollout) []cobra.Completion {
			rs := *v
			slices.SortFunc(rs, func(x, y *api.Rollout) int { return cmp.Compare(y.CreateIndex, x.CreateIndex) }) // newest first
			var out []cobra.Completion
			for _, r := range rs {
				out = append(out, cobra.CompletionWithDesc(r.ID, r.Release+" "+r.State))
			}
			return out
		})
	case parent == "host" && (name == "show" || name == "decommission"):
		return completeFromCluster(a, api.PathHosts, func(v *[]*api.Host) []cobra.Completion {
			var out []cobra.Completion
			for _, h := range *v {
				out = append(out, cobra.CompletionWithDesc(h.ID, h.Status+" "+api.FormatLabels(h.Labels)))
			}
			return out
		})
	case parent == "release" && slices.Contains([]string{"show", "approve", "readiness"}, name):
		return completeFromCluster(a, api.PathReleases, func(v *[]*api.Release) []cobra.Completion {
			var out []cobra.Completion
			for _, r := range *v {
				out = append(out, cobra.CompletionWithDesc(r.ID, "by "+r.CreatedBy))
			}
			return out
		})
	case parent == "config" && (name == "use-context" || name == "delete-context" || name == "set-context"):
		return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			f, err := client.ReadFile(a.configFile())
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return f.Names(), cobra.ShellCompDirectiveNoFileComp
		}
	}
	return nil
}

// completeFromCluster completes the first argument with what a GET of
// path lists, within a few seconds, and nothing when the cluster cannot
// be asked.
func completeFromCluster[T any](a *app, path string, list func(*T) []cobra.Completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		var v T
		if _, err := c.Do(ctx, client.Request{Method: "GET", Path: path}, &v); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return list(&v), cobra.ShellCompDirectiveNoFileComp
	}
}
