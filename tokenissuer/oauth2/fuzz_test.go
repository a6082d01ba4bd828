package oauth2_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
)

// FuzzTokenRequest throws arbitrary bodies, content types and Authorization
// headers at the token endpoint: it must answer every one with a well-formed
// RFC 6749 response, never a panic or a 5xx.
func FuzzTokenRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials", "Basic ZnV6ei1jbGllbnQ6c2VjcmV0")
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=fuzz-client&client_secret=x", "")
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=password", "")
	f.Add("application/x-www-form-urlencoded; charset=\xff", "%zz&&=&x=%ff", "Basic \x00")
	f.Add("multipart/form-data; boundary=x", "--x--", "Bearer a.b.c")
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&scope=a%20%20b", "Basic Og==")
	f.Add("", "", "basic    ")

	cfg := testConfig(f.TempDir())
	cfg.RateLimit.MaxFailures = 0
	ti := startIssuer(f, cfg, fakeclock.New())
	if _, _, err := ti.admin.CreateClient(tokenissuer.WithActor(f.Context(), testOperator), tokenissuer.NewClient{ID: "fuzz-client", Scopes: []string{"a", "b"}}); err != nil {
		f.Fatal(err)
	}
	handler := ti.server.Handler()
	f.Fuzz(func(t *testing.T, contentType, body, authorization string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", authorization)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q", rec.Code, body)
		}
		var reply map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("response is not JSON: %q", rec.Body.String())
		}
		if rec.Code != 200 && reply["error"] == nil {
			t.Fatalf("error response without error code: %q", rec.Body.String())
		}
	})
}
