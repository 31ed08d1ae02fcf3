package core

import (
	"errors"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// MQTT 5 reason codes, as ThingsBoard's transport chooses them
// (MqttTransportHandler with Netty's MqttReasonCodes). An adapter sends them
// to MQTT 5 clients only; MQTT 3.1.1 has no reason codes beyond CONNACK's
// and SUBACK's (see V311Connack and SubackFailure).
const (
	CodeImplementationSpecific byte = 0x83 // DISCONNECT after a failed publish, a firmware error
	CodeClientIDNotValid       byte = 0x85 // CONNACK: no user name, no password, a client id
	CodeBadUserNameOrPassword  byte = 0x86 // CONNACK: a bad token or password
	CodeNotAuthorized          byte = 0x87 // CONNACK: any other refusal
	CodeServerUnavailable      byte = 0x88 // CONNACK: backend error (here: the core is closed)
	CodeServerShuttingDown     byte = 0x8B // DISCONNECT from exceptionCaught (an unparsable chunk size)
	CodeSessionTakenOver       byte = 0x8E // DISCONNECT: a new session of the device with the same client id (seen on 4.3)
	CodeTopicFilterInvalid     byte = 0x8F // SUBACK: a filter ThingsBoard does not serve
	CodeTopicNameInvalid       byte = 0x90 // PUBACK: an unknown topic; DISCONNECT: one in a provisioning session
	CodeAdministrativeAction   byte = 0x98 // DISCONNECT: device deleted, credentials updated
	CodePayloadFormatInvalid   byte = 0x99 // PUBACK or DISCONNECT: a payload that does not parse
	CodeServerBusy             byte = 0x89 // DISCONNECT after CONNACK 0x88
	CodeMessageRateTooHigh     byte = 0x96 // DISCONNECT after CONNACK 0x9F
	CodeConnectionRateExceeded byte = 0x9F // CONNACK: the session opening is over a rate limit
)

// RefusalDisconnect is the DISCONNECT reason code that follows a refusing
// CONNACK under MQTT 5 (MqttTransportHandler writes one after each refusal):
// the CONNACK's own code for refused credentials, SERVER_BUSY after a
// backend error, MESSAGE_RATE_TOO_HIGH after a rate limit.
func RefusalDisconnect(connack byte) byte {
	switch connack {
	case CodeServerUnavailable:
		return CodeServerBusy
	case CodeConnectionRateExceeded:
		return CodeMessageRateTooHigh
	}
	return connack
}

// CodeCloser is a Conn that can tell an MQTT 5 client why the server closes
// it. The core calls CloseWithCode instead of Close on such a Conn; code is
// the DISCONNECT reason code ThingsBoard would send first, or 0 where it
// closes the socket without a DISCONNECT (the provisioning session's end,
// the server shutting down). The same rules as Close apply.
type CodeCloser interface {
	CloseWithCode(reason string, code byte)
}

// RefusedConnack returns the CONNACK reason code (MQTT 5) ThingsBoard sends
// when a CONNECT's credentials match no device. It depends on what the
// packet carried, not on why the lookup failed
// (MqttTransportHandler.onValidateDeviceResponse): a user name and a
// password, or exactly one of them, give 0x86; neither with a client id
// 0x85; nothing at all 0x87.
func RefusedConnack(clientID string, hasUser, hasPassword bool) byte {
	switch {
	case hasUser && hasPassword, hasUser != hasPassword:
		return CodeBadUserNameOrPassword
	case !isBlank(clientID):
		return CodeClientIDNotValid
	}
	return CodeNotAuthorized
}

// isBlank is Apache Commons' StringUtils.isBlank (Java's
// Character.isWhitespace on every rune) for the ASCII a client id carries.
func isBlank(s string) bool {
	for _, r := range s {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f:
		default:
			return false
		}
	}
	return true
}

// V311Connack maps an MQTT 5 CONNACK code to the MQTT 3.1.1 return code
// ThingsBoard sends instead (ReturnCodeResolver.getConnectionReturnCode):
// 0x86 and 0x87 are 5, 0x85 is 2, 0x88 and 0x9F are 3.
func V311Connack(code byte) byte {
	switch code {
	case ConnAccepted:
		return ConnAccepted
	case CodeClientIDNotValid:
		return ConnRefusedIdentifier
	case CodeServerUnavailable, CodeConnectionRateExceeded:
		return ConnRefusedUnavailable
	}
	return ConnRefusedNotAuthorized
}

// protocolError is a publish the core refuses, with what ThingsBoard does
// about it on the wire.
type protocolError struct {
	err error
	// code is the DISCONNECT reason code (MQTT 5) of the close.
	code byte
	// adaptor marks ThingsBoard's AdaptorException (a payload that does not
	// parse): an MQTT 5 session gets PUBACK 0x99 for a QoS 1 publish and
	// stays open; a QoS 0 one, or any under MQTT 3.1.1, closes it
	// (sendResponseForAdaptorErrorOrCloseContext).
	adaptor bool
	// ackFirst: ThingsBoard acknowledges the publish (with code) and then
	// closes (a provisioning session's other topic, a provisioning request
	// that throws; seen on 4.3: PUBACK, then the close).
	ackFirst bool
}

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

// payloadError is an unparsable payload of a known topic.
func payloadError(err error) error {
	return &protocolError{err: err, code: CodePayloadFormatInvalid, adaptor: true}
}

// provisionError classifies a refused provisioning request as
// JsonConverter.buildProvisionRequestMsg fails: a body that is no JSON
// object is an AdaptorException (retried as protobuf, which fails too); a
// missing key or secret, or an unknown credentials type, a RuntimeException,
// which closes the session with 0x83.
func provisionError(err error) error {
	if errors.Is(err, tbapi.ErrMissingField) || errors.Is(err, tbapi.ErrBadField) {
		return &protocolError{err: err, code: CodeImplementationSpecific, ackFirst: true}
	}
	return payloadError(err)
}

// closeCode is the DISCONNECT reason code (MQTT 5) for a session the core
// closes with reason: ThingsBoard's closeCtx codes, 0 where it closes the
// channel without a DISCONNECT.
func closeCode(reason string, err error) byte {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.code
	}
	switch reason {
	case ReasonInactivity:
		// TransportActivityManager.onStateExpiry sends a close notification
		// without a reason (UNKNOWN_REASON), which onRemoteSessionCloseCommand
		// maps to IMPLEMENTATION_SPECIFIC_ERROR; seen on 4.3.1.3.
		return CodeImplementationSpecific
	case ReasonDeviceDeleted, ReasonCredentialsUpdated:
		return CodeAdministrativeAction // onDeviceDeleted; CREDENTIALS_UPDATED
	case ReasonProvisionExpired, ReasonServerClosing:
		return 0 // DeviceProvisionCallback's ctx::close; the event loops shutting down
	}
	return CodeImplementationSpecific // getPubAckCallback.onError (rate limits), sendOtaPackageError
}

// parseJavaInt is Java's Integer.parseInt on an ASCII payload: an optional
// sign, then decimal digits, within 32 bits. ThingsBoard reads a chunk
// request's size with it (getOtaPackageCallback).
func parseJavaInt(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	n := int64(0)
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > 1<<31 {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	if n > 1<<31-1 {
		return 0, false
	}
	return int(n), true
}
