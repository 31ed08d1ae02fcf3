//go:build go1.23

package tbapi

import (
	"strconv"
	"strings"
)

// Attribute and time-series keys of firmware OTA (ThingsBoard OtaPackageKey
// with the "fw" prefix).
const (
	KeyFwTitle     = "fw_title"
	KeyFwVersion   = "fw_version"
	KeyFwTag       = "fw_tag"
	KeyFwSize      = "fw_size"
	KeyFwChecksum  = "fw_checksum"
	KeyFwAlgorithm = "fw_checksum_algorithm"
	KeyFwURL       = "fw_url"
	KeyFwTs        = "fw_ts"
	KeyFwState     = "fw_state"
	KeyFwError     = "fw_error"

	KeyCurrentFwTitle   = "current_fw_title"
	KeyCurrentFwVersion = "current_fw_version"

	KeyTargetFwTitle   = "target_fw_title"
	KeyTargetFwVersion = "target_fw_version"
	KeyTargetFwTag     = "target_fw_tag"
	KeyTargetFwTs      = "target_fw_ts"
)

// FwSharedKeys are the shared attributes a device requests to learn its
// assigned firmware (the Arduino SDK's list, in its order).
var FwSharedKeys = []string{KeyFwChecksum, KeyFwAlgorithm, KeyFwSize, KeyFwTitle, KeyFwVersion}

// FwState is an OTA state (ThingsBoard OtaPackageUpdateStatus).
type FwState string

// OTA states: QUEUED and INITIATED are written by the server, the rest by the device.
const (
	FwQueued      FwState = "QUEUED"
	FwInitiated   FwState = "INITIATED"
	FwDownloading FwState = "DOWNLOADING"
	FwDownloaded  FwState = "DOWNLOADED"
	FwVerified    FwState = "VERIFIED"
	FwUpdating    FwState = "UPDATING"
	FwUpdated     FwState = "UPDATED"
	FwFailed      FwState = "FAILED"
)

// FwStates lists every state in the order an update goes through them.
var FwStates = []FwState{FwQueued, FwInitiated, FwDownloading, FwDownloaded, FwVerified, FwUpdating, FwUpdated, FwFailed}

// FwInfo is the firmware assignment carried by the fw_* shared attributes.
type FwInfo struct {
	Title     string
	Version   string
	Size      int64
	Checksum  string
	Algorithm string
	Tag       string
	URL       string

	have uint8 // bit set of the five required keys seen
}

const (
	haveTitle = 1 << iota
	haveVersion
	haveSize
	haveChecksum
	haveAlgorithm
	haveAll = haveTitle | haveVersion | haveSize | haveChecksum | haveAlgorithm
)

// Merge updates f from attribute members (a push or the shared part of a
// response) and reports whether any fw_* key was among them. Unknown keys are
// ignored; a key whose value has the wrong type is left out.
func (f *FwInfo) Merge(ms []Member) bool {
	touched := false
	for _, m := range ms {
		if !strings.HasPrefix(m.Key, "fw_") {
			continue
		}
		touched = true
		s, ok := m.Value.Text()
		switch m.Key {
		case KeyFwTitle:
			f.Title, f.have = s, setIf(f.have, haveTitle, ok)
		case KeyFwVersion:
			f.Version, f.have = s, setIf(f.have, haveVersion, ok)
		case KeyFwChecksum:
			f.Checksum, f.have = s, setIf(f.have, haveChecksum, ok)
		case KeyFwAlgorithm:
			f.Algorithm, f.have = s, setIf(f.have, haveAlgorithm, ok)
		case KeyFwSize:
			n, ok := m.Value.Int64()
			f.Size, f.have = n, setIf(f.have, haveSize, ok)
		case KeyFwTag:
			f.Tag = s
		case KeyFwURL:
			f.URL = s
		}
	}
	return touched
}

// Forget clears the keys a {"deleted":[...]} push removed.
func (f *FwInfo) Forget(keys []string) {
	for _, k := range keys {
		switch k {
		case KeyFwTitle:
			f.Title, f.have = "", f.have&^haveTitle
		case KeyFwVersion:
			f.Version, f.have = "", f.have&^haveVersion
		case KeyFwChecksum:
			f.Checksum, f.have = "", f.have&^haveChecksum
		case KeyFwAlgorithm:
			f.Algorithm, f.have = "", f.have&^haveAlgorithm
		case KeyFwSize:
			f.Size, f.have = 0, f.have&^haveSize
		case KeyFwTag:
			f.Tag = ""
		case KeyFwURL:
			f.URL = ""
		}
	}
}

func setIf(have, bit uint8, ok bool) uint8 {
	if ok {
		return have | bit
	}
	return have &^ bit
}

// Assigned reports whether a firmware title and version are known.
func (f FwInfo) Assigned() bool { return f.have&(haveTitle|haveVersion) == haveTitle|haveVersion }

// Complete reports whether all five keys a download needs are known.
func (f FwInfo) Complete() bool { return f.have&haveAll == haveAll }

// Missing names the required keys not yet known, comma-separated.
func (f FwInfo) Missing() string {
	var miss []string
	for i, k := range [...]string{KeyFwTitle, KeyFwVersion, KeyFwSize, KeyFwChecksum, KeyFwAlgorithm} {
		if f.have&(1<<i) == 0 {
			miss = append(miss, k)
		}
	}
	return strings.Join(miss, ",")
}

// Members returns the assignment as the shared attributes ThingsBoard pushes.
func (f FwInfo) Members() []Member {
	return []Member{
		{Key: KeyFwTitle, Value: Value{Kind: String, Str: f.Title}},
		{Key: KeyFwVersion, Value: Value{Kind: String, Str: f.Version}},
		{Key: KeyFwSize, Value: Value{Kind: Number, Str: strconv.FormatInt(f.Size, 10)}},
		{Key: KeyFwAlgorithm, Value: Value{Kind: String, Str: f.Algorithm}},
		{Key: KeyFwChecksum, Value: Value{Kind: String, Str: f.Checksum}},
	}
}

// FwReport is a device's OTA progress report, sent as telemetry.
type FwReport struct {
	State FwState
	Error string // sent with FAILED (and as "" with DOWNLOADING, clearing an old error)
	// Title and Version, when set, are sent as current_fw_title/current_fw_version.
	Title   string
	Version string
}

// Encode writes the report.
func (r FwReport) Encode() []byte {
	o := NewObj(nil)
	if r.Title != "" || r.Version != "" {
		o.Str(KeyCurrentFwTitle, r.Title).Str(KeyCurrentFwVersion, r.Version)
	}
	if r.State != "" {
		o.Str(KeyFwState, string(r.State))
	}
	if r.State == FwFailed || r.State == FwDownloading || r.Error != "" {
		o.Str(KeyFwError, r.Error)
	}
	return o.Bytes()
}

// ChunkSizePayload is the body of a chunk request: the size in ASCII decimal.
func ChunkSizePayload(size int) []byte { return strconv.AppendInt(nil, int64(size), 10) }

// ParseChunkSize reads a chunk request body. An empty body means "the size
// given before for this request id, or 0" (present is false). Anything but a
// decimal integer is an error (ThingsBoard's Integer.parseInt would throw).
func ParseChunkSize(payload []byte) (size int, present bool, err error) {
	if len(payload) == 0 {
		return 0, false, nil
	}
	n, ok := parseInt(string(payload), 32)
	if !ok || n < 0 {
		return 0, true, fieldErr(ErrBadField, "chunk size", "want a non-negative decimal integer, got "+strconv.Quote(string(payload)))
	}
	return int(n), true, nil
}

// Chunk error codes published on v2/fw/error.
const (
	FwErrNotFound        = "NOT_FOUND"
	FwErrFailure         = "FAILURE"
	FwErrPayloadTooLarge = "PAYLOAD_TOO_LARGE"
)

// MaxChunkSize is the largest chunk ThingsBoard serves (its MQTT packet limit).
const MaxChunkSize = 65536
