package tbemu

import "github.com/tbsim/tbsim/tbemu/core"

// The entities and specs of the Go API, defined by the core.
type (
	Profile         = core.Profile
	ProfileSpec     = core.ProfileSpec
	TransportLimits = core.TransportLimits
	Device          = core.Device
	DeviceSpec      = core.DeviceSpec
	Credentials     = core.Credentials
	Package         = core.Package
	PackageSpec     = core.PackageSpec
	TsValue         = core.TsValue
	DeviceCounters  = core.DeviceCounters
)

// Provisioning strategies of a device profile.
const (
	AllowCreateNewDevices      = core.AllowCreateNewDevices
	CheckPreProvisionedDevices = core.CheckPreProvisionedDevices
	ProvisionDisabled          = core.ProvisionDisabled
)

// Attribute scopes.
const (
	ClientScope = core.ClientScope
	SharedScope = core.SharedScope
	ServerScope = core.ServerScope
)

// Errors of the Go API (the core's: errors.Is works with either name).
var (
	ErrNotFound     = core.ErrNotFound
	ErrConflict     = core.ErrConflict
	ErrInvalid      = core.ErrInvalid
	ErrNotAssigned  = core.ErrNotAssigned
	ErrOffline      = core.ErrOffline
	ErrTimeout      = core.ErrTimeout
	ErrTooLarge     = core.ErrTooLarge
	ErrStateLocked  = core.ErrStateLocked
	ErrStateDamaged = core.ErrStateDamaged
)
