package tbemu

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/tbsim/tbsim/tbemu/core"
	"github.com/tbsim/tbsim/tbemu/mochihook"
	"github.com/tbsim/tbsim/tbemu/rest"
)

// Options configure a Server. The zero value is a usable in-memory emulator
// with only the in-memory listener.
type Options struct {
	MQTTAddr      string      // TCP listener, e.g. "127.0.0.1:1883" ("" = none; port 0 picks one)
	TLSAddr       string      // TLS listener, e.g. ":8883" (needs TLSConfig)
	TLSConfig     *tls.Config //
	HTTPAddr      string      // REST API, e.g. "127.0.0.1:8080" ("" = none)
	HTTPTLSConfig *tls.Config // serve the REST API over HTTPS (nil: plain HTTP)
	StatePath     string      // bbolt file; "" keeps everything in memory

	// MaxConnections bounds the MQTT and MQTTS connections together; beyond
	// it a client gets CONNACK "server unavailable" and is closed. 0 derives
	// it from the file-descriptor limit (ulimit -n less a tenth kept for the
	// REST API, the state file and the refusals themselves); -1 is none.
	MaxConnections int
	// ConnectTimeout closes an MQTT connection that has not sent a whole
	// CONNECT this long after it was accepted (default 10 s).
	ConnectTimeout time.Duration
	// MaxPackageSize bounds an OTA package's bytes (default the largest OTA
	// slot, core.DefaultMaxPackageSize; -1: no limit). REST answers 413 beyond it.
	MaxPackageSize int64
	// REST timeouts (defaults 10 s to read the headers, 2 min the whole
	// request, 10 min to write the answer, 2 min between requests on a
	// kept-alive connection).
	HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// Failed REST logins allowed per client address and window (defaults 10
	// per minute); beyond them logins from that address get 429.
	LoginFailures int
	LoginWindow   time.Duration

	// The default device profile's provisioning key and secret
	// (defaults "tbsim-provision-key" / "tbsim-provision-secret").
	ProvisionKey    string
	ProvisionSecret string

	// Tenant administrator for REST login (defaults tenant@thingsboard.org / tenant).
	TenantUser     string
	TenantPassword string

	// ProvisionCloseAfter closes a provisioning session this long after its
	// response (ThingsBoard: 60 s).
	ProvisionCloseAfter time.Duration
	// OTA queue: devices per pack and time between packs (ThingsBoard: 100
	// per 60 s; default here 100 per second).
	OTAPackSize     int
	OTAPackInterval time.Duration
	// ClientRPCTimeout answers client-side RPCs with {"error":"timeout"}
	// (ThingsBoard: 60 s).
	ClientRPCTimeout time.Duration
	// InactivityTimeout closes a session with no packet for that long
	// (ThingsBoard: 600 s); keepalive itself is not enforced, as in ThingsBoard.
	InactivityTimeout time.Duration
	// TelemetryHistory keeps that many values per key in memory for checks (0: none).
	TelemetryHistory int
	// MaxWritesPending bounds each client's outbound queue in mochi
	// (default 64; mochi's 8192 preallocates 64 KiB per client).
	MaxWritesPending int

	// Clock and Rand are the core's time and random source (nil: the wall
	// clock and crypto/rand). A manual clock (emutest.Clock) makes the
	// device API's timers exact in tests; mochi's own stay on the wall clock.
	Clock core.Clock
	Rand  core.Rand

	Logger *slog.Logger // nil: discard
	// BrokerLogLevel is mochi's own log level (default: errors only).
	BrokerLogLevel slog.Level
}

func (o *Options) ensureDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.ProvisionKey, "tbsim-provision-key")
	def(&o.ProvisionSecret, "tbsim-provision-secret")
	def(&o.TenantUser, "tenant@thingsboard.org")
	def(&o.TenantPassword, "tenant")
	if o.ProvisionCloseAfter == 0 {
		o.ProvisionCloseAfter = 60 * time.Second
	}
	if o.OTAPackSize == 0 {
		o.OTAPackSize = 100
	}
	if o.OTAPackInterval == 0 {
		o.OTAPackInterval = time.Second
	}
	if o.ClientRPCTimeout == 0 {
		o.ClientRPCTimeout = 60 * time.Second
	}
	if o.InactivityTimeout == 0 {
		o.InactivityTimeout = 600 * time.Second
	}
	if o.MaxWritesPending == 0 {
		o.MaxWritesPending = 64
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxConnections == 0 {
		if n := fdLimit(); n > 0 {
			o.MaxConnections = n - max(64, n/10)
		}
	}
	if o.MaxConnections < 0 {
		o.MaxConnections = 0
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&o.HTTPReadHeaderTimeout, 10*time.Second)
	dur(&o.HTTPReadTimeout, 2*time.Minute)
	dur(&o.HTTPWriteTimeout, 10*time.Minute)
	dur(&o.HTTPIdleTimeout, 2*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BrokerLogLevel == 0 {
		o.BrokerLogLevel = slog.LevelError
	}
}

// MaxPacketSize is ThingsBoard's NETTY_MAX_PAYLOAD_SIZE.
const MaxPacketSize = core.MaxPacketSize

// Server is the emulator: the device-API core behind mochi-mqtt (the
// mochihook adapter) on an in-memory listener and optional TCP/TLS ones, and
// behind the REST adapter. The core's Go API (CreateDevice, AddFirmware,
// AssignProfileFirmware, SendRPC, Stats, ...) is promoted from the embedded
// *core.Core.
type Server struct {
	*core.Core
	opts   Options
	log    *slog.Logger
	mqtt   *mqtt.Server
	mem    *memListener
	memL   *listeners.Net
	tcp    *listeners.Net
	tls    *listeners.Net
	http   *http.Server
	httpL  net.Listener
	guards map[string]*guardListener // by name: mqtt, mqtts, http

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// New creates the emulator, opens its state and binds its listeners.
func New(opts Options) (*Server, error) {
	opts.ensureDefaults()
	c, err := core.New(core.Options{
		StatePath: opts.StatePath, ProvisionKey: opts.ProvisionKey, ProvisionSecret: opts.ProvisionSecret,
		ProvisionCloseAfter: opts.ProvisionCloseAfter, OTAPackSize: opts.OTAPackSize, OTAPackInterval: opts.OTAPackInterval,
		ClientRPCTimeout: opts.ClientRPCTimeout, InactivityTimeout: opts.InactivityTimeout,
		TelemetryHistory: opts.TelemetryHistory, MaxPackageSize: opts.MaxPackageSize,
		Clock: opts.Clock, Rand: opts.Rand, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{Core: c, opts: opts, log: opts.Logger, done: make(chan struct{}), guards: map[string]*guardListener{}}
	if err := s.listen(); err != nil {
		if s.mqtt != nil {
			s.mqtt.Close()
		}
		for _, g := range s.guards {
			g.Close()
		}
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	caps := mochihook.Capabilities()
	caps.MaximumClientWritesPending = int32(s.opts.MaxWritesPending)
	s.mqtt = mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: s.opts.BrokerLogLevel})),
		// The OTA chunk of a whole file can exceed the buffer: write it directly.
		ClientNetWriteBufferSize: 4096,
		// Devices send small packets (telemetry ~200 bytes, chunk requests a
		// few): 1 KiB reads them in one go, and 10,000 connections keep 30 MiB
		// less than with 4 KiB; a larger packet is read in several.
		ClientNetReadBufferSize: 1024,
	})
	if s.opts.BrokerLogLevel < slog.LevelError {
		s.mqtt.Log = s.log.With("component", "mochi")
	}
	if err := s.mqtt.AddHook(new(mochihook.Hook), &mochihook.Options{Core: s.Core}); err != nil {
		return err
	}
	s.mem = newMemListener()
	s.memL = listeners.NewNet("mem", s.mem)
	if err := s.mqtt.AddListener(s.memL); err != nil {
		return err
	}
	// mochi's own TCP listener stops for good at its first accept error:
	// its generic one serves ours instead, which never fails but on close.
	open := new(atomic.Int64)
	mqttListen := func(name, addr string, cfg *tls.Config) (*listeners.Net, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		refuse := refuseMQTT
		if cfg != nil {
			refuse = nil // a CONNACK would need a handshake first: just close
		}
		g := newGuardListener(ln, name, s.opts.MaxConnections, open, refuse, s.log)
		s.guards[name] = g
		var inner net.Listener = g
		if cfg != nil {
			inner = tls.NewListener(g, cfg)
		}
		l := listeners.NewNet(name, &mqttListener{Listener: inner, g: g, timeout: s.opts.ConnectTimeout})
		return l, s.mqtt.AddListener(l)
	}
	if s.opts.MQTTAddr != "" {
		var err error
		if s.tcp, err = mqttListen("mqtt", s.opts.MQTTAddr, nil); err != nil {
			return fmt.Errorf("mqtt listener %s: %w", s.opts.MQTTAddr, err)
		}
	}
	if s.opts.TLSAddr != "" {
		if s.opts.TLSConfig == nil {
			return errors.New("tls listener: TLSConfig is nil")
		}
		var err error
		if s.tls, err = mqttListen("mqtts", s.opts.TLSAddr, s.opts.TLSConfig); err != nil {
			return fmt.Errorf("mqtts listener %s: %w", s.opts.TLSAddr, err)
		}
	}
	if s.opts.HTTPAddr != "" {
		ln, err := net.Listen("tcp", s.opts.HTTPAddr)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		g := newGuardListener(ln, "http", 0, nil, nil, s.log)
		s.guards["http"] = g
		s.httpL = g
		if s.opts.HTTPTLSConfig != nil {
			s.httpL = tls.NewListener(g, s.opts.HTTPTLSConfig)
		}
		h := rest.NewHandler(s.Core, rest.Options{User: s.opts.TenantUser, Password: s.opts.TenantPassword,
			LoginFailures: s.opts.LoginFailures, LoginWindow: s.opts.LoginWindow, Logger: s.log,
			Stats: func() any { return s.Stats() }})
		s.http = &http.Server{Handler: h, ReadHeaderTimeout: s.opts.HTTPReadHeaderTimeout, ReadTimeout: s.opts.HTTPReadTimeout,
			WriteTimeout: s.opts.HTTPWriteTimeout, IdleTimeout: s.opts.HTTPIdleTimeout, MaxHeaderBytes: 64 << 10,
			// net/http's own complaints (TLS handshakes of port scanners...) are debug noise.
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	}
	return nil
}

// Stats are the core's figures with the listeners' (GET /api/tbsim/stats).
type Stats struct {
	core.Stats
	Listeners map[string]ListenerStats `json:"listeners,omitempty"`
}

// Stats returns the core's counters and the listeners'.
func (s *Server) Stats() Stats {
	st := Stats{Stats: s.Core.Stats()}
	if len(s.guards) > 0 {
		st.Listeners = map[string]ListenerStats{}
		for name, g := range s.guards {
			st.Listeners[name] = g.stats()
		}
	}
	return st
}

// MQTTAddr returns the TCP listener's address ("" without one).
func (s *Server) MQTTAddr() string {
	if g := s.guards["mqtt"]; g != nil {
		return g.Addr().String()
	}
	return ""
}

// TLSAddr returns the TLS listener's address.
func (s *Server) TLSAddr() string {
	if g := s.guards["mqtts"]; g != nil {
		return g.Addr().String()
	}
	return ""
}

// HTTPAddr returns the REST listener's address.
func (s *Server) HTTPAddr() string {
	if s.httpL == nil {
		return ""
	}
	return s.httpL.Addr().String()
}

// Dial opens an in-memory connection to the broker (net.Pipe through mochi's
// listener): no socket, no file descriptor.
func (s *Server) Dial(ctx context.Context) (net.Conn, error) { return s.mem.dial(ctx) }

// Run serves until ctx ends, then closes the server.
func (s *Server) Run(ctx context.Context) error {
	if err := s.mqtt.Serve(); err != nil {
		return err
	}
	if s.http != nil {
		go s.http.Serve(s.httpL)
	}
	s.log.Info("emulator up", "mqtt", s.MQTTAddr(), "mqtts", s.TLSAddr(), "http", s.HTTPAddr(), "https", s.opts.HTTPTLSConfig != nil,
		"state", s.opts.StatePath, "maxConnections", s.opts.MaxConnections)
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	return s.Close()
}

// Close stops listeners, disconnects every client, stops the core's
// scheduled work and flushes state.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		if s.http != nil {
			s.http.Close()
		}
		s.drainClients(5 * time.Second)
		s.mqtt.Close()
		s.closeErr = s.Core.Close()
	})
	return s.closeErr
}

// drainClients works around a deadlock in mochi v2.7.9's Server.Close:
// closeListenerClients calls Clients.GetByListener, which takes the clients
// read lock twice (GetByListener, then Len); a client deleting itself in
// between queues a writer and both wait forever. So the listeners are closed
// without that callback (mochi's own Close then skips it), every client is
// stopped here, and mochi is given time to forget them.
func (s *Server) drainClients(timeout time.Duration) {
	noop := func(string) {}
	s.memL.Close(noop)
	if s.tcp != nil {
		s.tcp.Close(noop)
	}
	if s.tls != nil {
		s.tls.Close(noop)
	}
	for _, cl := range s.mqtt.Clients.GetAll() {
		cl.Stop(errServerClosing)
	}
	deadline := time.Now().Add(timeout)
	for s.mqtt.Clients.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

var errServerClosing = errors.New("server closing")
