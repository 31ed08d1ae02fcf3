package tbemu_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tbsim/tbsim/tbemu"
)

// Start the emulator in a test, create a device, and connect to it over the
// in-memory listener with any MQTT client.
func Example() {
	srv, err := tbemu.New(tbemu.Options{}) // in memory; set MQTTAddr/HTTPAddr for sockets
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)

	dev, _ := srv.CreateDevice(tbemu.DeviceSpec{Name: "24:0A:C4:00:00:04"})
	opts := paho.NewClientOptions().AddBroker("tcp://emulator:1883").
		SetUsername(dev.Credentials.Token). // the access token is the username
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return srv.Dial(ctx) })
	c := paho.NewClient(opts)
	c.Connect().Wait()
	c.Publish("v1/devices/me/telemetry", 1, false, `{"temperature":"21.5"}`).Wait()
	c.Disconnect(0)

	v := srv.Latest(dev.ID)["temperature"]
	fmt.Println(v.Value.Kind, v.Value.Str) // numeric strings are stored as numbers
	time.Sleep(10 * time.Millisecond)
	// Output: number 21.5
}
