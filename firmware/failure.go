//go:build go1.23

package firmware

import "strconv"

// Failure is one kind of failure the device program sees. Status counts every
// occurrence of each kind, so whoever watches a fleet can count them all
// without parsing serial logs, and Status.Cause says which one keeps a device
// offline.
type Failure uint8

// Failure kinds, one per cause a user would act on differently.
const (
	FailNone                  Failure = iota
	FailProvisionFailure              // provisioning answered FAILURE: the server already knows this name
	FailProvisionNotFound             // provisioning answered NOT_FOUND: wrong key/secret, or provisioning disabled
	FailProvisionTimeout              // no provisioning response in time
	FailProvisionMalformed            // a provisioning response that could not be used
	FailRefusedProtocol               // CONNACK 1: unacceptable protocol version
	FailRefusedIdentifier             // CONNACK 2: identifier rejected
	FailRefusedUnavailable            // CONNACK 3: server unavailable
	FailRefusedBadCredentials         // CONNACK 4: bad user name or password
	FailRefusedNotAuthorized          // CONNACK 5: not authorized (unknown or revoked token)
	FailRefusedOther                  // any other CONNACK code
	FailConnectTimeout                // no CONNACK in time
	FailUnreachable                   // the server could not be reached (DNS, TCP refused or unreachable, TLS)
	FailNetworkTimeout                // a network read or write timed out
	FailKeepalive                     // no PINGRESP: the link died silently
	FailServerClosed                  // the server closed an open connection
	FailRateLimited                   // the server closed the connection for exceeding a rate limit
	FailNetwork                       // any other network error
	FailPublish                       // a publish could not be sent
	FailChunkTimeout                  // an OTA chunk did not arrive in time (retried)
	FailOTA                           // an update failed: fw_state FAILED, with fw_error
	FailNVSWrite                      // NVS refused a write (credentials or update record)
	FailFlashWrite                    // the OTA slot refused a write (begin, write, end or boot switch)
	FailWiFi                          // Wi-Fi could not connect or dropped
	NumFailures
)

var failureNames = [...]string{
	"none", "provision_failure", "provision_not_found", "provision_timeout", "provision_malformed",
	"refused_protocol", "refused_identifier", "refused_unavailable", "refused_bad_credentials",
	"refused_not_authorized", "refused_other", "connect_timeout", "unreachable", "network_timeout",
	"keepalive", "server_closed", "rate_limited", "network", "publish_failed", "chunk_timeout",
	"ota_failed", "nvs_write", "flash_write", "wifi",
}

// String returns a stable identifier (for JSON keys and metric labels).
func (f Failure) String() string {
	if int(f) < len(failureNames) {
		return failureNames[f]
	}
	return "failure(" + strconv.Itoa(int(f)) + ")"
}

// refusal maps a CONNACK return code to its failure kind.
func refusal(code byte) Failure {
	if code >= 1 && code <= 5 {
		return FailRefusedProtocol + Failure(code-1)
	}
	return FailRefusedOther
}

// LinkError says why a connection attempt failed or an open connection
// ended, as the MQTT client can tell (EventConnectionLost).
type LinkError uint8

// Link errors.
const (
	LinkOther       LinkError = iota // unclassified: counted as a network error
	LinkUnreachable                  // the server could not be reached at all
	LinkTimeout                      // a read, write or dial timed out
	LinkKeepalive                    // no PINGRESP
	LinkClosed                       // the server closed the connection
	LinkRateLimited                  // closed for exceeding a rate limit (when the transport knows)
)

func (l LinkError) failure() Failure {
	switch l {
	case LinkUnreachable:
		return FailUnreachable
	case LinkTimeout:
		return FailNetworkTimeout
	case LinkKeepalive:
		return FailKeepalive
	case LinkClosed:
		return FailServerClosed
	case LinkRateLimited:
		return FailRateLimited
	}
	return FailNetwork
}

// Failures counts each failure kind. The counts are diagnostics, not
// behaviour: they survive resets so a fleet can diff successive snapshots
// (a real board would keep them in RTC memory, or not at all).
type Failures [NumFailures]uint32

// Total sums every kind.
func (f *Failures) Total() uint64 {
	var n uint64
	for _, c := range f[1:] {
		n += uint64(c)
	}
	return n
}

// fail counts a failure that does not take the device offline (an OTA
// failure, a chunk retry, a publish that could not leave).
func (m *Machine) fail(f Failure) { m.failures[f]++ }

// offline counts a failure that keeps the device from being online and
// makes it the device's current cause.
func (m *Machine) offline(f Failure) {
	m.failures[f]++
	m.cause = f
}
