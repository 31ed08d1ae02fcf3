// Package deploy holds no code: its tests validate what tbsim ships for
// users to copy, since no Docker engine, cluster, CI service or Grafana is
// at hand where the tests run. The Dockerfile is parsed and its build
// command run (a static binary that then runs the Kubernetes sample's
// command lines and merge step against a local server); the Kubernetes
// manifests (deploy/*.yaml), the CI examples (examples/ci/) and the Grafana
// dashboard (dashboards/) are parsed and checked field by field, the
// dashboard's queries against the metrics tbsim exports.
package deploy
