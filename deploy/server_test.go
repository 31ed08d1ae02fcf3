package deploy

import (
	"context"
	"testing"

	"github.com/tbsim/tbsim/tbemu"
)

// startServer runs the emulator on a loopback port with its default
// provisioning credentials and returns its MQTT address.
func startServer(t *testing.T) string {
	t.Helper()
	srv, err := tbemu.New(tbemu.Options{MQTTAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv.MQTTAddr()
}
