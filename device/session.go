package device

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tbsim/tbsim/firmware"
)

// Dialer opens the network connection of one MQTT session (TCP, TLS or an
// in-memory pipe to an embedded broker).
type Dialer func(ctx context.Context) (net.Conn, error)

var errNotConnected = errors.New("mqtt: not connected")

// session is firmware.Session on paho: MQTT 3.1.1 set explicitly, order-matters
// off, a write timeout, and no auto-reconnect (the firmware owns reconnection).
// Each Connect makes a new paho client with a new generation; the board drops
// events of older generations, so nothing of a closed connection leaks into
// the next one.
type session struct {
	b         *Board
	client    mqtt.Client
	gen       uint64
	pubID     uint32
	chunkSent atomic.Int64 // unix ns of the last chunk request, for the round trip
}

var _ firmware.Session = (*session)(nil)

func (s *session) Connect(c firmware.Credentials) error {
	s.close()
	s.gen++
	gen, b := s.gen, s.b
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://thingsboard:1883"). // the dialer decides where it goes
		SetClientID(c.ClientID).SetUsername(c.Username).SetPassword(c.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(60 * time.Second).
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			return b.opts.Dial(b.ctx)
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if o := b.opts.Observer; o != nil && strings.HasPrefix(m.Topic(), "v2/fw/response/") {
				if sent := s.chunkSent.Load(); sent != 0 {
					o.ChunkRTT(time.Duration(time.Now().UnixNano() - sent))
				}
			}
			b.send(gen, firmware.Event{Kind: firmware.EventMessage, Topic: m.Topic(), Payload: m.Payload()})
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			reason := lostReason(err)
			if o := b.opts.Observer; o != nil {
				o.Lost(reason)
			}
			b.send(gen, firmware.Event{Kind: firmware.EventConnectionLost, Reason: reason})
		})
	client := mqtt.NewClient(opts)
	s.client = client
	go func() {
		start := time.Now()
		tok := client.Connect()
		tok.Wait()
		ev, outcome := firmware.Event{Kind: firmware.EventConnected}, "ok"
		if err := tok.Error(); err != nil {
			code := tok.(*mqtt.ConnectToken).ReturnCode()
			if code > 0 && code <= packets.ErrRefusedNotAuthorised {
				ev, outcome = firmware.Event{Kind: firmware.EventRefused, Code: code}, "refused "+strconv.Itoa(int(code))
			} else {
				ev = firmware.Event{Kind: firmware.EventConnectionLost, Reason: lostReason(err)}
				outcome = ev.Reason
			}
		}
		if o := b.opts.Observer; o != nil {
			o.Connected(time.Since(start), outcome)
		}
		b.send(gen, ev)
	}()
	return nil
}

// lostReason classifies why a connection ended, for the log and metrics.
func lostReason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, mqtt.ErrNotConnected):
		return "not connected"
	case errors.As(err, &ne) && ne.Timeout():
		return "network timeout: " + err.Error()
	case errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
		return "closed"
	}
	return err.Error()
}

func (s *session) Disconnect() {
	s.close()
	s.gen++
}

// close drops the client without waiting, as a reset or a lost link would.
func (s *session) close() {
	if c := s.client; c != nil {
		s.client = nil
		go c.Disconnect(0)
	}
}

func (s *session) Publish(topic string, payload []byte, qos byte) (uint32, error) {
	c := s.client
	if c == nil || !c.IsConnectionOpen() {
		return 0, errNotConnected
	}
	s.pubID++
	id, gen, b := s.pubID, s.gen, s.b
	sent := time.Now()
	if strings.HasPrefix(topic, "v2/fw/request/") {
		s.chunkSent.Store(sent.UnixNano())
	}
	tok := c.Publish(topic, qos, false, payload)
	go func() {
		tok.Wait()
		if tok.Error() == nil {
			if o := b.opts.Observer; o != nil {
				o.PublishAck(topic, time.Since(sent))
			}
			b.send(gen, firmware.Event{Kind: firmware.EventPublished, ID: id})
		}
	}()
	return id, nil
}

func (s *session) Subscribe(filter string, qos byte) error {
	c := s.client
	if c == nil || !c.IsConnectionOpen() {
		return errNotConnected
	}
	c.Subscribe(filter, qos, nil) // nil: messages go to the default handler
	return nil
}
