package main

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/internal/tbrest"
	"github.com/tbsim/tbsim/sim"
)

func newProfileCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "Set up a device profile on a ThingsBoard for a fleet"}
	var rf restFlags
	var key, secret string
	prov := &cobra.Command{
		Use:   "provisioning NAME",
		Short: "Create or update a device profile that lets devices provision themselves",
		Long: `Create the device profile NAME (or update it: its other settings are kept)
with provisioning "Allow to create new devices" and the given key and
secret, through ThingsBoard's REST API (a tenant administrator's login).
Devices of a fleet run with the same --provision-key/--provision-secret
create themselves in this profile; its name is their device type.`,
		Example: `  tbsim profile provisioning tbsim-fleet --key K --secret S --url http://tb.example.com:8080 --user tenant@example.com
  tbsim run --server mqtt://tb.example.com:1883 --provision-key K --provision-secret S --devices 500`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("profile provisioning takes the profile's name, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			envDefault(cmd, "key", envProvisionKey, &key)
			envDefault(cmd, "secret", envProvisionSecret, &secret)
			if key == "" || secret == "" {
				return usageErr("profile provisioning needs --key and --secret (or %s and %s)", envProvisionKey, envProvisionSecret)
			}
			c, err := rf.login(cmd)
			if err != nil {
				return err
			}
			p, err := c.ProvisioningProfile(cmd.Context(), args[0], key, secret)
			if err != nil {
				var he *tbrest.Error
				if errors.As(err, &he) && he.Status == http.StatusBadRequest && strings.Contains(he.Message, "rovision") {
					return fmt.Errorf("%w (the provision key must be unique on the server: another profile may use it)", err)
				}
				return err
			}
			fmt.Fprintf(e.stdout, "device profile %s (%s): ALLOW_CREATE_NEW_DEVICES, provision key %s\n", args[0], p.ID(), key)
			return nil
		},
	}
	prov.Flags().StringVar(&key, "key", "", "provision device key (env "+envProvisionKey+")")
	prov.Flags().StringVar(&secret, "secret", "", "provision device secret (env "+envProvisionSecret+")")
	rf.add(prov)
	cmd.AddCommand(prov)
	return cmd
}

// newDevicesDeleteCmd deletes a fleet's devices on the server: the names
// in its state dir (the MAC-derived names it provisioned), nothing else.
func newDevicesDeleteCmd(e *env) *cobra.Command {
	var rf restFlags
	var stateDir string
	var erase bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete this fleet's devices on the server (ThingsBoard or tbsim server)",
		Long: `Delete, through the REST API, every device on the server whose name is one
of this fleet's (the devices in --state-dir); devices of other names are
not touched. ThingsBoard refuses to provision a name it knows, so delete
a fleet's devices before provisioning it again from scratch; with
--erase-tokens the fleet's stored tokens go too (tbsim nvs clear --all),
so the next tbsim run provisions every device anew.`,
		Example: `  tbsim devices delete --url http://tb.example.com:8080 --user tenant@example.com --erase-tokens`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			nvs, done, err := openNVS(stateDir, erase)
			if err != nil {
				return err
			}
			defer done()
			names, err := nvs.Devices()
			if err != nil {
				return err
			}
			if flash, err := sim.ReadFlashState(filepath.Join(stateDir, "flash.db")); err == nil {
				for n := range flash {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			names = compactStrings(names)
			c, err := rf.login(cmd)
			if err != nil {
				return err
			}
			mine := map[string]bool{}
			for _, n := range names {
				mine[n] = true
			}
			all, err := c.Devices(ctx)
			if err != nil {
				return err
			}
			deleted := 0
			for _, d := range all {
				n, _ := d["name"].(string)
				if !mine[n] {
					continue
				}
				if err := c.DeleteDevice(ctx, d.ID()); err != nil {
					return fmt.Errorf("delete %s: %w", n, err)
				}
				deleted++
			}
			fmt.Fprintf(e.stdout, "deleted %d of this fleet's %d devices on the server (%d were not there)\n", deleted, len(names), len(names)-deleted)
			if erase {
				for _, n := range names {
					if err := nvs.EraseDevice(n); err != nil {
						return err
					}
				}
				fmt.Fprintf(e.stdout, "erased the stored tokens of %d device(s); they provision at their next boot\n", len(names))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "tbsim-state", "fleet state directory")
	cmd.Flags().BoolVar(&erase, "erase-tokens", false, "also erase the fleet's stored tokens")
	rf.add(cmd)
	return cmd
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
