// Package kubernetes holds Portcullis's Kubernetes manifests (the issuer on
// PostgreSQL; authz as a sidecar beside Envoy and as a per-node service) and
// an Istio example (istio/). Its tests decode every manifest strictly into
// the Kubernetes and Istio API types, so a misspelt field fails, and check
// what the manifests promise: non-root, read-only containers with probes and
// resources, and configurations that authz, the issuer and Envoy accept.
package kubernetes
