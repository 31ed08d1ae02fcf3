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
// The hook authenticates CONNECTs (a refusal is CONNACK 5 under MQTT 3.1.1,
// 0x86 under MQTT 5), grants only ThingsBoard's subscription filters,
// consumes every client publish (acknowledged, never routed to other
// subscribers) and writes the core's replies to the one client that asked.
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
