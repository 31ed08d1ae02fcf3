package main

import (
	"os"

	"github.com/spf13/cobra"
)

// Environment variables for credentials, so they need not sit on a
// command line, where ps and shell history show them (and in a Kubernetes
// manifest they come from a Secret). A flag given wins over its variable.
// run and server read every flag's variable (env.go); these names follow
// the same rule and are what their help texts and warnings cite, and what
// tbsim ota push and status read for the tenant login.
const (
	envProvisionKey    = "TBSIM_PROVISION_KEY"
	envProvisionSecret = "TBSIM_PROVISION_SECRET"
	envUser            = "TBSIM_USER"
	envPassword        = "TBSIM_PASSWORD"
)

// envDefault sets *dst from the variable env unless the flag was given
// (the ota commands; run and server have flagsFromEnv).
func envDefault(cmd *cobra.Command, flag, env string, dst *string) {
	if cmd.Flags().Changed(flag) {
		return
	}
	if v := os.Getenv(env); v != "" {
		*dst = v
	}
}
