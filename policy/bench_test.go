package policy

import (
	"fmt"
	"strings"
	"testing"
)

// largePolicy builds a policy of 100 resources × 5 routes = 500 routes, the
// shape of a big business API.
func largePolicy(b *testing.B) *Policy {
	var doc strings.Builder
	doc.WriteString("version: 1\nroutes:\n")
	for i := 0; i < 100; i++ {
		res := fmt.Sprintf("resource%d", i)
		fmt.Fprintf(&doc, "  - {name: list-%s, methods: [GET], path: /v1/%s, scopes: [%s:read]}\n", res, res, res)
		fmt.Fprintf(&doc, "  - {name: create-%s, methods: [POST], path: /v1/%s, scopes: [%s:write]}\n", res, res, res)
		fmt.Fprintf(&doc, "  - {name: get-%s, methods: [GET, PUT, DELETE], path: '/v1/%s/{id}', scopes: [%s:read]}\n", res, res, res)
		fmt.Fprintf(&doc, "  - {name: sub-%s, methods: [GET], path: '/v1/%s/{id}/items/{itemId}', scopes: [%s:read]}\n", res, res, res)
		fmt.Fprintf(&doc, "  - {name: files-%s, methods: [GET], path: '/v1/%s/{id}/files/**', scopes: [%s:read]}\n", res, res, res)
	}
	p, err := LoadBytes("large.yaml", []byte(doc.String()))
	if err != nil {
		b.Fatal(err)
	}
	if len(p.Routes()) != 500 {
		b.Fatalf("%d routes", len(p.Routes()))
	}
	return p
}

func BenchmarkMatch(b *testing.B) {
	p := largePolicy(b)
	cases := []struct{ name, method, path string }{
		{"literal", "GET", "/v1/resource57"},
		{"param", "GET", "/v1/resource57/abc-123"},
		{"two-params", "GET", "/v1/resource57/abc-123/items/9"},
		{"doublestar", "GET", "/v1/resource57/abc/files/2026/01/report.pdf"},
		{"miss", "PATCH", "/v1/resource57/abc"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var m Match
			for b.Loop() {
				p.Match(c.method, c.path, &m)
			}
		})
	}
}

func BenchmarkCheckPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = CheckPath("/v1/resource57/abc-123/items/9")
	}
}
