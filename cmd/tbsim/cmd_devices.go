package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/sim"
)

// openNVS opens a state dir's NVS file: read-only for listings (it may be
// a read-only copy, or in use by a run), read-write under the dir's lock.
func openNVS(stateDir string, write bool) (*device.BoltNVS, func(), error) {
	path := filepath.Join(stateDir, sim.NVSFile)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, usageErr("no fleet state in %s (run tbsim run first, or pass --state-dir)", stateDir)
	}
	if !write {
		if err := sim.CheckBolt(path); err != nil {
			return nil, nil, err
		}
		nvs, err := device.OpenBoltNVSReadOnly(path)
		if err != nil {
			return nil, nil, err
		}
		return nvs, func() { nvs.Close() }, nil
	}
	unlock, err := sim.LockStateDir(stateDir)
	if err != nil {
		return nil, nil, err
	}
	if err := sim.CheckBolt(path); err != nil {
		unlock()
		return nil, nil, err
	}
	nvs, err := device.OpenBoltNVS(path)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return nvs, func() { nvs.Close(); unlock() }, nil
}

func newDevicesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Short: "Inspect the fleet's stored devices"}
	var stateDir string
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the devices in the state directory",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			nvs, done, err := openNVS(stateDir, false)
			if err != nil {
				return err
			}
			defer done()
			names, err := nvs.Devices()
			if err != nil {
				return err
			}
			flash, err := sim.ReadFlashState(filepath.Join(stateDir, "flash.db"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			seen := map[string]bool{}
			for _, n := range names {
				seen[n] = true
			}
			for n := range flash { // devices whose NVS was erased
				if !seen[n] {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROVISIONED\tRUNNING\tBOOTS")
			for _, n := range names {
				_, terr := nvs.Device(n).GetString(firmware.Defaults().NVSNamespace, "token")
				provisioned := "yes"
				if terr != nil {
					provisioned = "no"
				}
				rec := flash[n]
				running := rec.Running
				if running == "" {
					running = "factory"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", n, provisioned, running, rec.Boots)
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&stateDir, "state-dir", "tbsim-state", "fleet state directory")
	cmd.AddCommand(ls, newDevicesExportCmd(e), newDevicesImportCmd(e), newDevicesDeleteCmd(e))
	return cmd
}

func newNVSCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "nvs", Short: "Change the fleet's stored NVS"}
	var stateDir, dev string
	var all bool
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Erase stored tokens so devices provision again (the seed's clearTokenFromNVS)",
		Example: `  tbsim nvs clear --device 24:0A:C4:00:00:04
  tbsim nvs clear --all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (dev == "") == !all {
				return usageErr("nvs clear needs exactly one of --device MAC or --all")
			}
			nvs, done, err := openNVS(stateDir, true)
			if err != nil {
				return err
			}
			defer done()
			names := []string{}
			if all {
				if names, err = nvs.Devices(); err != nil {
					return err
				}
			} else {
				mac, err := device.ParseMAC(dev)
				if err != nil {
					return usageErr("--device: %v", err)
				}
				names = append(names, mac.String())
			}
			for _, n := range names {
				if err := nvs.EraseDevice(n); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "erased the NVS of %d device(s); they provision at their next boot\n", len(names))
			return nil
		},
	}
	clear.Flags().StringVar(&stateDir, "state-dir", "tbsim-state", "fleet state directory")
	clear.Flags().StringVar(&dev, "device", "", "the device's MAC")
	clear.Flags().BoolVar(&all, "all", false, "every device")
	cmd.AddCommand(clear)
	return cmd
}
