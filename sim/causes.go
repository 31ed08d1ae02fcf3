package sim

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tbsim/tbsim/device"
	"github.com/tbsim/tbsim/firmware"
)

// The failure taxonomy: every failure a device sees has exactly one cause,
// and the live view, the summary, the JSON report, Prometheus and scenario
// metrics all count by it. A cause's ID is stable (JSON, metric labels,
// thresholds such as errors.provision_failure == 0); its text is for people.

// CauseStranded is not an event but a device's end state: provisioning
// answered FAILURE for its own name and it holds no token: its token was lost,
// or another fleet took the name (seeds equal modulo 20 share an OUI). The
// seed firmware retries forever (a real board against ThingsBoard does too).
const CauseStranded = "stranded"

var causeTexts = map[string]string{
	"provision_failure":       "provisioning FAILURE: the server already has a device of this name",
	"provision_not_found":     "provisioning NOT_FOUND: wrong provision key or secret, or provisioning disabled",
	"provision_timeout":       "provisioning timeout: no response",
	"provision_malformed":     "provisioning response malformed",
	"refused_protocol":        "connect refused: CONNACK 1 (unacceptable protocol version)",
	"refused_identifier":      "connect refused: CONNACK 2 (identifier rejected)",
	"refused_unavailable":     "connect refused: CONNACK 3 (server unavailable)",
	"refused_bad_credentials": "connect refused: CONNACK 4 (bad user name or password)",
	"refused_not_authorized":  "connect refused: CONNACK 5 (not authorized: unknown or revoked token)",
	"refused_other":           "connect refused: other CONNACK code",
	"connect_timeout":         "connect timeout: no CONNACK",
	"unreachable":             "server unreachable (DNS, TCP or TLS)",
	"network_timeout":         "network timeout on an open connection",
	"keepalive":               "keepalive: no PINGRESP",
	"server_closed":           "server closed the connection",
	"rate_limited":            "closed by the server's rate limit",
	"network":                 "network error",
	"publish_failed":          "publish not sent (not connected)",
	"chunk_timeout":           "OTA chunk timeout (retried)",
	"ota_failed":              "OTA failed",
	"nvs_write":               "NVS write failed",
	"flash_write":             "flash write failed (OTA slot or otadata)",
	"wifi":                    "Wi-Fi connect failed or dropped",
	CauseStranded:             "stranded: the server has this name, the device no token for it",
}

// CauseText describes a cause ID.
func CauseText(id string) string {
	if t, ok := causeTexts[id]; ok {
		return t
	}
	return id
}

// CauseIDs lists every cause of the taxonomy, in a stable order.
func CauseIDs() []string {
	ids := make([]string, 0, int(firmware.NumFailures))
	for f := firmware.FailNone + 1; f < firmware.NumFailures; f++ {
		ids = append(ids, f.String())
	}
	return append(ids, CauseStranded)
}

// failureCounts counts failure events by kind without a lock, with the first
// device that hit each kind, and OTA failures by fw_error class.
type failureCounts struct {
	n       [firmware.NumFailures]atomic.Int64
	example [firmware.NumFailures]atomic.Pointer[string]
	ota     Counter
	otaEx   sync.Map // class -> device
}

func (c *failureCounts) add(f firmware.Failure, n int64, dev, otaError string) {
	c.n[f].Add(n)
	if c.example[f].Load() == nil {
		c.example[f].CompareAndSwap(nil, &dev)
	}
	if f == firmware.FailOTA {
		class := OTAErrorClass(otaError)
		c.ota.Add(class, n)
		c.otaEx.LoadOrStore(class, dev)
	}
}

// OTAErrorClass reduces an fw_error to its kind: free-standing numbers
// become N (chunk 12 -> chunk N; SHA256 stays) and a checksum mismatch loses
// its digests, so equal failures group together.
func OTAErrorClass(e string) string {
	if i := strings.Index(e, ": got "); i >= 0 {
		e = e[:i]
	}
	var b strings.Builder
	inNumber, prevWord := false, false
	for _, r := range e {
		digit := r >= '0' && r <= '9'
		if r == '.' && inNumber {
			continue // 1.5 is one number
		}
		if r == '.' && prevWord {
			b.WriteRune(r) // v1.1.0 is one word
			continue
		}
		switch {
		case digit && (inNumber || !prevWord):
			if !inNumber {
				b.WriteByte('N')
			}
			inNumber = true
			continue
		case digit:
			b.WriteRune(r) // part of a word such as SHA256 or ESP32
		default:
			b.WriteRune(r)
		}
		inNumber = false
		prevWord = r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || digit || r == '_'
	}
	s := b.String()
	if len(s) > 100 {
		s = s[:100]
	}
	if s == "" {
		s = "unknown"
	}
	return s
}

// ErrorCause is one cause with its count and an example device.
type ErrorCause struct {
	Cause   string `json:"cause"`            // a taxonomy ID
	Detail  string `json:"detail,omitempty"` // ota_failed: the fw_error class
	Text    string `json:"text"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

// snapshot lists every cause with a count, largest first.
func (c *failureCounts) snapshot() []ErrorCause {
	var out []ErrorCause
	for f := firmware.FailNone + 1; f < firmware.NumFailures; f++ {
		n := c.n[f].Load()
		if n == 0 {
			continue
		}
		ex := ""
		if p := c.example[f].Load(); p != nil {
			ex = *p
		}
		if f == firmware.FailOTA {
			for _, e := range c.ota.Snapshot() {
				v, _ := c.otaEx.Load(e.Name)
				dev, _ := v.(string)
				out = append(out, ErrorCause{Cause: f.String(), Detail: e.Name, Text: CauseText(f.String()) + ": " + e.Name, Count: e.Count, Example: dev})
			}
			continue
		}
		out = append(out, ErrorCause{Cause: f.String(), Text: CauseText(f.String()), Count: n, Example: ex})
	}
	sortCauses(out)
	return out
}

func sortCauses(out []ErrorCause) {
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Cause+out[i].Detail < out[j].Cause+out[j].Detail
	})
}

// OfflineGroup is the devices that are not online, by state and cause.
type OfflineGroup struct {
	State    string   `json:"state"`
	Cause    string   `json:"cause"` // a taxonomy ID, "none" (not failed yet) or "bricked"
	Text     string   `json:"text"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"`
}

// Stranded reports a device that provisioning refused with FAILURE for its
// own name while it holds no token: it will never come online by itself.
func Stranded(st device.BoardStatus) bool {
	return !st.Provisioned && st.Cause == firmware.FailProvisionFailure && st.State != firmware.StateOnline
}

// deviceCause is why a device that is not online is not.
func deviceCause(st device.BoardStatus) string {
	switch {
	case st.Bricked:
		return "bricked"
	case Stranded(st):
		return CauseStranded
	}
	return st.Cause.String()
}

func offlineText(cause string) string {
	switch cause {
	case "bricked":
		return "bricked: no bootable image"
	case "none":
		return "no failure (still on its way)"
	}
	return CauseText(cause)
}
