//go:build go1.23

package firmware

import "strconv"

// EventKind says what happened.
type EventKind uint8

// Events the machine handles.
const (
	EventBoot           EventKind = iota // power-on or reset; Reset says why
	EventTick                            // a deadline the machine returned was reached
	EventWiFiUp                          // station connected and got an address
	EventWiFiDown                        // connect attempt failed or link dropped
	EventConnected                       // CONNACK 0
	EventRefused                         // CONNACK with Code != 0
	EventConnectionLost                  // the connection dropped; Reason says why
	EventMessage                         // PUBLISH received on Topic
	EventPublished                       // publish ID acknowledged (PUBACK, or sent for QoS 0)
	EventEraseToken                      // force re-provisioning: erase the stored token
)

var eventNames = [...]string{"boot", "tick", "wifi-up", "wifi-down", "connected", "refused", "connection-lost", "message", "published", "erase-token"}

// String returns the event's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one input to the machine.
type Event struct {
	Kind    EventKind
	Reset   ResetReason // EventBoot
	Code    byte        // EventRefused: the CONNACK return code
	Reason  string      // EventConnectionLost, EventWiFiDown: the cause, for the log
	Link    LinkError   // EventConnectionLost: the cause, classified
	Topic   string      // EventMessage
	Payload []byte      // EventMessage
	ID      uint32      // EventPublished
}

// ResetReason is esp_reset_reason() (ESP-IDF esp_system.h).
type ResetReason uint8

// Reset reasons, numbered as in ESP-IDF.
const (
	ResetUnknown ResetReason = iota
	ResetPowerOn
	ResetExt
	ResetSW
	ResetPanic
	ResetIntWDT
	ResetTaskWDT
	ResetWDT
	ResetDeepSleep
	ResetBrownout
	ResetSDIO
	ResetUSB
	ResetJTAG
	ResetEFuse
	ResetPwrGlitch
	ResetCPULockup
)

var resetNames = [...]string{"UNKNOWN", "POWERON", "EXT", "SW", "PANIC", "INT_WDT", "TASK_WDT", "WDT", "DEEPSLEEP", "BROWNOUT", "SDIO", "USB", "JTAG", "EFUSE", "PWR_GLITCH", "CPU_LOCKUP"}

// String returns ESP-IDF's name without the ESP_RST_ prefix.
func (r ResetReason) String() string {
	if int(r) < len(resetNames) {
		return resetNames[r]
	}
	return "reset(" + strconv.Itoa(int(r)) + ")"
}

// CONNACK return codes of MQTT 3.1.1 that the machine tells apart.
const (
	ConnackBadCredentials byte = 4
	ConnackNotAuthorized  byte = 5
)
