package envoy

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	authzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/policy"
)

func loadConfig(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := LoadBootstrap("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func apiHCM(t *testing.T, bs *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	var listener *listenerv3.Listener
	for _, l := range bs.GetStaticResources().GetListeners() {
		if l.GetName() == "api" {
			listener = l
		}
	}
	if listener == nil || len(listener.GetFilterChains()) != 1 {
		t.Fatal("no api listener with one filter chain")
	}
	filters := listener.GetFilterChains()[0].GetFilters()
	if len(filters) != 1 {
		t.Fatalf("%d network filters", len(filters))
	}
	var hcm hcmv3.HttpConnectionManager
	if err := filters[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	return &hcm
}

func cluster(t *testing.T, bs *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %q", name)
	return nil
}

func TestConfigPathNormalization(t *testing.T) {
	t.Parallel()
	hcm := apiHCM(t, loadConfig(t))
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() {
		t.Error("normalize_path and merge_slashes must be on: authz must match the path the upstream serves")
	}
	if hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Errorf("path_with_escaped_slashes_action = %v, want REJECT_REQUEST", hcm.GetPathWithEscapedSlashesAction())
	}
	if !hcm.GetUseRemoteAddress().GetValue() {
		t.Error("use_remote_address must be on")
	}
}

// TestConfigRejectsHeadersWithUnderscores: Envoy's default lets
// x_auth_user_id through, which CGI-style upstreams read as x-auth-user-id.
func TestConfigRejectsHeadersWithUnderscores(t *testing.T) {
	t.Parallel()
	hcm := apiHCM(t, loadConfig(t))
	if got := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); got != corev3.HttpProtocolOptions_REJECT_REQUEST {
		t.Errorf("headers_with_underscores_action = %v, want REJECT_REQUEST", got)
	}
}

// TestConfigAdminIsOnLoopback: the admin interface can stop Envoy and
// rewrite its runtime; it must not listen beyond the host.
func TestConfigAdminIsOnLoopback(t *testing.T) {
	t.Parallel()
	addr := loadConfig(t).GetAdmin().GetAddress().GetSocketAddress().GetAddress()
	if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() {
		t.Errorf("admin listens on %q, want a loopback address", addr)
	}
}

func TestConfigStripsTrustedHeadersFirst(t *testing.T) {
	t.Parallel()
	hcm := apiHCM(t, loadConfig(t))
	removed := map[string]bool{}
	for _, ext := range hcm.GetEarlyHeaderMutationExtensions() {
		var hm earlyv3.HeaderMutation
		if err := ext.GetTypedConfig().UnmarshalTo(&hm); err != nil {
			t.Fatal(err)
		}
		for _, m := range hm.GetMutations() {
			if r := m.GetRemove(); r != "" {
				removed[r] = true
			}
		}
	}
	names := authz.DefaultHeaderNames()
	for _, h := range []string{names.ClientID, names.Scopes, names.TenantID, names.UserID} {
		if !removed[h] {
			t.Errorf("trusted header %s is not stripped before the filters", h)
		}
	}
	for _, h := range []string{"authorization", authz.OnBehalfOfHeader} {
		if removed[h] {
			t.Errorf("%s is stripped before authz can read it", h)
		}
	}
}

func TestConfigExtAuthzFailsClosed(t *testing.T) {
	t.Parallel()
	bs := loadConfig(t)
	filters := apiHCM(t, bs).GetHttpFilters()
	if len(filters) < 2 || filters[0].GetName() != "envoy.filters.http.ext_authz" || filters[len(filters)-1].GetName() != "envoy.filters.http.router" {
		t.Fatalf("ext_authz must be the first HTTP filter and router the last: %v", filters)
	}
	var ea authzv3.ExtAuthz
	if err := filters[0].GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatal(err)
	}
	if ea.GetFailureModeAllow() {
		t.Error("failure_mode_allow must be false")
	}
	if ea.GetTransportApiVersion().String() != "V3" {
		t.Errorf("transport_api_version %v", ea.GetTransportApiVersion())
	}
	if code := ea.GetStatusOnError().GetCode(); code < 500 {
		t.Errorf("status_on_error = %v, want an explicit 5xx", code)
	}
	gs := ea.GetGrpcService()
	if gs.GetEnvoyGrpc().GetClusterName() != "authz" {
		t.Errorf("ext_authz cluster %q", gs.GetEnvoyGrpc().GetClusterName())
	}
	if d := gs.GetTimeout().AsDuration(); d <= 0 || d > time.Second {
		t.Errorf("ext_authz timeout %v: set a deliberate timeout of at most 1s", d)
	}
	if !ea.GetEncodeRawHeaders() {
		t.Error("encode_raw_headers should be on so duplicate headers reach authz unmerged")
	}
	if ea.GetWithRequestBody() != nil {
		t.Error("authz needs no request body")
	}
	// No route may switch ext_authz off.
	for _, vh := range apiHCM(t, bs).GetRouteConfig().GetVirtualHosts() {
		if len(vh.GetTypedPerFilterConfig()) > 0 {
			t.Errorf("virtual host %s overrides filter config", vh.GetName())
		}
		for _, r := range vh.GetRoutes() {
			if len(r.GetTypedPerFilterConfig()) > 0 {
				t.Errorf("route %v overrides filter config", r.GetMatch())
			}
		}
	}
}

func TestConfigAuthzClusterSpeaksGRPC(t *testing.T) {
	t.Parallel()
	c := cluster(t, loadConfig(t), "authz")
	opts, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		t.Fatal("authz cluster has no HTTP protocol options")
	}
	var hpo upstreamhttpv3.HttpProtocolOptions
	if err := opts.UnmarshalTo(&hpo); err != nil {
		t.Fatal(err)
	}
	if hpo.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Error("authz cluster must use HTTP/2 (gRPC)")
	}
	var grpcHealth bool
	for _, hc := range c.GetHealthChecks() {
		if hc.GetGrpcHealthCheck().GetServiceName() == "envoy.service.auth.v3.Authorization" {
			grpcHealth = true
		}
	}
	if !grpcHealth {
		t.Error("authz cluster needs a gRPC health check on envoy.service.auth.v3.Authorization")
	}
}

// TestIssuerRoutesArePublicInPolicy: envoy.yaml keeps ext_authz on for the
// issuer's routes, so the sample policy must make them public.
func TestIssuerRoutesArePublicInPolicy(t *testing.T) {
	t.Parallel()
	p, err := policy.Load("../examples/policy")
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range [][2]string{{"POST", "/oauth2/token"}, {"POST", "/oauth2/revoke"}, {"GET", "/.well-known/jwks.json"}, {"GET", "/.well-known/oauth-authorization-server"}} {
		var m policy.Match
		p.Match(req[0], req[1], &m)
		if m.Route == nil || !m.Route.Public {
			t.Errorf("%s %s is routed to the issuer but not public in the policy", req[0], req[1])
		}
	}
	bs := loadConfig(t)
	var issuerRoutes int
	for _, vh := range apiHCM(t, bs).GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetRoute().GetCluster() == "issuer" {
				issuerRoutes++
			}
		}
	}
	if issuerRoutes == 0 {
		t.Error("no route to the issuer")
	}
}

// TestPlantedMistakesAreCaught proves the loader is strict: a misspelt field,
// a wrong type, an unknown typed config and an invalid value all fail.
func TestPlantedMistakesAreCaught(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := string(raw)
	for name, plant := range map[string][2]string{
		"misspelt field":        {"normalize_path: true", "normalise_path: true"},
		"misspelt nested field": {"failure_mode_allow: false", "failure_mode_alow: false"},
		"wrong type":            {"failure_mode_allow: false", "failure_mode_allow: nope"},
		"wrong type url":        {"v3.ExtAuthz", "v3.ExtAuthZ"},
		"invalid enum":          {"path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: REJECT"},
		"underscores enum":      {"headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: STRIP"},
		"invalid port":          {"port_value: 10000", "port_value: 100000"},
		"invalid duration":      {"timeout: 0.25s", "timeout: quick"},
		"empty cluster name":    {"cluster_name: authz\n                        #", "cluster_name: \"\"\n                        #"},
	} {
		if !strings.Contains(good, plant[0]) {
			t.Fatalf("%s: %q not found in envoy.yaml", name, plant[0])
		}
		if _, err := ParseBootstrap([]byte(strings.Replace(good, plant[0], plant[1], 1))); err == nil {
			t.Errorf("%s: the planted mistake was not caught", name)
		}
	}
}
