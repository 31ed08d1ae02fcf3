//go:build go1.23

package firmwaretest

import (
	"time"

	"github.com/tbsim/tbsim/firmware"
)

// Rig wires a Machine to the fakes and keeps its deadline, so a test moves
// time with Advance and plays the server with Deliver.
type Rig struct {
	Clock   *ManualClock
	NVS     *MemNVS
	Session *ScriptedSession
	OTA     *MemOTA
	WiFi    *FakeWiFi
	Sensor  *FixedSensor
	Rand    *SeqRand
	Console *Console
	M       *firmware.Machine
	Cfg     firmware.Config

	next     time.Time
	restarts int
}

// NewRig builds a rig with cfg; it panics on an invalid config (a test bug).
func NewRig(cfg firmware.Config) *Rig {
	r := &Rig{
		Clock: NewClock(), NVS: NewNVS(), Session: &ScriptedSession{},
		OTA: &MemOTA{SlotSize: 0x330000}, WiFi: NewWiFi(), Sensor: &FixedSensor{C: 15.5},
		Rand: &SeqRand{Value: 0}, Console: &Console{}, Cfg: cfg,
	}
	m, err := firmware.New(cfg, firmware.Ports{
		Clock: r.Clock, NVS: r.NVS, Session: r.Session, OTA: r.OTA,
		WiFi: r.WiFi, Sensor: r.Sensor, Rand: r.Rand, Console: r.Console,
	})
	if err != nil {
		panic(err)
	}
	r.M = m
	return r
}

// Deliver hands an event to the machine and, if the machine restarted the
// device, reboots it (pending image, EventBoot with ResetSW).
func (r *Rig) Deliver(ev firmware.Event) {
	r.next = r.M.Handle(ev)
	for r.OTA.Restarts > r.restarts {
		r.restarts = r.OTA.Restarts
		r.Session.Connected = false
		r.OTA.Reboot()
		r.next = r.M.Handle(firmware.Event{Kind: firmware.EventBoot, Reset: firmware.ResetSW})
	}
}

// Next returns the machine's current deadline.
func (r *Rig) Next() time.Time { return r.next }

// UntilNext returns how long until the machine's current deadline.
func (r *Rig) UntilNext() time.Duration { return r.next.Sub(r.Clock.T) }

// Advance moves time forward by d, firing every deadline on the way.
func (r *Rig) Advance(d time.Duration) {
	end := r.Clock.T.Add(d)
	for !r.next.IsZero() && !r.next.After(end) {
		if r.next.After(r.Clock.T) {
			r.Clock.T = r.next
		}
		r.Deliver(firmware.Event{Kind: firmware.EventTick})
	}
	r.Clock.T = end
}

// Boot powers the device on.
func (r *Rig) Boot() {
	r.Deliver(firmware.Event{Kind: firmware.EventBoot, Reset: firmware.ResetPowerOn})
}

// WiFiUp reports the station connected.
func (r *Rig) WiFiUp() { r.Deliver(firmware.Event{Kind: firmware.EventWiFiUp}) }

// Connected answers the pending Connect with CONNACK 0.
func (r *Rig) Connected() {
	r.Session.Connected = true
	r.Deliver(firmware.Event{Kind: firmware.EventConnected})
}

// Refused answers the pending Connect with a CONNACK code.
func (r *Rig) Refused(code byte) { r.Deliver(firmware.Event{Kind: firmware.EventRefused, Code: code}) }

// Lost drops the connection.
func (r *Rig) Lost(reason string) {
	r.Session.Connected = false
	r.Deliver(firmware.Event{Kind: firmware.EventConnectionLost, Reason: reason})
}

// Message delivers a PUBLISH from the server.
func (r *Rig) Message(topic, payload string) {
	r.Deliver(firmware.Event{Kind: firmware.EventMessage, Topic: topic, Payload: []byte(payload)})
}

// Ack acknowledges a publish.
func (r *Rig) Ack(id uint32) { r.Deliver(firmware.Event{Kind: firmware.EventPublished, ID: id}) }
