// Package envoy holds the Envoy configuration that fronts the API
// (envoy.yaml) and the tests that prove it valid and secure, consistent with
// docker-compose.yml, and that authz behaves as Envoy expects end to end.
package envoy
