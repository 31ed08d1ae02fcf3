package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/internal/version"
)

// Exit codes, listed in README.md.
const (
	ExitOK       = 0 // success
	ExitRuntime  = 1 // the run failed (server unreachable, state file locked...)
	ExitUsage    = 2 // bad flags, arguments or configuration
	ExitExpected = 3 // a scenario's expectations failed
)

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, args...)}
}

// env is what commands may touch of the process: streams and a logger.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
	logLevel       slog.Level
}

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "tbsim:", err)
	var xe *exitError
	if errors.As(err, &xe) {
		return xe.code
	}
	if strings.HasPrefix(err.Error(), "unknown command ") || strings.HasPrefix(err.Error(), "unknown shorthand flag") {
		return ExitUsage // cobra's own usage errors
	}
	return ExitRuntime
}

func newRoot(e *env) *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:           "tbsim",
		Short:         "Simulate fleets of ESP32 devices against ThingsBoard",
		Long:          "tbsim runs simulated ESP32-S3 devices that execute the real firmware logic (provisioning, NVS token, telemetry, OTA with A/B slots) against ThingsBoard or its own embedded ThingsBoard-compatible server.",
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// First, so that a variable such as TBSIM_VERBOSE counts below.
			if err := flagsFromEnv(cmd, os.LookupEnv); err != nil {
				return err
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			e.logLevel = level
			e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug details to stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitError{ExitUsage, fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	run, server := newRunCmd(e), newServerCmd(e)
	withEnv(run)
	withEnv(server)
	root.AddCommand(run, server, newOTACmd(e), newProfileCmd(e), newDevicesCmd(e), newNVSCmd(e), newFirmwareCmd(e), newScenarioCmd(e),
		newReportCmd(e), newVersionCmd(e))
	addCompletions(root)
	return root
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
