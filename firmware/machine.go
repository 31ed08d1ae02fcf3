//go:build go1.23

package firmware

import (
	"strconv"
	"time"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// State is the machine's connection state.
type State uint8

// States, in the order a healthy boot goes through them.
const (
	StateOff          State = iota // not booted, or restarting
	StateWiFi                      // waiting for Wi-Fi
	StateProvisioning              // connected or connecting as "provision", waiting for credentials
	StateConnecting                // connecting with the stored credentials
	StateOnline                    // connected: telemetry, attributes, RPC, OTA
	StateBackoff                   // waiting before the next attempt
)

var stateNames = [...]string{"off", "wifi", "provisioning", "connecting", "online", "backoff"}

// String returns the state's name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Status is a snapshot of the machine for the fleet's metrics and for tests.
type Status struct {
	State       State
	Provisioned bool // credentials are in NVS
	Title       string
	Version     string
	// OTAState is the last fw_state this boot reported ("" before any).
	OTAState    tbapi.FwState
	OTAError    string
	Downloading bool
	OTABytes    int64 // bytes of the current download received
	OTAWritten  int64 // bytes written to the OTA slot since boot, all downloads
	// PendingVerify: the running image is new and not yet confirmed.
	PendingVerify bool
	Refusals      int // "not authorized" refusals in a row
	Reprovisions  int // times the token was dropped after refusals, this boot
	// Failures counts every failure seen, by kind, across resets.
	Failures Failures
	// Cause is the last failure that kept the device offline; FailNone once online.
	Cause Failure
}

// Machine is the device program. Create it with New, then feed it events.
type Machine struct {
	cfg *Config // shared by a fleet's machines (NewShared): read only
	p   Ports

	state    State
	name     string // device name: the Wi-Fi MAC
	creds    Credentials
	hasCreds bool
	image    Image // running image (title/version resolved)

	// What a backoff or timeout leads to.
	retry     retryKind
	attempt   int // backoff exponent, reset when online
	refusals  int
	reprovs   int
	requestID int // shared by attribute requests and firmware downloads, like the Arduino SDK

	timers [numTimers]int64 // unix ns, 0 = off: a third of time.Time's size, times a million devices

	fw         tbapi.FwInfo // fw_* shared attributes as last seen
	fwAttrReq  int          // id of the pending fw attribute request
	dl         download
	failed     string // "title\x00version" of the assignment that failed this boot
	otaState   tbapi.FwState
	otaError   string
	restartID  uint32 // publish whose PUBACK releases a pending restart
	restarting bool
	rolledBack string // "title vversion" of an update the bootloader rolled back, to report

	written int64 // OTA bytes written since boot

	failures Failures
	cause    Failure
	provSent bool // the provisioning request is out: a timeout now means no response

	unsaved  Credentials // provisioned but not yet in NVS (a write failed)
	ahead    string      // WriteAheadToken: the token this device asks for
	tryAhead bool        // connecting with ahead after a FAILURE for our name

	lastTelemetry []byte
	buf           []byte // reused telemetry buffer
}

type retryKind uint8

const (
	retryNone retryKind = iota
	retryWiFi
	retryProvision
	retryConnect
	retrySave // the credentials provisioning returned are not in NVS yet
)

type timerID uint8

const (
	timerWiFi      timerID = iota // Wi-Fi connect timeout
	timerConnect                  // CONNACK or provision response timeout
	timerBackoff                  // next attempt
	timerTelemetry                // next telemetry
	timerChunk                    // chunk answer timeout
	timerRestart                  // restart even without the PUBACK
	numTimers
)

// New checks cfg and ports and returns a machine waiting for EventBoot.
func New(cfg Config, p Ports) (*Machine, error) { return NewShared(&cfg, p) }

// NewShared is New with a configuration that many machines share (a fleet
// of a million saves 200 bytes each); the caller must not change *cfg.
func NewShared(cfg *Config, p Ports) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Console == nil {
		p.Console = nopConsole{}
	}
	return &Machine{cfg: cfg, p: p}, nil
}

type nopConsole struct{}

func (nopConsole) Println(string) {}

// Handle processes one event and returns the next deadline (zero when the
// machine waits only for external events).
func (m *Machine) Handle(ev Event) time.Time {
	if m.state == StateOff && ev.Kind != EventBoot && ev.Kind != EventEraseToken {
		return time.Time{} // powered down or restarting: nothing runs
	}
	switch ev.Kind {
	case EventBoot:
		m.boot(ev.Reset)
	case EventTick:
		m.tick()
	case EventWiFiUp:
		m.wifiUp()
	case EventWiFiDown:
		m.wifiDown(ev.Reason)
	case EventConnected:
		m.connected()
	case EventRefused:
		m.refused(ev.Code)
	case EventConnectionLost:
		m.connectionLost(ev.Link, ev.Reason)
	case EventMessage:
		m.message(ev.Topic, ev.Payload)
	case EventPublished:
		m.published(ev.ID)
	case EventEraseToken:
		m.eraseToken()
	}
	return m.Deadline()
}

// Deadline returns the earliest pending deadline, or zero.
func (m *Machine) Deadline() time.Time {
	var next int64
	for _, t := range m.timers {
		if t != 0 && (next == 0 || t < next) {
			next = t
		}
	}
	if next == 0 {
		return time.Time{}
	}
	return time.Unix(0, next)
}

// Status returns a snapshot of the machine.
func (m *Machine) Status() Status {
	return Status{
		State:         m.state,
		Provisioned:   m.hasCreds,
		Title:         m.image.Title,
		Version:       m.image.Version,
		OTAState:      m.otaState,
		OTAError:      m.otaError,
		Downloading:   m.dl.active,
		OTABytes:      m.dl.received,
		OTAWritten:    m.written,
		PendingVerify: m.image.PendingVerify,
		Refusals:      m.refusals,
		Reprovisions:  m.reprovs,
		Failures:      m.failures,
		Cause:         m.cause,
	}
}

// AwaitsAck reports whether the machine waits for publish id's
// acknowledgement (EventPublished): a restart does. A session may skip
// delivering other acknowledgements.
func (m *Machine) AwaitsAck(id uint32) bool { return m.restarting && m.restartID == id }

// Name returns the device name (the Wi-Fi MAC) once booted.
func (m *Machine) Name() string { return m.name }

func (m *Machine) now() time.Time { return m.p.Clock.Now() }

func (m *Machine) setTimer(id timerID, after time.Duration) {
	m.timers[id] = m.now().Add(after).UnixNano()
}

func (m *Machine) stopTimer(id timerID) { m.timers[id] = 0 }

func (m *Machine) log(line string) { m.p.Console.Println(line) }

func (m *Machine) tick() {
	now := m.now().UnixNano()
	for id := timerID(0); id < numTimers; id++ {
		t := m.timers[id]
		if t == 0 || now < t {
			continue
		}
		m.timers[id] = 0
		m.fire(id)
		if m.state == StateOff {
			return
		}
	}
}

func (m *Machine) fire(id timerID) {
	switch id {
	case timerWiFi:
		m.log("[WIFI] Connect timeout")
		m.offline(FailWiFi)
		m.scheduleRetry(retryWiFi, "[WIFI]")
	case timerConnect:
		m.connectTimeout()
	case timerBackoff:
		m.runRetry()
	case timerTelemetry:
		m.sendTelemetry()
	case timerChunk:
		m.chunkTimeout()
	case timerRestart:
		m.restart()
	}
}

// boot is setup(): banner, running image, token from NVS, Wi-Fi.
func (m *Machine) boot(reason ResetReason) {
	*m = Machine{cfg: m.cfg, p: m.p, buf: m.buf, failures: m.failures} // RAM does not survive a reset
	m.name = m.p.WiFi.MAC()
	m.image = m.p.OTA.Running()
	if m.image.Title == "" {
		m.image.Title, m.image.Version = m.cfg.Title, m.cfg.Version
	}
	m.log("========================================")
	m.log("Firmware: " + m.image.Title)
	m.log("Version: " + m.image.Version)
	m.log("Reset reason: " + reason.String())
	m.log("========================================")
	if m.image.PendingVerify && m.cfg.MarkValid == MarkValidAtBoot {
		m.markValid()
	}
	m.checkRollback()
	m.loadCredentials()
	m.startWiFi()
}

func (m *Machine) markValid() {
	if err := m.p.OTA.MarkValid(); err != nil {
		m.fail(FailFlashWrite)
		m.log("[OTA] Failed to confirm new firmware: " + err.Error())
		return
	}
	m.image.PendingVerify = false
	m.clearPending()
	m.log("[OTA] New firmware confirmed, rollback cancelled")
}

func (m *Machine) startWiFi() {
	m.state = StateWiFi
	m.log("[WIFI] Connecting...")
	m.p.WiFi.Connect()
	m.setTimer(timerWiFi, m.cfg.WiFiTimeout)
}

func (m *Machine) wifiUp() {
	if m.state != StateWiFi {
		return
	}
	m.stopTimer(timerWiFi)
	info := m.p.WiFi.Info()
	m.log("[WIFI] Connected to " + info.SSID + ", IP: " + info.LocalIP + ", RSSI: " + strconv.Itoa(info.RSSI) + " dBm")
	m.attempt = 0
	m.connectOrProvision()
}

func (m *Machine) wifiDown(reason string) {
	if m.state == StateWiFi && m.timers[timerWiFi] == 0 {
		return // already waiting to retry
	}
	if m.state != StateWiFi {
		m.p.Session.Disconnect()
		m.interruptDownload()
	}
	m.clearSessionTimers()
	m.offline(FailWiFi)
	msg := "[WIFI] Disconnected"
	if reason != "" {
		msg += ": " + reason
	}
	m.log(msg)
	m.stopTimer(timerWiFi)
	m.scheduleRetry(retryWiFi, "[WIFI]")
	m.state = StateWiFi
}

func (m *Machine) clearSessionTimers() {
	m.stopTimer(timerConnect)
	m.stopTimer(timerTelemetry)
	m.stopTimer(timerChunk)
	m.stopTimer(timerBackoff)
}

// scheduleRetry waits an exponentially growing, jittered delay (half fixed,
// half random, so a fleet that lost its broker at once does not return at once).
func (m *Machine) scheduleRetry(kind retryKind, tag string) {
	d := m.cfg.BackoffMin
	for i := 0; i < m.attempt && d < m.cfg.BackoffMax; i++ {
		d *= 2
	}
	if d > m.cfg.BackoffMax {
		d = m.cfg.BackoffMax
	}
	half := d / 2
	d = half + (half>>20)*time.Duration(m.p.Rand.Uint32()>>12) // a 20-bit fraction: no overflow
	m.attempt++
	m.retry = kind
	if m.state != StateWiFi || kind != retryWiFi {
		m.state = StateBackoff
	}
	m.setTimer(timerBackoff, d)
	m.log(tag + " Retry in " + formatSeconds(d))
}

func (m *Machine) runRetry() {
	switch m.retry {
	case retryWiFi:
		m.startWiFi()
	case retryProvision:
		m.startProvisioning()
	case retryConnect:
		m.connect()
	case retrySave:
		m.saveProvisioned(m.unsaved)
	}
}

func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}
