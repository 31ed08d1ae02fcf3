package tbemu

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

// CreatePackage adds a package without data; title and version must be unique.
func (s *Server) CreatePackage(spec PackageSpec) (Package, error) {
	if spec.Title == "" || spec.Version == "" {
		return Package{}, fmt.Errorf("%w: title and version are required", ErrInvalid)
	}
	if spec.ProfileID == "" {
		p, _ := s.DefaultProfile()
		spec.ProfileID = p.ID
	}
	if _, ok := s.Profile(spec.ProfileID); !ok {
		return Package{}, fmt.Errorf("%w: profile %s", ErrNotFound, spec.ProfileID)
	}
	p := &Package{ID: newUUID(), Title: spec.Title, Version: spec.Version, Type: "FIRMWARE",
		ProfileID: spec.ProfileID, Tag: spec.Tag, CreatedTime: nowMs()}
	s.store.mu.Lock()
	for _, q := range s.store.packages {
		if q.Title == p.Title && q.Version == p.Version {
			s.store.mu.Unlock()
			return Package{}, fmt.Errorf("%w: OtaPackage with such title and version already exists", ErrConflict)
		}
	}
	s.store.packages[p.ID] = p
	s.store.mu.Unlock()
	return *p, s.store.put(bucketPackages, p.ID, p)
}

// UploadPackage stores the package data (POST /api/otaPackage/{id}). The
// checksum is computed with ThingsBoard's encoding; a given one must match.
func (s *Server) UploadPackage(id string, data []byte, algorithm, checksum, fileName, contentType string) (Package, error) {
	alg, ok := tbapi.ParseAlgorithm(algorithm)
	if !ok {
		return Package{}, fmt.Errorf("%w: checksum algorithm %q", ErrInvalid, algorithm)
	}
	sum := tbapi.ChecksumHex(alg, data)
	if checksum != "" && !tbapi.ChecksumEqual(checksum, sum) {
		return Package{}, fmt.Errorf("%w: Wrong otaPackage file!", ErrInvalid)
	}
	key, err := s.store.putBlob(data)
	if err != nil {
		return Package{}, err
	}
	s.store.mu.Lock()
	p, ok := s.store.packages[id]
	if !ok {
		s.store.mu.Unlock()
		return Package{}, fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	p.Algorithm, p.Checksum, p.Size, p.HasData, p.DataSHA256 = alg.String(), sum, int64(len(data)), true, key
	p.FileName, p.ContentType = fileName, contentType
	cp := *p
	s.store.mu.Unlock()
	return cp, s.store.put(bucketPackages, id, &cp)
}

// AddFirmware creates and uploads a package in one call.
func (s *Server) AddFirmware(spec PackageSpec, data []byte, alg tbapi.Algorithm) (Package, error) {
	p, err := s.CreatePackage(spec)
	if err != nil {
		return Package{}, err
	}
	return s.UploadPackage(p.ID, data, alg.String(), "", spec.Title+"-"+spec.Version+".bin", "application/octet-stream")
}

// ReplacePackageData swaps a package's bytes without changing its checksum:
// a corrupt package, for fault injection.
func (s *Server) ReplacePackageData(id string, data []byte) error {
	key, err := s.store.putBlob(data)
	if err != nil {
		return err
	}
	s.store.mu.Lock()
	p, ok := s.store.packages[id]
	if ok {
		p.DataSHA256, p.Size = key, int64(len(data))
	}
	s.store.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	return s.store.put(bucketPackages, id, p)
}

// Package returns a package by id.
func (s *Server) Package(id string) (Package, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	p, ok := s.store.packages[id]
	if !ok {
		return Package{}, false
	}
	return *p, true
}

// Packages lists packages, newest first.
func (s *Server) Packages() []Package {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := make([]Package, 0, len(s.store.packages))
	for _, p := range s.store.packages {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedTime > out[j].CreatedTime })
	return out
}

// DeletePackage removes a package; refused while it is assigned.
func (s *Server) DeletePackage(id string) error {
	s.store.mu.Lock()
	if _, ok := s.store.packages[id]; !ok {
		s.store.mu.Unlock()
		return fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	for _, p := range s.store.profiles {
		if p.FirmwareID == id {
			s.store.mu.Unlock()
			return fmt.Errorf("%w: The otaPackage referenced by the device profile cannot be deleted!", ErrConflict)
		}
	}
	for _, d := range s.store.devices {
		if d.FirmwareID == id {
			s.store.mu.Unlock()
			return fmt.Errorf("%w: The otaPackage referenced by the devices cannot be deleted!", ErrConflict)
		}
	}
	delete(s.store.packages, id)
	s.store.mu.Unlock()
	return s.store.del(bucketPackages, id)
}

func (s *Server) packageData(id string) ([]byte, bool) {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	p, ok := s.store.packages[id]
	if !ok || !p.HasData {
		return nil, false
	}
	d, ok := s.store.blobs[p.DataSHA256]
	return d, ok
}

// assigned is the package a device gets: its own, else its profile's; the
// caller holds mu.
func (st *store) assigned(d *Device) string {
	if d.FirmwareID != "" {
		return d.FirmwareID
	}
	if p := st.profiles[d.ProfileID]; p != nil {
		return p.FirmwareID
	}
	return ""
}

func (s *Server) assignedFirmware(id string) string {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if d := s.store.devices[id]; d != nil {
		return s.store.assigned(d)
	}
	return ""
}

// AssignProfileFirmware sets (or with "" clears) a profile's firmware.
func (s *Server) AssignProfileFirmware(profileID, pkgID string) error {
	p, ok := s.Profile(profileID)
	if !ok {
		return fmt.Errorf("%w: profile %s", ErrNotFound, profileID)
	}
	p.FirmwareID = pkgID
	_, err := s.UpdateProfile(p)
	return err
}

// AssignDeviceFirmware sets (or with "" clears) a device's own firmware.
func (s *Server) AssignDeviceFirmware(deviceID, pkgID string) error {
	d, ok := s.Device(deviceID)
	if !ok {
		return fmt.Errorf("%w: device %s", ErrNotFound, deviceID)
	}
	d.FirmwareID = pkgID
	_, err := s.UpdateDevice(d)
	return err
}

var fwSharedKeys = []string{tbapi.KeyFwTitle, tbapi.KeyFwVersion, tbapi.KeyFwTs, tbapi.KeyFwState,
	tbapi.KeyFwSize, tbapi.KeyFwChecksum, tbapi.KeyFwAlgorithm, tbapi.KeyFwURL, tbapi.KeyFwTag}

// firmwareChanged is DefaultOtaPackageStateService: on assignment it writes
// target_fw_* and fw_state QUEUED and queues the device; on unassignment it
// deletes every fw_* shared attribute.
func (s *Server) firmwareChanged(id string) {
	pkgID := s.assignedFirmware(id)
	if pkgID == "" {
		s.DeleteSharedAttributes(id, fwSharedKeys)
		return
	}
	p, ok := s.Package(pkgID)
	if !ok {
		return
	}
	now := nowMs()
	s.store.mu.Lock()
	if st := s.store.state[id]; st != nil {
		str := func(v string) tbapi.Value { return tbapi.Value{Kind: tbapi.String, Str: v} }
		s.store.setLatest(st, tbapi.KeyTargetFwTitle, TsValue{now, str(p.Title)})
		s.store.setLatest(st, tbapi.KeyTargetFwVersion, TsValue{now, str(p.Version)})
		if p.Tag != "" {
			s.store.setLatest(st, tbapi.KeyTargetFwTag, TsValue{now, str(p.Tag)})
		}
		s.store.setLatest(st, tbapi.KeyTargetFwTs, TsValue{now, tbapi.Value{Kind: tbapi.Number, Str: strconv.FormatInt(now, 10)}})
		s.store.setLatest(st, tbapi.KeyFwState, TsValue{now, str(string(tbapi.FwQueued))})
		s.store.markDirty(id)
	}
	s.store.mu.Unlock()
	select {
	case s.otaQueue <- id:
	default:
		s.log.Warn("ota queue full", "device", id)
	}
}

// otaWorker processes the queue in packs, like ThingsBoard's OTA queue.
func (s *Server) otaWorker() {
	defer s.wg.Done()
	for {
		for i := 0; i < s.opts.OTAPackSize; i++ {
			select {
			case id := <-s.otaQueue:
				s.initiate(id)
				continue
			case <-s.done:
				return
			default:
			}
			break
		}
		select {
		case <-s.done:
			return
		case <-timeAfter(s.opts.OTAPackInterval):
		}
	}
}

// initiate writes fw_state INITIATED and the fw_* shared attributes (one
// push), deleting fw_tag (no tag) and fw_url (a binary package) separately.
func (s *Server) initiate(id string) {
	p, ok := s.Package(s.assignedFirmware(id))
	if !ok || !p.HasData {
		return
	}
	now := nowMs()
	s.store.mu.Lock()
	if st := s.store.state[id]; st != nil {
		s.store.setLatest(st, tbapi.KeyFwState, TsValue{now, tbapi.Value{Kind: tbapi.String, Str: string(tbapi.FwInitiated)}})
	}
	s.store.mu.Unlock()
	info := tbapi.FwInfo{Title: p.Title, Version: p.Version, Size: p.Size, Checksum: p.Checksum, Algorithm: p.Algorithm}
	vals := info.Members()
	if p.Tag != "" {
		vals = append(vals, tbapi.Member{Key: tbapi.KeyFwTag, Value: tbapi.Value{Kind: tbapi.String, Str: p.Tag}})
	}
	s.SetSharedAttributes(id, vals)
	del := []string{tbapi.KeyFwURL}
	if p.Tag == "" {
		del = append(del, tbapi.KeyFwTag)
	}
	s.DeleteSharedAttributes(id, del)
}

// OTAProgress counts devices per fw_state for each package assigned to them.
func (s *Server) OTAProgress() map[string]map[string]int {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	out := map[string]map[string]int{}
	for id, d := range s.store.devices {
		pkg := s.store.assigned(d)
		if pkg == "" {
			continue
		}
		state := "NONE"
		if v, ok := s.store.state[id].Latest[tbapi.KeyFwState]; ok {
			state, _ = v.Value.Text()
		}
		if out[pkg] == nil {
			out[pkg] = map[string]int{}
		}
		out[pkg][state]++
	}
	return out
}
