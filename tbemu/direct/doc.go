// Package direct puts the emulator's device API (tbemu/core) behind plain
// in-process calls, for a discrete-event simulator that runs thousands of
// devices and the emulator on one goroutine and one virtual clock, with no
// MQTT stack in between.
//
// # Basics
//
// The simulator builds the core on its own clock and random source, and
// talks to it through a Server:
//
//	c, _ := core.New(core.Options{Clock: simClock, Rand: rand.NewPCG(seed, 0)})
//	srv := direct.New(c)
//	sess, code := srv.Connect(conn, "provision", "provision", "") // CONNACK code
//	puback := srv.Publish(sess, "/provision/request", req, 1)
//
// conn is the simulator's end of the connection: the core calls
// conn.Deliver for each PUBLISH to that one client (with its QoS) and
// conn.Close when it closes the session. simClock has the methods of
// core.Clock (Now, and At to run a function at a time, cancellable), all on
// plain types, so it needs no import of tbemu.
//
// Every method signature uses only plain types, time.Time and the aliases
// Conn and Session, which are interface literals: a package that may not
// import tbemu can declare an interface with the same methods, spelling the
// same literals, and *Server satisfies it (see the package's tests).
//
// # Caveats
//
// Calls are synchronous: Publish returns after the core has delivered its
// replies and, if it closed the session, called conn.Close. Deliver and
// Close must not call the Server back; queue the event instead. Nothing is
// delivered to a connection after Close or after Disconnect.
//
// # Imports
//
// tbemu/core and the standard library; not mochi, net/http or the other
// adapters.
package direct
