//go:build tinygo

// Command fwsize measures what the firmware state machine alone costs on the
// chip: it drives every event kind of firmware.Machine over the in-memory
// fakes of firmware/firmwaretest, so the linked program is the firmware, tbapi,
// the fakes and the runtime, without esp32's ports. CI builds it for
// xiao-esp32c3 and prints its flash and RAM next to esp32/cmd/fw's.
//
//	../shared/tools/tinygo build -target=xiao-esp32c3 -size=short -o /tmp/fwsize.elf ./esp32/cmd/fwsize
package main

import (
	"time"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/firmwaretest"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

type console struct{}

func (console) Println(line string) { println(line) }

func main() {
	r := firmwaretest.NewRig(firmware.Defaults())
	r.Boot()
	r.Deliver(firmware.Event{Kind: firmware.EventWiFiDown, Reason: "no AP"})
	r.Advance(2 * time.Second)
	r.WiFiUp()
	r.Refused(5)
	r.Advance(2 * time.Second)
	r.Connected()
	resp := tbapi.ProvisionResponse{Status: tbapi.ProvisionSuccess, CredentialsType: tbapi.CredAccessToken, Token: "TOKEN"}
	r.Message(tbapi.TopicProvisionResponse, string(resp.Encode()))
	r.Connected()
	for _, alg := range tbapi.Algorithms {
		img := make([]byte, 5000)
		img[0] = 0xE9
		fw := `{"fw_title":"T","fw_version":"` + alg.String() + `","fw_size":5000,"fw_checksum":"` +
			tbapi.ChecksumHex(alg, img) + `","fw_checksum_algorithm":"` + alg.String() + `"}`
		r.Message(tbapi.TopicAttributes, fw)
		if m, ok := r.Session.Last("v2/fw/request/"); ok {
			if c, ok := tbapi.ParseChunkTopic(m.Topic); ok {
				r.Message(tbapi.FwResponseTopic(c.RequestID, 0), string(img[:4096]))
				r.Message(tbapi.FwResponseTopic(c.RequestID, 1), string(img[4096:]))
			}
		}
		if m, ok := r.Session.Last(tbapi.TopicTelemetry); ok {
			r.Ack(m.ID)
		}
	}
	r.Message("v1/devices/me/rpc/request/7", `{"method":"getFirmware","params":{}}`)
	r.Lost("keepalive")
	r.Deliver(firmware.Event{Kind: firmware.EventEraseToken})
	r.Advance(time.Minute)
	for _, l := range r.Console.Lines {
		console{}.Println(l)
	}
	println(r.M.Status().State.String())
}
