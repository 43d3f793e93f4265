package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
)

// Exit codes, documented in the README and `drover --help`.
const (
	exitOK         = 0
	exitError      = 1 // runtime error
	exitUsage      = 2 // usage or configuration error
	exitIncomplete = 3 // a watched rollout ended without completing
)

// version and commit are set at build time with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

// exitErr carries an exit code through cobra.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app is the state shared by the commands of one invocation.
type app struct {
	stdout, stderr io.Writer
	configPath     string
	output         string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "error:", err)
	var ee *exitErr
	if errors.As(err, &ee) {
		return ee.code
	}
	var apiErr *api.Error
	if errors.As(err, &apiErr) && apiErr.Code == api.CodeInvalid {
		return exitUsage
	}
	return exitError
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "drover",
		Short: "Fleet deployment: signed releases rolled out in waves, with back-out and a CMDB record",
		Long: `drover rolls signed releases out to fleets of servers and edge devices in
waves, inside maintenance windows, reverts hosts whose health checks fail,
and keeps the fleet's inventory for the CMDB.

Exit codes: 0 success, 1 runtime error, 2 usage or configuration error,
3 a watched rollout ended without completing (paused).

The CLI reads its configuration from --config, else $DROVER_CONFIG, else
~/.config/drover/config.yaml.`,
		Example: `  drover demo                      # see the whole job on a local cluster
  drover dev --agents 5            # a local cluster to try commands against
  drover host list
  drover rollout create web@1.2.0 --waves 1,50%,100% --watch`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitErr{code: exitUsage, err: err} })
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "CLI configuration file (default $DROVER_CONFIG or ~/.config/drover/config.yaml)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format of read commands: table or json")
	root.AddCommand(
		a.serverCommand(), a.devCommand(), a.demoCommand(),
		a.keygenCommand(), a.signCommand(), a.verifyCommand(),
		a.artifactCommand(), a.releaseCommand(), a.rolloutCommand(),
		a.hostCommand(), a.inventoryCommand(), a.tokenCommand(), a.trustCommand(), a.operatorCommand(),
		a.clusterCommand(), a.versionCommand(), a.benchCommand(), a.windowCommand(),
		a.freezeCommand(), a.auditCommand(), a.scheduleCommand(), a.settingsCommand(),
	)
	return root
}

// resolveConfig finds the CLI configuration file.
func (a *app) resolveConfig() string {
	if a.configPath != "" {
		return a.configPath
	}
	if p := os.Getenv("DROVER_CONFIG"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "drover", "config.yaml")
}

// client connects with the operator configuration.
func (a *app) client() (*client.Client, error) {
	path := a.resolveConfig()
	cfg, err := client.LoadConfig(path)
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: fmt.Errorf("%w\n(set --config or DROVER_CONFIG; `drover dev` prints one for a local cluster)", err)}
	}
	c, err := cfg.Client()
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: err}
	}
	return c, nil
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of drover",
		Example: "  drover version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "drover %s (commit %s)\n", version, commit)
			return nil
		},
	}
}
