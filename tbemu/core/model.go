package core

import (
	"encoding/hex"
	"errors"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// Provisioning strategies of a device profile (ThingsBoard DeviceProfileProvisionType).
const (
	AllowCreateNewDevices      = "ALLOW_CREATE_NEW_DEVICES"
	CheckPreProvisionedDevices = "CHECK_PRE_PROVISIONED_DEVICES"
	ProvisionDisabled          = "DISABLED"
)

// Profile is a device profile.
type Profile struct {
	ID              string
	Name            string
	Default         bool
	ProvisionType   string // one of the strategies above
	ProvisionKey    string
	ProvisionSecret string
	FirmwareID      string // "" when none is assigned
	// TransportLimits are the rate limits of the profile's devices, in
	// ThingsBoard's terms (see TransportLimits; Limits gives those in force).
	TransportLimits TransportLimits
	// RateLimit is a shorthand: r messages per second per device (0: off),
	// that is "r:1" for TransportLimits.Messages and TelemetryMessages where
	// those are empty. Exceeding a limit closes the session, as
	// ThingsBoard's transport rate limits do.
	RateLimit   float64
	CreatedTime int64
}

// Credentials are a device's credentials.
type Credentials struct {
	Type     tbapi.CredentialsType
	Token    string // ACCESS_TOKEN
	ClientID string // MQTT_BASIC
	UserName string
	Password string
}

// Device is a device entity.
type Device struct {
	ID          string
	Name        string
	Type        string // the profile name
	ProfileID   string
	FirmwareID  string // device-level assignment; wins over the profile's
	Credentials Credentials
	CreatedTime int64
}

// Package is an OTA package (firmware) with its data.
type Package struct {
	ID          string
	Title       string
	Version     string
	Type        string // FIRMWARE
	ProfileID   string
	Tag         string
	Algorithm   string // ThingsBoard's name, e.g. SHA256
	Checksum    string // ThingsBoard's encoding (tbapi.Checksum.Hex)
	Size        int64
	FileName    string
	ContentType string
	HasData     bool
	DataSHA256  string // key of the stored data, shared by identical uploads
	CreatedTime int64
}

// TsValue is a value with its timestamp in milliseconds.
type TsValue struct {
	Ts    int64
	Value tbapi.Value
}

// Attribute scopes.
const (
	ClientScope = "CLIENT_SCOPE"
	SharedScope = "SHARED_SCOPE"
	ServerScope = "SERVER_SCOPE"
)

// MaxPacketSize is ThingsBoard's NETTY_MAX_PAYLOAD_SIZE; adapters enforce it.
const MaxPacketSize = 65536

// Errors of the Go API; REST maps them to status codes.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("already exists")
	ErrInvalid     = errors.New("invalid argument")
	ErrNotAssigned = errors.New("no firmware assigned")
	ErrOffline     = errors.New("device is not connected or not subscribed")
	ErrTimeout     = errors.New("timeout")
	ErrClosed      = errors.New("emulator closed")
	ErrTooLarge    = errors.New("too large")
)

// kindError is an error of one of the kinds above (errors.Is matches it)
// whose text needs no prefix.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n characters drawn from Options.Rand, as ThingsBoard
// generates tokens and names (StringUtils.randomAlphanumeric).
func (c *Core) RandomString(n int) string {
	b := make([]byte, n)
	c.rndMu.Lock()
	for i := range b {
		b[i] = alphanumeric[c.rnd.IntN(len(alphanumeric))]
	}
	c.rndMu.Unlock()
	return string(b)
}

// newUUID returns a random version-4 UUID, as ThingsBoard ids are.
func (c *Core) newUUID() string {
	var b [16]byte
	c.rndMu.Lock()
	for i := range b {
		b[i] = byte(c.rnd.Uint32())
	}
	c.rndMu.Unlock()
	b[6] = b[6]&0x0F | 0x40
	b[8] = b[8]&0x3F | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
