// Package mochihook puts the emulator's device API (tbemu/core) behind a
// mochi-mqtt broker: one self-contained hook that behaves like ThingsBoard's
// MQTT transport, configured like mochi's own hooks.
//
// # Basics
//
//	c, _ := core.New(core.Options{})
//	srv := mqtt.New(&mqtt.Options{Capabilities: mochihook.Capabilities()})
//	_ = srv.AddHook(new(mochihook.Hook), &mochihook.Options{Core: c})
//	_ = srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: ":1883"}))
//	_ = srv.Serve()
//
// The hook authenticates CONNECTs (a refusal gets ThingsBoard's CONNACK
// code: 5 or 2 under MQTT 3.1.1; 0x86, 0x85 or 0x87 and a DISCONNECT under
// MQTT 5), grants only ThingsBoard's subscription filters (MQTT 5: 0x8F for
// the others), consumes every client publish (acknowledged, never routed to
// other subscribers; MQTT 5 PUBACK codes 0x90 and 0x99 as ThingsBoard's),
// writes the core's replies to the one client that asked, and tells MQTT 5
// clients why the server closes them (DISCONNECT with ThingsBoard's code).
// Every session gets a unique mochi client id, so a repeated client id (the
// Arduino SDK provisions as "provision" from every device) never takes over
// another session, as in ThingsBoard. Publishes of mochi's inline client
// pass through untouched.
//
// # Imports
//
// mochi-mqtt, tbemu/core, firmware/tbapi and the standard library; not the
// other adapters (tbemu/rest, tbemu/direct).
package mochihook
