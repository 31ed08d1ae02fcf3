package core

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// PackageSpec creates an OTA package (POST /api/otaPackage).
type PackageSpec struct {
	Title     string
	Version   string
	ProfileID string // "" = the default profile
	Tag       string
}

// CreatePackage adds a package without data; title and version must be
// unique, as ThingsBoard's ota_package_tenant_title_version_unq_key makes them.
func (c *Core) CreatePackage(spec PackageSpec) (Package, error) {
	if spec.Title == "" || spec.Version == "" {
		return Package{}, fmt.Errorf("%w: title and version are required", ErrInvalid)
	}
	if spec.ProfileID == "" {
		p, _ := c.DefaultProfile()
		spec.ProfileID = p.ID
	}
	if _, ok := c.Profile(spec.ProfileID); !ok {
		return Package{}, fmt.Errorf("%w: profile %s", ErrNotFound, spec.ProfileID)
	}
	p := &Package{ID: c.newUUID(), Title: spec.Title, Version: spec.Version, Type: "FIRMWARE",
		ProfileID: spec.ProfileID, Tag: spec.Tag, CreatedTime: c.nowMs()}
	st := c.store
	st.pkgMu.Lock()
	defer st.pkgMu.Unlock()
	if _, ok := c.PackageByTitle(p.Title, p.Version); ok {
		return Package{}, fmt.Errorf("%w: OtaPackage with such title and version already exists!", ErrConflict)
	}
	return *p, st.setPackage(p.ID, p, nil, nil)
}

// UploadPackage stores the package data (POST /api/otaPackage/{id}). The
// checksum is computed with ThingsBoard's encoding; a given one must match.
// Uploading the bytes a package already has changes nothing; other bytes
// are refused, as ThingsBoard's OtaPackageDataValidator refuses them.
func (c *Core) UploadPackage(id string, data []byte, algorithm, checksum, fileName, contentType string) (Package, error) {
	alg, ok := tbapi.ParseAlgorithm(algorithm)
	if !ok {
		return Package{}, fmt.Errorf("%w: checksum algorithm %q", ErrInvalid, algorithm)
	}
	if len(data) == 0 {
		return Package{}, fmt.Errorf("%w: OtaPackage data should be specified!", ErrInvalid)
	}
	if err := c.checkPackageSize(int64(len(data))); err != nil {
		return Package{}, err
	}
	sum := tbapi.ChecksumHex(alg, data)
	if checksum != "" && !tbapi.ChecksumEqual(checksum, sum) {
		return Package{}, fmt.Errorf("%w: Wrong otaPackage file!", ErrInvalid)
	}
	key := blobKey(data)
	st := c.store
	st.pkgMu.Lock()
	defer st.pkgMu.Unlock()
	p, ok := c.Package(id)
	if !ok {
		return Package{}, fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	if p.HasData {
		if p.DataSHA256 == key {
			return p, nil
		}
		return Package{}, fmt.Errorf("%w: Updating otaPackage data is prohibited!", ErrInvalid)
	}
	p.Algorithm, p.Checksum, p.Size, p.HasData, p.DataSHA256 = alg.String(), sum, int64(len(data)), true, key
	p.FileName, p.ContentType = fileName, contentType
	return p, st.setPackage(id, &p, data, nil)
}

// MaxPackageSize is the largest package data accepted (0 or less: no limit).
func (c *Core) MaxPackageSize() int64 { return max(c.opts.MaxPackageSize, 0) }

// checkPackageSize refuses data larger than Options.MaxPackageSize.
func (c *Core) checkPackageSize(n int64) error {
	if max := c.opts.MaxPackageSize; max > 0 && n > max {
		return &TooLargeError{Size: n, Limit: max}
	}
	return nil
}

// TooLargeError is package data over Options.MaxPackageSize; errors.Is
// matches ErrTooLarge.
type TooLargeError struct{ Size, Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("package data too large: %d bytes, the limit is %d bytes (the largest OTA slot by default)", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) hold.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// AddFirmware creates and uploads a package in one call.
func (c *Core) AddFirmware(spec PackageSpec, data []byte, alg tbapi.Algorithm) (Package, error) {
	p, err := c.CreatePackage(spec)
	if err != nil {
		return Package{}, err
	}
	return c.UploadPackage(p.ID, data, alg.String(), "", spec.Title+"-"+spec.Version+".bin", "application/octet-stream")
}

// EnsureFirmware is AddFirmware made repeatable: a package of that title
// and version with the same bytes is returned as it is (created is false),
// one without bytes yet gets them, and one with other bytes is an
// ErrConflict that says so. A rollout interrupted by a restart can so be
// pushed again: the queue resumes, nothing is duplicated.
func (c *Core) EnsureFirmware(spec PackageSpec, data []byte, alg tbapi.Algorithm) (p Package, created bool, err error) {
	p, ok := c.PackageByTitle(spec.Title, spec.Version)
	if !ok {
		p, err = c.AddFirmware(spec, data, alg)
		return p, err == nil, err
	}
	if !p.HasData {
		p, err = c.UploadPackage(p.ID, data, alg.String(), "", spec.Title+"-"+spec.Version+".bin", "application/octet-stream")
		return p, false, err
	}
	if p.DataSHA256 != blobKey(data) {
		return Package{}, false, &kindError{ErrConflict, fmt.Sprintf(
			"package %s %s already exists with other bytes (%d bytes, SHA-256 %.12s; these are %d bytes, SHA-256 %.12s): give this build a new version",
			spec.Title, spec.Version, p.Size, p.DataSHA256, len(data), blobKey(data))}
	}
	return p, false, nil
}

// PackageByTitle returns the package of that title and version.
func (c *Core) PackageByTitle(title, version string) (Package, bool) {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	for _, p := range c.store.packages {
		if p.Title == title && p.Version == version {
			return *p, true
		}
	}
	return Package{}, false
}

// ReplacePackageData swaps a package's bytes without changing its checksum:
// a corrupt package, for fault injection. The old bytes are freed when no
// other package uses them.
func (c *Core) ReplacePackageData(id string, data []byte) error {
	st := c.store
	st.pkgMu.Lock()
	defer st.pkgMu.Unlock()
	p, ok := c.Package(id)
	if !ok {
		return fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	p.DataSHA256, p.Size, p.HasData = blobKey(data), int64(len(data)), true
	return st.setPackage(id, &p, data, nil)
}

// Package returns a package by id.
func (c *Core) Package(id string) (Package, bool) {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	p, ok := c.store.packages[id]
	if !ok {
		return Package{}, false
	}
	return *p, true
}

// Packages lists packages, newest first (then by title and version).
func (c *Core) Packages() []Package {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	out := make([]Package, 0, len(c.store.packages))
	for _, p := range c.store.packages {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CreatedTime != b.CreatedTime {
			return a.CreatedTime > b.CreatedTime
		}
		if a.Title != b.Title {
			return a.Title < b.Title
		}
		return a.Version < b.Version
	})
	return out
}

// DeletePackage removes a package; refused while it is assigned. Its bytes
// are freed, in memory and in the state file, when no other package uses them.
func (c *Core) DeletePackage(id string) error {
	st := c.store
	st.pkgMu.Lock()
	defer st.pkgMu.Unlock()
	return st.setPackage(id, nil, nil, func() error {
		if _, ok := st.packages[id]; !ok {
			return fmt.Errorf("%w: package %s", ErrNotFound, id)
		}
		for _, p := range st.profiles {
			if p.FirmwareID == id {
				return fmt.Errorf("%w: The otaPackage referenced by the device profile cannot be deleted!", ErrConflict)
			}
		}
		for _, d := range st.devices {
			if d.FirmwareID == id {
				return fmt.Errorf("%w: The otaPackage referenced by the devices cannot be deleted!", ErrConflict)
			}
		}
		return nil
	})
}

// PackageData returns a package's bytes (shared: do not modify them).
func (c *Core) PackageData(id string) ([]byte, bool) {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	p, ok := c.store.packages[id]
	if !ok || !p.HasData {
		return nil, false
	}
	d, ok := c.store.blobs[p.DataSHA256]
	return d, ok
}

// assigned is the package a device gets: its own, else its profile's; the
// caller holds mu.
func (s *store) assigned(d *Device) string {
	if d.FirmwareID != "" {
		return d.FirmwareID
	}
	if p := s.profiles[d.ProfileID]; p != nil {
		return p.FirmwareID
	}
	return ""
}

func (c *Core) assignedFirmware(id string) string {
	c.store.mu.RLock()
	defer c.store.mu.RUnlock()
	if d := c.store.devices[id]; d != nil {
		return c.store.assigned(d)
	}
	return ""
}

// AssignProfileFirmware sets (or with "" clears) a profile's firmware.
func (c *Core) AssignProfileFirmware(profileID, pkgID string) error {
	p, ok := c.Profile(profileID)
	if !ok {
		return fmt.Errorf("%w: profile %s", ErrNotFound, profileID)
	}
	p.FirmwareID = pkgID
	_, err := c.UpdateProfile(p)
	return err
}

// AssignDeviceFirmware sets (or with "" clears) a device's own firmware.
func (c *Core) AssignDeviceFirmware(deviceID, pkgID string) error {
	d, ok := c.Device(deviceID)
	if !ok {
		return fmt.Errorf("%w: device %s", ErrNotFound, deviceID)
	}
	d.FirmwareID = pkgID
	_, err := c.UpdateDevice(d)
	return err
}

// fwUnassignPushOrder are the fw_* shared attributes an unassignment
// deletes (OtaPackageUtil.ALL_FW_ATTRIBUTE_KEYS), in the order ThingsBoard
// 4.3's {"deleted":[...]} lists them.
var fwUnassignPushOrder = []string{tbapi.KeyFwAlgorithm, tbapi.KeyFwVersion, tbapi.KeyFwTs, tbapi.KeyFwTag,
	tbapi.KeyFwChecksum, tbapi.KeyFwTitle, tbapi.KeyFwState, tbapi.KeyFwSize, tbapi.KeyFwURL}

// firmwareChanged is DefaultOtaPackageStateService: on assignment it writes
// target_fw_* and fw_state QUEUED and queues the device; on unassignment it
// deletes every fw_* shared attribute.
func (c *Core) firmwareChanged(id string) {
	pkgID := c.assignedFirmware(id)
	if pkgID == "" {
		// ThingsBoard 4.3 pushes all nine fw_* keys, whether the device had
		// them or not, in the order its HashSet of them iterates (seen).
		c.deleteAttributes(id, SharedScope, fwUnassignPushOrder, true)
		return
	}
	p, ok := c.Package(pkgID)
	if !ok {
		return
	}
	if st := c.store.stateOf(id); st != nil {
		now := c.nowMs()
		str := func(v string) tbapi.Value { return tbapi.Value{Kind: tbapi.String, Str: v} }
		st.mu.Lock()
		c.store.setLatest(st, tbapi.KeyTargetFwTitle, TsValue{now, str(p.Title)})
		c.store.setLatest(st, tbapi.KeyTargetFwVersion, TsValue{now, str(p.Version)})
		if p.Tag != "" {
			c.store.setLatest(st, tbapi.KeyTargetFwTag, TsValue{now, str(p.Tag)})
		}
		c.store.setLatest(st, tbapi.KeyTargetFwTs, TsValue{now, tbapi.Value{Kind: tbapi.Number, Str: strconv.FormatInt(now, 10)}})
		c.store.setLatest(st, tbapi.KeyFwState, TsValue{now, str(string(tbapi.FwQueued))})
		st.mu.Unlock()
		c.enqueueOTA(id, st)
	}
}

// initiate writes fw_state INITIATED and the fw_* shared attributes,
// deleting fw_tag (no tag) and fw_url (a binary package), in memory; it
// returns the pushes that tell the device (the attributes in one message,
// then the deletions), which the caller sends once the pack is in the file.
func (c *Core) initiate(id string) [][]byte {
	st := c.store.stateOf(id)
	if st == nil {
		return nil
	}
	p, ok := c.Package(c.assignedFirmware(id))
	now := c.nowMs()
	st.mu.Lock()
	defer c.store.markDirty(id, st)
	defer st.mu.Unlock()
	st.Queued = 0 // released, whatever follows
	if !ok || !p.HasData {
		return nil
	}
	c.store.setLatest(st, tbapi.KeyFwState, TsValue{now, tbapi.Value{Kind: tbapi.String, Str: string(tbapi.FwInitiated)}})
	info := tbapi.FwInfo{Title: p.Title, Version: p.Version, Size: p.Size, Checksum: p.Checksum, Algorithm: p.Algorithm}
	vals := info.Members()
	if p.Tag != "" {
		vals = append(vals, tbapi.Member{Key: tbapi.KeyFwTag, Value: tbapi.Value{Kind: tbapi.String, Str: p.Tag}})
	}
	for _, m := range vals {
		st.Attrs[SharedScope][m.Key] = TsValue{Ts: now, Value: m.Value}
	}
	// The deletions come first and are pushed whether the keys existed or
	// not, fw_tag before fw_url, as ThingsBoard 4.3 does (seen:
	// {"deleted":["fw_tag","fw_url"]}, then the fw_* values, on a device that
	// never had either key).
	var del []string
	if p.Tag == "" {
		del = append(del, tbapi.KeyFwTag)
	}
	del = append(del, tbapi.KeyFwURL)
	for _, k := range del {
		delete(st.Attrs[SharedScope], k)
	}
	return [][]byte{tbapi.AttrUpdate{Deleted: del}.Encode(), tbapi.AttrUpdate{Values: vals}.Encode()}
}

// OTAProgress counts devices per fw_state for each package assigned to them.
func (c *Core) OTAProgress() map[string]map[string]int {
	st := c.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := map[string]map[string]int{}
	for id, d := range st.devices {
		pkg := st.assigned(d)
		if pkg == "" {
			continue
		}
		state := "NONE"
		if ds := st.state[id]; ds != nil {
			ds.mu.Lock()
			if v, ok := ds.Latest[tbapi.KeyFwState]; ok {
				state, _ = v.Value.Text()
			}
			ds.mu.Unlock()
		}
		if out[pkg] == nil {
			out[pkg] = map[string]int{}
		}
		out[pkg][state]++
	}
	return out
}
