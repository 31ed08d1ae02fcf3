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
	MQTTAddr  string      // TCP listener, e.g. "127.0.0.1:1883" ("" = none; port 0 picks one)
	TLSAddr   string      // TLS listener, e.g. ":8883" (needs TLSConfig)
	TLSConfig *tls.Config //
	HTTPAddr  string      // REST API, e.g. "127.0.0.1:8080" ("" = none)
	StatePath string      // bbolt file; "" keeps everything in memory

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
	opts  Options
	log   *slog.Logger
	mqtt  *mqtt.Server
	mem   *memListener
	memL  *listeners.Net
	tcp   *listeners.TCP
	tls   *listeners.TCP
	http  *http.Server
	httpL net.Listener

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
		TelemetryHistory: opts.TelemetryHistory, Clock: opts.Clock, Rand: opts.Rand, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{Core: c, opts: opts, log: opts.Logger, done: make(chan struct{})}
	if err := s.listen(); err != nil {
		if s.mqtt != nil {
			s.mqtt.Close()
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
		ClientNetReadBufferSize:  4096,
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
	if s.opts.MQTTAddr != "" {
		s.tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: s.opts.MQTTAddr})
		if err := s.mqtt.AddListener(s.tcp); err != nil {
			return fmt.Errorf("mqtt listener %s: %w", s.opts.MQTTAddr, err)
		}
	}
	if s.opts.TLSAddr != "" {
		if s.opts.TLSConfig == nil {
			return errors.New("tls listener: TLSConfig is nil")
		}
		s.tls = listeners.NewTCP(listeners.Config{ID: "tls", Address: s.opts.TLSAddr, TLSConfig: s.opts.TLSConfig})
		if err := s.mqtt.AddListener(s.tls); err != nil {
			return fmt.Errorf("mqtts listener %s: %w", s.opts.TLSAddr, err)
		}
	}
	if s.opts.HTTPAddr != "" {
		l, err := net.Listen("tcp", s.opts.HTTPAddr)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		s.httpL = l
		h := rest.NewHandler(s.Core, rest.Options{User: s.opts.TenantUser, Password: s.opts.TenantPassword})
		s.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	}
	return nil
}

// MQTTAddr returns the TCP listener's address ("" without one).
func (s *Server) MQTTAddr() string {
	if s.tcp == nil {
		return ""
	}
	return s.tcp.Address()
}

// TLSAddr returns the TLS listener's address.
func (s *Server) TLSAddr() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.Address()
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
	s.log.Info("emulator up", "mqtt", s.MQTTAddr(), "http", s.HTTPAddr(), "state", s.opts.StatePath)
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
