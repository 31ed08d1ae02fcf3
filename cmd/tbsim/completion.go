package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/internal/scenario"
	"github.com/tbsim/tbsim/scenarios"
)

// addCompletions teaches cobra's shell completion (tbsim completion bash
// and friends; subcommands and flags complete by themselves) what only
// tbsim knows: shipped scenario names, and the values of enumerated flags.
func addCompletions(root *cobra.Command) {
	if run, _, err := root.Find([]string{"scenario", "run"}); err == nil && run.Name() == "run" {
		run.ValidArgsFunction = completeScenarios
		run.RegisterFlagCompletionFunc("mode", fixedValues(scenario.ModeVirtual, scenario.ModeRealtime))
	}
}

// completeScenarios offers the shipped scenarios (with their description)
// and, as the shell does by default, files.
func completeScenarios(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, n := range scenarios.Names() {
		if !strings.HasPrefix(n, toComplete) {
			continue
		}
		desc := ""
		if file, data, err := scenarios.Read(n); err == nil {
			if sc, err := scenario.Parse(file, data); err == nil {
				desc = sc.Description
			}
		}
		out = append(out, cobra.CompletionWithDesc(n, desc))
	}
	return out, cobra.ShellCompDirectiveDefault
}

func fixedValues(values ...string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}
