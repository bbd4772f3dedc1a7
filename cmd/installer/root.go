package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"installer.dev/installer/pkg/exitcode"
)

// streams are the process's standard streams, injected so tests can run commands in-process.
type streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// environment is everything the commands read from the process besides flags: injected so tests
// control it and so no command reaches the network before its input is valid.
type environment struct {
	Getenv func(string) string
	Home   string
	// Dial opens every network connection the installer makes (SSH to hosts and bastions).
	// Commands receive it only after the spec and local inputs passed validation.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

func systemEnv() environment {
	home, _ := os.UserHomeDir()
	var d net.Dialer
	return environment{Getenv: os.Getenv, Home: home, Dial: d.DialContext}
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	File        string
	StateDir    string
	Verbose     int
	LogFormat   string
	Concurrency int
	Config      string
}

// app is one invocation: streams, environment, global options and the logger built from them.
type app struct {
	streams streams
	env     environment
	global  globalOptions
	log     *slog.Logger
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, s streams, env environment) int {
	a := &app{streams: s, env: env, log: slog.New(slog.DiscardHandler)}
	return runRoot(ctx, a.newRootCommand(), args, s.Err)
}

// runRoot runs root on args, prints the error if any and returns its exit code. Only typed errors
// decide the code (exitcode.Of); errors about the command line itself are typed where cobra
// reports them (typeUsageErrors).
func runRoot(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	code := exitcode.Of(err)
	var se *specErrors
	if errors.As(err, &se) {
		// One problem per line, exactly as validation reports them.
		fmt.Fprintln(stderr, se.Error())
	} else {
		fmt.Fprintf(stderr, "error: %v\n", err)
	}
	return code
}

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "installer",
		Short: "Turn Linux hosts into a production Kubernetes cluster over SSH",
		Long: `installer reads one cluster spec (installer.dev/v1alpha1, kind Cluster), connects to every host over
SSH with verified host keys, installs containerd, kubelet, kubeadm and kubectl, owns the cluster PKI,
renders kubeadm's own v1beta4 configuration and runs kubeadm init and join, then deploys the pod
network and the cloud-controller-manager. The spec is validated completely before any host is touched.

Exit codes: 0 success, 1 failure while executing, 2 invalid input, 3 not implemented,
4 a host cannot be reached or authenticated, 5 preflight found blocking problems, 6 refused a step
it could not prove safe (nothing changed; docs/safety.md), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// The root runs only to show its help: being runnable lets its Args report an unknown
		// command as a typed error (cobra's own check for a command that cannot run is untyped).
		Args:                  unknownCommand,
		RunE:                  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		DisableFlagsInUseLine: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Cobra checks required flags too, but after this hook and untyped.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return exitcode.New(exitcode.InvalidInput, err)
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return exitcode.New(exitcode.InvalidInput, err)
			}
			if err := a.applyDefaults(cmd); err != nil {
				return exitcode.New(exitcode.InvalidInput, err)
			}
			return a.setupLogging()
		},
	}
	f := root.PersistentFlags()
	f.StringVarP(&a.global.File, "file", "f", "cluster.yaml", "cluster spec file")
	f.StringVar(&a.global.StateDir, "state-dir", "", "local state directory (PKI, admin kubeconfig, logs); default $XDG_STATE_HOME/installer/<metadata.name>")
	f.CountVarP(&a.global.Verbose, "verbose", "v", "show the commands run on hosts (repeat for more detail)")
	f.StringVar(&a.global.LogFormat, "log-format", "text", "log format: text or json")
	f.IntVar(&a.global.Concurrency, "concurrency", 32, "hosts handled at once")
	f.StringVar(&a.global.Config, "config", "", "CLI defaults file (YAML keys are flag names); default $XDG_CONFIG_HOME/installer/config.yaml if present")

	root.AddCommand(
		a.newCreateCommand(),
		a.newJoinCommand(),
		a.newUpgradeCommand(),
		a.newApplyCommand(),
		a.newResetCommand(),
		a.newValidateCommand(),
		a.newRenderCommand(),
		a.newPlanCommand(),
		a.newKubeconfigCommand(),
		a.newCertsCommand(),
		a.newEtcdCommand(),
		a.newStateCommand(),
		a.newVersionCommand(),
	)
	root.SetIn(a.streams.In)
	root.SetOut(a.streams.Out)
	root.SetErr(a.streams.Err)
	typeUsageErrors(root) // after SetOut: cobra's completion command keeps the writer it sees when added
	return root
}

// typeUsageErrors makes every error about the command line itself (an unknown command or flag, a
// flag value that does not parse, extra arguments) invalid input, exit code 2, at the hook where
// cobra reports it: flag parsing through the flag-error function, arguments through every command's
// Args validator, cobra's completion command included. No error is classified by its text, so an
// error of the work itself that happens to say "invalid argument" keeps its own code.
func typeUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return exitcode.New(exitcode.InvalidInput, err)
	})
	root.InitDefaultCompletionCmd() // added now rather than at Execute, so its validators are typed too
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error {
				return exitcode.New(exitcode.InvalidInput, args(c, a))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownCommand is the root's argument check: any argument is a command that does not exist.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errors.New(msg)
}

// applyDefaults fills every flag the user did not set from INSTALLER_<FLAG> environment variables
// and then from the optional config file. Flags always win. Viper never sees the cluster spec: it
// lower-cases keys and is not strict.
func (a *app) applyDefaults(cmd *cobra.Command) error {
	// Environment variables are read through the injected Getenv (not viper's AutomaticEnv, which
	// reads the process environment), so tests control them.
	v := viper.New()
	cfgFile := a.global.Config
	if cfgFile == "" {
		cfgFile = a.env.Getenv("INSTALLER_CONFIG")
	}
	explicit := cfgFile != ""
	if cfgFile == "" {
		base := a.env.Getenv("XDG_CONFIG_HOME")
		if base == "" && a.env.Home != "" {
			base = filepath.Join(a.env.Home, ".config")
		}
		if base != "" {
			cfgFile = filepath.Join(base, "installer", "config.yaml")
		}
	}
	if cfgFile != "" {
		v.SetConfigFile(cfgFile)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var notFound *os.PathError
			if explicit || !errors.As(err, &notFound) {
				return fmt.Errorf("CLI config %s: %w", cfgFile, err)
			}
		}
		for _, key := range v.AllKeys() {
			if !isAnyCommandFlag(cmd.Root(), key) {
				return fmt.Errorf("CLI config %s: unknown key %q (keys are flag names such as state-dir)", cfgFile, key)
			}
		}
	}
	var errs []error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed {
			return
		}
		val, source := "", ""
		if e := a.env.Getenv("INSTALLER_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))); e != "" {
			val, source = e, "INSTALLER_"+strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		} else if v.InConfig(fl.Name) {
			val, source = v.GetString(fl.Name), cfgFile
		}
		if source == "" {
			return
		}
		if err := fl.Value.Set(val); err != nil {
			errs = append(errs, fmt.Errorf("%s: --%s: %w", source, fl.Name, err))
		}
	})
	return errors.Join(errs...)
}

func isAnyCommandFlag(root *cobra.Command, name string) bool {
	found := false
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup(name) != nil || c.PersistentFlags().Lookup(name) != nil {
			found = true
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return found
}

func (a *app) setupLogging() error {
	level := slog.LevelInfo
	if a.global.Verbose > 0 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.global.LogFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.streams.Err, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.streams.Err, opts))
	default:
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--log-format: %q is not text or json", a.global.LogFormat))
	}
	if a.global.Concurrency < 1 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--concurrency: %d; must be at least 1", a.global.Concurrency))
	}
	return nil
}
