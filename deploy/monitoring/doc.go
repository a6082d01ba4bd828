// Package monitoring holds Portcullis's Grafana dashboard and Prometheus
// alert rules (grafana-dashboard.json, alerts.yaml); its test keeps every
// metric they query one that authz or the issuer exports.
package monitoring
