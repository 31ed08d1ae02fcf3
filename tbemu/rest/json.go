package rest

import (
	"encoding/json"

	"github.com/tbsim/tbsim/tbemu/core"
)

// ThingsBoard's JSON shapes of the entities.

const tenantID = "13814000-1dd2-11b2-8080-808080808080"

type entityID struct {
	EntityType string `json:"entityType"`
	ID         string `json:"id"`
}

func eid(kind, id string) *entityID {
	if id == "" {
		return nil
	}
	return &entityID{EntityType: kind, ID: id}
}

type deviceJSON struct {
	ID              *entityID       `json:"id,omitempty"`
	CreatedTime     int64           `json:"createdTime,omitempty"`
	TenantID        *entityID       `json:"tenantId,omitempty"`
	Name            string          `json:"name"`
	Type            string          `json:"type,omitempty"`
	Label           *string         `json:"label"`
	DeviceProfileID *entityID       `json:"deviceProfileId,omitempty"`
	FirmwareID      *entityID       `json:"firmwareId"`
	SoftwareID      *entityID       `json:"softwareId"`
	AdditionalInfo  json.RawMessage `json:"additionalInfo"`
}

func toDeviceJSON(d core.Device) deviceJSON {
	return deviceJSON{ID: eid("DEVICE", d.ID), CreatedTime: d.CreatedTime, TenantID: eid("TENANT", tenantID),
		Name: d.Name, Type: d.Type, DeviceProfileID: eid("DEVICE_PROFILE", d.ProfileID), FirmwareID: eid("OTA_PACKAGE", d.FirmwareID),
		AdditionalInfo: json.RawMessage("null")}
}

type provisionConfig struct {
	Type                  string  `json:"type"`
	ProvisionDeviceSecret *string `json:"provisionDeviceSecret"`
}

type profileJSON struct {
	ID                 *entityID `json:"id,omitempty"`
	CreatedTime        int64     `json:"createdTime,omitempty"`
	TenantID           *entityID `json:"tenantId,omitempty"`
	Name               string    `json:"name"`
	Default            bool      `json:"default"`
	Type               string    `json:"type"`
	TransportType      string    `json:"transportType"`
	ProvisionType      string    `json:"provisionType"`
	ProvisionDeviceKey *string   `json:"provisionDeviceKey"`
	FirmwareID         *entityID `json:"firmwareId"`
	SoftwareID         *entityID `json:"softwareId"`
	ProfileData        struct {
		Configuration          map[string]string `json:"configuration"`
		TransportConfiguration map[string]string `json:"transportConfiguration"`
		ProvisionConfiguration provisionConfig   `json:"provisionConfiguration"`
	} `json:"profileData"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toProfileJSON(p core.Profile) profileJSON {
	j := profileJSON{ID: eid("DEVICE_PROFILE", p.ID), CreatedTime: p.CreatedTime, TenantID: eid("TENANT", tenantID),
		Name: p.Name, Default: p.Default, Type: "DEFAULT", TransportType: "DEFAULT", ProvisionType: p.ProvisionType,
		ProvisionDeviceKey: strPtr(p.ProvisionKey), FirmwareID: eid("OTA_PACKAGE", p.FirmwareID)}
	j.ProfileData.Configuration = map[string]string{"type": "DEFAULT"}
	j.ProfileData.TransportConfiguration = map[string]string{"type": "DEFAULT"}
	j.ProfileData.ProvisionConfiguration = provisionConfig{Type: p.ProvisionType, ProvisionDeviceSecret: strPtr(p.ProvisionSecret)}
	return j
}

type packageJSON struct {
	ID                *entityID       `json:"id,omitempty"`
	CreatedTime       int64           `json:"createdTime,omitempty"`
	TenantID          *entityID       `json:"tenantId,omitempty"`
	DeviceProfileID   *entityID       `json:"deviceProfileId"`
	Type              string          `json:"type"`
	Title             string          `json:"title"`
	Version           string          `json:"version"`
	Tag               *string         `json:"tag"`
	URL               *string         `json:"url"`
	HasData           bool            `json:"hasData"`
	FileName          *string         `json:"fileName"`
	ContentType       *string         `json:"contentType"`
	ChecksumAlgorithm *string         `json:"checksumAlgorithm"`
	Checksum          *string         `json:"checksum"`
	DataSize          *int64          `json:"dataSize"`
	AdditionalInfo    json.RawMessage `json:"additionalInfo"`
}

func toPackageJSON(p core.Package) packageJSON {
	j := packageJSON{ID: eid("OTA_PACKAGE", p.ID), CreatedTime: p.CreatedTime, TenantID: eid("TENANT", tenantID),
		DeviceProfileID: eid("DEVICE_PROFILE", p.ProfileID), Type: p.Type, Title: p.Title, Version: p.Version,
		Tag: strPtr(p.Tag), HasData: p.HasData, AdditionalInfo: json.RawMessage("{}")}
	if p.HasData {
		j.FileName, j.ContentType = strPtr(p.FileName), strPtr(p.ContentType)
		j.ChecksumAlgorithm, j.Checksum, j.DataSize = strPtr(p.Algorithm), strPtr(p.Checksum), &p.Size
	}
	return j
}

type page[T any] struct {
	Data          []T  `json:"data"`
	TotalPages    int  `json:"totalPages"`
	TotalElements int  `json:"totalElements"`
	HasNext       bool `json:"hasNext"`
}

// paginate returns page n of size (both checked by pageLink); a page past
// the end is empty, whatever the numbers (no overflow).
func paginate[T any](all []T, size, n int) page[T] {
	start := len(all)
	if n < (len(all)+size-1)/size {
		start = n * size
	}
	end := start + min(size, len(all)-start)
	pages := (len(all) + size - 1) / size
	return page[T]{Data: append([]T{}, all[start:end]...), TotalPages: pages, TotalElements: len(all), HasNext: end < len(all)}
}
