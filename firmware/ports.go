//go:build go1.23

package firmware

import (
	"errors"
	"time"
)

// Clock tells the time. The machine only compares instants it read from it.
type Clock interface {
	Now() time.Time
}

// ErrNotFound is what NVS.GetString returns for a missing key
// (ESP_ERR_NVS_NOT_FOUND). Implementations wrap or return it.
var ErrNotFound error = &notFoundError{}

// notFoundError has a type of its own so that isNotFound can recognise it
// with a type assertion: comparing interfaces (err == ErrNotFound, or
// errors.Is) links TinyGo's reflect, about 6 KB of flash.
type notFoundError struct{}

func (*notFoundError) Error() string { return "nvs: not found" }

// isNotFound is errors.Is(err, ErrNotFound) without comparing interfaces.
func isNotFound(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *notFoundError:
			return true
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if isNotFound(inner) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// NVS is non-volatile storage with ESP-IDF's semantics: namespaces and keys of
// at most 15 characters, strings of at most 4000 bytes including the NUL, and
// each write atomic and immediately durable.
type NVS interface {
	GetString(namespace, key string) (string, error)
	SetString(namespace, key, value string) error
	// Erase removes a key; erasing a missing key is not an error.
	Erase(namespace, key string) error
}

// Credentials authenticate one MQTT connection.
type Credentials struct {
	ClientID string
	Username string
	Password string
}

// Session is the MQTT client (protocol 3.1.1). Messages of one connection are
// delivered (EventMessage) in the order the server sent them. Its methods return at once:
// the outcome of Connect arrives later as EventConnected, EventRefused or
// EventConnectionLost, and an acknowledged publish as EventPublished. After
// Disconnect (or a Connect that replaces a connection) no event of the old
// connection may be delivered.
type Session interface {
	Connect(c Credentials) error
	Disconnect()
	// Publish sends a message and returns an id that EventPublished will carry.
	// The payload belongs to the caller again when Publish returns: the
	// machine reuses its buffers, so a session that sends later (or resends a
	// QoS 1 message) keeps its own copy.
	Publish(topic string, payload []byte, qos byte) (id uint32, err error)
	Subscribe(filter string, qos byte) error
}

// Image describes the running application image.
type Image struct {
	Title   string // empty: the factory image, described by Config.Title
	Version string
	// PendingVerify: first boot of a new image that nobody confirmed yet
	// (otadata state PENDING_VERIFY with rollback enabled).
	PendingVerify bool
}

// OTA writes a new image into the inactive slot and switches to it, like
// Arduino's Update plus esp_ota_* calls.
type OTA interface {
	// Begin starts an update of size bytes; it fails when the image cannot fit
	// or the running image is still unconfirmed.
	Begin(size int) error
	Write(p []byte) error
	// End finishes writing and validates the image (magic, chip, checksum, SHA-256).
	End() error
	// Abort discards a started update; it is a no-op when none is running.
	Abort()
	// SetBoot makes the written image boot next. Title and version are those
	// of the ThingsBoard assignment: Arduino images carry the IDF library's
	// descriptor, not the sketch's version.
	SetBoot(title, version string) error
	// MarkValid confirms the running image (esp_ota_mark_app_valid_cancel_rollback).
	MarkValid() error
	Running() Image
	// Restart reboots the device (esp_restart): the caller's loop stops the
	// machine and later delivers EventBoot with ResetSW.
	Restart()
}

// WiFiInfo is what WiFi.RSSI(), channel(), BSSIDstr(), localIP() and SSID() report.
type WiFiInfo struct {
	SSID    string
	BSSID   string // uppercase with colons
	Channel int
	RSSI    int // dBm
	LocalIP string
}

// WiFi is the station interface. Connect starts an attempt whose outcome is
// EventWiFiUp or EventWiFiDown.
type WiFi interface {
	Connect()
	MAC() string // station MAC, uppercase with colons
	Info() WiFiInfo
}

// Sensor reads the temperature in °C.
type Sensor interface {
	Temperature() float64
}

// Rand is the device's random source (esp_random).
type Rand interface {
	Uint32() uint32
}

// Console is the serial port: one call per line, without the newline.
type Console interface {
	Println(line string)
}

// Ports are everything the machine talks to. Console may be nil.
type Ports struct {
	Clock   Clock
	NVS     NVS
	Session Session
	OTA     OTA
	WiFi    WiFi
	Sensor  Sensor
	Rand    Rand
	Console Console
}

func (p Ports) validate() error {
	var errs []error
	if p.Clock == nil {
		errs = append(errs, errors.New("ports: Clock is nil"))
	}
	if p.NVS == nil {
		errs = append(errs, errors.New("ports: NVS is nil"))
	}
	if p.Session == nil {
		errs = append(errs, errors.New("ports: Session is nil"))
	}
	if p.OTA == nil {
		errs = append(errs, errors.New("ports: OTA is nil"))
	}
	if p.WiFi == nil {
		errs = append(errs, errors.New("ports: WiFi is nil"))
	}
	if p.Sensor == nil {
		errs = append(errs, errors.New("ports: Sensor is nil"))
	}
	if p.Rand == nil {
		errs = append(errs, errors.New("ports: Rand is nil"))
	}
	return errors.Join(errs...)
}
