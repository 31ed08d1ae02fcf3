package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/espidf/nvs"
	"github.com/tbsim/tbsim/sim"
)

// nvsPartitionSize is Arduino's nvs partition (default.csv, default_8MB.csv).
const nvsPartitionSize = 0x5000

type nvsFileOptions struct {
	stateDir string
	file     string
	size     string
}

func (o *nvsFileOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.stateDir, "state-dir", "tbsim-state", "fleet state directory")
	cmd.Flags().StringVar(&o.file, "nvs", "", "the partition image (ESP-IDF's NVS format)")
	cmd.Flags().StringVar(&o.size, "size", "0x5000", "partition size, a multiple of 4096 (export)")
}

func (o *nvsFileOptions) check(args []string) (device.MAC, error) {
	if o.file == "" {
		return device.MAC{}, usageErr("--nvs FILE is required")
	}
	mac, err := device.ParseMAC(args[0])
	if err != nil {
		return device.MAC{}, usageErr("device: %v", err)
	}
	return mac, nil
}

func newDevicesExportCmd(e *env) *cobra.Command {
	var o nvsFileOptions
	cmd := &cobra.Command{
		Use:   "export MAC --nvs FILE",
		Short: "Write a device's NVS as an ESP-IDF nvs partition image",
		Long: "export writes every key a simulated device keeps in NVS into a partition image in ESP-IDF's " +
			"on-flash format: flash it at the nvs partition's offset (0x9000 with Arduino's layouts), read it " +
			"with ESP-IDF's nvs_tool.py, or boot it in the emulated ESP32-C3.",
		Example: `  tbsim devices export 24:0A:C4:00:00:01 --nvs nvs.bin
  esptool.py write_flash 0x9000 nvs.bin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := o.check(args)
			if err != nil {
				return err
			}
			size, err := strconv.ParseInt(o.size, 0, 64)
			if err != nil || size%nvs.PageSize != 0 || size < 3*nvs.PageSize {
				return usageErr("--size %q: want a multiple of 4096, at least 0x3000", o.size)
			}
			db, done, err := openNVS(o.stateDir, false)
			if err != nil {
				return err
			}
			defer done()
			n, err := exportNVS(db.DB(), mac.String(), o.file, int(size))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %d keys of %s to %s (%d bytes)\n", n, mac, o.file, size)
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}

func newDevicesImportCmd(e *env) *cobra.Command {
	var o nvsFileOptions
	cmd := &cobra.Command{
		Use:   "import MAC --nvs FILE",
		Short: "Replace a device's NVS with the strings of an ESP-IDF nvs partition image",
		Long: "import reads a partition image in ESP-IDF's NVS format (a dump of a real board's nvs partition, " +
			"or one written by export or by ESP-IDF's nvs_partition_gen.py) and makes it the simulated device's " +
			"NVS, so the next tbsim run boots that device with its token. Only strings are kept (what the " +
			"firmware stores); other values are listed and skipped.",
		Example: `  esptool.py read_flash 0x9000 0x5000 nvs.bin
  tbsim devices import 24:0A:C4:00:00:01 --nvs nvs.bin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := o.check(args)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(o.stateDir, 0o755); err != nil {
				return err
			}
			unlock, err := sim.LockStateDir(o.stateDir) // no run may use the fleet meanwhile
			if err != nil {
				return err
			}
			defer unlock()
			db, err := device.OpenBoltNVS(filepath.Join(o.stateDir, sim.NVSFile))
			if err != nil {
				return err
			}
			defer db.Close()
			return importNVS(e.stdout, db, mac.String(), o.file)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// exportNVS writes the namespaces and keys of one device into a partition.
func exportNVS(db *bolt.DB, dev, path string, size int) (int, error) {
	flash := nvs.NewMemFlash(size)
	part, err := nvs.Open(flash, size)
	if err != nil {
		return 0, err
	}
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(dev))
		if b == nil {
			return fmt.Errorf("no device %s in the state directory", dev)
		}
		return b.ForEachBucket(func(ns []byte) error {
			return b.Bucket(ns).ForEach(func(k, v []byte) error {
				n++
				if err := part.SetString(string(ns), string(k), string(v)); err != nil {
					return fmt.Errorf("%s/%s: %w", ns, k, err)
				}
				return nil
			})
		})
	})
	if err != nil {
		return 0, err
	}
	return n, os.WriteFile(path, flash, 0o644)
}

// importNVS replaces a device's NVS with the strings of a partition.
func importNVS(w io.Writer, db *device.BoltNVS, dev, path string) error {
	img, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	part, err := nvs.Open(nvs.MemFlash(img), len(img))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := db.EraseDevice(dev); err != nil {
		return err
	}
	store, kept := db.Device(dev), 0
	for _, en := range part.Entries() {
		if en.Type != nvs.String {
			fmt.Fprintf(w, "skipped %s/%s (%s, %d bytes): only strings are imported\n", en.Namespace, en.Key, en.Type, len(en.Data))
			continue
		}
		if err := store.SetString(en.Namespace, en.Key, string(en.Data)); err != nil {
			return fmt.Errorf("%s/%s: %w", en.Namespace, en.Key, err)
		}
		kept++
	}
	fmt.Fprintf(w, "imported %d strings from %s into %s\n", kept, path, dev)
	return nil
}
