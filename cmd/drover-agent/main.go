// Command drover-agent runs on every host: it enrolls with the control
// plane, reports the host's inventory, and applies the releases it is told
// to install, reverting any that fail their health checks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/drover-dev/drover/agent"
)

// version is set at build time with -ldflags -X.
var version = "dev"

const usage = `drover-agent: applies drover releases on this host.

Usage:
  drover-agent enroll --server URL --token TOKEN [--dir DIR] [--name NAME]
  drover-agent run [--dir DIR] [--server URL --token TOKEN --name NAME]
                   [--facts-dir DIR] [--metrics-addr 127.0.0.1:9101]
                   [--restart exec|exit] [--binary PATH]
  drover-agent status [--dir DIR]
  drover-agent clear-halt [--dir DIR]
  drover-agent selftest [--dir DIR]
  drover-agent version

Examples:
  drover-agent enroll --server https://10.0.0.1:7400 --token drv1.abc...
  drover-agent run --dir /var/lib/drover
  drover-agent status --dir /var/lib/drover

status prints the apply in progress, installed releases and the last
health checks. An agent halts when neither a new release nor the previous
one is healthy; clear-halt lets it act again once the host is fixed.

run enrolls first when the directory is not enrolled and --token is given.

The agent updates itself from releases of the application drover-agent
(docs/agent-update.md). It replaces --binary (default: its own executable),
then re-executes it (--restart exec) or exits with code 3 for its service
manager to start it again (--restart exit). Run it under a service manager
that restarts it (systemd Restart=always): a new binary that crashes at
start is then restored to the previous one after --max-boots starts.
selftest opens the agent's directory without changing it and prints the
version; an agent runs it on a new binary before swapping it in.

Exit codes: 0 success, 1 runtime error, 2 usage or configuration error,
3 the binary was replaced: start it again.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	dir, server, token, name, logLevel, factsDir, metricsAddr string
	pollWait                                                  time.Duration
	// self-update
	binary, restart                 string
	preflightTimeout, watchdogGrace time.Duration
	maxBoots                        int
}

// exitRestart is the exit code that asks the service manager to start the
// (replaced) binary again.
const exitRestart = 3

// errRestartExit: the binary changed and --restart exit is set.
var errRestartExit = errors.New("the agent binary changed; exiting for the service manager to start it")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" {
		fmt.Fprintf(stdout, "drover-agent %s\n", version)
		return 0
	}
	var o options
	fs := flag.NewFlagSet("drover-agent "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	hostname, _ := os.Hostname()
	fs.StringVar(&o.dir, "dir", "/var/lib/drover", "the agent's directory")
	fs.StringVar(&o.server, "server", "", "URL of any server, for enrollment")
	fs.StringVar(&o.token, "token", os.Getenv("DROVER_JOIN_TOKEN"), "join token, for enrollment (or $DROVER_JOIN_TOKEN)")
	fs.StringVar(&o.name, "name", hostname, "host name to enroll as")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.pollWait, "poll-wait", 60*time.Second, "how long a long poll waits for a change")
	fs.StringVar(&o.factsDir, "facts-dir", "/etc/drover/facts.d", "custom facts: *.json files and executables printing JSON")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve metrics at http://ADDR/metrics (e.g. 127.0.0.1:9101)")
	fs.StringVar(&o.binary, "binary", "", "the agent binary that self-updates replace and restart (default: this executable)")
	fs.StringVar(&o.restart, "restart", "exec", "after replacing its binary: exec (re-execute it) or exit (code 3, for the service manager)")
	fs.DurationVar(&o.preflightTimeout, "preflight-timeout", 30*time.Second, "how long a new binary's selftest may take")
	fs.IntVar(&o.maxBoots, "max-boots", 3, "starts of a new binary without confirming itself before the previous one is restored")
	fs.DurationVar(&o.watchdogGrace, "watchdog-grace", 30*time.Second, "a new binary not confirmed this long after its deadline is taken to hang and exits")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if o.restart != "exec" && o.restart != "exit" {
		fmt.Fprintf(stderr, "error: --restart %q: allowed values are exec, exit\n", o.restart)
		return 2
	}
	if o.maxBoots < 1 {
		fmt.Fprintf(stderr, "error: --max-boots %d: must be at least 1\n", o.maxBoots)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "error: --log-level %q: allowed values are debug, info, warn, error\n", o.logLevel)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var err error
	switch args[0] {
	case "enroll":
		err = enroll(ctx, o)
		if err == nil {
			fmt.Fprintf(stderr, "enrolled as %s; start the agent with: drover-agent run --dir %s\n", o.name, o.dir)
		}
	case "run":
		err = runAgent(ctx, o, logger)
		if errors.Is(err, errRestartExit) {
			logger.Info(err.Error())
			return exitRestart
		}
	case "selftest":
		if err = agent.SelfTest(o.dir); err == nil {
			fmt.Fprintf(stdout, "drover-agent %s\n", version)
		}
	case "status":
		err = agent.Status(o.dir, stdout)
	case "clear-halt":
		if err = agent.ClearHalt(o.dir); err == nil {
			fmt.Fprintln(stderr, "halt cleared; the agent acts again at its next poll")
		}
	default:
		fmt.Fprintf(stderr, "error: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		var ue usageError
		if errors.As(err, &ue) || errors.Is(err, agent.ErrNotEnrolled) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func enroll(ctx context.Context, o options) error {
	if o.server == "" || o.token == "" {
		return usageError{errors.New("enroll needs --server and --token")}
	}
	return agent.Enroll(ctx, agent.EnrollOptions{Dir: o.dir, Server: o.server, Token: o.token, Name: o.name})
}

func runAgent(ctx context.Context, o options, logger *slog.Logger) error {
	if _, err := os.Stat(o.dir + "/agent.json"); err != nil && o.token != "" {
		if err := enroll(ctx, o); err != nil {
			return err
		}
	}
	if o.binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("cannot find the agent's own binary (give --binary): %w", err)
		}
		o.binary = exe
	}
	binary, err := filepath.Abs(o.binary)
	if err != nil {
		return err
	}
	cfg := agent.Config{Dir: o.dir, Version: version, PollWait: o.pollWait, Logger: logger,
		FactsDir: o.factsDir, MetricsAddr: o.metricsAddr,
		SelfUpdate: agent.SelfUpdate{Binary: binary, PreflightTimeout: o.preflightTimeout, MaxBoots: o.maxBoots, WatchdogGrace: o.watchdogGrace}}
	for {
		err := runOnce(ctx, cfg)
		if !errors.Is(err, agent.ErrRestart) {
			return err
		}
		if o.restart == "exit" {
			return errRestartExit
		}
		logger.Info("re-executing the agent binary", "binary", binary)
		execErr := syscall.Exec(binary, os.Args, os.Environ())
		// Still here: the binary cannot be started. Put the previous one
		// back (it is the one running) and carry on with it.
		logger.Error("cannot execute the agent binary", "binary", binary, "err", execErr)
		if err := agent.AbortSwap(cfg, execErr); err != nil {
			return err
		}
	}
}

// runOnce settles a self-update in progress (agent.Boot), then runs the
// agent until ctx ends or its binary changes (agent.ErrRestart).
func runOnce(ctx context.Context, cfg agent.Config) error {
	if err := agent.Boot(cfg); err != nil {
		return err
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
