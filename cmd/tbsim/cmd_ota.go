package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/firmware/tbapi"
	"github.com/tbsim/tbsim/internal/tbrest"
)

type restFlags struct {
	url, user, password string
	caFile              string
	insecure            bool
}

func (r *restFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.url, "url", "http://127.0.0.1:8080", "ThingsBoard (or tbsim server) REST base URL")
	cmd.Flags().StringVar(&r.user, "user", defaultUser, "tenant user (env "+envUser+")")
	cmd.Flags().StringVar(&r.password, "password", defaultPassword, "tenant password (env "+envPassword+")")
	cmd.Flags().StringVar(&r.caFile, "ca-file", "", "PEM CA certificates to trust for an https --url")
	cmd.Flags().BoolVar(&r.insecure, "insecure-skip-verify", false, "do not verify the server certificate of an https --url")
}

func (r *restFlags) login(cmd *cobra.Command) (*tbrest.Client, error) {
	envDefault(cmd, "user", envUser, &r.user)
	envDefault(cmd, "password", envPassword, &r.password)
	hc := &http.Client{Timeout: 60 * time.Second}
	if r.caFile != "" || r.insecure {
		cfg := &tls.Config{InsecureSkipVerify: r.insecure}
		if r.caFile != "" {
			pem, err := os.ReadFile(r.caFile)
			if err != nil {
				return nil, usageErr("--ca-file: %v", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, usageErr("--ca-file %s: no PEM certificate in it", r.caFile)
			}
		}
		hc.Transport = &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}
	}
	return tbrest.LoginWith(cmd.Context(), hc, r.url, r.user, r.password)
}

func newOTACmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "ota", Short: "Push firmware and watch a rollout through the ThingsBoard REST API"}
	cmd.AddCommand(newOTAPushCmd(e), newOTAStatusCmd(e))
	return cmd
}

func newOTAPushCmd(e *env) *cobra.Command {
	var rf restFlags
	var title, version, profile, deviceName, alg string
	cmd := &cobra.Command{
		Use:   "push FILE",
		Short: "Upload a firmware package and assign it to a profile or a device",
		Long: `Create an OTA package (title, version), upload FILE with its checksum, and
assign it to a device profile (default: the default profile) or to one device,
with ThingsBoard's REST calls. Works against a real ThingsBoard and tbsim server.

Pushing again is safe: a package of that title and version with the same
bytes is reused and assigned (a rollout interrupted by a restart resumes);
one with other bytes is an error, since devices could not tell the two
builds apart.`,
		Example: `  tbsim ota push fw.bin --title CORE_ESP32 --version 1.1.0
  tbsim ota push fw.bin --title CORE_ESP32 --version 1.1.0 --device 24:0A:C4:00:00:04 --url https://tb.example.com`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("ota push takes one firmware file, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if title == "" || version == "" {
				return usageErr("ota push needs --title and --version")
			}
			if profile != "" && deviceName != "" {
				return usageErr("give --profile or --device, not both")
			}
			if _, ok := tbapi.ParseAlgorithm(alg); !ok {
				return usageErr("--algorithm %q: want one of MD5, SHA256, SHA384, SHA512, CRC32, MURMUR3_32, MURMUR3_128", alg)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			if _, err := espimage.Parse(data, espimage.ESP32S3); err != nil {
				fmt.Fprintf(e.stderr, "warning: %s is not a valid ESP32-S3 image (%v); devices will reject it\n", args[0], err)
			}
			return otaPush(cmd, e, &rf, args[0], data, title, version, profile, deviceName, strings.ToUpper(alg))
		},
	}
	cmd.Flags().StringVar(&title, "title", "", "package title (the firmware's fw_title)")
	cmd.Flags().StringVar(&version, "version", "", "package version")
	cmd.Flags().StringVar(&profile, "profile", "", "assign to this device profile (default: the default profile)")
	cmd.Flags().StringVar(&deviceName, "device", "", "assign to this one device instead")
	cmd.Flags().StringVar(&alg, "algorithm", "SHA256", "checksum algorithm")
	rf.add(cmd)
	return cmd
}

func otaPush(cmd *cobra.Command, e *env, rf *restFlags, file string, data []byte, title, version, profile, deviceName, alg string) error {
	ctx := cmd.Context()
	c, err := rf.login(cmd)
	if err != nil {
		return err
	}
	var prof tbrest.Object
	var dev tbrest.Object
	switch {
	case deviceName != "":
		if dev, err = c.DeviceByName(ctx, deviceName); err != nil {
			return fmt.Errorf("device %s: %w", deviceName, err)
		}
		pid, _ := dev["deviceProfileId"].(map[string]any)
		id, _ := pid["id"].(string)
		prof, err = c.Profile(ctx, id)
	case profile != "":
		prof, err = c.ProfileByName(ctx, profile)
	default:
		prof, err = c.DefaultProfile(ctx)
	}
	if err != nil {
		return err
	}
	pkg, reused, err := ensurePackage(ctx, c, prof.ID(), title, version, data)
	if err != nil {
		return err
	}
	if !reused || pkg["hasData"] != true {
		if pkg, err = c.UploadPackage(ctx, pkg.ID(), filepath.Base(file), data, alg); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
	}
	ref := map[string]any{"entityType": "OTA_PACKAGE", "id": pkg.ID()}
	target := fmt.Sprintf("profile %v", prof["name"])
	setFirmware := func(o tbrest.Object) { o["firmwareId"] = ref }
	if dev != nil {
		_, err = c.EditDevice(ctx, dev.ID(), setFirmware)
		target = "device " + deviceName
	} else {
		_, err = c.EditProfile(ctx, prof.ID(), setFirmware)
	}
	if err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	note := ""
	if reused {
		note = " (already on the server with these bytes: reused; a rollout under way resumes)"
	}
	fmt.Fprintf(e.stdout, "package %s %s (%d bytes, %v %v) assigned to %s%s\n", title, version, len(data), pkg["checksumAlgorithm"], pkg["checksum"], target, note)
	return nil
}

// ensurePackage creates the package, or finds the one of that title and
// version from an earlier push: reused when it has the same bytes (or none
// yet), an error when it has others. Bytes are compared by the package's
// own checksum, which a real ThingsBoard computes too.
func ensurePackage(ctx context.Context, c *tbrest.Client, profileID, title, version string, data []byte) (tbrest.Object, bool, error) {
	pkg, err := c.CreatePackage(ctx, profileID, title, version)
	if err == nil {
		return pkg, false, nil
	}
	var he *tbrest.Error
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(he.Message, "already exists") {
		return nil, false, fmt.Errorf("create package: %w", err)
	}
	if pkg, err = c.PackageByTitle(ctx, title, version); err != nil || pkg == nil {
		return nil, false, fmt.Errorf("create package: %w", errors.Join(he, err))
	}
	if pkg["hasData"] != true {
		return pkg, true, nil // created by a push that stopped before its upload
	}
	algName, _ := pkg["checksumAlgorithm"].(string)
	sum, _ := pkg["checksum"].(string)
	size, _ := pkg["dataSize"].(float64)
	if a, ok := tbapi.ParseAlgorithm(algName); ok && int(size) == len(data) && tbapi.ChecksumEqual(sum, tbapi.ChecksumHex(a, data)) {
		return pkg, true, nil
	}
	return nil, false, fmt.Errorf("package %s %s already exists on the server with other bytes (%d bytes, %s %.16s…; this file: %d bytes): "+
		"give this build a new --version (devices could not tell the two apart), or delete the old package first", title, version, int64(size), algName, sum, len(data))
}

func newOTAStatusCmd(e *env) *cobra.Command {
	var rf restFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show how many devices are in each fw_state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := rf.login(cmd)
			if err != nil {
				return err
			}
			devs, err := c.Devices(ctx)
			if err != nil {
				return err
			}
			counts := map[string]int{}
			for _, d := range devs {
				v, err := c.Latest(ctx, d.ID(), tbapi.KeyFwState, tbapi.KeyTargetFwVersion, tbapi.KeyCurrentFwVersion)
				if err != nil {
					return err
				}
				state := v[tbapi.KeyFwState]
				if state == "" {
					state = "-"
				}
				counts[fmt.Sprintf("%s\t%s\t%s", state, orDash(v[tbapi.KeyTargetFwVersion]), orDash(v[tbapi.KeyCurrentFwVersion]))]++
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FW_STATE\tTARGET\tCURRENT\tDEVICES")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%d\n", k, counts[k])
			}
			fmt.Fprintf(tw, "total\t\t\t%d\n", len(devs))
			return tw.Flush()
		},
	}
	rf.add(cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
