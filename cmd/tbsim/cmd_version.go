package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/internal/version"
)

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go version of this tbsim",
		Long: `Print which tbsim this is, from the build information Go embeds: the module
version (go install github.com/tbsim/tbsim/cmd/tbsim@v1.2.3 sets it), the VCS
revision (a go build in a git checkout sets it) and the Go version. tbsim
--version prints the same line.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(e.stdout, version.Get())
			return err
		},
	}
}
