package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tbsim/tbsim/tbemu"
	"github.com/tbsim/tbsim/tbemu/core"
)

type serverOptions struct {
	mqtt, http, state    string
	tlsAddr, cert, key   string
	httpsCert, httpsKey  string
	provisionKey, secret string
	user, password       string
	otaPack              int
	otaEvery             time.Duration
	provisionCloseAfter  time.Duration
	maxConnections       int
	connectTimeout       time.Duration
	maxPackageSize       int64
}

// The server's defaults: its login and provisioning credentials are
// well known, so it listens on this machine only unless told otherwise.
const (
	defaultMQTTAddr = "127.0.0.1:1883"
	defaultHTTPAddr = "127.0.0.1:8080"
	defaultUser     = "tenant@thingsboard.org"
	defaultPassword = "tenant"
)

func newServerCmd(e *env) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the embedded ThingsBoard-compatible server standalone",
		Long: `Run the emulator on its own: MQTT device API (provisioning, telemetry,
attributes, RPC, OTA) and the REST subset, with its state in a file so a
restart keeps devices, tokens and rollouts. Real devices and other tools can
connect.

It listens on 127.0.0.1 unless told otherwise. Credentials can come from the
environment instead of the command line (where ps and shell history show
them): TBSIM_USER, TBSIM_PASSWORD, TBSIM_PROVISION_KEY, TBSIM_PROVISION_SECRET;
a flag wins over its variable.`,
		Example: `  tbsim server
  TBSIM_USER=me@example.com TBSIM_PASSWORD=... tbsim server --mqtt 0.0.0.0:1883 --http 0.0.0.0:8080 --state tbsim-server.db
  tbsim server --https-cert cert.pem --https-key key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServer(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.mqtt, "mqtt", defaultMQTTAddr, "MQTT listen address (0.0.0.0:1883 for every interface)")
	f.StringVar(&o.http, "http", defaultHTTPAddr, "REST API listen address (\"\" to disable)")
	f.StringVar(&o.state, "state", "tbsim-server.db", "state file (devices, tokens, packages, rollouts, latest values); locked while in use")
	f.StringVar(&o.tlsAddr, "mqtts", "", "MQTT over TLS listen address (e.g. 127.0.0.1:8883), with --tls-cert and --tls-key")
	f.StringVar(&o.cert, "tls-cert", "", "MQTTS server certificate (PEM)")
	f.StringVar(&o.key, "tls-key", "", "MQTTS server key (PEM)")
	f.StringVar(&o.httpsCert, "https-cert", "", "serve the REST API over HTTPS with this certificate (PEM), with --https-key")
	f.StringVar(&o.httpsKey, "https-key", "", "key of --https-cert (PEM)")
	f.StringVar(&o.provisionKey, "provision-key", "", "default profile provision key (env "+envProvisionKey+"; default tbsim-provision-key)")
	f.StringVar(&o.secret, "provision-secret", "", "default profile provision secret (env "+envProvisionSecret+"; default tbsim-provision-secret)")
	f.StringVar(&o.user, "user", defaultUser, "REST login user (env "+envUser+")")
	f.StringVar(&o.password, "password", defaultPassword, "REST login password (env "+envPassword+")")
	f.IntVar(&o.otaPack, "ota-pack-size", 100, "OTA queue: devices started per pack (ThingsBoard: 100)")
	f.DurationVar(&o.otaEvery, "ota-pack-interval", time.Second, "OTA queue: time between packs (ThingsBoard: 60s)")
	f.DurationVar(&o.provisionCloseAfter, "provision-close-after", 60*time.Second, "close provisioning sessions this long after the response")
	f.IntVar(&o.maxConnections, "max-connections", 0, "MQTT connections at most, beyond them CONNACK 3 (0: from the file-descriptor limit, -1: none)")
	f.DurationVar(&o.connectTimeout, "connect-timeout", 10*time.Second, "close an MQTT connection that has not sent its CONNECT within this")
	f.Int64Var(&o.maxPackageSize, "max-package-size", core.DefaultMaxPackageSize, "largest OTA package in bytes, beyond it HTTP 413 (default the largest OTA slot; -1: none)")
	return cmd
}

func (o *serverOptions) check() error {
	switch {
	case o.otaPack < 1 || o.otaPack > 1_000_000:
		return usageErr("--ota-pack-size %d: want 1 to 1000000", o.otaPack)
	case o.otaEvery < time.Millisecond || o.otaEvery > 24*time.Hour:
		return usageErr("--ota-pack-interval %s: want 1ms to 24h", o.otaEvery)
	case o.provisionCloseAfter < time.Second || o.provisionCloseAfter > 24*time.Hour:
		return usageErr("--provision-close-after %s: want 1s to 24h", o.provisionCloseAfter)
	case o.maxConnections < -1 || o.maxConnections > 10_000_000:
		return usageErr("--max-connections %d: want 0 (from the file-descriptor limit), -1 (none) or 1 to 10000000", o.maxConnections)
	case o.connectTimeout < 100*time.Millisecond || o.connectTimeout > 10*time.Minute:
		return usageErr("--connect-timeout %s: want 100ms to 10m", o.connectTimeout)
	case o.maxPackageSize == 0 || o.maxPackageSize < -1 || o.maxPackageSize > 1<<30:
		return usageErr("--max-package-size %d: want 1 to 1073741824 bytes, or -1 for no limit", o.maxPackageSize)
	case o.user == "" || o.password == "":
		return usageErr("--user and --password must not be empty")
	case (o.httpsCert == "") != (o.httpsKey == ""):
		return usageErr("--https-cert and --https-key go together")
	case o.httpsCert != "" && o.http == "":
		return usageErr("--https-cert needs the REST API (--http)")
	}
	return nil
}

func runServer(ctx context.Context, e *env, o *serverOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	opts := tbemu.Options{
		MQTTAddr: o.mqtt, HTTPAddr: o.http, StatePath: o.state, ProvisionKey: o.provisionKey, ProvisionSecret: o.secret,
		TenantUser: o.user, TenantPassword: o.password, OTAPackSize: o.otaPack, OTAPackInterval: o.otaEvery,
		ProvisionCloseAfter: o.provisionCloseAfter, MaxConnections: o.maxConnections, ConnectTimeout: o.connectTimeout,
		MaxPackageSize: o.maxPackageSize, Logger: e.log,
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
	if o.httpsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.httpsCert, o.httpsKey)
		if err != nil {
			return usageErr("--https-cert/--https-key: %v", err)
		}
		opts.HTTPTLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := tbemu.New(opts)
	if err != nil {
		return err
	}
	prof, _ := srv.DefaultProfile()
	warnExposed(e.stderr, o, srv, prof)
	w := e.stdout
	scheme := "http"
	if o.httpsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(w, "tbsim server: ThingsBoard-compatible device API\n")
	fmt.Fprintf(w, "  MQTT           %s\n", hostPort(srv.MQTTAddr()))
	if a := srv.TLSAddr(); a != "" {
		fmt.Fprintf(w, "  MQTT over TLS  %s\n", hostPort(a))
	}
	if a := srv.HTTPAddr(); a != "" {
		login := fmt.Sprintf("login %s / %s", o.user, o.password)
		if o.user != defaultUser || o.password != defaultPassword {
			login = "login " + o.user + ", password as given" // never echo a chosen password
		}
		fmt.Fprintf(w, "  REST API       %s://%s (%s)\n", scheme, hostPort(a), login)
	}
	fmt.Fprintf(w, "  state          %s\n", o.state)
	fmt.Fprintf(w, "Point a device at it: THINGSBOARD_SERVER = this machine's address, port %s,\n", port(srv.MQTTAddr()))
	secret := fmt.Sprintf("%q", prof.ProvisionSecret)
	if prof.ProvisionSecret != "tbsim-provision-secret" {
		secret = "as given"
	}
	fmt.Fprintf(w, "  provision key %q, provision secret %s.\n", prof.ProvisionKey, secret)
	if srv.HTTPAddr() != "" {
		fmt.Fprintf(w, "Roll out firmware: tbsim ota push fw.bin --title CORE_ESP32 --version 1.1.0 --url %s://%s\n", scheme, hostPort(srv.HTTPAddr()))
	}
	return srv.Run(ctx)
}

// warnExposed says loudly when a listener is reachable from other machines
// while the REST login or the provisioning credentials are the well-known
// defaults: anyone who can reach it could push firmware to every device, or
// create devices.
func warnExposed(w io.Writer, o *serverOptions, srv *tbemu.Server, prof tbemu.Profile) {
	var exposed []string
	for _, a := range []struct{ what, addr string }{{"MQTT", srv.MQTTAddr()}, {"MQTTS", srv.TLSAddr()}, {"REST", srv.HTTPAddr()}} {
		if a.addr != "" && !loopback(a.addr) {
			exposed = append(exposed, a.what+" on "+a.addr)
		}
	}
	if len(exposed) == 0 {
		return
	}
	rest := srv.HTTPAddr() != "" && !loopback(srv.HTTPAddr())
	if rest && o.user == defaultUser && o.password == defaultPassword {
		fmt.Fprintf(w, "WARNING: %s is reachable from other machines with the default REST login %s / %s:\n"+
			"WARNING: anyone who can reach it can push firmware to every device. Set --user and --password\n"+
			"WARNING: (or %s and %s), or listen on 127.0.0.1 only.\n", strings.Join(exposed, ", "), defaultUser, defaultPassword, envUser, envPassword)
	}
	if (srv.MQTTAddr() != "" && !loopback(srv.MQTTAddr()) || srv.TLSAddr() != "" && !loopback(srv.TLSAddr())) &&
		prof.ProvisionKey == "tbsim-provision-key" && prof.ProvisionSecret == "tbsim-provision-secret" {
		fmt.Fprintf(w, "WARNING: MQTT is reachable from other machines with the default provisioning credentials: anyone can\n"+
			"WARNING: create devices. Set --provision-key and --provision-secret (or %s and %s).\n", envProvisionKey, envProvisionSecret)
	}
}

// loopback reports whether addr listens on this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
