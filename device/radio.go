package device

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tbsim/tbsim/firmware"
)

// WiFiConfig describes the simulated network.
type WiFiConfig struct {
	SSID       string
	ConnectMin time.Duration // connect time is drawn from [ConnectMin, ConnectMax]
	ConnectMax time.Duration
	FailRate   float64 // chance a connect attempt fails (NO_AP_FOUND, AUTH_FAIL...)
	Seed       uint64  // fleet seed: picks the subnet and access points
}

func (c *WiFiConfig) ensureDefaults() {
	if c.SSID == "" {
		c.SSID = "tbsim"
	}
	if c.ConnectMax == 0 && c.ConnectMin == 0 {
		c.ConnectMin, c.ConnectMax = time.Second, 5*time.Second
	}
	if c.ConnectMax < c.ConnectMin {
		c.ConnectMax = c.ConnectMin
	}
}

// devicesPerAP groups a fleet onto access points, each on one channel.
const devicesPerAP = 50

// Radio is one device's view of the Wi-Fi: the access point it joins (an
// Espressif-style BSSID on a channel 1-11), its address in a private /16, an
// RSSI that drifts slowly between -30 and -90 dBm, and the room temperature
// its sensor reads. Not safe for concurrent use: it belongs to a Board.
type Radio struct {
	cfg   WiFiConfig
	rng   *rand.Rand
	bssid MAC
	bss   string // bssid formatted once: Info runs for every telemetry message
	ch    int
	ip    string
	rssi  float64
	temp  float64
	down  time.Time // connects fail until then (a dropped link)
}

var wifiFailReasons = []string{"NO_AP_FOUND", "AUTH_FAIL", "HANDSHAKE_TIMEOUT", "ASSOC_FAIL"}

// NewRadio places device id on the network.
func NewRadio(cfg WiFiConfig, id Identity, rng *rand.Rand) *Radio {
	cfg.ensureDefaults()
	ap := NewIdentity(cfg.Seed^0xA5A5, id.Index/devicesPerAP)
	host := id.Index + 2 // .0.0 network, .0.1 gateway
	return &Radio{
		cfg:   cfg,
		rng:   rng,
		bssid: ap.SoftAP(),
		ch:    1 + int(id.Index/devicesPerAP)%11,
		// 10.X.0.0/16 per fleet seed; a fleet beyond 65,534 devices moves on to the next /16.
		ip:   fmt.Sprintf("10.%d.%d.%d", (uint32(cfg.Seed)+host>>16)%256, host>>8&0xFF, host&0xFF),
		rssi: -45 - 40*rng.Float64(),
		temp: 10 + 10*rng.Float64(),
	}
}

// Attempt draws the outcome of a connect attempt started at now: how long it
// takes and, for a failure, the disconnect reason.
func (r *Radio) Attempt(now time.Time) (time.Duration, string) {
	span := r.cfg.ConnectMax - r.cfg.ConnectMin
	d := r.cfg.ConnectMin
	if span > 0 {
		d += time.Duration(r.rng.Int64N(int64(span)))
	}
	if now.Add(d).Before(r.down) {
		return d, "NO_AP_FOUND"
	}
	if r.rng.Float64() < r.cfg.FailRate {
		return d, wifiFailReasons[r.rng.IntN(len(wifiFailReasons))]
	}
	return d, ""
}

// DropUntil makes the access point unreachable until t.
func (r *Radio) DropUntil(t time.Time) { r.down = t }

// Info reports the link, moving the RSSI one small random step.
func (r *Radio) Info() firmware.WiFiInfo {
	r.rssi = min(-30, max(-90, r.rssi+r.rng.NormFloat64()))
	if r.bss == "" {
		r.bss = r.bssid.String()
	}
	return firmware.WiFiInfo{SSID: r.cfg.SSID, BSSID: r.bss, Channel: r.ch, RSSI: int(r.rssi), LocalIP: r.ip}
}

// Temperature is the sensor port: a slow walk within 10-20 °C.
func (r *Radio) Temperature() float64 {
	r.temp = min(20, max(10, r.temp+0.1*r.rng.NormFloat64()))
	return r.temp
}
