//go:build tinygo

package esp32

import (
	"github.com/tbsim/tbsim/firmware"
	"github.com/tbsim/tbsim/firmware/mqtt"
	"github.com/tbsim/tbsim/firmware/netstack"
)

// Network is the board's network port in the emulator: the OpenCores
// Ethernet MAC of qemu-esp32c3 --nic with netstack on QEMU's user network
// (static 10.0.2.15, gateway 10.0.2.2 = the host's loopback). To the
// firmware it is the station (firmware.WiFi: the link comes up once the MAC
// answers) and to the MQTT client the dialer.
type Network struct {
	nic    OpenEth
	stack  *netstack.Stack
	mac    string
	broker [4]byte
	port   uint16
	up     bool // EventWiFiUp owed
	clock  Clock
}

var (
	_ firmware.WiFi = (*Network)(nil)
	_ mqtt.Dialer   = (*Network)(nil)
)

// Guest addresses on QEMU's user network.
var (
	GuestIP   = [4]byte{10, 0, 2, 15}
	GatewayIP = [4]byte{10, 0, 2, 2}
)

// NewNetwork starts the Ethernet MAC; it returns nil when there is none.
func NewNetwork(mac [6]byte, broker [4]byte, port uint16) *Network {
	n := &Network{broker: broker, port: port, mac: macString(mac)}
	if !hasOpenEth || !n.nic.Start(mac) {
		return nil
	}
	n.stack = netstack.New(&n.nic, netstack.Config{MAC: mac, IP: GuestIP, Gateway: GatewayIP})
	return n
}

// Connect brings the link up at the next Poll (the cable is always in).
func (n *Network) Connect() { n.up = true }

// MAC is the device name: the Ethernet MAC.
func (n *Network) MAC() string { return n.mac }

// Info reports the wired link in the station's terms.
func (n *Network) Info() firmware.WiFiInfo {
	return firmware.WiFiInfo{SSID: "qemu-ethernet", BSSID: "52:55:0A:00:02:02", Channel: 0, RSSI: 0, LocalIP: "10.0.2.15"}
}

// Dial opens a TCP connection to the broker.
func (n *Network) Dial() (mqtt.Conn, error) {
	return n.stack.Dial(n.broker, n.port, n.clock.Now().UnixNano())
}

// Poll moves frames and the link event.
func (n *Network) Poll(emit func(firmware.Event)) {
	n.stack.Poll(n.clock.Now().UnixNano())
	if n.up {
		n.up = false
		emit(firmware.Event{Kind: firmware.EventWiFiUp})
	}
}
