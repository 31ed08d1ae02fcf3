//go:build tinygo

// Command fw is the tbsim firmware on an ESP32-C3: the main loop that feeds
// the firmware state machine its events (boot with the reset reason, then
// deadlines) and sleeps until its next deadline. Build it with
//
//	esp32/build.sh fw.bin
//
// and boot fw.bin at offset 0 of the flash (qemu-esp32c3, or esptool.py
// write_flash 0x0 on a board).
package main

import (
	"strconv"
	"time"

	"github.com/tbsim/tbsim/esp32"
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/mqtt"
)

// Set with -ldflags "-X main.provisionKey=... -X main.provisionSecret=...".
var (
	provisionKey    = "tbsim-provision-key"
	provisionSecret = "tbsim-provision-secret"
)

// idle is the longest the loop sleeps without looking at its ports; with a
// network card, netIdle.
const (
	idle    = 100 * time.Millisecond
	netIdle = 2 * time.Millisecond
)

func main() {
	time.Sleep(10 * time.Millisecond) // let UART0 settle after the ROM's output
	con := esp32.Console{}
	store, erased, err := esp32.OpenNVS(esp32.Layout.NVS)
	if err != nil {
		con.Println("[ESP32] NVS unusable: " + err.Error())
		halt()
	}
	if erased {
		con.Println("[ESP32] NVS partition was unreadable and has been erased")
	}
	countBoot(con, store)

	cfg := firmware.Defaults()
	cfg.ProvisionKey, cfg.ProvisionSecret = provisionKey, provisionSecret
	restart := false
	ota := esp32.NewOTA()
	ota.RestartHook = func() { restart = true }
	// The network: the emulator's Ethernet when there is one, else none (the
	// seam where a Wi-Fi driver goes).
	var wifi firmware.WiFi = &esp32.NoWiFi{Mac: esp32.MAC()}
	var dialer mqtt.Dialer = esp32.NoNetwork{}
	ip, port := broker(store)
	cfg.Server = formatIP(ip) // the seed prints its TB_SERVER, a host without the port
	netw := esp32.NewNetwork(ethMAC(), ip, port)
	if netw != nil {
		wifi, dialer = netw, netw
		con.Println("[ESP32] Ethernet up (10.0.2.15), broker " + formatAddr(ip, port))
	}
	session := mqtt.New(dialer, esp32.Clock{}, mqtt.Options{})
	m, err := firmware.New(cfg, firmware.Ports{
		Clock: esp32.Clock{}, NVS: store, Session: session, OTA: ota,
		WiFi: wifi, Sensor: sensor{}, Rand: esp32.Rand{}, Console: con,
	})
	if err != nil {
		con.Println("[ESP32] " + err.Error())
		halt()
	}
	next := m.Handle(firmware.Event{Kind: firmware.EventBoot, Reset: esp32.ResetReason()})
	handle := func(ev firmware.Event) { next = m.Handle(ev) }
	for {
		// The session's events (CONNACK, messages, PUBACKs, loss) first,
		// then the machine's deadline, then sleep until whichever is next.
		if netw != nil {
			netw.Poll(handle)
		}
		session.Poll(handle)
		if restart {
			esp32.Restart()
		}
		now := time.Now()
		if !next.IsZero() && !now.Before(next) {
			handle(firmware.Event{Kind: firmware.EventTick})
			continue
		}
		wait := idle
		if netw != nil {
			wait = netIdle // frames are polled: no interrupts
		}
		if !next.IsZero() && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
		if d := session.Deadline(); !d.IsZero() && d.Sub(now) < wait {
			wait = max(d.Sub(now), 0)
		}
		time.Sleep(wait)
	}
}

// countBoot keeps a boot counter in NVS (namespace "esp32", key "boots"):
// proof, readable on the PC from a flash dump, that the chip writes NVS in
// ESP-IDF's format.
func countBoot(con esp32.Console, store *esp32.NVS) {
	n := 0
	if v, err := store.GetString("esp32", "boots"); err == nil {
		for _, c := range []byte(v) { // not strconv.Atoi: it compares errors as interfaces, which links reflect
			if c >= '0' && c <= '9' {
				n = n*10 + int(c-'0')
			}
		}
	}
	n++
	if err := store.SetString("esp32", "boots", strconv.Itoa(n)); err != nil {
		con.Println("[ESP32] Boot " + strconv.Itoa(n) + ", not saved: " + err.Error())
		return
	}
	con.Println("[ESP32] Boot " + strconv.Itoa(n) + " saved in NVS")
}

// sensor reads no thermometer yet: the seed's value range midpoint.
type sensor struct{}

func (sensor) Temperature() float64 { return 15 }

func halt() {
	for {
		time.Sleep(time.Hour)
	}
}

// broker reads "host:port" from NVS (namespace "esp32", key "broker"), an
// IPv4 address; the default is the emulator's host, 10.0.2.2:1883.
func broker(store *esp32.NVS) ([4]byte, uint16) {
	ip, port := esp32.GatewayIP, uint16(1883)
	v, err := store.GetString("esp32", "broker")
	if err != nil {
		return ip, port
	}
	var parts [5]int
	n := 0
	for _, c := range []byte(v) {
		switch {
		case c >= '0' && c <= '9' && n < 5:
			parts[n] = parts[n]*10 + int(c-'0')
		case (c == '.' || c == ':') && n < 4:
			n++
		}
	}
	if n != 4 {
		return ip, port
	}
	return [4]byte{byte(parts[0]), byte(parts[1]), byte(parts[2]), byte(parts[3])}, uint16(parts[4])
}

func formatAddr(ip [4]byte, port uint16) string {
	return formatIP(ip) + ":" + strconv.Itoa(int(port))
}

func formatIP(ip [4]byte) string {
	return strconv.Itoa(int(ip[0])) + "." + strconv.Itoa(int(ip[1])) + "." + strconv.Itoa(int(ip[2])) + "." +
		strconv.Itoa(int(ip[3]))
}

// ethMAC is the Ethernet MAC: the eFuse base MAC + 3 in the last octet, as
// ESP-IDF derives it; a locally administered one when eFuse holds none
// (QEMU).
func ethMAC() [6]byte {
	b := esp32.BaseMAC()
	if b == ([6]byte{}) {
		return [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	}
	b[5] += 3
	return b
}
