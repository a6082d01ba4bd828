package adminapi_test

import (
	"testing"

	"github.com/portcullis/portcullis/tokenissuer/adminapi"
)

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, err := adminapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Paths.Len() < 10 {
		t.Fatalf("openapi %s with %d paths", doc.OpenAPI, doc.Paths.Len())
	}
}
