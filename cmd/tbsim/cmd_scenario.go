package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/internal/scenario"
	"github.com/tbsim/tbsim/scenarios"
)

func newScenarioCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "scenario", Short: "Run scripted fleet stories with faults and expectations"}
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the shipped scenarios",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, n := range scenarios.Names() {
				file, data, _ := scenarios.Read(n)
				sc, err := scenario.Parse(file, data)
				desc := ""
				if err == nil {
					desc = sc.Description
				}
				fmt.Fprintf(tw, "%s\t%s\n", n, desc)
			}
			return tw.Flush()
		},
	})
	var validate bool
	var junit, jsonFile, mode, eventLog string
	var seed int64 = -1
	run := &cobra.Command{
		Use:   "run FILE|NAME...",
		Short: "Run scenario files (or shipped scenarios by name)",
		Long: `Run each scenario against a fresh embedded server and fleet, in virtual time
by default (deterministic: the same seed gives the same bytes) or in real time
with --mode realtime, print a report
(steps with timings, expectations with measured values, the devices involved
in a failure with their serial log), and exit 3 when an expectation or a step
fails. Files are checked strictly first; a bad file exits 2.`,
		Example: `  tbsim scenario run scenarios/ota-rollout.yaml --junit report.xml
  tbsim scenario run ota-rollout broker-restart
  tbsim scenario run my.yaml --validate`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("scenario run needs at least one file or shipped scenario name (see tbsim scenario ls)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var scs []*scenario.Scenario
			var errs []error
			for _, a := range args {
				sc, err := loadScenario(a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				scs = append(scs, sc)
			}
			if len(errs) > 0 {
				return &exitError{ExitUsage, errors.Join(errs...)}
			}
			if validate {
				for _, sc := range scs {
					fmt.Fprintf(e.stdout, "%s: valid (%s, %d steps, %d expectations)\n", sc.File, sc.Name, len(sc.Steps), len(sc.Expect))
				}
				return nil
			}
			if mode != "" && mode != scenario.ModeVirtual && mode != scenario.ModeRealtime {
				return usageErr("--mode %q: want virtual or realtime", mode)
			}
			opts := scenario.RunOptions{Logger: e.log, Progress: e.stderr, Mode: mode}
			if eventLog != "" {
				f, err := os.Create(eventLog)
				if err != nil {
					return usageErr("--event-log: %v", err)
				}
				defer f.Close()
				opts.EventLog = f
			}
			if seed >= 0 {
				s := uint64(seed)
				opts.Seed = &s
			}
			var results []*scenario.Result
			failed, broken := 0, 0
			for _, sc := range scs {
				fmt.Fprintf(e.stderr, "running %s (%s)\n", sc.Name, sc.File)
				r := scenario.Run(cmd.Context(), sc, opts)
				scenario.WriteText(e.stdout, r)
				results = append(results, r)
				if r.Error != "" {
					broken++
				} else if !r.Passed {
					failed++
				}
			}
			if junit != "" {
				if err := writeWith(junit, func(f *os.File) error { return scenario.WriteJUnit(f, results) }); err != nil {
					return err
				}
			}
			if jsonFile != "" {
				if err := writeWith(jsonFile, func(f *os.File) error { return scenario.WriteJSON(f, results) }); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "\n%d passed, %d failed, %d errors\n", len(results)-failed-broken, failed, broken)
			switch {
			case broken > 0:
				return fmt.Errorf("%d scenario(s) could not run", broken)
			case failed > 0:
				return &exitError{ExitExpected, fmt.Errorf("%d scenario(s) failed", failed)}
			}
			return nil
		},
	}
	run.Flags().BoolVar(&validate, "validate", false, "check the files strictly without running them")
	run.Flags().StringVar(&junit, "junit", "", "write a JUnit XML report (one test case per expectation)")
	run.Flags().StringVar(&jsonFile, "json", "", "write the results as JSON")
	run.Flags().Int64Var(&seed, "seed", -1, "override every scenario's seed (to replay a failure)")
	run.Flags().StringVar(&mode, "mode", "", "virtual (default: one virtual clock, replayable bit for bit, fast) or realtime (goroutines, paho and mochi on the wall clock); overrides the file's mode:")
	run.Flags().StringVar(&eventLog, "event-log", "", "virtual mode: write every event each device handled to this file")
	cmd.AddCommand(run)
	return cmd
}

// loadScenario reads a file, or a shipped scenario when no such file exists.
func loadScenario(arg string) (*scenario.Scenario, error) {
	if _, err := os.Stat(arg); err == nil {
		return scenario.LoadFile(arg)
	}
	if !strings.ContainsAny(arg, "/\\") {
		if file, data, err := scenarios.Read(arg); err == nil {
			return scenario.Parse(file, data)
		}
	}
	return nil, fmt.Errorf("%s: no such file or shipped scenario (tbsim scenario ls)", arg)
}

func writeWith(path string, f func(*os.File) error) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(file); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
