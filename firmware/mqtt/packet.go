//go:build go1.23

package mqtt

// Control packet types (MQTT 3.1.1, 2.2.1).
const (
	typeConnect    = 1
	typeConnack    = 2
	typePublish    = 3
	typePuback     = 4
	typeSubscribe  = 8
	typeSuback     = 9
	typeUnsuback   = 11
	typePingreq    = 12
	typePingresp   = 13
	typeDisconnect = 14
)

// packet is one control packet read from the stream.
type packet struct {
	typ   byte
	flags byte
	body  []byte
}

// appendRemLen appends the variable-length "remaining length" (2.2.3).
func appendRemLen(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func appendPacket(b []byte, first byte, body []byte) []byte {
	b = append(b, first)
	b = appendRemLen(b, len(body))
	return append(b, body...)
}

// parse reads one packet from the front of data. It returns the packet and
// the bytes it used, 0 when data holds only part of a packet, or an error
// for a malformed header or a packet over max bytes.
func parse(data []byte, max int) (packet, int, error) {
	if len(data) < 2 {
		return packet{}, 0, nil
	}
	n, mult, i := 0, 1, 1
	for {
		if i >= len(data) {
			return packet{}, 0, nil
		}
		d := data[i]
		n += int(d&0x7F) * mult
		i++
		if d&0x80 == 0 {
			break
		}
		if i == 5 {
			return packet{}, 0, errMalformed // at most 4 length bytes
		}
		mult *= 128
	}
	if n > max {
		return packet{}, 0, errTooLarge
	}
	if len(data)-i < n {
		return packet{}, 0, nil
	}
	return packet{typ: data[0] >> 4, flags: data[0] & 0x0F, body: data[i : i+n]}, i + n, nil
}

// publish is a parsed PUBLISH.
type publish struct {
	topic   string
	qos     byte
	id      uint16
	payload []byte
}

func parsePublish(p packet) (publish, error) {
	var m publish
	m.qos = p.flags >> 1 & 3
	b := p.body
	if len(b) < 2 {
		return m, errMalformed
	}
	tl := int(b[0])<<8 | int(b[1])
	if len(b) < 2+tl {
		return m, errMalformed
	}
	m.topic, b = string(b[2:2+tl]), b[2+tl:]
	switch m.qos {
	case 0:
	case 1:
		if len(b) < 2 {
			return m, errMalformed
		}
		m.id, b = uint16(b[0])<<8|uint16(b[1]), b[2:]
	default:
		return m, errQoS2
	}
	m.payload = append([]byte(nil), b...) // the input buffer is reused
	return m, nil
}
