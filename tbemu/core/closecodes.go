package core

import (
	"errors"
	"strings"
)

// MQTT 5 reason codes ThingsBoard 4.3 sends in PUBACK and DISCONNECT.
const (
	ReasonImplementationSpecific byte = 0x83
	ReasonServerShuttingDown     byte = 0x8B
	ReasonSessionTakenOver       byte = 0x8E
	ReasonTopicNameInvalid       byte = 0x90
	ReasonAdministrativeAction   byte = 0x98
	ReasonPayloadFormatInvalid   byte = 0x99
)

// payloadError is a publish ThingsBoard's adaptor cannot convert
// (AdaptorException): under MQTT 3.1.1 the session closes, under MQTT 5 the
// publish gets PUBACK 0x99 and the session stays.
type payloadError struct{ err error }

func (e payloadError) Error() string { return e.err.Error() }
func (e payloadError) Unwrap() error { return e.err }

func isPayloadError(err error) bool {
	var pe payloadError
	return errors.As(err, &pe)
}

// ackCloseError is a publish ThingsBoard acknowledges (with code under MQTT
// 5) and then closes the session over, sending DISCONNECT code under MQTT 5.
type ackCloseError struct {
	code byte
	msg  string
}

func (e *ackCloseError) Error() string { return e.msg }

// errChunkSize is a chunk size that is not a number: Integer.parseInt
// throws outside any handler and Netty's exceptionCaught closes the channel
// (MQTT 5: DISCONNECT 0x8B, "server shutting down", seen on 4.3).
var errChunkSize = errors.New(reasonChunkSize)

const (
	reasonChunkSize     = "chunk size: not a number"
	reasonFwErrorPrefix = "firmware request: "
)

// DisconnectCode is the MQTT 5 DISCONNECT reason code ThingsBoard 4.3 sends
// before it closes a session for the reason Conn.Close was given, and
// false when it closes without DISCONNECT (the provisioning session's
// close after its answer, the server's own shutdown).
func DisconnectCode(reason string) (byte, bool) {
	switch {
	case reason == ReasonDeviceDeleted || reason == ReasonCredentialsUpdated || reason == ReasonInactivity:
		return ReasonAdministrativeAction, true
	case reason == ReasonSessionReplaced:
		return ReasonSessionTakenOver, true
	case reason == reasonChunkSize:
		return ReasonServerShuttingDown, true
	case reason == ReasonProvisionExpired || reason == ReasonServerClosing:
		return 0, false
	case strings.HasPrefix(reason, reasonTopicPrefix):
		return ReasonTopicNameInvalid, true
	}
	return ReasonImplementationSpecific, true
}
