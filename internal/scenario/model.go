package scenario

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tbsim/tbsim/internal/verdict"
)

// Scenario is one file.
type Scenario struct {
	Name        string     `yaml:"name"`
	Description string     `yaml:"description"`
	Mode        string     `yaml:"mode"` // virtual (default) or realtime
	Seed        uint64     `yaml:"seed"`
	Fleet       FleetSpec  `yaml:"fleet"`
	Server      ServerSpec `yaml:"server"`
	Steps       []Step     `yaml:"steps"`
	Expect      []string   `yaml:"expect"`

	File        string `yaml:"-"`
	stepLines   []int
	expectLines []int
	keyLines    map[string]int    // "fleet.devices" -> line
	conds       map[int]condition // by step index
	exps        []verdict.Threshold
}

// FleetSpec describes the devices.
type FleetSpec struct {
	Devices           int      `yaml:"devices"`
	Firmware          FwSpec   `yaml:"firmware"`
	TelemetryInterval Duration `yaml:"telemetry_interval"`
	WiFi              WiFiSpec `yaml:"wifi"`
	MarkValid         string   `yaml:"mark_valid"` // at-boot (default) | after-connect
	ChunkSize         *int     `yaml:"chunk_size"`
	ChunkTimeout      Duration `yaml:"chunk_timeout"`
	ChunkRetries      *int     `yaml:"chunk_retries"`
	BackoffMin        Duration `yaml:"backoff_min"`
	BackoffMax        Duration `yaml:"backoff_max"`
	Ramp              float64  `yaml:"ramp"`
	BootTime          Duration `yaml:"boot_time"`
	WriteAheadToken   bool     `yaml:"write_ahead_token"`
	AcceptOtherTitle  bool     `yaml:"accept_other_title"`
}

// FwSpec is the factory firmware.
type FwSpec struct {
	Title   string `yaml:"title"`
	Version string `yaml:"version"`
}

// WiFiSpec is the network model.
type WiFiSpec struct {
	Connect  string  `yaml:"connect"` // min-max, e.g. 100ms-300ms
	FailRate float64 `yaml:"fail_rate"`
}

// ServerSpec is the embedded server's settings, or an external server.
type ServerSpec struct {
	External        string   `yaml:"external"` // mqtt://host:port; only fleet steps then
	ProvisionKey    string   `yaml:"provision_key"`
	ProvisionSecret string   `yaml:"provision_secret"`
	OTAPackSize     int      `yaml:"ota_pack_size"`
	OTAPackInterval Duration `yaml:"ota_pack_interval"`
	RateLimit       float64  `yaml:"rate_limit"` // messages per second per device, default profile
}

// Step is one entry of steps: exactly one field is set.
type Step struct {
	Wait              *WaitStep    `yaml:"wait"`
	Sleep             *Duration    `yaml:"sleep"`
	Rollout           *RolloutStep `yaml:"rollout"`
	PowerCycle        *Selection   `yaml:"power_cycle"`
	DropWiFi          *Selection   `yaml:"drop_wifi"`
	EraseTokens       *Selection   `yaml:"erase_tokens"`
	RestartBroker     *RestartStep `yaml:"restart_broker"`
	DeleteDevices     *Selection   `yaml:"delete_devices"`
	ChangeCredentials *Selection   `yaml:"change_credentials"`
	RateLimit         *RateStep    `yaml:"rate_limit"`
	SharedAttributes  *AttrStep    `yaml:"shared_attributes"`
	RPC               *RPCStep     `yaml:"rpc"`
	CorruptPackage    *CorruptStep `yaml:"corrupt_package"`
	Link              *LinkStep    `yaml:"link"`
}

// WaitStep waits for a condition.
type WaitStep struct {
	For     string   `yaml:"for"`
	Timeout Duration `yaml:"timeout"`
}

// RolloutStep builds (or reads) a firmware image and assigns it.
type RolloutStep struct {
	Title     string `yaml:"title"`
	Version   string `yaml:"version"`
	Size      int    `yaml:"size"`
	File      string `yaml:"file"`
	Chip      string `yaml:"chip"`      // build for another chip (a wrong-chip image)
	Algorithm string `yaml:"algorithm"` // checksum, default SHA256
	Corrupt   bool   `yaml:"corrupt"`   // serve bytes that do not match the checksum
	// Devices limits the assignment to a subset (device-level assignment);
	// default: the whole profile.
	Devices *Selection `yaml:"devices"`
}

// Selection picks devices: a count, a fraction, or names; for faults, an
// optional moment ("downloading", "updating", "pending-verify", "now").
type Selection struct {
	Count    int      `yaml:"count"`
	Fraction float64  `yaml:"fraction"`
	Names    []string `yaml:"names"`
	When     string   `yaml:"when"`
	Timeout  Duration `yaml:"timeout"` // for when
	For      Duration `yaml:"for"`     // drop_wifi duration
	Reboot   bool     `yaml:"reboot"`  // erase_tokens: power-cycle afterwards
}

// RestartStep restarts the embedded broker.
type RestartStep struct {
	Down Duration `yaml:"down"`
}

// RateStep enables a rate limit.
type RateStep struct {
	MessagesPerSecond float64 `yaml:"messages_per_second"`
}

// AttrStep sets shared attributes on devices.
type AttrStep struct {
	Values  map[string]any `yaml:"values"`
	Devices *Selection     `yaml:"devices"`
}

// RPCStep sends a server-side two-way RPC and requires every answer.
type RPCStep struct {
	Method  string     `yaml:"method"`
	Params  any        `yaml:"params"`
	Timeout Duration   `yaml:"timeout"`
	Devices *Selection `yaml:"devices"`
}

// LinkStep degrades the devices' link: latency plus jitter on every write,
// and loss as retransmission delays; For (optional) restores it afterwards.
type LinkStep struct {
	Latency Duration `yaml:"latency"`
	Jitter  Duration `yaml:"jitter"`
	Loss    float64  `yaml:"loss"`
	For     Duration `yaml:"for"`
}

// CorruptStep replaces the bytes of the last rolled-out package.
type CorruptStep struct{}

// Duration reads "1.5s", "200ms".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 5s", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (such as 500ms, 5s, 1m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// kind names the step's single action.
func (s Step) kind() (string, int) {
	n, name := 0, ""
	for _, c := range []struct {
		set  bool
		name string
	}{
		{s.Wait != nil, "wait"}, {s.Sleep != nil, "sleep"}, {s.Rollout != nil, "rollout"},
		{s.PowerCycle != nil, "power_cycle"}, {s.DropWiFi != nil, "drop_wifi"}, {s.EraseTokens != nil, "erase_tokens"},
		{s.RestartBroker != nil, "restart_broker"}, {s.DeleteDevices != nil, "delete_devices"},
		{s.ChangeCredentials != nil, "change_credentials"}, {s.RateLimit != nil, "rate_limit"},
		{s.SharedAttributes != nil, "shared_attributes"}, {s.RPC != nil, "rpc"}, {s.CorruptPackage != nil, "corrupt_package"},
		{s.Link != nil, "link"},
	} {
		if c.set {
			n++
			name = c.name
		}
	}
	return name, n
}
