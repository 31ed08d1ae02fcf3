package tbemu

import (
	"testing"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// FuzzDevicePublish feeds any topic and payload to the device API, in a
// device session and in a provisioning session: it may close them but must
// never panic.
func FuzzDevicePublish(f *testing.F) {
	for _, seed := range [][2]string{
		{tbapi.TopicTelemetry, `[{"ts":1,"values":{"a":"1"}},{"b":null}]`},
		{tbapi.TopicAttributes, `{"a":{"b":[1]}}`},
		{tbapi.AttrRequestTopic(1), `{"sharedKeys":"a,b,","clientKeys":["c"]}`},
		{tbapi.RPCRequestTopic(2), `{"method":"getSessionLimits"}`},
		{tbapi.RPCResponseTopic(3), `{}`},
		{"v2/fw/request/1/chunk/0", "4096"},
		{"v2/sw/request/1/chunk/99999", ""},
		{"v2/fw/request/1/chunk/0", "999999"},
	} {
		f.Add(seed[0], []byte(seed[1]))
	}
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	d, _ := s.CreateDevice(DeviceSpec{Name: "fuzz"})
	pkg, _ := s.AddFirmware(PackageSpec{Title: "T", Version: "1"}, []byte("\xE9 some firmware bytes"), tbapi.SHA256)
	s.AssignDeviceFirmware(d.ID, pkg.ID)
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		dev, code := s.Connect(discardConn{}, "fuzz", d.Credentials.Token, "")
		if code != 0 {
			t.Fatalf("CONNACK %d", code)
		}
		prov, _ := s.Connect(discardConn{}, "provision", "provision", "")
		s.Publish(dev, topic, payload, 1)
		s.Publish(prov, topic, payload, 1)
		s.Disconnect(dev)
		s.Disconnect(prov)
	})
}
