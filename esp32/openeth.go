//go:build tinygo

package esp32

import (
	"runtime/volatile"
	"unsafe"

	"github.com/tbsim/tbsim/firmware/netstack"
)

// OpenEth drives the OpenCores Ethernet MAC that qemu-esp32c3 --nic maps at
// 0x600CD000 (registers) and 0x600CD400 (128 buffer descriptors), polled,
// without interrupts. Registers and descriptor bits follow ESP-IDF's
// esp_eth/src/openeth/openeth.h; QEMU's model is the only such MAC on a C3.
type OpenEth struct {
	tx      [txCount][bufSize]byte
	rx      [rxCount][bufSize]byte
	nextTx  int
	nextRx  int
	present bool
}

const (
	ethBase   = 0x600CD000
	ethDesc   = ethBase + 0x400
	txCount   = 2
	rxCount   = 8
	bufSize   = 1600
	moderReg  = 0x00
	txBDNum   = 0x20
	macAddr0  = 0x40
	macAddr1  = 0x44
	moderRXEN = 1 << 0
	moderTXEN = 1 << 1
	moderPRO  = 1 << 5
	moderRST  = 1 << 11
	moderInit = 0xA000  // MODER's reset value: how ESP-IDF tells QEMU's MAC is there
	bdReady   = 1 << 15 // TX: owned by the MAC; RX: empty, owned by the MAC
	bdIRQ     = 1 << 14
	bdWrap    = 1 << 13
	bdPad     = 1 << 12
	bdCRC     = 1 << 11
)

var _ netstack.NIC = (*OpenEth)(nil)

func reg(off uintptr) *volatile.Register32 {
	return (*volatile.Register32)(unsafe.Pointer(uintptr(ethBase) + off))
}

func desc(i int) (*volatile.Register32, *volatile.Register32) {
	p := uintptr(ethDesc) + uintptr(i)*8
	return (*volatile.Register32)(unsafe.Pointer(p)), (*volatile.Register32)(unsafe.Pointer(p + 4))
}

// Start resets the MAC, sets its address and descriptors, and enables it.
// It reports false when no MAC answers (no --nic, or a real chip).
func (e *OpenEth) Start(mac [6]byte) bool {
	if reg(moderReg).Get() != moderInit {
		return false
	}
	reg(moderReg).SetBits(moderRST)
	reg(moderReg).ClearBits(moderRST)
	reg(txBDNum).Set(txCount)
	reg(macAddr0).Set(uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5]))
	reg(macAddr1).Set(uint32(mac[0])<<8 | uint32(mac[1]))
	for i := 0; i < txCount; i++ {
		w0, w1 := desc(i)
		flags := uint32(0)
		if i == txCount-1 {
			flags = bdWrap
		}
		w0.Set(flags)
		w1.Set(uint32(uintptr(unsafe.Pointer(&e.tx[i][0]))))
	}
	for i := 0; i < rxCount; i++ {
		w0, w1 := desc(txCount + i)
		flags := uint32(bdReady | bdIRQ)
		if i == rxCount-1 {
			flags |= bdWrap
		}
		w0.Set(flags)
		w1.Set(uint32(uintptr(unsafe.Pointer(&e.rx[i][0]))))
	}
	reg(moderReg).SetBits(moderTXEN | moderRXEN | moderPRO)
	e.present = true
	return true
}

// Send queues one frame (QEMU sends it at once).
func (e *OpenEth) Send(frame []byte) error {
	if !e.present || len(frame) > bufSize {
		return errNoNIC
	}
	w0, _ := desc(e.nextTx)
	for w0.Get()&bdReady != 0 { // still owned by the MAC: QEMU never holds one long
	}
	copy(e.tx[e.nextTx][:], frame)
	flags := uint32(bdReady | bdPad | bdCRC)
	if e.nextTx == txCount-1 {
		flags |= bdWrap
	}
	w0.Set(uint32(len(frame))<<16 | flags)
	e.nextTx = (e.nextTx + 1) % txCount
	return nil
}

// Recv copies the next received frame, if any, and gives its buffer back.
func (e *OpenEth) Recv(buf []byte) int {
	if !e.present {
		return 0
	}
	w0, _ := desc(txCount + e.nextRx)
	v := w0.Get()
	if v&bdReady != 0 {
		return 0
	}
	n := copy(buf, e.rx[e.nextRx][:min(int(v>>16), bufSize)])
	w0.Set(v&bdWrap | bdReady | bdIRQ)
	e.nextRx = (e.nextRx + 1) % rxCount
	return n
}

var errNoNIC = offlineError{}
