// Package emutest has what tests need to drive the emulator's core in
// virtual time: a manual Clock that runs scheduled functions when advanced.
// (A seeded source such as math/rand/v2's NewPCG serves as core.Rand.)
//
// # Imports
//
// The standard library only.
package emutest
