package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dev/drover/controlplane/api"
	"github.com/drover-dev/drover/controlplane/client"
)

// Exit codes, documented in `drover --help` and docs/cli.md.
const (
	exitOK          = 0
	exitError       = 1   // runtime error
	exitUsage       = 2   // usage or configuration error
	exitIncomplete  = 3   // a watched rollout ended without completing
	exitInterrupted = 130 // interrupted (SIGINT or SIGTERM), as shells report it
)

// version and commit are set at build time with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

// exitErr carries an exit code, and what the person might do about it,
// through cobra.
type exitErr struct {
	code int
	err  error
	hint string
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app is the state shared by the commands of one invocation.
type app struct {
	stdout, stderr io.Writer
	// getenv, now, loc, terminal and width are the process's environment,
	// clock, time zone, terminal test and terminal width; tests replace
	// them.
	getenv   func(string) string
	now      func() time.Time
	loc      *time.Location
	terminal func(io.Writer) bool
	width    func(io.Writer) int

	// Global flags.
	configPath  string
	contextName string
	servers     []string
	caCert      string
	clientCert  string
	clientKey   string
	output      string
	noColor     bool

	// cfg is the configuration the last client() used, for error messages.
	cfg *client.Config
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now, loc: time.Local, terminal: isTerminal, width: terminalWidth, output: formatTable}
}

// run executes the command line args and returns the exit code; it is
// main without the process, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code, msg := a.explain(ctx, cmd, err)
	p := painter(a.fancy(a.stderr))
	switch code {
	case exitIncomplete:
		fmt.Fprintln(a.stderr, p.paint(colYellow, msg))
	case exitInterrupted:
		fmt.Fprintln(a.stderr, msg)
	default:
		fmt.Fprintln(a.stderr, p.paint(colRed, "error:"), msg)
	}
	return code
}

// requiredRole finds the role a forbidden answer asks for.
var requiredRole = regexp.MustCompile(`role (\w+) or higher is required`)

// explain turns an error into an exit code and a message a person can act
// on: what was tried, with which configuration, and what to do next.
func (a *app) explain(ctx context.Context, cmd *cobra.Command, err error) (int, string) {
	msg := err.Error()
	path := "drover"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	var (
		ee      *exitErr
		apiErr  *api.Error
		connErr *client.ConnError
	)
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted"
	case errors.As(err, &ee):
		if ee.hint != "" {
			msg += "\n" + ee.hint
		} else if ee.code == exitUsage {
			msg += fmt.Sprintf("\nRun '%s --help' for usage.", path)
		}
		return ee.code, msg
	case errors.As(err, &connErr):
		return exitError, msg + "\n" + a.configInUse() +
			"\nCheck that the servers run and that this is the cluster you mean (drover config get-contexts lists the others)."
	case errors.As(err, &apiErr):
		switch apiErr.Code {
		case api.CodeInvalid:
			return exitUsage, msg
		case api.CodeForbidden:
			if m := requiredRole.FindStringSubmatch(apiErr.Message); m != nil {
				who := "NAME"
				if a.cfg != nil {
					if id, _, err := a.cfg.Operator(); err == nil {
						who = id.Name
					}
				}
				msg += fmt.Sprintf("\nAsk an admin for a certificate with that role: drover operator issue %s --role %s", who, m[1])
			}
		case api.CodeUnauthenticated:
			msg += "\nThe servers did not accept the operator certificate. " + a.configInUse()
		case api.CodeUnavailable:
			msg += "\nThe cluster has no leader right now (an election, or a lost quorum): see drover cluster status."
		}
		return exitError, msg
	case isCobraUsage(err):
		return exitUsage, msg + fmt.Sprintf("\nRun '%s --help' for usage.", path)
	}
	return exitError, msg
}

// isCobraUsage recognises the usage errors cobra makes itself, which
// carry no type.
func isCobraUsage(err error) bool {
	m := err.Error()
	return strings.HasPrefix(m, "required flag(s)") || strings.HasPrefix(m, "unknown command") ||
		strings.HasPrefix(m, "if any flags in the group") || strings.Contains(m, "none of the others can be")
}

// configInUse names the configuration a command used.
func (a *app) configInUse() string {
	if a.cfg == nil {
		return "Configuration: " + a.configFile()
	}
	s := "Configuration: " + a.cfg.Path()
	if a.cfg.Context != "" {
		s += ", context " + a.cfg.Context
	}
	if from := a.cfg.From[client.SettingServers]; from != "" && !strings.HasPrefix(from, a.cfg.Path()) {
		s += " (servers from " + from + ")"
	}
	return s + "."
}

// Command groups of `drover --help`, and which top-level command is in
// which. Commands not listed (say, new ones) are shown under "Other
// commands".
var (
	groups = []*cobra.Group{
		{ID: "rollouts", Title: "Releases and rollouts:"},
		{ID: "change", Title: "Scheduling and change control:"},
		{ID: "fleet", Title: "Fleet and inventory:"},
		{ID: "access", Title: "Access and trust:"},
		{ID: "cluster", Title: "Control plane:"},
		{ID: "cli", Title: "This CLI:"},
	}
	groupOf = map[string]string{
		"release": "rollouts", "artifact": "rollouts", "rollout": "rollouts", "env": "rollouts", "lifecycle": "rollouts",
		"keygen": "rollouts", "sign": "rollouts", "verify": "rollouts",
		"schedule": "change", "window": "change", "freeze": "change", "settings": "change", "audit": "change",
		"status": "fleet", "host": "fleet", "inventory": "fleet", "token": "fleet",
		"operator": "access", "trust": "access",
		"cluster": "cluster", "server": "cluster", "dev": "cluster", "demo": "cluster", "bench": "cluster",
		"config": "cli", "completion": "cli", "docs": "cli", "version": "cli", "help": "cli",
	}
	// rolloutGroups order the many rollout subcommands.
	rolloutGroups   = []*cobra.Group{{ID: "plan", Title: "Plan and start:"}, {ID: "follow", Title: "Follow:"}, {ID: "control", Title: "Steer:"}}
	rolloutGroupOf  = map[string]string{"create": "plan", "start": "plan", "watch": "follow", "list": "follow", "show": "follow", "report": "follow", "change-record": "follow", "pause": "control", "resume": "control", "promote": "control", "abort": "control", "rollback": "control"}
	annotationForms = "drover.output" // comma-separated -o values a command accepts beyond table, json and yaml
)

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "drover",
		Short: "Fleet deployment: signed releases rolled out in waves, with back-out and a CMDB record",
		Long: `drover rolls signed releases out to fleets of servers and edge devices in
waves, inside maintenance windows, reverts hosts whose health checks fail,
and keeps the fleet's inventory for the CMDB.

Configuration: named contexts (a cluster's servers and an operator
certificate) in ~/.config/drover/config.yaml, or the file --config or
$DROVER_CONFIG names; see drover config --help. Environment variables
(DROVER_CONTEXT, DROVER_SERVERS, DROVER_CA_CERT, DROVER_CLIENT_CERT,
DROVER_CLIENT_KEY) override the file, and flags override both.

Output: read commands print a table, or -o json or -o yaml (the same keys);
data goes to stdout, messages to stderr. Colour and progress bars only on a
terminal, never with NO_COLOR set.

Exit codes: 0 success; 1 runtime error; 2 usage or configuration error;
3 a watched rollout ended without completing (paused, aborted, rolled back);
130 interrupted.`,
		Example: `  drover status                    # the fleet at a glance
  drover rollout create web@1.2.0 --waves 1,50%,100% --start --watch
  drover host list --where 'os=debian' -o yaml
  drover config use-context prod
  drover demo                      # see the whole job on a local cluster`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.checkOutput(cmd)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitErr{code: exitUsage, err: err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "CLI configuration file (default $DROVER_CONFIG, else ~/.config/drover/config.yaml)")
	pf.StringVar(&a.contextName, "context", "", "context of the configuration file to use (default $DROVER_CONTEXT, else the current one)")
	pf.StringSliceVar(&a.servers, "server", nil, "server API URLs, overriding the context's (default $DROVER_SERVERS)")
	pf.StringVar(&a.caCert, "ca-cert", "", "cluster CA certificate file (default $DROVER_CA_CERT, else the context's)")
	pf.StringVar(&a.clientCert, "client-cert", "", "operator certificate file (default $DROVER_CLIENT_CERT, else the context's)")
	pf.StringVar(&a.clientKey, "client-key", "", "operator key file (default $DROVER_CLIENT_KEY, else the context's)")
	pf.StringVarP(&a.output, "output", "o", formatTable, "output format of read commands: table, json or yaml")
	pf.BoolVar(&a.noColor, "no-color", false, "no colour and no progress bars (as NO_COLOR=1)")
	root.AddCommand(
		a.serverCommand(), a.devCommand(), a.demoCommand(),
		a.keygenCommand(), a.signCommand(), a.verifyCommand(),
		a.artifactCommand(), a.releaseCommand(), a.rolloutCommand(),
		a.hostCommand(), a.inventoryCommand(), a.tokenCommand(), a.trustCommand(), a.operatorCommand(),
		a.clusterCommand(), a.versionCommand(), a.benchCommand(), a.windowCommand(),
		a.freezeCommand(), a.auditCommand(), a.scheduleCommand(), a.settingsCommand(),
		a.statusCommand(), a.configCommand(), a.completionCommand(), a.docsCommand(),
		a.envCommand(), a.lifecycleCommand(),
	)
	root.InitDefaultHelpCmd()
	if help, _, err := root.Find([]string{"help"}); err == nil && help != root {
		help.Example = "  drover help rollout create\n  drover rollout create --help"
	}
	a.finishTree(root)
	return root
}

// finishTree gives every command what the CLI promises of all of them:
// a place in a group, examples first in its help, usage errors that exit 2,
// completion of the IDs it takes, and an error for an unknown subcommand.
func (a *app) finishTree(root *cobra.Command) {
	root.AddGroup(groups...)
	for _, c := range root.Commands() {
		if g, ok := groupOf[c.Name()]; ok {
			c.GroupID = g
		}
		if c.Name() == "rollout" {
			c.AddGroup(rolloutGroups...)
			for _, sub := range c.Commands() {
				if g, ok := rolloutGroupOf[sub.Name()]; ok {
					sub.GroupID = g
				}
			}
		}
	}
	root.SetHelpTemplate(helpTemplate)
	root.SetUsageTemplate(usageTemplate)
	root.DisableAutoGenTag = true
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Example == "" && c.HasAvailableSubCommands() {
			c.Example = childExamples(c)
		}
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
					if cmd.SuggestionsMinimumDistance <= 0 {
						cmd.SuggestionsMinimumDistance = 2
					}
					if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
						msg += "; did you mean " + strings.Join(s, " or ") + "?"
					}
					return &exitErr{code: exitUsage, err: errors.New(msg)}
				}
				return cmd.Help()
			}
		}
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, list []string) error {
				if err := args(cmd, list); err != nil {
					return &exitErr{code: exitUsage, err: fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
				}
				return nil
			}
		}
		if complete := a.completerFor(c); complete != nil && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = complete
		}
	}
	walk(root)
}

func init() {
	// pad leaves two spaces between a command's name and its summary.
	cobra.AddTemplateFunc("pad", func(s string, n int) string { return fmt.Sprintf("%-*s", n+2, s) })
}

// maxChildExamples bounds the examples a parent command borrows.
const maxChildExamples = 8

// childExamples makes a parent command's examples from the first example
// of each of its subcommands, in the order its help lists them.
func childExamples(c *cobra.Command) string {
	subs := c.Commands()
	if gs := c.Groups(); len(gs) > 0 {
		rank := func(sub *cobra.Command) int {
			for i, g := range gs {
				if g.ID == sub.GroupID {
					return i
				}
			}
			return len(gs)
		}
		subs = slices.Clone(subs)
		slices.SortStableFunc(subs, func(x, y *cobra.Command) int { return rank(x) - rank(y) })
	}
	var out []string
	for _, sub := range subs {
		if !sub.IsAvailableCommand() || sub.Example == "" || len(out) == maxChildExamples {
			continue
		}
		if ex := firstExample(sub.Example); ex != "" {
			out = append(out, ex)
		}
	}
	return strings.Join(out, "\n")
}

// firstExample is the first command of an example: its first line and the
// lines it continues onto with a trailing backslash.
func firstExample(ex string) string {
	var out []string
	for _, l := range strings.Split(ex, "\n") {
		if strings.TrimSpace(l) == "" && len(out) == 0 {
			continue
		}
		out = append(out, l)
		if !strings.HasSuffix(strings.TrimSpace(l), `\`) {
			break
		}
	}
	return strings.Join(out, "\n")
}

// checkOutput refuses an -o value the command does not print.
func (a *app) checkOutput(cmd *cobra.Command) error {
	if f := cmd.Flags().Lookup("output"); f == nil || f != cmd.Root().PersistentFlags().Lookup("output") {
		return nil // the command's own -o (such as inventory export's file)
	}
	allowed := slices.Clone(outputFormats)
	if extra := cmd.Annotations[annotationForms]; extra != "" {
		allowed = append(allowed, strings.Split(extra, ",")...)
	}
	if !slices.Contains(allowed, a.output) {
		return usageErr("--output %q: allowed values are %s", a.output, strings.Join(allowed, ", "))
	}
	return nil
}

// helpTemplate puts a command's examples first, then its description,
// then its usage.
const helpTemplate = `{{with .Example}}Examples:
{{.}}

{{end}}{{with (or .Long .Short)}}{{. | trimTrailingWhitespaces}}

{{end}}{{if or .Runnable .HasSubCommands}}{{.UsageString}}{{end}}`

// usageTemplate is cobra's, without the examples (help shows them first),
// with groups, and with "COMMAND" for a command that has subcommands.
const usageTemplate = `Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} COMMAND [flags]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{pad .Name .NamePadding}}{{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{pad .Name .NamePadding}}{{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Other commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{pad .Name .NamePadding}}{{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for more about a command.{{end}}
`

// configFile is the CLI configuration file: --config, else $DROVER_CONFIG,
// else config.yaml in $XDG_CONFIG_HOME/drover or ~/.config/drover.
func (a *app) configFile() string {
	if a.configPath != "" {
		return a.configPath
	}
	if p := a.getenv("DROVER_CONFIG"); p != "" {
		return p
	}
	if x := a.getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "drover", "config.yaml")
	}
	home := a.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "drover", "config.yaml")
}

// overrides are the settings given by flags and by the environment, in
// that order of priority.
func (a *app) overrides() []client.Overrides {
	flags := client.Overrides{
		Context: client.Setting{Value: a.contextName, From: "--context"},
		Servers: client.Setting{Value: strings.Join(a.servers, ","), From: "--server"},
		CA:      client.Setting{Value: a.caCert, From: "--ca-cert"},
		Cert:    client.Setting{Value: a.clientCert, From: "--client-cert"},
		Key:     client.Setting{Value: a.clientKey, From: "--client-key"},
	}
	env := func(name string) client.Setting { return client.Setting{Value: a.getenv(name), From: "$" + name} }
	return []client.Overrides{flags, {
		Context: env("DROVER_CONTEXT"), Servers: env("DROVER_SERVERS"),
		CA: env("DROVER_CA_CERT"), Cert: env("DROVER_CLIENT_CERT"), Key: env("DROVER_CLIENT_KEY"),
	}}
}

// loadConfig resolves the configuration: flags over environment over file.
func (a *app) loadConfig() (*client.Config, error) {
	cfg, err := client.Resolve(a.configFile(), a.overrides()...)
	if err != nil {
		hint := ""
		if errors.Is(err, client.ErrIncomplete) || errors.Is(err, client.ErrNoConfigFile) {
			hint = "Add a context with `drover config set-context NAME --from BUNDLE/config.yaml`, point --config or DROVER_CONFIG at a file,\n" +
				"or run `drover dev` for a local cluster (it prints the line to use)."
		}
		return nil, &exitErr{code: exitUsage, err: err, hint: hint}
	}
	a.cfg = cfg
	return cfg, nil
}

// client connects with the operator configuration.
func (a *app) client() (*client.Client, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	// A certificate past its end is refused by every server: say so here,
	// with what to do.
	if id, notAfter, err := cfg.Operator(); err == nil && a.now().After(notAfter) {
		return nil, &exitErr{code: exitUsage, err: fmt.Errorf("the operator certificate %s (%s) expired on %s", cfg.Cert, id, notAfter.Format(time.RFC3339)),
			hint: fmt.Sprintf("Ask an admin for a new one: drover operator issue %s --role %s", id.Name, id.Role)}
	}
	c, err := cfg.Client()
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: err, hint: a.configInUse()}
	}
	return c, nil
}

// versionInfo is what drover version prints.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion is this binary's version, with the commit from -ldflags or
// else from the Go build information.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok && v.Commit == "unknown" {
		var rev, dirty string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v.Commit = rev + dirty
		}
	}
	return v
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build commit of drover",
		Long: `Print drover's version and the commit it was built from (make build
stamps both; a plain go build takes the commit from the Go build
information when it has one), with the Go version and platform.`,
		Example: `  drover version
  drover version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			return a.printOut(v, func(w io.Writer) {
				fmt.Fprintf(w, "drover %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.Go, v.Platform)
			})
		},
	}
}
