package device

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/tbapi"
)

// Dialer opens the network connection of one MQTT session (TCP, TLS or an
// in-memory pipe to an embedded broker).
type Dialer func(ctx context.Context) (net.Conn, error)

// Gate admits connection handshakes: CONNECT to CONNACK, and for a
// provisioning session the request to its response. A fleet whose own CPU is
// the bottleneck queues devices at the gate instead of letting their
// timeouts fire (and their retries pile on more work).
type Gate interface {
	// TryAcquire takes a slot if one is free now.
	TryAcquire() bool
	// Acquire waits for a slot; false when ctx ended first.
	Acquire(ctx context.Context) bool
	// Release frees a slot held for d; ok says the handshake completed
	// (CONNACK, or the provisioning response) rather than failed.
	Release(d time.Duration, ok bool)
}

var errNotConnected = errors.New("mqtt: not connected")

// session is firmware.Session on paho: MQTT 3.1.1 set explicitly, inbound
// messages delivered in order (paho's router calls one handler at a time and
// the board's queue is a FIFO), a write timeout, and no auto-reconnect (the
// firmware owns reconnection). Each Connect makes a new paho client with a
// new generation; the board drops events of older generations, so nothing of
// a closed connection leaks into the next one.
type session struct {
	b         *Board
	att       *attempt
	gen       uint64
	pubID     uint32
	chunkSent atomic.Int64 // unix ns of the last chunk request, for the round trip
}

var _ firmware.Session = (*session)(nil)

// attempt is one connection: its client, its gate slot and its context.
type attempt struct {
	client mqtt.Client
	cancel context.CancelFunc
	gate   Gate
	held   atomic.Int32 // 0 no slot, 1 holding, 2 released
	since  time.Time    // when the slot was taken; written before held becomes 1
}

func (a *attempt) acquired() {
	a.since = time.Now()
	a.held.Store(1)
}

// release frees the slot exactly once, whoever gets there first.
func (a *attempt) release(ok bool) {
	if a.held.CompareAndSwap(1, 2) {
		a.gate.Release(time.Since(a.since), ok)
	}
}

// dialError marks a failure to open the network connection, so the failure is
// classified as "unreachable" whatever paho wraps it in.
type dialError struct{ err error }

func (e dialError) Error() string { return e.err.Error() }
func (e dialError) Unwrap() error { return e.err }

func (s *session) Connect(c firmware.Credentials) error {
	s.close()
	s.gen++
	gen, b := s.gen, s.b
	ctx, cancel := context.WithCancel(b.ctx)
	a := &attempt{cancel: cancel, gate: b.opts.Gate}
	provisioning := c.Username == tbapi.ProvisionUser
	connectTimeout := b.opts.Firmware.ConnectTimeout + 5*time.Second // the firmware's own timeout decides
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://thingsboard:1883"). // the dialer decides where it goes
		SetClientID(c.ClientID).SetUsername(c.Username).SetPassword(c.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(60 * time.Second).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			conn, err := b.opts.Dial(ctx)
			if err != nil {
				return nil, dialError{err}
			}
			return conn, nil
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			// Called by paho's router one message at a time, in order; send
			// blocks while the board's queue is full (back-pressure, like a
			// device's TCP window).
			topic := m.Topic()
			if strings.HasPrefix(topic, "v2/fw/response/") {
				if sent := s.chunkSent.Load(); sent != 0 {
					d := time.Duration(time.Now().UnixNano() - sent)
					if o := b.opts.Observer; o != nil {
						o.ChunkRTT(d)
					}
				}
			} else if provisioning && topic == tbapi.TopicProvisionResponse {
				a.release(true)
			}
			b.send(boardEvent{gen: gen, ev: firmware.Event{Kind: firmware.EventMessage, Topic: topic, Payload: m.Payload()}})
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			a.release(false)
			link, reason := classify(err)
			b.send(boardEvent{gen: gen, report: reportLost, ev: firmware.Event{Kind: firmware.EventConnectionLost, Link: link, Reason: reason}})
		})
	a.client = mqtt.NewClient(opts)
	s.att = a
	admitted := a.gate == nil || a.gate.TryAcquire()
	if !admitted {
		b.pause() // waiting for tbsim's own turn is not the server's latency
	} else if a.gate != nil {
		a.acquired()
	}
	go func() {
		if !admitted {
			if !a.gate.Acquire(ctx) {
				return // the attempt was dropped; the board resumed its clock then
			}
			a.acquired()
			if ctx.Err() != nil {
				a.release(false)
				return
			}
			b.send(boardEvent{gen: gen, resume: true})
		}
		start := time.Now()
		tok := a.client.Connect()
		tok.Wait()
		took := time.Since(start)
		ev, outcome := firmware.Event{Kind: firmware.EventConnected}, "ok"
		if err := tok.Error(); err != nil {
			code := tok.(*mqtt.ConnectToken).ReturnCode()
			if code > 0 && code <= packets.ErrRefusedNotAuthorised {
				ev, outcome = firmware.Event{Kind: firmware.EventRefused, Code: code}, "refused "+strconv.Itoa(int(code))
			} else {
				link, reason := classify(err)
				ev = firmware.Event{Kind: firmware.EventConnectionLost, Link: link, Reason: reason}
				outcome = reason
			}
		}
		if ev.Kind != firmware.EventConnected || !provisioning {
			a.release(ev.Kind == firmware.EventConnected)
		}
		b.send(boardEvent{gen: gen, ev: ev, report: reportConnect, took: took, outcome: outcome})
	}()
	return nil
}

// classify says why a connection failed or ended, for the firmware's
// failure counts and the log.
func classify(err error) (firmware.LinkError, string) {
	var ne net.Error
	var de dialError
	var te *tls.CertificateVerificationError
	switch {
	case err == nil:
		return firmware.LinkClosed, "closed"
	case errors.As(err, &de):
		return firmware.LinkUnreachable, "unreachable: " + de.Error()
	case errors.As(err, &te):
		return firmware.LinkUnreachable, "TLS: " + te.Error()
	case strings.Contains(err.Error(), "pingresp not received"):
		return firmware.LinkKeepalive, "keepalive: no PINGRESP"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrClosedPipe):
		return firmware.LinkClosed, "server closed the connection"
	case errors.As(err, &ne) && ne.Timeout():
		return firmware.LinkTimeout, "network timeout: " + err.Error()
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return firmware.LinkUnreachable, "unreachable: " + err.Error()
	}
	return firmware.LinkOther, err.Error()
}

func (s *session) Disconnect() {
	s.close()
	s.gen++
}

// close drops the client without waiting, as a reset or a lost link would.
func (s *session) close() {
	a := s.att
	if a == nil {
		return
	}
	s.att = nil
	a.cancel()
	a.release(false)
	s.b.resume()
	go a.client.Disconnect(0)
}

// Publish sends a copy of payload: paho keeps the slice until the PUBACK (and
// for a resend), while the firmware may reuse its buffer at once.
func (s *session) Publish(topic string, payload []byte, qos byte) (uint32, error) {
	a := s.att
	if a == nil || !a.client.IsConnectionOpen() {
		return 0, errNotConnected
	}
	s.pubID++
	id, gen, b := s.pubID, s.gen, s.b
	sent := time.Now()
	if strings.HasPrefix(topic, "v2/fw/request/") {
		s.chunkSent.Store(sent.UnixNano())
	}
	tok := a.client.Publish(topic, qos, false, append([]byte(nil), payload...))
	go func() {
		tok.Wait()
		if tok.Error() == nil {
			if o := b.opts.Observer; o != nil {
				o.PublishAck(topic, time.Since(sent))
			}
			b.send(boardEvent{gen: gen, ev: firmware.Event{Kind: firmware.EventPublished, ID: id}})
		}
	}()
	return id, nil
}

func (s *session) Subscribe(filter string, qos byte) error {
	a := s.att
	if a == nil || !a.client.IsConnectionOpen() {
		return errNotConnected
	}
	a.client.Subscribe(filter, qos, nil) // nil: messages go to the default handler
	return nil
}
