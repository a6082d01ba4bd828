package coverage

import (
	"context"
	"testing"

	"github.com/portcullis/portcullis/policy"
)

func TestEveryKindOfFindingWithItsLocation(t *testing.T) {
	t.Parallel()
	doc, err := LoadDocument(context.Background(), "testdata/api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load("testdata/policy")
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(doc, pol, Options{IgnoreRoutes: []string{"health"}})
	if rep.Operations != 8 || rep.Routes != 9 {
		t.Fatalf("operations %d, routes %d", rep.Operations, rep.Routes)
	}
	type key struct {
		kind  Kind
		what  string
		where string
	}
	got := map[key]Finding{}
	for _, f := range rep.Findings {
		what := f.Method + " " + f.Path
		if f.Kind == UnusedRoute {
			what = f.Route
		}
		got[key{f.Kind, what, f.Location}] = f
	}
	want := []key{
		// The server's base path (/v1, its variable at its default) prefixes
		// every operation.
		{Uncovered, "DELETE /v1/accounts/{accountId}", ""},
		{ScopeMismatch, "GET /v1/accounts/{accountId}", "testdata/policy/routes.yaml:30:5"},
		{PublicMismatch, "GET /v1/ping", "testdata/policy/routes.yaml:15:5"},
		{UnusedRoute, "legacy-reports", "testdata/policy/routes.yaml:45:5"},
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("missing finding %+v; got %+v", k, rep.Findings)
		}
	}
	if len(rep.Findings) != len(want) {
		t.Errorf("%d findings, want %d: %+v", len(rep.Findings), len(want), rep.Findings)
	}
	mismatch := got[key{ScopeMismatch, "GET /v1/accounts/{accountId}", "testdata/policy/routes.yaml:30:5"}]
	if mismatch.OperationID != "getAccount" || len(mismatch.OperationScopes) != 2 || len(mismatch.RouteScopes) != 1 || mismatch.Route != "get-account" {
		t.Errorf("scope mismatch: %+v", mismatch)
	}
	// Without the ignore list, the health route is unused too.
	if rep := Check(doc, pol, Options{}); len(rep.Findings) != len(want)+1 {
		t.Errorf("health not reported: %+v", rep.Findings)
	}
}

func TestADocumentThatIsNotOpenAPIIsRefused(t *testing.T) {
	t.Parallel()
	if _, err := LoadDocument(context.Background(), "testdata/policy/routes.yaml"); err == nil {
		t.Fatal("a policy file was read as an OpenAPI document")
	}
	if _, err := LoadDocument(context.Background(), "testdata/missing.yaml"); err == nil {
		t.Fatal("a missing file was read")
	}
}
