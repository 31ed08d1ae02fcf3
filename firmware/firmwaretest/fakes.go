//go:build go1.23

package firmwaretest

import (
	"errors"
	"strings"
	"time"

	"github.com/tbsim/tbsim/firmware"
)

// ManualClock is a clock that moves only when told.
type ManualClock struct{ T time.Time }

var _ firmware.Clock = (*ManualClock)(nil)

// NewClock starts at a fixed instant (2026-01-01 UTC) so logs are
// reproducible. time.Unix, not time.Date: Date links the local time zone
// code, which on TinyGo compares interfaces and so links reflect.
func NewClock() *ManualClock { return &ManualClock{T: time.Unix(1767225600, 0).UTC()} }

// Now returns the current fake time.
func (c *ManualClock) Now() time.Time { return c.T }

// Advance moves the clock forward.
func (c *ManualClock) Advance(d time.Duration) { c.T = c.T.Add(d) }

// Errors of MemNVS, named after ESP-IDF's.
var (
	ErrKeyTooLong   = errors.New("ESP_ERR_NVS_KEY_TOO_LONG")
	ErrValueTooLong = errors.New("ESP_ERR_NVS_VALUE_TOO_LONG")
	ErrInjected     = errors.New("injected failure")
)

// MemNVS is an in-memory NVS enforcing ESP-IDF's limits: namespace and key of
// at most 15 characters, strings of at most 4000 bytes with the NUL.
type MemNVS struct {
	Data      map[string]string // "namespace/key" -> value
	Writes    int
	FailWrite bool // every SetString fails with ErrInjected
}

var _ firmware.NVS = (*MemNVS)(nil)

// NewNVS returns an empty store.
func NewNVS() *MemNVS { return &MemNVS{Data: map[string]string{}} }

func checkNames(ns, key string) error {
	if len(ns) == 0 || len(ns) > 15 || len(key) == 0 || len(key) > 15 {
		return ErrKeyTooLong
	}
	return nil
}

// GetString returns firmware.ErrNotFound for a missing key.
func (n *MemNVS) GetString(ns, key string) (string, error) {
	if err := checkNames(ns, key); err != nil {
		return "", err
	}
	v, ok := n.Data[ns+"/"+key]
	if !ok {
		return "", firmware.ErrNotFound
	}
	return v, nil
}

// SetString stores a value.
func (n *MemNVS) SetString(ns, key, value string) error {
	if err := checkNames(ns, key); err != nil {
		return err
	}
	if len(value)+1 > 4000 {
		return ErrValueTooLong
	}
	if n.FailWrite {
		return ErrInjected
	}
	n.Writes++
	n.Data[ns+"/"+key] = value
	return nil
}

// Erase removes a key.
func (n *MemNVS) Erase(ns, key string) error {
	if err := checkNames(ns, key); err != nil {
		return err
	}
	delete(n.Data, ns+"/"+key)
	return nil
}

// Message is one publish the session saw.
type Message struct {
	Topic   string
	Payload string
	QoS     byte
	ID      uint32
}

// ScriptedSession records what the machine asks of its MQTT session; the test
// plays the server by delivering events through the Rig.
type ScriptedSession struct {
	Connects      []firmware.Credentials
	Disconnects   int
	Subscriptions []string
	Published     []Message
	Connected     bool
	ConnectErr    error
	PublishErr    error
	nextID        uint32
}

var _ firmware.Session = (*ScriptedSession)(nil)

// Connect records the attempt; the test answers with EventConnected or EventRefused.
func (s *ScriptedSession) Connect(c firmware.Credentials) error {
	if s.ConnectErr != nil {
		return s.ConnectErr
	}
	s.Connects = append(s.Connects, c)
	return nil
}

// Disconnect records the call.
func (s *ScriptedSession) Disconnect() {
	s.Disconnects++
	s.Connected = false
}

// Publish records the message and returns a fresh id.
func (s *ScriptedSession) Publish(topic string, payload []byte, qos byte) (uint32, error) {
	if s.PublishErr != nil {
		return 0, s.PublishErr
	}
	s.nextID++
	s.Published = append(s.Published, Message{Topic: topic, Payload: string(payload), QoS: qos, ID: s.nextID})
	return s.nextID, nil
}

// Subscribe records the filter.
func (s *ScriptedSession) Subscribe(filter string, qos byte) error {
	s.Subscriptions = append(s.Subscriptions, filter)
	return nil
}

// On returns the messages published to topics with the given prefix.
func (s *ScriptedSession) On(prefix string) []Message {
	var out []Message
	for _, m := range s.Published {
		if strings.HasPrefix(m.Topic, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// Last returns the last message published to a topic with the prefix.
func (s *ScriptedSession) Last(prefix string) (Message, bool) {
	ms := s.On(prefix)
	if len(ms) == 0 {
		return Message{}, false
	}
	return ms[len(ms)-1], true
}

// LastConnect returns the credentials of the latest Connect.
func (s *ScriptedSession) LastConnect() firmware.Credentials {
	if len(s.Connects) == 0 {
		return firmware.Credentials{}
	}
	return s.Connects[len(s.Connects)-1]
}

// FakeWiFi is a station with fixed values; Connect only counts.
type FakeWiFi struct {
	Mac      string
	Values   firmware.WiFiInfo
	Connects int
}

var _ firmware.WiFi = (*FakeWiFi)(nil)

// NewWiFi returns a station with plausible values.
func NewWiFi() *FakeWiFi {
	return &FakeWiFi{Mac: "24:0A:C4:12:34:56", Values: firmware.WiFiInfo{
		SSID: "tbsim", BSSID: "24:0A:C4:AA:BB:CC", Channel: 6, RSSI: -61, LocalIP: "10.0.1.2",
	}}
}

// Connect counts attempts; the test answers with EventWiFiUp or EventWiFiDown.
func (w *FakeWiFi) Connect() { w.Connects++ }

// MAC returns the station MAC.
func (w *FakeWiFi) MAC() string { return w.Mac }

// Info returns the fixed values.
func (w *FakeWiFi) Info() firmware.WiFiInfo { return w.Values }

// FixedSensor always reads the same temperature.
type FixedSensor struct{ C float64 }

// Temperature returns C.
func (s *FixedSensor) Temperature() float64 { return s.C }

// SeqRand returns a fixed value, or a xorshift sequence when Seq is set.
type SeqRand struct {
	Value uint32
	Seq   uint32
}

// Uint32 returns the next number.
func (r *SeqRand) Uint32() uint32 {
	if r.Seq == 0 {
		return r.Value
	}
	r.Seq ^= r.Seq << 13
	r.Seq ^= r.Seq >> 17
	r.Seq ^= r.Seq << 5
	return r.Seq
}

// Console keeps every line printed.
type Console struct{ Lines []string }

// Println records a line.
func (c *Console) Println(line string) { c.Lines = append(c.Lines, line) }

// Has reports whether a line containing s was printed.
func (c *Console) Has(s string) bool { return c.Index(s) >= 0 }

// Index returns the index of the first line containing s, or -1.
func (c *Console) Index(s string) int {
	for i, l := range c.Lines {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

// Count returns how many lines contain s.
func (c *Console) Count(s string) int {
	n := 0
	for _, l := range c.Lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}
