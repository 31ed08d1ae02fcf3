package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/device/espimage"
	"github.com/tbsim/tbsim/espidf/appimage"
)

func newFirmwareCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "firmware", Short: "Build and inspect ESP32 application images"}
	var chip, title, version, out string
	var size int
	build := &cobra.Command{
		Use:   "build",
		Short: "Write a valid test firmware image",
		Long: `Write a valid ESP-IDF application image of the given size, for tests and
rollouts, laid out as ESP-IDF lays out an app: the descriptor (title and
version) and read-only data in a flash-mapped DROM segment, small DRAM and IRAM
segments inside the chip's memory, the bulk as flash-mapped IROM at the 64 KiB
MMU page alignment; then the checksum and SHA-256. Devices, and ESP-IDF's
bootloader, accept it as an image of that chip.`,
		Example: `  tbsim firmware build --version 1.1.0 --size 1048576 -o fw.bin`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ok := espimage.ParseChip(chip)
			if !ok {
				return usageErr("--chip %q: want esp32, esp32s2, esp32s3 or esp32c3", chip)
			}
			if out == "" {
				return usageErr("firmware build needs -o FILE")
			}
			if size < espimage.MinSize || size > device.SlotSize {
				return usageErr("--size %d: want %d to %d bytes (the largest OTA slot of the board's partition table)", size, espimage.MinSize, device.SlotSize)
			}
			img, err := espimage.Build(espimage.BuildOptions{Chip: c, Title: title, Version: version, Size: size})
			if err != nil {
				return usageErr("%v", err)
			}
			if err := os.WriteFile(out, img, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: %s image %s %s, %d bytes\n", out, c, title, version, len(img))
			return nil
		},
	}
	build.Flags().StringVar(&chip, "chip", "esp32s3", "target chip")
	build.Flags().StringVar(&title, "title", "CORE_ESP32", "project name in the descriptor")
	build.Flags().StringVar(&version, "version", "", "version in the descriptor (required)")
	build.Flags().IntVar(&size, "size", 1<<20, "image size in bytes (rounded up to 16)")
	build.Flags().StringVarP(&out, "output", "o", "", "output file")
	build.MarkFlagRequired("version")

	var want string
	inspect := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Validate an image and print its header, segments and descriptor",
		Long: `Validate an image as ESP-IDF does when an update ends (esp_image_verify: header,
chip, segments, checksum, SHA-256), require the application descriptor, and
check every segment's load address against the chip's memory map as the
bootloader does before it boots the image. A bootloader image or an ESP8266
image is described, then refused.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("firmware inspect takes one file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readImageFile(args[0])
			if err != nil {
				return err
			}
			c := espimage.AnyChip
			if want != "" {
				var ok bool
				if c, ok = espimage.ParseChip(want); !ok {
					return usageErr("--chip %q: unknown chip", want)
				}
			}
			return inspectImage(e.stdout, args[0], data, c)
		},
	}
	inspect.Flags().StringVar(&want, "chip", "", "require this chip (e.g. esp32s3)")
	cmd.AddCommand(build, inspect)
	return cmd
}

// maxImageFile bounds what inspect reads: the largest flash an ESP32 has.
const maxImageFile = 16 << 20

// readImageFile reads a regular file of at most 16 MiB (not a device such
// as /dev/zero, which never ends).
func readImageFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, usageErr("%s is not a regular file", path)
	}
	if st.Size() > maxImageFile {
		return nil, usageErr("%s: %d bytes, more than an ESP32's 16 MiB of flash", path, st.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxImageFile {
		return nil, usageErr("%s grew past 16 MiB while reading", path)
	}
	return data, nil
}

// inspectImage prints what a file holds: an application's header,
// segments (with the memory each loads into), descriptor and the
// bootloader's verdict; or, for a file that is not an application, what it
// is instead. It returns an error when devices would not run the file.
func inspectImage(w io.Writer, name string, data []byte, want espimage.Chip) error {
	img, err := espimage.Parse(data, want)
	if img == nil {
		return fmt.Errorf("%s: invalid image: %w", name, err)
	}
	switch {
	case img.ESP8266 != nil:
		fmt.Fprintf(w, "%s: ESP8266 image, %d bytes\n", name, len(data))
		fmt.Fprintf(w, "  segments  %d, entry 0x%08X, flash mode %d, speed/size 0x%02X\n", img.SegmentCount, img.Entry, img.SPIMode, img.SPISpeedSize)
		for i, s := range img.ESP8266.Segments {
			fmt.Fprintf(w, "  segment %d load 0x%08X file 0x%06X len %d\n", i, s.LoadAddr, s.Offset, s.Len)
		}
		return fmt.Errorf("%s: %w", name, err)
	case errors.Is(err, espimage.ErrBootloader):
		fmt.Fprintf(w, "%s: %s bootloader image, not an application, %d bytes (file %d)\n", name, img.Chip, img.Size, len(data))
	case err != nil:
		fmt.Fprintf(w, "%s: %s image without an app descriptor, %d bytes (file %d)\n", name, img.Chip, img.Size, len(data))
	default:
		fmt.Fprintf(w, "%s: valid %s application image, %d bytes (file %d)\n", name, img.Chip, img.Size, len(data))
	}
	fmt.Fprintf(w, "  segments  %d, entry 0x%08X, flash mode %d, speed/size 0x%02X\n", img.SegmentCount, img.Entry, img.SPIMode, img.SPISpeedSize)
	for i, s := range img.Segments {
		region := appimage.RegionName(uint16(img.Chip), s.LoadAddr)
		if region == "" {
			region = "?"
		}
		fmt.Fprintf(w, "  segment %d %-8s load 0x%08X file 0x%06X len %d\n", i, region, s.LoadAddr, s.Offset, s.Len)
	}
	fmt.Fprintf(w, "  checksum  0x%02X at 0x%X\n", img.Checksum, img.ChecksumOffset)
	if img.HashAppended {
		fmt.Fprintf(w, "  sha256    %x (appended, verified)\n", img.SHA256)
	}
	fmt.Fprintf(w, "  file sha256 %x\n", sha256.Sum256(data))
	if d := img.Desc; d != nil {
		fmt.Fprintf(w, "  project   %s\n  version   %s\n  idf       %s\n  built     %s %s\n", d.ProjectName, d.Version, d.IDFVersion, d.Date, d.Time)
	}
	if d := img.Bootloader; d != nil {
		fmt.Fprintf(w, "  bootloader descriptor: version %d, idf %s, built %s\n", d.Version, d.IDFVersion, d.DateTime)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !appimage.HasMemoryMap(uint16(img.Chip)) {
		fmt.Fprintf(w, "  boot      load addresses not checked (no memory map for %s)\n", img.Chip)
		return nil
	}
	if err := img.CheckLoad(); err != nil {
		fmt.Fprintf(w, "  boot      refused by the bootloader: %v\n", err)
		return fmt.Errorf("%s: the bootloader would not boot it: %w", name, err)
	}
	fmt.Fprintf(w, "  boot      every RAM segment inside the chip's memory, clear of the bootloader's\n")
	return nil
}
