package oauth2

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds how many X-Forwarded-For entries are read from the
// right: more trusted proxies than this in a row is a misconfiguration.
const maxForwardedHops = 16

// trustedProxies are the addresses whose X-Forwarded-For is believed.
type trustedProxies []netip.Prefix

// parseTrustedProxies reads addresses and CIDRs ("10.0.0.7", "10.0.0.0/8",
// "::1").
func parseTrustedProxies(list []string) (trustedProxies, error) {
	var out trustedProxies
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t trustedProxies) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddress returns the address the per-address failure limit counts.
// X-Forwarded-For is read only when the request comes from a trusted proxy,
// from the right (the entry the nearest proxy appended), skipping further
// trusted proxies; everything left of the first untrusted entry was written
// by the client and is ignored. An entry that is not an IP address ends the
// walk at the last address known good.
func (t trustedProxies) clientAddress(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if !t.contains(addr) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	hops := 0
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for rest != "" {
			if hops++; hops > maxForwardedHops {
				return addr
			}
			entry := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			hop, err := netip.ParseAddr(strings.TrimSpace(entry))
			if err != nil {
				return addr
			}
			addr = hop.Unmap()
			if !t.contains(addr) {
				return addr
			}
		}
	}
	return addr
}

// limiterKey is the failure limiter's key for an address: IPv4 as is, IPv6
// by its /64, which one subscriber usually holds whole (so rotating through
// it gains nothing). At most 43 bytes, whatever the request carried.
func limiterKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
