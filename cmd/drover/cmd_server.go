package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane"
)

func (a *app) serverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server --config FILE",
		Short: "Run a control-plane server",
		Long: `Run one control-plane server: a member of the Raft group that holds the
fleet's state, serves the HTTPS API (mutual TLS only) and stores payloads.
It runs until SIGINT or SIGTERM.

A server whose data directory is empty bootstraps the cluster with the peers
of its configuration; every server must list the same peers. 'drover dev'
and 'drover demo' write such configurations for a local cluster.`,
		Example: `  drover server --config /etc/drover/server.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := a.configPath // for this command, --config names the server's configuration
			if path == "" {
				return usageErr("--config is required: the server's configuration file")
			}
			cfg, err := controlplane.LoadConfig(path)
			if err != nil {
				return &exitErr{code: exitUsage, err: err}
			}
			logger := newLogger(cfg.LogLevel)
			s, err := controlplane.New(cfg, controlplane.Options{Logger: logger})
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			logger.Info("shutting down")
			return s.Close()
		},
	}
	return cmd
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(os.Stderr, "log level %q: %v; using info\n", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
