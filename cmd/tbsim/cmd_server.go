package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/tbemu"
)

type serverOptions struct {
	mqtt, http, state    string
	tlsAddr, cert, key   string
	provisionKey, secret string
	user, password       string
	otaPack              int
	otaEvery             time.Duration
	provisionCloseAfter  time.Duration
}

func newServerCmd(e *env) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the embedded ThingsBoard-compatible server standalone",
		Long: `Run the emulator on its own: MQTT device API (provisioning, telemetry,
attributes, RPC, OTA) and the REST subset, with its state in a file so a
restart keeps devices and tokens. Real devices and other tools can connect.`,
		Example: `  tbsim server
  tbsim server --mqtt :1883 --http :8080 --state tbsim-server.db --provision-key K --provision-secret S`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runServer(cmd.Context(), e, o) },
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.mqtt, "mqtt", ":1883", "MQTT listen address")
	f.StringVar(&o.http, "http", ":8080", "REST API listen address (\"\" to disable)")
	f.StringVar(&o.state, "state", "tbsim-server.db", "state file (devices, tokens, packages, latest values)")
	f.StringVar(&o.tlsAddr, "mqtts", "", "MQTT over TLS listen address (e.g. :8883), with --tls-cert and --tls-key")
	f.StringVar(&o.cert, "tls-cert", "", "server certificate (PEM)")
	f.StringVar(&o.key, "tls-key", "", "server key (PEM)")
	f.StringVar(&o.provisionKey, "provision-key", "", "default profile provision key (default tbsim-provision-key)")
	f.StringVar(&o.secret, "provision-secret", "", "default profile provision secret (default tbsim-provision-secret)")
	f.StringVar(&o.user, "user", "tenant@thingsboard.org", "REST login user")
	f.StringVar(&o.password, "password", "tenant", "REST login password")
	f.IntVar(&o.otaPack, "ota-pack-size", 100, "OTA queue: devices started per pack (ThingsBoard: 100)")
	f.DurationVar(&o.otaEvery, "ota-pack-interval", time.Second, "OTA queue: time between packs (ThingsBoard: 60s)")
	f.DurationVar(&o.provisionCloseAfter, "provision-close-after", 60*time.Second, "close provisioning sessions this long after the response")
	return cmd
}

func runServer(ctx context.Context, e *env, o *serverOptions) error {
	if o.otaPack < 1 || o.otaPack > 1_000_000 {
		return usageErr("--ota-pack-size %d: want 1 to 1000000", o.otaPack)
	}
	if o.otaEvery < time.Millisecond || o.otaEvery > 24*time.Hour {
		return usageErr("--ota-pack-interval %s: want 1ms to 24h", o.otaEvery)
	}
	if o.provisionCloseAfter < time.Second || o.provisionCloseAfter > 24*time.Hour {
		return usageErr("--provision-close-after %s: want 1s to 24h", o.provisionCloseAfter)
	}
	opts := tbemu.Options{
		MQTTAddr: o.mqtt, HTTPAddr: o.http, StatePath: o.state, ProvisionKey: o.provisionKey, ProvisionSecret: o.secret,
		TenantUser: o.user, TenantPassword: o.password, OTAPackSize: o.otaPack, OTAPackInterval: o.otaEvery,
		ProvisionCloseAfter: o.provisionCloseAfter, Logger: e.log,
	}
	if o.tlsAddr != "" {
		if o.cert == "" || o.key == "" {
			return usageErr("--mqtts needs --tls-cert and --tls-key")
		}
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return usageErr("--tls-cert/--tls-key: %v", err)
		}
		opts.TLSAddr, opts.TLSConfig = o.tlsAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := tbemu.New(opts)
	if err != nil {
		return err
	}
	prof, _ := srv.DefaultProfile()
	w := e.stdout
	fmt.Fprintf(w, "tbsim server: ThingsBoard-compatible device API\n")
	fmt.Fprintf(w, "  MQTT           %s\n", hostPort(srv.MQTTAddr()))
	if a := srv.TLSAddr(); a != "" {
		fmt.Fprintf(w, "  MQTT over TLS  %s\n", hostPort(a))
	}
	if a := srv.HTTPAddr(); a != "" {
		fmt.Fprintf(w, "  REST API       http://%s (login %s / %s)\n", hostPort(a), o.user, o.password)
	}
	fmt.Fprintf(w, "  state          %s\n", o.state)
	fmt.Fprintf(w, "Point a device at it: THINGSBOARD_SERVER = this machine's address, port %s,\n", port(srv.MQTTAddr()))
	fmt.Fprintf(w, "  provision key %q, provision secret %q.\n", prof.ProvisionKey, prof.ProvisionSecret)
	if srv.HTTPAddr() != "" {
		fmt.Fprintf(w, "Roll out firmware: tbsim ota push fw.bin --title CORE_ESP32 --version 1.1.0 --url http://%s\n", hostPort(srv.HTTPAddr()))
	}
	return srv.Run(ctx)
}

func hostPort(addr string) string {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, p)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
