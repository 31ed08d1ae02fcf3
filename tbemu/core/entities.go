package core

import (
	"fmt"
	"sort"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// ProfileSpec creates a device profile.
type ProfileSpec struct {
	Name            string
	ProvisionType   string // default ALLOW_CREATE_NEW_DEVICES
	ProvisionKey    string
	ProvisionSecret string
	TransportLimits TransportLimits // see Profile
	RateLimit       float64         // see Profile
}

// DeviceSpec creates a device. An empty ProfileID means the default profile;
// empty credentials mean a generated 20-character access token.
type DeviceSpec struct {
	Name        string
	ProfileID   string
	Credentials Credentials
}

func (c *Core) ensureDefaultProfile() error {
	if _, ok := c.DefaultProfile(); ok {
		return nil
	}
	_, err := c.createProfile(ProfileSpec{Name: "default", ProvisionKey: c.opts.ProvisionKey, ProvisionSecret: c.opts.ProvisionSecret}, true)
	return err
}

// CreateProfile adds a device profile.
func (c *Core) CreateProfile(spec ProfileSpec) (Profile, error) {
	return c.createProfile(spec, false)
}

func (c *Core) createProfile(spec ProfileSpec, def bool) (Profile, error) {
	if spec.Name == "" {
		return Profile{}, fmt.Errorf("%w: profile name is empty", ErrInvalid)
	}
	if spec.ProvisionType == "" {
		spec.ProvisionType = AllowCreateNewDevices
	}
	if err := spec.TransportLimits.Validate(); err != nil {
		return Profile{}, err
	}
	p := &Profile{ID: c.newUUID(), Name: spec.Name, Default: def, ProvisionType: spec.ProvisionType,
		ProvisionKey: spec.ProvisionKey, ProvisionSecret: spec.ProvisionSecret, TransportLimits: spec.TransportLimits,
		RateLimit: spec.RateLimit, CreatedTime: c.nowMs()}
	st := c.store
	st.mu.Lock()
	// Names first, then keys: the error does not depend on map order.
	for _, q := range st.profiles {
		if q.Name == p.Name {
			st.mu.Unlock()
			return Profile{}, fmt.Errorf("%w: profile %q", ErrConflict, p.Name)
		}
	}
	for _, q := range st.profiles {
		if p.ProvisionKey != "" && q.ProvisionKey == p.ProvisionKey {
			st.mu.Unlock()
			return Profile{}, fmt.Errorf("%w: provision key %q", ErrConflict, p.ProvisionKey)
		}
	}
	st.profiles[p.ID] = p
	st.mu.Unlock()
	return *p, st.put(bucketProfiles, p.ID, p)
}

// UpdateProfile saves a profile; a changed FirmwareID rolls the firmware out
// to the profile's devices that have no assignment of their own, queued in
// the order of their names.
func (c *Core) UpdateProfile(p Profile) (Profile, error) {
	if err := p.TransportLimits.Validate(); err != nil {
		return Profile{}, err
	}
	st := c.store
	st.mu.Lock()
	old, ok := st.profiles[p.ID]
	if !ok {
		st.mu.Unlock()
		return Profile{}, fmt.Errorf("%w: profile %s", ErrNotFound, p.ID)
	}
	if err := st.assignable(p.FirmwareID, p.ID); err != nil {
		st.mu.Unlock()
		return Profile{}, err
	}
	changed := old.FirmwareID != p.FirmwareID
	cp := p
	st.profiles[p.ID] = &cp
	var affected []*Device
	if changed {
		for _, d := range st.devices {
			if d.ProfileID == p.ID && d.FirmwareID == "" {
				affected = append(affected, d)
			}
		}
	}
	sort.Slice(affected, func(i, j int) bool { return affected[i].Name < affected[j].Name })
	st.mu.Unlock()
	if err := st.put(bucketProfiles, p.ID, &cp); err != nil {
		return Profile{}, err
	}
	for _, d := range affected {
		c.firmwareChanged(d.ID)
	}
	if len(affected) > 0 {
		// The rollout is durable when the call returns: every device's
		// QUEUED state and place in one transaction.
		if err := st.flushDirty(); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// Profile returns a profile by id.
func (c *Core) Profile(id string) (Profile, bool) {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	p, ok := c.store.profiles[id]
	if !ok {
		return Profile{}, false
	}
	return *p, true
}

// Profiles lists the profiles by name.
func (c *Core) Profiles() []Profile {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	out := make([]Profile, 0, len(c.store.profiles))
	for _, p := range c.store.profiles {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DefaultProfile returns the default profile.
func (c *Core) DefaultProfile() (Profile, bool) {
	for _, p := range c.Profiles() {
		if p.Default {
			return p, true
		}
	}
	return Profile{}, false
}

func (c *Core) profileByKey(key string) (Profile, bool) {
	for _, p := range c.Profiles() {
		if p.ProvisionKey == key {
			return p, true
		}
	}
	return Profile{}, false
}

// CreateDevice adds a device. A name or credentials already in use give ErrConflict.
func (c *Core) CreateDevice(spec DeviceSpec) (Device, error) {
	if spec.Name == "" {
		return Device{}, fmt.Errorf("%w: device name is empty", ErrInvalid)
	}
	if spec.ProfileID == "" {
		p, _ := c.DefaultProfile()
		spec.ProfileID = p.ID
	}
	cr := spec.Credentials
	if cr.Type == "" {
		cr.Type = tbapi.CredAccessToken
	}
	if cr.Type == tbapi.CredAccessToken && cr.Token == "" {
		cr.Token = c.RandomString(20)
	}
	if cr.Type == tbapi.CredMQTTBasic && cr.ClientID == "" && cr.UserName == "" {
		return Device{}, fmt.Errorf("%w: MQTT_BASIC needs a client id or a user name", ErrInvalid)
	}
	id, now := c.newUUID(), c.nowMs()
	st := c.store
	st.mu.Lock()
	prof, ok := st.profiles[spec.ProfileID]
	if !ok {
		st.mu.Unlock()
		return Device{}, fmt.Errorf("%w: profile %s", ErrNotFound, spec.ProfileID)
	}
	if err := st.credentialsFree(cr, ""); err != nil {
		st.mu.Unlock()
		return Device{}, err
	}
	if _, dup := st.byName[spec.Name]; dup {
		st.mu.Unlock()
		return Device{}, fmt.Errorf("%w: device %q", ErrConflict, spec.Name)
	}
	d := &Device{ID: id, Name: spec.Name, Type: prof.Name, ProfileID: prof.ID, Credentials: cr, CreatedTime: now}
	st.indexDevice(d)
	hasFw := prof.FirmwareID != ""
	st.mu.Unlock()
	if err := st.put(bucketDevices, d.ID, d); err != nil {
		return Device{}, err
	}
	if hasFw {
		c.firmwareChanged(d.ID) // a new device in a profile with firmware is triggered at once
	}
	return *d, nil
}

// assignable checks that package pkgID ("" = none) may be assigned within
// profile profileID; the caller holds mu.
func (s *store) assignable(pkgID, profileID string) error {
	if pkgID == "" {
		return nil
	}
	pkg, ok := s.packages[pkgID]
	if !ok {
		return fmt.Errorf("%w: package %s", ErrNotFound, pkgID)
	}
	if pkg.ProfileID != profileID {
		return fmt.Errorf("%w: Can't assign firmware with different deviceProfile!", ErrInvalid)
	}
	return nil
}

// credentialsFree checks that no other device uses c; the caller holds mu.
func (s *store) credentialsFree(c Credentials, except string) error {
	var id string
	var ok bool
	switch c.Type {
	case tbapi.CredAccessToken:
		id, ok = s.byToken[c.Token]
	case tbapi.CredMQTTBasic:
		id, ok = s.byBasic[c.ClientID+"\x00"+c.UserName]
	default:
		return fmt.Errorf("%w: credentials type %q", ErrInvalid, c.Type)
	}
	if ok && id != except {
		return fmt.Errorf("%w: credentials already in use", ErrConflict)
	}
	return nil
}

// Device returns a device by id.
func (c *Core) Device(id string) (Device, bool) {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	d, ok := c.store.devices[id]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// DeviceByName returns a device by name.
func (c *Core) DeviceByName(name string) (Device, bool) {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	id, ok := c.store.byName[name]
	if !ok {
		return Device{}, false
	}
	return *c.store.devices[id], true
}

// Devices lists the devices by name.
func (c *Core) Devices() []Device {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	out := make([]Device, 0, len(c.store.devices))
	for _, d := range c.store.devices {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// UpdateDevice saves a device (name, firmware assignment, credentials). A
// changed FirmwareID starts (or cancels) an update; changed credentials
// close the device's sessions.
func (c *Core) UpdateDevice(d Device) (Device, error) {
	st := c.store
	st.mu.Lock()
	old, ok := st.devices[d.ID]
	if !ok {
		st.mu.Unlock()
		return Device{}, fmt.Errorf("%w: device %s", ErrNotFound, d.ID)
	}
	if err := st.assignable(d.FirmwareID, d.ProfileID); err != nil {
		st.mu.Unlock()
		return Device{}, err
	}
	if other, dup := st.byName[d.Name]; dup && other != d.ID {
		st.mu.Unlock()
		return Device{}, fmt.Errorf("%w: device %q", ErrConflict, d.Name)
	}
	if err := st.credentialsFree(d.Credentials, d.ID); err != nil {
		st.mu.Unlock()
		return Device{}, err
	}
	credsChanged := old.Credentials != d.Credentials
	fwChanged := st.assigned(old) != st.assigned(&d)
	st.unindexDevice(old)
	cp := d
	st.indexDevice(&cp)
	st.mu.Unlock()
	if err := st.put(bucketDevices, d.ID, &cp); err != nil {
		return Device{}, err
	}
	if credsChanged {
		c.closeDevice(d.ID, ReasonCredentialsUpdated)
	}
	if fwChanged {
		c.firmwareChanged(d.ID)
		if err := st.flushDirty(); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// SetCredentials changes a device's credentials; its sessions are closed.
func (c *Core) SetCredentials(id string, cr Credentials) (Device, error) {
	d, ok := c.Device(id)
	if !ok {
		return Device{}, fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	d.Credentials = cr
	return c.UpdateDevice(d)
}

// DeleteDevice removes a device and closes its sessions.
func (c *Core) DeleteDevice(id string) error {
	st := c.store
	st.mu.Lock()
	d, ok := st.devices[id]
	if !ok {
		st.mu.Unlock()
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	st.unindexDevice(d)
	delete(st.state, id)
	st.mu.Unlock()
	st.markDirty(id, nil)
	c.limiters.Delete(id) // DefaultTransportRateLimitService.remove(deviceId)
	c.closeDevice(id, ReasonDeviceDeleted)
	return st.del(bucketDevices, id)
}
