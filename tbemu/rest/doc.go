// Package rest serves the subset of ThingsBoard's REST API that tbsim needs
// (login, OTA packages, devices, device profiles, latest telemetry,
// attributes, RPC, and GET /api/tbsim/stats) over a tbemu/core, on
// ThingsBoard's own paths and with its JSON shapes, so a client written for
// ThingsBoard (tbsim ota push) drives both.
//
// # Imports
//
// net/http, tbemu/core, firmware/tbapi and the standard library; not mochi
// nor the other adapters.
package rest
