package authz

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
)

// HTTPMode names the proxy that asks over HTTP, which fixes the headers
// that describe the request it asks about.
type HTTPMode string

// The proxies that ask over HTTP.
const (
	// HTTPModeEnvoy is Envoy's ext_authz http_service: the authorization
	// request has the original method, and the original path after
	// http.path_prefix.
	HTTPModeEnvoy HTTPMode = "envoy"
	// HTTPModeNginx is nginx auth_request: X-Original-Method and
	// X-Original-URI, set by the proxy's configuration.
	HTTPModeNginx HTTPMode = "nginx"
	// HTTPModeForwardAuth is Caddy forward_auth and Traefik ForwardAuth:
	// X-Forwarded-Method and X-Forwarded-Uri, which both proxies set.
	HTTPModeForwardAuth HTTPMode = "forward-auth"
)

// HTTPModes lists the modes, for messages.
var HTTPModes = []HTTPMode{HTTPModeEnvoy, HTTPModeNginx, HTTPModeForwardAuth}

// HTTPConfig configures the HTTP authorization listener: the same decision
// as the gRPC Check, for proxies that ask over HTTP. Off unless Listen is
// set.
type HTTPConfig struct {
	// Listen is the HTTP address proxies ask; empty: no HTTP listener.
	Listen string `yaml:"listen"`
	// Mode is the proxy asking: envoy, nginx or forward-auth.
	Mode HTTPMode `yaml:"mode"`
	// TrustedProxies are the addresses (IPs or CIDR prefixes) allowed to
	// ask. A request from anywhere else is refused (403 untrusted-proxy):
	// the headers that describe the original request are believed from a
	// proxy only, or anyone could ask about a request nobody made.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// PathPrefix is Envoy http_service's path_prefix (mode envoy only):
	// the original path follows it.
	PathPrefix string `yaml:"path_prefix"`
	// MaxHeaderBytes bounds an authorization request's headers; a larger
	// one is refused by the HTTP server (431).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

// defaultHTTPConfig: off, and believing loopback only when turned on.
func defaultHTTPConfig() HTTPConfig {
	return HTTPConfig{TrustedProxies: []string{"127.0.0.1/32", "::1/128"}, MaxHeaderBytes: 64 << 10}
}

// validate appends the problems of the settings under http.
func (c *HTTPConfig) validate(bad func(setting, format string, args ...any)) {
	if c.Listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("http.listen", "%q is not host:port", c.Listen)
	}
	switch c.Mode {
	case HTTPModeEnvoy, HTTPModeNginx, HTTPModeForwardAuth:
	case "":
		bad("http.mode", "required with http.listen: envoy (http_service), nginx (auth_request) or forward-auth (Caddy forward_auth, Traefik ForwardAuth)")
	default:
		bad("http.mode", "%q is not envoy, nginx or forward-auth", c.Mode)
	}
	if len(c.TrustedProxies) == 0 {
		bad("http.trusted_proxies", "list the proxies' addresses (IPs or CIDR prefixes): only they may ask")
	}
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		bad("http.trusted_proxies", "%v", err)
	}
	if c.PathPrefix != "" {
		if c.Mode != HTTPModeEnvoy {
			bad("http.path_prefix", "only mode envoy reads the original path after a prefix; remove it or set http.mode: envoy")
		} else if !strings.HasPrefix(c.PathPrefix, "/") || strings.HasSuffix(c.PathPrefix, "/") || path.Clean(c.PathPrefix) != c.PathPrefix {
			bad("http.path_prefix", "%q must be a clean absolute path without a trailing slash, as in http_service's path_prefix", c.PathPrefix)
		}
	}
	if c.MaxHeaderBytes < 4<<10 || c.MaxHeaderBytes > 1<<20 {
		bad("http.max_header_bytes", "%d must be between 4096 and 1048576", c.MaxHeaderBytes)
	}
}

// parseTrustedProxies reads IPs and CIDR prefixes. A prefix of every
// address (0.0.0.0/0, ::/0) is refused: it would let anyone ask.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("%q is not an IP or a CIDR prefix", s)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP or a CIDR prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%q trusts every address; name the proxies", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
