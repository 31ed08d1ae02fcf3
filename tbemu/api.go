package tbemu

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// ProfileSpec creates a device profile.
type ProfileSpec struct {
	Name            string
	ProvisionType   string // default ALLOW_CREATE_NEW_DEVICES
	ProvisionKey    string
	ProvisionSecret string
	RateLimit       float64
}

// DeviceSpec creates a device. An empty ProfileID means the default profile;
// empty credentials mean a generated 20-character access token.
type DeviceSpec struct {
	Name        string
	ProfileID   string
	Credentials Credentials
}

func (s *Server) ensureDefaultProfile() error {
	if _, ok := s.DefaultProfile(); ok {
		return nil
	}
	_, err := s.createProfile(ProfileSpec{Name: "default", ProvisionKey: s.opts.ProvisionKey, ProvisionSecret: s.opts.ProvisionSecret}, true)
	return err
}

// CreateProfile adds a device profile.
func (s *Server) CreateProfile(spec ProfileSpec) (Profile, error) {
	return s.createProfile(spec, false)
}

func (s *Server) createProfile(spec ProfileSpec, def bool) (Profile, error) {
	if spec.Name == "" {
		return Profile{}, fmt.Errorf("%w: profile name is empty", ErrInvalid)
	}
	if spec.ProvisionType == "" {
		spec.ProvisionType = AllowCreateNewDevices
	}
	p := &Profile{ID: newUUID(), Name: spec.Name, Default: def, ProvisionType: spec.ProvisionType,
		ProvisionKey: spec.ProvisionKey, ProvisionSecret: spec.ProvisionSecret, RateLimit: spec.RateLimit, CreatedTime: nowMs()}
	s.store.mu.Lock()
	for _, q := range s.store.profiles {
		if q.Name == p.Name {
			s.store.mu.Unlock()
			return Profile{}, fmt.Errorf("%w: profile %q", ErrConflict, p.Name)
		}
		if p.ProvisionKey != "" && q.ProvisionKey == p.ProvisionKey {
			s.store.mu.Unlock()
			return Profile{}, fmt.Errorf("%w: provision key %q", ErrConflict, p.ProvisionKey)
		}
	}
	s.store.profiles[p.ID] = p
	s.store.mu.Unlock()
	return *p, s.store.put(bucketProfiles, p.ID, p)
}

// UpdateProfile saves a profile; a changed FirmwareID rolls the firmware out
// to the profile's devices that have no assignment of their own.
func (s *Server) UpdateProfile(p Profile) (Profile, error) {
	s.store.mu.Lock()
	old, ok := s.store.profiles[p.ID]
	if !ok {
		s.store.mu.Unlock()
		return Profile{}, fmt.Errorf("%w: profile %s", ErrNotFound, p.ID)
	}
	if err := s.store.assignable(p.FirmwareID, p.ID); err != nil {
		s.store.mu.Unlock()
		return Profile{}, err
	}
	changed := old.FirmwareID != p.FirmwareID
	cp := p
	s.store.profiles[p.ID] = &cp
	var affected []string
	if changed {
		for _, d := range s.store.devices {
			if d.ProfileID == p.ID && d.FirmwareID == "" {
				affected = append(affected, d.ID)
			}
		}
	}
	s.store.mu.Unlock()
	if err := s.store.put(bucketProfiles, p.ID, &cp); err != nil {
		return Profile{}, err
	}
	for _, id := range affected {
		s.firmwareChanged(id)
	}
	return cp, nil
}

// Profile returns a profile by id.
func (s *Server) Profile(id string) (Profile, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	p, ok := s.store.profiles[id]
	if !ok {
		return Profile{}, false
	}
	return *p, true
}

// Profiles lists the profiles by name.
func (s *Server) Profiles() []Profile {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := make([]Profile, 0, len(s.store.profiles))
	for _, p := range s.store.profiles {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DefaultProfile returns the default profile.
func (s *Server) DefaultProfile() (Profile, bool) {
	for _, p := range s.Profiles() {
		if p.Default {
			return p, true
		}
	}
	return Profile{}, false
}

func (s *Server) profileByKey(key string) (Profile, bool) {
	for _, p := range s.Profiles() {
		if p.ProvisionKey == key {
			return p, true
		}
	}
	return Profile{}, false
}

// CreateDevice adds a device. A name or credentials already in use give ErrConflict.
func (s *Server) CreateDevice(spec DeviceSpec) (Device, error) {
	if spec.Name == "" {
		return Device{}, fmt.Errorf("%w: device name is empty", ErrInvalid)
	}
	if spec.ProfileID == "" {
		p, _ := s.DefaultProfile()
		spec.ProfileID = p.ID
	}
	c := spec.Credentials
	if c.Type == "" {
		c.Type = tbapi.CredAccessToken
	}
	if c.Type == tbapi.CredAccessToken && c.Token == "" {
		c.Token = randomAlphanumeric(20)
	}
	if c.Type == tbapi.CredMQTTBasic && c.ClientID == "" && c.UserName == "" {
		return Device{}, fmt.Errorf("%w: MQTT_BASIC needs a client id or a user name", ErrInvalid)
	}
	s.store.mu.Lock()
	prof, ok := s.store.profiles[spec.ProfileID]
	if !ok {
		s.store.mu.Unlock()
		return Device{}, fmt.Errorf("%w: profile %s", ErrNotFound, spec.ProfileID)
	}
	if err := s.store.credentialsFree(c, ""); err != nil {
		s.store.mu.Unlock()
		return Device{}, err
	}
	if _, dup := s.store.byName[spec.Name]; dup {
		s.store.mu.Unlock()
		return Device{}, fmt.Errorf("%w: device %q", ErrConflict, spec.Name)
	}
	d := &Device{ID: newUUID(), Name: spec.Name, Type: prof.Name, ProfileID: prof.ID, Credentials: c, CreatedTime: nowMs()}
	s.store.indexDevice(d)
	hasFw := prof.FirmwareID != ""
	s.store.mu.Unlock()
	if err := s.store.put(bucketDevices, d.ID, d); err != nil {
		return Device{}, err
	}
	if hasFw {
		s.firmwareChanged(d.ID) // a new device in a profile with firmware is triggered at once
	}
	return *d, nil
}

// assignable checks that package pkgID ("" = none) may be assigned within
// profile profileID; the caller holds mu.
func (st *store) assignable(pkgID, profileID string) error {
	if pkgID == "" {
		return nil
	}
	pkg, ok := st.packages[pkgID]
	if !ok {
		return fmt.Errorf("%w: package %s", ErrNotFound, pkgID)
	}
	if pkg.ProfileID != profileID {
		return fmt.Errorf("%w: Can't assign firmware with different deviceProfile!", ErrInvalid)
	}
	return nil
}

// credentialsFree checks that no other device uses c; the caller holds mu.
func (st *store) credentialsFree(c Credentials, except string) error {
	var id string
	var ok bool
	switch c.Type {
	case tbapi.CredAccessToken:
		id, ok = st.byToken[c.Token]
	case tbapi.CredMQTTBasic:
		id, ok = st.byBasic[c.ClientID+"\x00"+c.UserName]
	default:
		return fmt.Errorf("%w: credentials type %q", ErrInvalid, c.Type)
	}
	if ok && id != except {
		return fmt.Errorf("%w: credentials already in use", ErrConflict)
	}
	return nil
}

// Device returns a device by id.
func (s *Server) Device(id string) (Device, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	d, ok := s.store.devices[id]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

func (s *Server) deviceByName(name string) (Device, bool) {
	s.store.mu.RLock()
	id, ok := s.store.byName[name]
	s.store.mu.RUnlock()
	if !ok {
		return Device{}, false
	}
	return s.Device(id)
}

// DeviceByName returns a device by name.
func (s *Server) DeviceByName(name string) (Device, bool) { return s.deviceByName(name) }

// Devices lists the devices by name.
func (s *Server) Devices() []Device {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := make([]Device, 0, len(s.store.devices))
	for _, d := range s.store.devices {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// UpdateDevice saves a device (name, firmware assignment, credentials). A
// changed FirmwareID starts (or cancels) an update; changed credentials
// close the device's sessions.
func (s *Server) UpdateDevice(d Device) (Device, error) {
	s.store.mu.Lock()
	old, ok := s.store.devices[d.ID]
	if !ok {
		s.store.mu.Unlock()
		return Device{}, fmt.Errorf("%w: device %s", ErrNotFound, d.ID)
	}
	if err := s.store.assignable(d.FirmwareID, d.ProfileID); err != nil {
		s.store.mu.Unlock()
		return Device{}, err
	}
	if other, dup := s.store.byName[d.Name]; dup && other != d.ID {
		s.store.mu.Unlock()
		return Device{}, fmt.Errorf("%w: device %q", ErrConflict, d.Name)
	}
	if err := s.store.credentialsFree(d.Credentials, d.ID); err != nil {
		s.store.mu.Unlock()
		return Device{}, err
	}
	credsChanged := old.Credentials != d.Credentials
	fwChanged := s.store.assigned(old) != s.store.assigned(&d)
	s.store.unindexDevice(old)
	cp := d
	s.store.indexDevice(&cp)
	s.store.mu.Unlock()
	if err := s.store.put(bucketDevices, d.ID, &cp); err != nil {
		return Device{}, err
	}
	if credsChanged {
		s.closeDevice(d.ID, "credentials updated")
	}
	if fwChanged {
		s.firmwareChanged(d.ID)
	}
	return cp, nil
}

// SetCredentials changes a device's credentials; its sessions are closed.
func (s *Server) SetCredentials(id string, c Credentials) (Device, error) {
	d, ok := s.Device(id)
	if !ok {
		return Device{}, fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	d.Credentials = c
	return s.UpdateDevice(d)
}

// DeleteDevice removes a device and closes its sessions.
func (s *Server) DeleteDevice(id string) error {
	s.store.mu.Lock()
	d, ok := s.store.devices[id]
	if !ok {
		s.store.mu.Unlock()
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	s.store.unindexDevice(d)
	delete(s.store.state, id)
	s.store.markDirty(id)
	s.store.mu.Unlock()
	s.closeDevice(id, "device deleted")
	return s.store.del(bucketDevices, id)
}

func (s *Server) closeDevice(id, why string) {
	for _, c := range s.deviceConns(id) {
		c.cl.Stop(fmt.Errorf("%s", why))
	}
}

// Connected reports whether the device has a live session.
func (s *Server) Connected(id string) bool { return len(s.deviceConns(id)) > 0 }

func (s *Server) setAttr(id, scope, key string, v tbapi.Value) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if st := s.store.state[id]; st != nil {
		st.Attrs[scope][key] = TsValue{Ts: nowMs(), Value: v}
		s.store.markDirty(id)
	}
}

// SetSharedAttributes saves shared attributes and pushes the changed keys, in
// one message, to the device's sessions that subscribed to them.
func (s *Server) SetSharedAttributes(id string, values []tbapi.Member) error {
	return s.setScopeAttributes(id, SharedScope, values)
}

// SetServerAttributes saves server attributes (never pushed).
func (s *Server) SetServerAttributes(id string, values []tbapi.Member) error {
	return s.setScopeAttributes(id, ServerScope, values)
}

func (s *Server) setScopeAttributes(id, scope string, values []tbapi.Member) error {
	now := nowMs()
	s.store.mu.Lock()
	st := s.store.state[id]
	if st == nil {
		s.store.mu.Unlock()
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	for _, m := range values {
		st.Attrs[scope][m.Key] = TsValue{Ts: now, Value: m.Value}
	}
	s.store.markDirty(id)
	s.store.mu.Unlock()
	if err := s.store.flushDirty(); err != nil {
		return err
	}
	if scope == SharedScope && len(values) > 0 {
		s.push(id, tbapi.AttrUpdate{Values: values}.Encode())
	}
	return nil
}

// DeleteSharedAttributes removes keys and pushes {"deleted":[...]}.
func (s *Server) DeleteSharedAttributes(id string, keys []string) error {
	s.store.mu.Lock()
	st := s.store.state[id]
	if st == nil {
		s.store.mu.Unlock()
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	var gone []string
	for _, k := range keys {
		if _, ok := st.Attrs[SharedScope][k]; ok {
			delete(st.Attrs[SharedScope], k)
			gone = append(gone, k)
		}
	}
	s.store.markDirty(id)
	s.store.mu.Unlock()
	if len(gone) > 0 {
		s.push(id, tbapi.AttrUpdate{Deleted: gone}.Encode())
	}
	return s.store.flushDirty()
}

// push sends a shared-attribute update to subscribed sessions only.
func (s *Server) push(id string, payload []byte) {
	for _, c := range s.deviceConns(id) {
		if _, ok := c.subscribedQoS(tbapi.TopicAttributes); ok {
			c.write(tbapi.TopicAttributes, payload)
		}
	}
}

// Attributes returns a copy of a device's attributes in a scope.
func (s *Server) Attributes(id, scope string) map[string]TsValue {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := map[string]TsValue{}
	if st := s.store.state[id]; st != nil {
		for k, v := range st.Attrs[scope] {
			out[k] = v
		}
	}
	return out
}

// Latest returns a copy of a device's latest telemetry.
func (s *Server) Latest(id string) map[string]TsValue {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := map[string]TsValue{}
	if st := s.store.state[id]; st != nil {
		for k, v := range st.Latest {
			out[k] = v
		}
	}
	return out
}

// History returns the kept values of a telemetry key, oldest first.
func (s *Server) History(id, key string) []TsValue {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if st := s.store.state[id]; st != nil {
		return append([]TsValue(nil), st.History[key]...)
	}
	return nil
}

// DeviceCounters are a device's message and data-point counts.
type DeviceCounters struct {
	Msgs, Points, LastActivity, LastConnect int64
}

// Counters returns a device's counters.
func (s *Server) Counters(id string) DeviceCounters {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if st := s.store.state[id]; st != nil {
		return DeviceCounters{st.Msgs, st.Points, st.LastActivity, st.LastConnect}
	}
	return DeviceCounters{}
}

// SendRPC sends a server-side RPC to a device that subscribed to
// v1/devices/me/rpc/request/+. A two-way call waits for the answer or the
// timeout; a one-way call returns once the request is written.
func (s *Server) SendRPC(ctx context.Context, id, method string, params tbapi.Value, twoWay bool, timeout time.Duration) ([]byte, error) {
	var target *conn
	for _, c := range s.deviceConns(id) {
		if _, ok := c.subscribedQoS(tbapi.TopicRPCRequestPrefix + "1"); ok {
			target = c
		}
	}
	if target == nil {
		return nil, ErrOffline
	}
	s.rpcMu.Lock()
	s.rpcNext[id]++
	reqID := s.rpcNext[id]
	key := id + "/" + strconv.Itoa(reqID)
	ch := make(chan []byte, 1)
	if twoWay {
		s.rpcWait[key] = ch
	}
	s.rpcMu.Unlock()
	defer func() {
		s.rpcMu.Lock()
		delete(s.rpcWait, key)
		s.rpcMu.Unlock()
	}()
	if err := target.write(tbapi.RPCRequestTopic(reqID), tbapi.RPCRequest{Method: method, Params: params}.Encode()); err != nil {
		return nil, err
	}
	if !twoWay {
		return nil, nil
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case resp := <-ch:
		return resp, nil
	case <-t.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) rpcResponse(id, topic string, payload []byte) {
	reqID, ok := tbapi.ParseRPCResponseTopic(topic)
	if !ok {
		return
	}
	s.rpcMu.Lock()
	ch := s.rpcWait[id+"/"+strconv.Itoa(reqID)]
	s.rpcMu.Unlock()
	if ch != nil {
		select {
		case ch <- append([]byte(nil), payload...):
		default:
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func itoa(n int) string { return strconv.Itoa(n) }

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) + ":1" }
