package envoy

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestRealCheckRequestShapes sends CheckRequests shaped as real Envoy and
// Istio sidecars emit them (testdata/envoy-captures) to authz.
func TestRealCheckRequestShapes(t *testing.T) {
	t.Parallel()
	s := startStack(t, false)
	token := s.issuer.Token(t, "")
	raw, err := os.ReadFile("../testdata/envoy-captures/expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]struct {
		Status int    `yaml:"status"`
		Reason string `yaml:"reason"`
		User   string `yaml:"user"`
	}
	if err := yaml.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../testdata/envoy-captures/*.json")
	if len(files) != len(expected) || len(files) < 6 {
		t.Fatalf("%d captures, %d expectations", len(files), len(expected))
	}
	conn, err := grpc.NewClient(s.authz.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	replacer := strings.NewReplacer("{{TOKEN}}", token, "{{BEARER_B64}}", base64.StdEncoding.EncodeToString([]byte("Bearer "+token)))
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			want, ok := expected[name]
			if !ok {
				t.Fatal("no expectation in expected.yaml")
			}
			data, _ := os.ReadFile(file)
			var req authv3.CheckRequest
			if err := protojson.Unmarshal([]byte(replacer.Replace(string(data))), &req); err != nil {
				t.Fatalf("capture does not decode as a CheckRequest: %v", err)
			}
			resp, err := client.Check(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			status := 200
			if d := resp.GetDeniedResponse(); d != nil {
				status = int(d.GetStatus().GetCode())
			}
			md := resp.GetDynamicMetadata().GetFields()
			if status != want.Status || md["reason"].GetStringValue() != want.Reason {
				t.Fatalf("got %d %s, want %d %s", status, md["reason"].GetStringValue(), want.Status, want.Reason)
			}
			if want.User != "" {
				var user string
				for _, h := range resp.GetOkResponse().GetHeaders() {
					if h.GetHeader().GetKey() == "x-auth-user-id" {
						user = h.GetHeader().GetValue()
					}
				}
				if user != want.User {
					t.Fatalf("x-auth-user-id %q, want %q", user, want.User)
				}
			}
		})
	}
}
