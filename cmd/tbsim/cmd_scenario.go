package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

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
	var server, provKey, provSecret string
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
			if server != "" {
				envDefault(cmd, "provision-key", envProvisionKey, &provKey)
				envDefault(cmd, "provision-secret", envProvisionSecret, &provSecret)
				if provKey == "" || provSecret == "" {
					return usageErr("--server needs --provision-key and --provision-secret")
				}
				for _, sc := range scs {
					if err := sc.UseExternal(server, provKey, provSecret); err != nil {
						errs = append(errs, err)
					}
				}
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
	run.Flags().StringVar(&server, "server", "", "run against this external server (mqtt://host:port, real time) instead of the embedded one; scenarios whose steps need the embedded server are refused")
	run.Flags().StringVar(&provKey, "provision-key", "", "with --server: the provision device key (env "+envProvisionKey+")")
	run.Flags().StringVar(&provSecret, "provision-secret", "", "with --server: the provision device secret (env "+envProvisionSecret+")")
	cmd.AddCommand(run, newFuzzCmd(e))
	return cmd
}

func newFuzzCmd(e *env) *cobra.Command {
	var o scenario.FuzzOptions
	var keep []int
	var jsonFile string
	noShrink := false
	cmd := &cobra.Command{
		Use:   "fuzz",
		Short: "Search random fault schedules for broken invariants (virtual time)",
		Long: `Run many random fault schedules, one per seed, against a small fleet and the
embedded server's core in virtual time: power cuts at any instant (while
provisioning, mid-download, while UPDATING, before the new image confirms
itself), cut otadata writes, broker restarts, link loss and latency, Wi-Fi
drops, revoked tokens, deleted devices, good, corrupt and wrong-chip
rollouts, a second rollout during the first. Each schedule enables a random
subset of fault kinds (swarm testing). After a quiet period it checks:
` + "  - " + scenario.InvBootsValidImage + `
` + "  - " + scenario.InvNotSilent + `
` + "  - " + scenario.InvTokenKept + `
` + "  - " + scenario.InvNotDownloading + `
` + "  - " + scenario.InvVersionReported + `
` + "  - " + scenario.InvCountsAgree + `
The smallest failing seed is shrunk to the faults it needs and printed with
a command that replays it exactly. Exit 3 when an invariant broke.`,
		Example: `  tbsim scenario fuzz --schedules 200
  tbsim scenario fuzz --schedules 200 --write-ahead-token`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Schedules < 1 || o.Schedules > 1_000_000 || o.Devices < 1 || o.Devices > 100_000 {
				return usageErr("--schedules 1 to 1000000 and --devices 1 to 100000")
			}
			o.Keep, o.Shrink, o.Progress = keep, !noShrink, e.stderr
			r, err := scenario.Fuzz(cmd.Context(), o)
			if err != nil {
				return err
			}
			scenario.WriteFuzz(e.stdout, r)
			if jsonFile != "" {
				if err := writeWith(jsonFile, func(f *os.File) error {
					enc := json.NewEncoder(f)
					enc.SetIndent("", "  ")
					return enc.Encode(r)
				}); err != nil {
					return err
				}
			}
			if len(r.Failing) > 0 {
				return &exitError{ExitExpected, fmt.Errorf("%d of %d schedules broke an invariant; smallest seed %d", len(r.Failing), r.Schedules, r.First.Seed)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.Seed, "seed", 1, "first seed (seeds seed, seed+1, ... are tried)")
	f.IntVar(&o.Schedules, "schedules", 100, "number of schedules")
	f.IntVar(&o.Devices, "devices", 20, "devices per schedule")
	f.DurationVar(&o.Active, "active", 10*time.Minute, "virtual time over which the faults fall")
	f.DurationVar(&o.Quiet, "quiet", 15*time.Minute, "virtual time without faults before the checks")
	f.BoolVar(&o.WriteAheadToken, "write-ahead-token", false, "firmware option: the device chooses and stores its token before provisioning")
	f.IntSliceVar(&keep, "keep", nil, "replay only these faults of the first schedule (printed by a shrunk search)")
	f.BoolVar(&noShrink, "no-shrink", false, "do not shrink the smallest failing schedule")
	f.StringVar(&jsonFile, "json", "", "write the result as JSON")
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
