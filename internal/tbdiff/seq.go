package tbdiff

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tbsim/tbsim/internal/tbrest"
)

// Sequence is one scripted exchange, run the same way against each server.
type Sequence struct {
	Name string
	// Slow sequences wait for a server timing (the provisioning close, the
	// client-side RPC timeout, the OTA queue's interval); they run only
	// with Params.Slow.
	Slow bool
	Run  func(s *Seq)
}

// Seq is a sequence's run against one target.
type Seq struct {
	Ctx  context.Context
	T    *Target
	Tr   *Transcript
	name string

	mu      sync.Mutex
	clients []*Client
	devices []string // ids to delete afterwards
	names   []string // device names the server created by provisioning
}

// RunSequence runs one sequence against a target and returns its transcript.
func RunSequence(ctx context.Context, t *Target, sq Sequence) []string {
	s := &Seq{Ctx: ctx, T: t, Tr: newTranscript(), name: sq.Name}
	s.Tr.Alias(t.ProfileID, "<profile-id>")
	defer s.cleanup()
	sq.Run(s)
	return s.Tr.Lines()
}

func (s *Seq) cleanup() {
	for _, c := range s.clients {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range s.names {
		if d, err := s.T.REST.DeviceByName(ctx, n); err == nil && d.ID() != "" {
			s.devices = append(s.devices, d.ID())
		}
	}
	for _, id := range s.devices {
		s.T.REST.DeleteDevice(ctx, id)
	}
}

// DevName returns a device name unique to this run, shown as <label>.
func (s *Seq) DevName(label string) string {
	n := fmt.Sprintf("diff-%s-%s-%s", s.T.run, s.name, label)
	s.Tr.Alias(n, "<"+label+">")
	return n
}

// Provisioned remembers a name the server may have created a device for.
func (s *Seq) Provisioned(name string) { s.names = append(s.names, name) }

// Device creates a device in the diff profile with a token this run
// chooses and returns its id and token.
func (s *Seq) Device(label string) (id, token string) {
	return s.DeviceIn(label, s.T.ProfileID)
}

// DeviceIn creates a device in a profile.
func (s *Seq) DeviceIn(label, profileID string) (id, token string) {
	name := s.DevName(label)
	token = randomString(20)
	s.Tr.Alias(token, "<token-"+label+">")
	d, err := s.T.REST.CreateDevice(s.Ctx, name, profileID, token)
	if err != nil {
		s.Tr.Note("REST create device %s: %v", label, err)
		return "", token
	}
	s.Tr.Alias(d.ID(), "<id-"+label+">")
	s.mu.Lock()
	s.devices = append(s.devices, d.ID())
	s.mu.Unlock()
	return d.ID(), token
}

// Connect dials, sends CONNECT and records the CONNACK (and a close).
func (s *Seq) Connect(o ConnectOpts) *Client {
	v := "v3.1.1"
	if o.V5 {
		v = "v5"
	}
	desc := fmt.Sprintf("CONNECT %s client=%q", v, o.ClientID)
	if o.Username != nil {
		desc += fmt.Sprintf(" user=%q", *o.Username)
	}
	if o.Password != nil {
		desc += fmt.Sprintf(" pass=%q", *o.Password)
	}
	if !o.Clean {
		desc += " clean=0"
	}
	s.Tr.Sent("%s", desc)
	c := s.dial(o)
	s.Await(c, 1, 10*time.Second)
	return c
}

// dial connects without recording what comes back (nil, noted, on an
// error); the sequence closes the client at its end.
func (s *Seq) dial(o ConnectOpts) *Client {
	c, err := Dial(s.T.MQTT, o)
	if err != nil {
		s.Tr.Note("dial: %v", err)
		return nil
	}
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

// Token connects a device with its token as the username, as devices do.
func (s *Seq) Token(token string, v5 bool) *Client { return s.Connect(s.tokenOpts(token, v5)) }

func (s *Seq) tokenOpts(token string, v5 bool) ConnectOpts {
	cid := "c-" + token[:6]
	s.Tr.Alias(cid, "<client-id>")
	return ConnectOpts{V5: v5, ClientID: cid, Username: Str(token), Clean: true}
}

// Await records up to n packets (within max), then whatever else arrives
// within Params.Quiet; "(nothing)" when none came. It stops at a close.
func (s *Seq) Await(c *Client, n int, max time.Duration) []Packet {
	if c == nil {
		return nil
	}
	return s.await(c, n, max, s.Tr.Got)
}

// AwaitUnordered is Await for packets whose order the server does not fix
// (ThingsBoard saves an OTA assignment's attributes and deletes fw_tag and
// fw_url concurrently: either push may come first): the step's lines sorted.
func (s *Seq) AwaitUnordered(c *Client, n int, max time.Duration) []Packet {
	if c == nil {
		return nil
	}
	var lines []Packet
	got := s.await(c, n, max, func(p Packet) { lines = append(lines, p) })
	slices.SortStableFunc(lines, func(a, b Packet) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range lines {
		s.Tr.Got(p)
	}
	return got
}

// AwaitCanonical is Await with JSON payloads' members sorted (see
// Transcript.GotCanonical).
func (s *Seq) AwaitCanonical(c *Client, n int, max time.Duration) []Packet {
	if c == nil {
		return nil
	}
	return s.await(c, n, max, s.Tr.GotCanonical)
}

func (s *Seq) await(c *Client, n int, max time.Duration, got1 func(Packet)) []Packet {
	var got []Packet
	deadline := time.Now().Add(max)
	for len(got) < n {
		p, ok := c.Next(time.Until(deadline))
		if !ok {
			break
		}
		got = append(got, p)
		got1(p)
		if p.Type == pClosed {
			return got
		}
	}
	for {
		p, ok := c.Next(s.T.Params.Quiet)
		if !ok {
			break
		}
		got = append(got, p)
		got1(p)
		if p.Type == pClosed {
			break
		}
	}
	if len(got) == 0 {
		s.Tr.add("< (nothing)")
	}
	return got
}

// AwaitClose waits up to max for the server to close c and notes when,
// as a share of the configured duration d, counted from the client's time
// mark.
func (s *Seq) AwaitClose(c *Client, mark time.Duration, d, max time.Duration, what string) {
	if c == nil {
		return
	}
	deadline := time.Now().Add(max)
	for {
		p, ok := c.Next(time.Until(deadline))
		if !ok {
			s.Tr.Note("not closed within %s", ratio(max, d))
			return
		}
		if p.Type == pClosed || p.Type == pDisconnect {
			s.Tr.Got(p)
			if p.Type == pClosed {
				r := ratio(p.At-mark, d)
				if strings.Contains(what, "inactivity") {
					// ThingsBoard looks for idle sessions every
					// TB_TRANSPORT_SESSIONS_REPORT_TIMEOUT (3 s): its close comes up
					// to that late, so this timing is compared to half a timeout.
					r = fmt.Sprintf("%.1fx", math.Round(float64(p.At-mark)/float64(d)*2)/2)
				}
				s.Tr.Note("closed at %s %s", r, what)
				return
			}
			continue
		}
		s.Tr.Got(p)
	}
}

// Since returns the client's clock (the time since it dialled).
func (c *Client) Since() time.Duration { return time.Since(c.start) }

// Pub publishes and records the action.
func (s *Seq) Pub(c *Client, topic string, payload []byte, qos byte) {
	if c == nil {
		return
	}
	s.Tr.Sent("PUBLISH qos%d %s %s", qos, topic, payloadString(payload))
	c.Publish(topic, payload, qos)
}

// Sub subscribes and records the action.
func (s *Seq) Sub(c *Client, qos byte, filters ...string) {
	if c == nil {
		return
	}
	s.Tr.Sent("SUBSCRIBE qos%d %s", qos, strings.Join(filters, " "))
	c.Subscribe(qos, filters...)
}

// Note records a REST call's outcome; an error is shown by its status.
func (s *Seq) NoteErr(what string, err error) {
	if err != nil {
		s.Tr.Note("%s: %v", what, err)
	} else {
		s.Tr.Note("%s: ok", what)
	}
}

// canonical renders JSON with sorted keys (for REST answers, whose field
// order is not wire behaviour a device sees).
func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var x any
	json.Unmarshal(b, &x)
	b, _ = json.Marshal(x) // maps marshal with sorted keys
	return string(b)
}

// latest notes a device's latest values of keys with their JSON types.
func (s *Seq) latest(id string, keys ...string) {
	vals, err := s.T.REST.LatestTyped(s.Ctx, id, keys...)
	if err != nil {
		s.Tr.Note("REST latest: %v", err)
		return
	}
	sort.Strings(keys)
	for _, k := range keys {
		pts := vals[k]
		if len(pts) == 0 {
			s.Tr.Note("latest %s: absent", k)
			continue
		}
		s.Tr.Note("latest %s = %s (%T)", k, canonical(pts[0].Value), pts[0].Value)
	}
}

// fwStates notes the fw_state history of a device, oldest first.
func (s *Seq) fwStates(id string, since int64) {
	h, err := s.T.REST.History(s.Ctx, id, since, time.Now().Add(time.Minute).UnixMilli(), 100, "fw_state")
	if err != nil {
		s.Tr.Note("REST fw_state history: %v", err)
		return
	}
	pts := h["fw_state"]
	var states []string
	for i := len(pts) - 1; i >= 0; i-- {
		states = append(states, fmt.Sprint(pts[i].Value))
	}
	s.Tr.Note("fw_state history: %s", strings.Join(states, " "))
}

// pkg creates and uploads a firmware package for a profile; it is deleted
// when the sequence ends (after its devices, so it is no longer assigned).
func (s *Seq) pkg(profileID, title, version string, data []byte) string {
	p, err := s.T.REST.CreatePackage(s.Ctx, profileID, title, version)
	if err != nil {
		s.Tr.Note("REST create package: %v", err)
		return ""
	}
	s.Tr.Alias(p.ID(), "<pkg-id>")
	if _, err := s.T.REST.UploadPackage(s.Ctx, p.ID(), "fw.bin", data, "SHA256"); err != nil {
		s.Tr.Note("REST upload package: %v", err)
	}
	return p.ID()
}

func (s *Seq) assignDevice(id, pkgID string) {
	d, err := s.T.REST.Device(s.Ctx, id)
	if err != nil {
		s.Tr.Note("REST get device: %v", err)
		return
	}
	if pkgID == "" {
		d["firmwareId"] = nil
	} else {
		d["firmwareId"] = tbrest.EntityID{EntityType: "OTA_PACKAGE", ID: pkgID}
	}
	_, err = s.T.REST.SaveDevice(s.Ctx, d)
	s.NoteErr("REST assign firmware to device", err)
}
