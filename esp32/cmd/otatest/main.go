//go:build tinygo

// Command otatest exercises the OTA port on the chip for internal/chiptest:
// it reads an image that the test placed in flash at Scratch (length in the
// first 4 bytes), writes it through esp32.OTA in 4096-byte chunks as the
// firmware does, and prints each step's outcome on UART0.
package main

import (
	"strconv"
	"time"

	"github.com/tbsim/tbsim/esp32"
)

// Scratch is where the test puts the image: after app1, below 2 MB.
var Scratch = esp32.Partition{Offset: 0x1F0000, Size: 0x10000}

func main() {
	time.Sleep(10 * time.Millisecond)
	con := esp32.Console{}
	src := esp32.NewFlash(Scratch)
	var n [4]byte
	src.ReadAt(n[:], 0)
	size := int(n[0]) | int(n[1])<<8 | int(n[2])<<16 | int(n[3])<<24
	con.Println("[OTATEST] image of " + strconv.Itoa(size) + " bytes")
	ota := esp32.NewOTA()
	report(con, "Begin", ota.Begin(size))
	buf := make([]byte, 4096)
	for off := 0; off < size; off += len(buf) {
		chunk := buf[:min(len(buf), size-off)]
		src.ReadAt(chunk, int64(4+off))
		if err := ota.Write(chunk); err != nil {
			report(con, "Write", err)
			break
		}
	}
	if err := ota.End(); err != nil {
		report(con, "End", err)
	} else {
		report(con, "End", nil)
		report(con, "SetBoot", ota.SetBoot("t", "2"))
	}
	con.Println("[OTATEST] done")
	for {
		time.Sleep(time.Hour)
	}
}

func report(con esp32.Console, step string, err error) {
	if err != nil {
		con.Println("[OTATEST] " + step + ": " + err.Error())
		return
	}
	con.Println("[OTATEST] " + step + ": ok")
}
