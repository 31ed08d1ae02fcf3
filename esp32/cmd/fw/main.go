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

// idle is the longest the loop sleeps without looking at its ports.
const idle = 100 * time.Millisecond

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
	session := mqtt.New(esp32.NoNetwork{}, esp32.Clock{}, mqtt.Options{})
	m, err := firmware.New(cfg, firmware.Ports{
		Clock: esp32.Clock{}, NVS: store, Session: session, OTA: ota,
		WiFi: &esp32.NoWiFi{Mac: esp32.MAC()}, Sensor: sensor{}, Rand: esp32.Rand{}, Console: con,
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
