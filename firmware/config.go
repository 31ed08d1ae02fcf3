//go:build go1.23

package firmware

import (
	"errors"
	"strconv"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// MarkValidPolicy says when a new image confirms itself after an update.
type MarkValidPolicy uint8

const (
	// MarkValidAtBoot confirms before anything else runs, as stock Arduino's
	// initArduino() does: rollback then only saves crashes before setup().
	MarkValidAtBoot MarkValidPolicy = iota
	// MarkValidAfterConnect confirms only once the new image has connected to
	// ThingsBoard (verifyRollbackLater() overridden): an image that cannot
	// connect is rolled back at the next reset.
	MarkValidAfterConnect
)

// String names the policy as configuration files spell it.
func (p MarkValidPolicy) String() string {
	if p == MarkValidAfterConnect {
		return "after-connect"
	}
	return "at-boot"
}

// Config is the firmware's compile-time configuration, with the seed's values
// as defaults (see Defaults).
type Config struct {
	Title   string // the factory image's title (CURRENT_FIRMWARE_TITLE)
	Version string // the factory image's version

	// Server names the ThingsBoard host as the seed's TB_SERVER does; the
	// firmware only prints it ("[PROVISION] Connecting to: <Server>"): where
	// the device really connects is the Session port's business.
	Server string

	ProvisionKey    string
	ProvisionSecret string
	// Credentials asks for ACCESS_TOKEN (server-generated token) or MQTT_BASIC
	// (the device picks client id, user name and password).
	Credentials tbapi.CredentialsType

	TelemetryInterval time.Duration
	QoS               byte // of every publish and subscription (ThingsBoard grants at most 1)

	ChunkSize    int // bytes per OTA chunk; 0 asks for the whole file at once
	ChunkTimeout time.Duration
	ChunkRetries int // per chunk; the count resets after each good chunk

	WiFiTimeout      time.Duration
	ConnectTimeout   time.Duration // CONNECT to CONNACK
	ProvisionTimeout time.Duration // request to response
	BackoffMin       time.Duration
	BackoffMax       time.Duration
	// RefusalsBeforeReprovision is how many "not authorized" refusals in a row
	// make the device erase its token and provision again.
	RefusalsBeforeReprovision int
	MarkValid                 MarkValidPolicy
	// WriteAheadToken makes the device choose its access token and keep it
	// in NVS before it asks to be provisioned (credentialsType ACCESS_TOKEN
	// with that token). If provisioning then answers FAILURE for its own
	// name (the server created the device but the answer, or the write of
	// the token, was lost to a power cut), the device tries that token and
	// is online again instead of stranded. Off by default: the seed lets the
	// server generate the token.
	WriteAheadToken bool
	// AcceptOtherTitle downloads an assignment whose fw_title differs from
	// the running image's title. Off by default, as in the Arduino SDK
	// 0.14.0, which reports such an assignment FAILED ("Received firmware
	// title (X) is different and not meant for this device (Y)"): a title
	// names a kind of device, and its image may not suit this hardware.
	// On, a fleet can move to a renamed product line.
	AcceptOtherTitle bool
	// RestartAckTimeout bounds the wait for the UPDATING report (or an RPC
	// answer) to be acknowledged before restarting.
	RestartAckTimeout time.Duration

	NVSNamespace string
}

// Defaults returns the seed firmware's configuration.
func Defaults() Config {
	return Config{
		Title:                     "CORE_ESP32",
		Version:                   "1.0.0",
		Credentials:               tbapi.CredAccessToken,
		TelemetryInterval:         5 * time.Second,
		QoS:                       1,
		ChunkSize:                 4096,
		ChunkTimeout:              5 * time.Second,
		ChunkRetries:              12,
		WiFiTimeout:               20 * time.Second,
		ConnectTimeout:            10 * time.Second,
		ProvisionTimeout:          10 * time.Second,
		BackoffMin:                time.Second,
		BackoffMax:                60 * time.Second,
		RefusalsBeforeReprovision: 3,
		MarkValid:                 MarkValidAtBoot,
		RestartAckTimeout:         2 * time.Second,
		NVSNamespace:              "tb",
	}
}

// server is Server for the serial log, which must not show an empty name.
func (c *Config) server() string {
	if c.Server == "" {
		return "(server not configured)"
	}
	return c.Server
}

// NVS keys (at most 15 characters, as NVS requires).
const (
	nvsKeyToken      = "token"
	nvsKeyTokenAhead = "token_ahead" // the token a write-ahead provisioning asked for
	nvsKeyClientID   = "mqtt_client"
	nvsKeyMQTTUser   = "mqtt_user"
	nvsKeyMQTTPass   = "mqtt_pass"
	maxNVSNameLength = 15
)

// Validate reports every bad field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, why string) { errs = append(errs, errors.New("config: "+field+": "+why)) }
	if c.Title == "" {
		bad("Title", "must not be empty")
	}
	if c.Version == "" {
		bad("Version", "must not be empty")
	}
	if c.Credentials != tbapi.CredAccessToken && c.Credentials != tbapi.CredMQTTBasic {
		bad("Credentials", "must be ACCESS_TOKEN or MQTT_BASIC, got "+strconv.Quote(string(c.Credentials)))
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"TelemetryInterval", c.TelemetryInterval}, {"ChunkTimeout", c.ChunkTimeout},
		{"WiFiTimeout", c.WiFiTimeout}, {"ConnectTimeout", c.ConnectTimeout},
		{"ProvisionTimeout", c.ProvisionTimeout}, {"BackoffMin", c.BackoffMin},
		{"BackoffMax", c.BackoffMax}, {"RestartAckTimeout", c.RestartAckTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be positive, got "+p.d.String())
		}
	}
	if c.BackoffMax < c.BackoffMin {
		bad("BackoffMax", "must not be below BackoffMin ("+c.BackoffMin.String()+")")
	}
	if c.QoS > 1 {
		bad("QoS", "must be 0 or 1 (ThingsBoard supports no QoS 2), got "+strconv.Itoa(int(c.QoS)))
	}
	if c.ChunkSize < 0 || c.ChunkSize > tbapi.MaxChunkSize {
		bad("ChunkSize", "must be 0 (whole file) to 65536, got "+strconv.Itoa(c.ChunkSize))
	}
	if c.ChunkRetries < 0 {
		bad("ChunkRetries", "must not be negative")
	}
	if c.RefusalsBeforeReprovision < 1 {
		bad("RefusalsBeforeReprovision", "must be at least 1")
	}
	if c.MarkValid > MarkValidAfterConnect {
		bad("MarkValid", "unknown policy "+strconv.Itoa(int(c.MarkValid)))
	}
	if c.NVSNamespace == "" || len(c.NVSNamespace) > maxNVSNameLength {
		bad("NVSNamespace", "must be 1 to 15 characters, got "+strconv.Quote(c.NVSNamespace))
	}
	return errors.Join(errs...)
}
