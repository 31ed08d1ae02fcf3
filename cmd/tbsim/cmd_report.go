package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/internal/report"
	"github.com/tbsim/tbsim/internal/verdict"
)

type mergeOptions struct {
	out        string
	thresholds []string
	partial    bool
}

func newReportCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "Work with JSON summaries written by tbsim run --json"}
	o := &mergeOptions{}
	merge := &cobra.Command{
		Use:   "merge SUMMARY.json...",
		Short: "Merge the summaries of a sharded run into the fleet's",
		Long: `Merge the --json summaries of the shards of one fleet (tbsim run --shard i/n)
into the fleet's summary: counts summed, devices added up, every latency
histogram merged bucket by bucket (the fleet's p95 is the p95 of all its
observations, not a mix of the shards' p95s). It prints the text summary,
writes the merged JSON with -o, and judges the thresholds on the merged
result with the run's exit codes: 1 if a shard had a runtime error or no
device of the fleet was ever online, 3 if a threshold failed. Without
--threshold it re-checks the thresholds the shards ran with.`,
		Example: `  # the summaries of a 4-pod Indexed Job, collected from its volumes
  tbsim report merge shard-*.json -o fleet.json --threshold 'provision.p95<2s' --threshold 'online>=99%'

  # one summary: print it as text and check a threshold on it
  tbsim report merge summary.json --threshold 'errors==0'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("report merge needs the summaries to merge (tbsim run --json FILE writes one)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runMerge(e, o, args) },
	}
	f := merge.Flags()
	f.SortFlags = false
	f.StringVarP(&o.out, "output", "o", "", "write the merged summary as JSON to this file")
	f.StringArrayVar(&o.thresholds, "threshold", nil, "pass/fail criterion on the merged result, as tbsim run --threshold (repeatable; default: the shards' own)")
	f.BoolVar(&o.partial, "partial", false, "merge even when some shards are missing (the result then covers only the devices of the shards given)")
	cmd.AddCommand(merge)
	return cmd
}

func runMerge(e *env, o *mergeOptions, files []string) error {
	flagged, err := parseThresholds(o.thresholds)
	if err != nil {
		return err
	}
	if o.out != "" {
		if err := checkWritable(o.out); err != nil {
			return &exitError{ExitUsage, fmt.Errorf("-o: %w", err)}
		}
	}
	var ss []report.Summary
	var errs []error
	for _, file := range files {
		s, err := readSummary(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ss = append(ss, s)
	}
	if len(errs) > 0 {
		return &exitError{ExitUsage, errors.Join(errs...)}
	}
	merged, err := report.Merge(files, ss, o.partial)
	if err != nil {
		return &exitError{ExitUsage, err}
	}
	thresholds := flagged
	if len(o.thresholds) == 0 {
		if thresholds, err = shardThresholds(ss); err != nil {
			return err
		}
	}
	merged.Thresholds, _ = verdict.CheckAll(thresholds, verdict.FromSnapshot(merged.Snap, merged.Extra()))
	var runErr error
	if merged.RuntimeError != "" {
		runErr = errors.New(merged.RuntimeError)
	}
	merged.ExitCode, merged.Reason = judge(merged, nil, runErr)
	fmt.Fprintf(e.stdout, "\n  merged %d summaries of %d shards\n", len(ss), ss[0].Shard.Count)
	report.WriteText(e.stdout, merged)
	if o.out != "" {
		if err := writeJSONFile(o.out, merged); err != nil {
			return err
		}
	}
	if merged.ExitCode != ExitOK {
		return &exitError{merged.ExitCode, errors.New(merged.Reason)}
	}
	return nil
}

func readSummary(file string) (report.Summary, error) {
	f, err := os.Open(file)
	if err != nil {
		return report.Summary{}, err
	}
	defer f.Close()
	s, err := report.ReadJSON(f)
	if err != nil {
		return report.Summary{}, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// shardThresholds are the thresholds the shards were run with, each once,
// in the order first seen: the same manifest gives every pod the same.
func shardThresholds(ss []report.Summary) ([]verdict.Threshold, error) {
	var texts []string
	seen := map[string]bool{}
	for _, s := range ss {
		for _, r := range s.Thresholds {
			if !seen[r.Threshold] {
				seen[r.Threshold] = true
				texts = append(texts, r.Threshold)
			}
		}
	}
	return parseThresholds(texts)
}
