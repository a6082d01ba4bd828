package envoy

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	authzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestDocsHTTPServiceFilterIsValid: the http_service filter of
// docs/proxies.md decodes into go-control-plane's types, validates, fails
// closed, and sends authz what it reads and the upstream what authz sets.
func TestDocsHTTPServiceFilterIsValid(t *testing.T) {
	raw, err := os.ReadFile("../docs/proxies.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "<!-- envoy http_service filter -->\n```yaml\n")
	if !ok {
		t.Fatal("docs/proxies.md has no http_service filter block after its marker")
	}
	block, _, _ := strings.Cut(rest, "```")
	var doc any
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var filter hcmv3.HttpFilter
	if err := protojson.Unmarshal(js, &filter); err != nil {
		t.Fatalf("not an HttpFilter: %v", err)
	}
	if err := filter.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if err := validateTypedConfigs(filter.ProtoReflect()); err != nil {
		t.Fatal(err)
	}
	var ext authzv3.ExtAuthz
	if err := filter.GetTypedConfig().UnmarshalTo(&ext); err != nil {
		t.Fatal(err)
	}
	if ext.GetFailureModeAllow() || ext.GetStatusOnError().GetCode() != 503 || ext.GetHttpService() == nil {
		t.Errorf("the filter must ask over HTTP and fail closed with 503: %v", &ext)
	}
	want := map[string][]string{
		"allowed_headers":          {"authorization", "x-on-behalf-of"},
		"allowed_upstream_headers": {"x-auth-client-id", "x-auth-scopes", "x-auth-tenant-id", "x-auth-user-id"},
		"allowed_client_headers":   {"content-type", "cache-control", "www-authenticate"},
	}
	got := map[string][]string{}
	for _, p := range ext.GetAllowedHeaders().GetPatterns() {
		got["allowed_headers"] = append(got["allowed_headers"], p.GetExact())
	}
	resp := ext.GetHttpService().GetAuthorizationResponse()
	for _, p := range resp.GetAllowedUpstreamHeaders().GetPatterns() {
		got["allowed_upstream_headers"] = append(got["allowed_upstream_headers"], p.GetExact())
	}
	for _, p := range resp.GetAllowedClientHeaders().GetPatterns() {
		got["allowed_client_headers"] = append(got["allowed_client_headers"], p.GetExact())
	}
	for list, names := range want {
		for _, name := range names {
			if !slices.Contains(got[list], name) {
				t.Errorf("%s lacks %s: %q", list, name, got[list])
			}
		}
	}
}
