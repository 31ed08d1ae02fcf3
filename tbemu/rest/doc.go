// Package rest serves the subset of ThingsBoard's REST API that tbsim needs
// (login, OTA packages, devices, device profiles, latest telemetry,
// attributes, RPC, and GET /api/tbsim/stats) over a tbemu/core, on
// ThingsBoard's own paths and with its JSON shapes, so a client written for
// ThingsBoard (tbsim ota push) drives both.
//
// Every path and query parameter is checked before use, and every error is
// ThingsBoard's ThingsboardErrorResponse ({status, message, errorCode,
// timestamp}) with its codes and, where it has one, its message. Bodies are
// bounded (413 beyond), uploads are streamed and bounded by the core's
// package limit, access and refresh tokens are told apart, failed logins
// are limited per client address, and a panic is a 500, not a dropped
// connection.
//
// # Imports
//
// net/http, tbemu/core, firmware/tbapi and the standard library; not mochi
// nor the other adapters.
package rest
