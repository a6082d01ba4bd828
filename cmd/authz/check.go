package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/cmd/internal/cli"
)

type checkOptions struct {
	addr, token, obo, authority string
	raw, showJSON               bool
	timeout                     time.Duration
	headers                     []string
}

func newCheckCommand() *cobra.Command {
	var o checkOptions
	c := &cobra.Command{
		Use:   "check [flags] METHOD PATH",
		Short: "Send one CheckRequest to a running authz and print the decision",
		Long: `Send one CheckRequest shaped as Envoy shapes it (lower-case headers, pseudo-headers,
the path with its query) to a running authz, and print the status, the headers set
and removed, the body and the dynamic metadata.

Exit status: 0 allowed, 1 denied, 2 authz could not be reached (or a usage error).`,
		Example: `  authz check --token "$TOKEN" GET /v1/accounts/42
  authz check --token "$TOKEN" --on-behalf-of "user 42" POST /v1/accounts
  authz check --raw-headers --header "authorization: Bearer a" --header "authorization: Bearer b" GET /v1/accounts`,
		Args: cli.ExactArgs(2, "METHOD PATH"),
		RunE: func(c *cobra.Command, args []string) error {
			o.showJSON = o.showJSON || structured(c)
			return check(c, o, args[0], args[1])
		},
	}
	f := c.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:9001", "authz gRPC address")
	f.StringVar(&o.token, "token", "", "bearer token (sent as Authorization: Bearer TOKEN)")
	f.StringVar(&o.obo, "on-behalf-of", "", `X-On-Behalf-Of value, e.g. "user 42"`)
	f.StringVar(&o.authority, "authority", "api.example.com", ":authority (Host)")
	f.BoolVar(&o.raw, "raw-headers", false, "send headers in header_map, as Envoy does with encode_raw_headers")
	f.BoolVar(&o.showJSON, "json", false, "print the CheckResponse as JSON")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "request timeout")
	f.StringArrayVar(&o.headers, "header", nil, `extra header "name: value" (repeatable)`)
	return c
}

// check sends one CheckRequest shaped as Envoy shapes it and prints the
// decision: for platform engineers debugging a route.
func check(c *cobra.Command, o checkOptions, method, path string) error {
	ctx, stdout := c.Context(), c.OutOrStdout()
	hdrs := [][2]string{{":authority", o.authority}, {":method", method}, {":path", path}, {":scheme", "https"}}
	if o.token != "" {
		hdrs = append(hdrs, [2]string{"authorization", "Bearer " + o.token})
	}
	if o.obo != "" {
		hdrs = append(hdrs, [2]string{"x-on-behalf-of", o.obo})
	}
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return usageError{Msg: fmt.Sprintf("--header %q: want \"name: value\"", h), Command: "authz check"}
		}
		hdrs = append(hdrs, [2]string{strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)})
	}
	req := authz.NewCheckRequest(method, path, o.authority, hdrs, o.raw)

	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return cli.UnreachableError{Err: fmt.Errorf("authz at %s: %w", o.addr, err)}
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(cctx, req)
	if err != nil {
		return cli.UnreachableError{Err: unreachable(o.addr, o.timeout, err)}
	}
	if o.showJSON {
		// protojson's names (okResponse, headersToRemove), in -o's format.
		var doc any
		if err := json.Unmarshal([]byte(protojson.Format(resp)), &doc); err != nil {
			return err
		}
		if err := printData(c, doc); err != nil {
			return err
		}
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

// unreachable says in people's words why authz did not answer, keeping the
// gRPC error underneath for errors.Is.
func unreachable(addr string, timeout time.Duration, err error) error {
	var why string
	switch st, _ := status.FromError(err); {
	case st.Code() == codes.Unavailable && strings.Contains(st.Message(), "connection refused"):
		why = "nothing listens there; is authz running (authz serve), and is --addr its listen address?"
	case st.Code() == codes.Unavailable:
		why = "it cannot be reached (" + st.Message() + ")"
	case st.Code() == codes.DeadlineExceeded:
		why = fmt.Sprintf("no answer within --timeout %s", timeout)
	case st.Code() == codes.Unimplemented:
		why = "what listens there is not an ext_authz server"
	default:
		why = st.Message()
	}
	return notAnswered{msg: fmt.Sprintf("authz at %s did not answer: %s", addr, why), err: err}
}

// notAnswered prints people's words and unwraps to the gRPC error.
type notAnswered struct {
	msg string
	err error
}

func (e notAnswered) Error() string { return e.msg }
func (e notAnswered) Unwrap() error { return e.err }
