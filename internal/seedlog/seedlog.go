// Package seedlog holds the seed firmware's serial transcripts, as its README
// prints them, and compares a device's serial log with them.
//
// The seed is rch-goldsnaker/esp32-OTA-Provi-TB (an Arduino/PlatformIO
// firmware for the Heltec WiFi LoRa 32 V3 with ThingsBoard Arduino SDK
// 0.14.0). Its README shows two transcripts, "First Boot (Provisioning)" and
// "Subsequent Boots (Auto-connect)", with the values masked: the MAC as
// XX:XX:XX:XX:XX:XX, the token as xxxxxxxxxxxxxxxx and the server as
// YOUR_SERVER_IP. Users grep serial logs for these lines, so tbsim's firmware
// prints them exactly and in this order. Its own extra lines (the reset
// reason, Wi-Fi, the MQTT connect attempt) are Additions: allowed only where
// the seed has nothing to say, and listed in the README.
package seedlog

import (
	"fmt"
	"regexp"
	"strings"
)

// The seed README's placeholders for the values a transcript masks.
const (
	MaskMAC    = "XX:XX:XX:XX:XX:XX"
	MaskToken  = "xxxxxxxxxxxxxxxx"
	MaskServer = "YOUR_SERVER_IP"
)

// FirstBoot is the seed README's "First Boot (Provisioning)" transcript.
var FirstBoot = []string{
	"========================================",
	"Firmware: CORE_ESP32",
	"Version: 1.0.0",
	"========================================",
	"[NVS] Checking for saved token...",
	"[PROVISION] Not provisioned - will request provisioning",
	"[PROVISION] Connecting to: " + MaskServer,
	"[PROVISION] Sending provisioning request...",
	"[PROVISION] Device name: " + MaskMAC,
	"[PROVISION] Response received!",
	"[PROVISION] Access Token: " + MaskToken,
	"[NVS] Token saved successfully",
}

// SubsequentBoot is the seed README's "Subsequent Boots (Auto-connect)"
// transcript.
var SubsequentBoot = []string{
	"========================================",
	"Firmware: CORE_ESP32",
	"Version: 1.0.0",
	"========================================",
	"[NVS] Checking for saved token...",
	"[NVS] Token loaded: " + MaskToken,
	"[PROVISION] Already provisioned",
	"Connected to ThingsBoard!",
	"[OTA] Current firmware info sent: CORE_ESP32 v1.0.0",
	"[TELEMETRY] Data sent to ThingsBoard",
}

// Online is what the seed prints once connected with its token: the end of
// SubsequentBoot. The first-boot transcript stops at the saved token; a
// first boot that goes on to connect prints these lines next.
func Online() []string {
	for i, l := range SubsequentBoot {
		if l == "[PROVISION] Already provisioned" {
			return append([]string(nil), SubsequentBoot[i+1:]...)
		}
	}
	panic("seedlog: SubsequentBoot lacks its provisioned line")
}

// Addition is a line tbsim's firmware prints on a healthy boot where the
// seed's transcripts print nothing: its start, after masking.
type Addition struct {
	Prefix string
	Why    string
}

// Additions are the only lines a healthy first or subsequent boot may print
// besides the seed's. Failures (refusals, timeouts, retries, NVS errors)
// print more lines, and are not part of the seed's transcripts.
var Additions = []Addition{
	{"Reset reason: ", "inside the banner: POWERON, SW (after an update or reboot RPC), PANIC, ..."},
	{"[WIFI] Connecting...", "the seed's transcripts skip Wi-Fi"},
	{"[WIFI] Connected to ", "SSID, IP and RSSI of the link"},
	{"[MQTT] Connecting to ThingsBoard...", "the connect attempt with the token, before its outcome"},
}

// IsAddition reports whether a masked line is one of the Additions.
func IsAddition(line string) bool {
	for _, a := range Additions {
		if strings.HasPrefix(line, a.Prefix) {
			return true
		}
	}
	return false
}

// Mask holds the values a transcript replaces with the seed's placeholders.
type Mask struct {
	MAC, Token, Server string
}

var (
	ipRE   = regexp.MustCompile(`IP: [0-9.]+`)
	rssiRE = regexp.MustCompile(`RSSI: -?[0-9]+ dBm`)
)

// Apply masks one line: the device's own values become the seed's
// placeholders (so a wrong token in the log stays visible as itself), and
// the Wi-Fi link's address and RSSI become <ip> and <rssi>.
func (m Mask) Apply(line string) string {
	for _, r := range []struct{ v, p string }{{m.Token, MaskToken}, {m.MAC, MaskMAC}, {m.Server, MaskServer}} {
		if r.v != "" {
			line = strings.ReplaceAll(line, r.v, r.p)
		}
	}
	line = ipRE.ReplaceAllString(line, "IP: <ip>")
	return rssiRE.ReplaceAllString(line, "RSSI: <rssi> dBm")
}

// Compare checks a masked log against the seed's lines: without the
// Additions it must equal want exactly, line for line.
func Compare(log, want []string) error {
	var got []string
	for _, l := range log {
		if !IsAddition(l) {
			got = append(got, l)
		}
	}
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			return fmt.Errorf("line %d: missing %q (the log ends)\n%s", i+1, want[i], strings.Join(log, "\n"))
		case i >= len(want):
			return fmt.Errorf("line %d: %q after the seed's last line\n%s", i+1, got[i], strings.Join(log, "\n"))
		case got[i] != want[i]:
			return fmt.Errorf("line %d: got %q; want %q\n%s", i+1, got[i], want[i], strings.Join(log, "\n"))
		}
	}
	return nil
}
