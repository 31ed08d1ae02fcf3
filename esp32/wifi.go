//go:build tinygo

package esp32

import (
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/mqtt"
)

// NoWiFi is the station of a board without a network driver: Connect starts
// nothing, so the firmware's Wi-Fi timeout fires and it retries with backoff,
// as a real board does with no access point in range.
//
// This is the seam for the network. On a real ESP32-C3 or S3 the driver is
// TinyGo's espradio (Espressif's Wi-Fi blobs with the lneto stack, TinyGo
// 0.40 and later), which TinyGo 0.33 cannot build: a WiFi implementation
// over it reports EventWiFiUp/Down to the main loop's queue and gives the
// Session a TCP stream. In the emulator the network would be the OpenCores
// Ethernet MAC that qemu-esp32c3 --nic adds, with a small IPv4 stack.
type NoWiFi struct{ Mac string }

var _ firmware.WiFi = (*NoWiFi)(nil)

// Connect does nothing: no link will come up.
func (w *NoWiFi) Connect() {}

// MAC returns the station MAC.
func (w *NoWiFi) MAC() string { return w.Mac }

// Info is empty: not connected (WiFi.RSSI() reads 0 then, too).
func (w *NoWiFi) Info() firmware.WiFiInfo { return firmware.WiFiInfo{} }

// NoNetwork is the MQTT client's dialer on a board without a network driver:
// every dial fails, which the firmware reports and retries.
type NoNetwork struct{}

var _ mqtt.Dialer = NoNetwork{}

// Dial fails: there is no network.
func (NoNetwork) Dial() (mqtt.Conn, error) { return nil, errOffline }

var errOffline = offlineError{}

type offlineError struct{}

func (offlineError) Error() string { return "no network" }
