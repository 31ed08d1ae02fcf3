package core

import (
	crand "crypto/rand"
	"encoding/binary"
	"time"
)

// Clock is the core's only source of time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// At arranges for f to run once at t, or as soon as possible if t has
	// passed, and returns stop, which cancels it and reports whether that
	// prevented f from running. At never runs f itself: a real clock runs it
	// on a goroutine of its own, a virtual one from its event loop.
	At(t time.Time, f func()) (stop func() bool)
}

// RealClock is the wall clock: At is time.AfterFunc.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// At runs f on its own goroutine at t.
func (RealClock) At(t time.Time, f func()) func() bool { return time.AfterFunc(time.Until(t), f).Stop }

var _ Clock = RealClock{}

// Rand is a source of random bits, as math/rand/v2's Source: a seeded PCG
// makes the core deterministic. The core serialises its calls.
type Rand interface {
	Uint64() uint64
}

// cryptoRand is the default source: access tokens must not be guessable.
type cryptoRand struct{}

func (cryptoRand) Uint64() uint64 {
	var b [8]byte
	crand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
