package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func (a *app) devCommand() *cobra.Command {
	var dir string
	var agents int
	cmd := &cobra.Command{
		Use:   "dev [--agents N] [--dir DIR]",
		Short: "Run a local cluster: 3 servers and N agents on loopback",
		Long: `Start a local cluster of real processes: three 'drover server' and N
'drover-agent' (default 3), each agent with a directory standing for its
host. A signing key is created and trusted for every application. Prints the
line that points the CLI at the cluster as an admin; runs until Ctrl-C.

All state lives in --dir (default a new temporary directory), which is kept
afterwards; logs are in DIR/logs.`,
		Example: `  drover dev --agents 5
  export DROVER_CONFIG=/tmp/drover-dev-123/admin.yaml   # the line it prints
  drover host list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agents < 0 || agents > 500 {
				return usageErr("--agents: between 0 and 500")
			}
			var err error
			if dir == "" {
				if dir, err = os.MkdirTemp("", "drover-dev-"); err != nil {
					return err
				}
			}
			if dir, err = filepath.Abs(dir); err != nil {
				return err
			}
			logf := func(format string, args ...any) { fmt.Fprintf(a.stderr, format+"\n", args...) }
			d, err := startDevCluster(cmd.Context(), dir, agents, logf)
			if err != nil {
				return err
			}
			defer d.stop()
			fmt.Fprintf(a.stdout, "export DROVER_CONFIG=%s\n", d.boot.AdminConfig)
			logf("signing key trusted for every application: %s (public key beside it)", d.key)
			logf("try: drover host list; drover release create --help")
			logf("state in %s; Ctrl-C to stop", dir)
			<-cmd.Context().Done()
			logf("stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for all state (default a new temporary directory)")
	cmd.Flags().IntVar(&agents, "agents", 3, "number of agents")
	return cmd
}
