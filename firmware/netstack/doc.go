//go:build go1.23

// Package netstack is a minimal IPv4 stack for one board: Ethernet II
// frames, ARP (answers for its address, resolves the gateway), IPv4 without
// fragments, and TCP client connections with in-order receive and a fixed
// retransmission timeout. It has no goroutines or timers: the board's loop
// calls Poll with the time, and it talks to the network card through NIC.
//
// It exists for the emulated ESP32-C3 (qemu-esp32c3 --nic: an OpenCores
// Ethernet MAC on QEMU's user network, guest 10.0.2.15, host loopback at
// 10.0.2.2), where no TinyGo network stack builds with TinyGo 0.33; it is
// not meant for lossy networks (no congestion control, no out-of-order
// reassembly: a segment that is not the next one is dropped and the peer
// sends it again).
//
// It lives in firmware/ for the same reason as firmware/mqtt: device code
// under the firmware's rules (TinyGo-safe, standard-library allowlist),
// used by the board's main loop, never by the state machine.
//
// # Imports
//
// errors only. Not safe for concurrent use.
package netstack
