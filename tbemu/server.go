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
const MaxPacketSize = 65536

// Server is the emulator.
type Server struct {
	opts  Options
	log   *slog.Logger
	mqtt  *mqtt.Server
	store *store
	hook  *hook
	mem   *memListener
	memL  *listeners.Net
	tcp   *listeners.TCP
	tls   *listeners.TCP
	http  *http.Server
	httpL net.Listener

	connsMu  sync.Mutex
	conns    map[*mqtt.Client]*conn
	byDevice map[string]map[*conn]bool

	otaQueue  chan string
	rpcMu     sync.Mutex
	rpcNext   map[string]int
	rpcWait   map[string]chan []byte // deviceID "/" id -> answer
	sessions  sessionTokens
	stats     counters
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// counters are emulator-wide event counts.
type counters struct {
	connects, refused, provisioned, provisionFailed, telemetryMsgs, chunkBytes atomic.Int64
	rateLimited, parseErrors                                                   atomic.Int64
}

// New creates the emulator, opens its state and binds its listeners.
func New(opts Options) (*Server, error) {
	opts.ensureDefaults()
	st, err := newStore(opts.StatePath, opts.TelemetryHistory)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, log: opts.Logger, store: st,
		conns: map[*mqtt.Client]*conn{}, byDevice: map[string]map[*conn]bool{},
		otaQueue: make(chan string, 1<<16), rpcNext: map[string]int{}, rpcWait: map[string]chan []byte{},
		sessions: sessionTokens{m: map[string]time.Time{}}, done: make(chan struct{}),
	}
	if err := s.ensureDefaultProfile(); err != nil {
		st.close()
		return nil, err
	}
	if err := s.listen(); err != nil {
		s.mqtt.Close()
		st.close()
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	caps.MaximumPacketSize = MaxPacketSize
	caps.MaximumClientWritesPending = int32(s.opts.MaxWritesPending)
	caps.RetainAvailable = 0
	caps.MaximumSessionExpiryInterval = 0
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
	s.hook = &hook{s: s}
	if err := s.mqtt.AddHook(s.hook, nil); err != nil {
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
		s.http = &http.Server{Handler: s.restHandler(), ReadHeaderTimeout: 10 * time.Second}
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
	s.wg.Add(2)
	go s.otaWorker()
	go s.flusher()
	s.log.Info("emulator up", "mqtt", s.MQTTAddr(), "http", s.HTTPAddr(), "state", s.opts.StatePath)
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	return s.Close()
}

// Close stops listeners, disconnects every client and flushes state.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.http != nil {
			s.http.Close()
		}
		s.drainClients(5 * time.Second)
		s.mqtt.Close()
		s.wg.Wait()
		err = s.store.close()
	})
	return err
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

// flusher writes batched state once a second and closes idle sessions.
func (s *Server) flusher() {
	defer s.wg.Done()
	t := time.NewTicker(min(time.Second, s.opts.InactivityTimeout/4))
	defer t.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.reapInactive(now)
			if now.Sub(lastFlush) < time.Second {
				continue
			}
			lastFlush = now
			if err := s.store.flushDirty(); err != nil {
				s.log.Error("flush state", "error", err)
			}
		}
	}
}

// memListener is a net.Listener whose Dial hands one end of a net.Pipe to
// Accept, for mochi's listeners.NewNet.
type memListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.ch <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }
