package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portcullis/portcullis/authz"
)

// check sends one CheckRequest shaped as Envoy shapes it and prints the
// decision: for platform engineers debugging a route.
func check(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("check")
	addr := fs.String("addr", "127.0.0.1:9001", "authz gRPC address")
	token := fs.String("token", "", "bearer token (sent as Authorization: Bearer TOKEN)")
	obo := fs.String("on-behalf-of", "", `X-On-Behalf-Of value, e.g. "user 42"`)
	authority := fs.String("authority", "api.example.com", ":authority (Host)")
	raw := fs.Bool("raw-headers", false, "send headers in header_map, as Envoy does with encode_raw_headers")
	showJSON := fs.Bool("json", false, "print the CheckResponse as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	var headers multiFlag
	fs.Var(&headers, "header", `extra header "name: value" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return usageError{Msg: err.Error()}
	}
	if fs.NArg() != 2 {
		return usageError{Msg: "check [flags] METHOD PATH"}
	}
	method, path := fs.Arg(0), fs.Arg(1)
	hdrs := [][2]string{{":authority", *authority}, {":method", method}, {":path", path}, {":scheme", "https"}}
	if *token != "" {
		hdrs = append(hdrs, [2]string{"authorization", "Bearer " + *token})
	}
	if *obo != "" {
		hdrs = append(hdrs, [2]string{"x-on-behalf-of", *obo})
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return usageError{Msg: fmt.Sprintf("--header %q: want \"name: value\"", h)}
		}
		hdrs = append(hdrs, [2]string{strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)})
	}
	req := authz.NewCheckRequest(method, path, *authority, hdrs, *raw)

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(cctx, req)
	if err != nil {
		return fmt.Errorf("check %s: %w", *addr, err)
	}
	if *showJSON {
		fmt.Fprintln(stdout, protojson.Format(resp))
	} else {
		printDecision(stdout, resp)
	}
	if resp.GetOkResponse() == nil {
		return exitError{Code: 1}
	}
	return nil
}

func printDecision(w io.Writer, resp *authv3.CheckResponse) {
	if ok := resp.GetOkResponse(); ok != nil {
		fmt.Fprintf(w, "ALLOW (grpc status %d)\n", resp.GetStatus().GetCode())
		for _, h := range ok.GetHeaders() {
			fmt.Fprintf(w, "  set     %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		for _, name := range ok.GetHeadersToRemove() {
			fmt.Fprintf(w, "  remove  %s\n", name)
		}
	} else if d := resp.GetDeniedResponse(); d != nil {
		fmt.Fprintf(w, "DENY %d (grpc status %d, %s)\n", d.GetStatus().GetCode(), resp.GetStatus().GetCode(), resp.GetStatus().GetMessage())
		for _, h := range d.GetHeaders() {
			fmt.Fprintf(w, "  %s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		fmt.Fprintf(w, "\n%s\n", d.GetBody())
	} else {
		fmt.Fprintf(w, "no HTTP response; grpc status %d %s (Envoy answers 403)\n", resp.GetStatus().GetCode(), resp.GetStatus().GetMessage())
	}
	if md := resp.GetDynamicMetadata(); md != nil {
		fmt.Fprintf(w, "  metadata %s\n", protojson.Format(md))
	}
}
