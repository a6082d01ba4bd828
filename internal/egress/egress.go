// Package egress makes the outbound HTTP requests whose destination a
// tenant chooses rather than the operator (a client's jwks_uri). Unless told
// otherwise they reach public addresses only. The check is made on the
// address actually dialled, after name resolution, so a name that resolves
// to an internal address, or is rebound to one after a check, is refused
// too: the issuer cannot be made to probe its own network or a cloud
// metadata service on a tenant's behalf.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrNotPublic is what a refused address's error is (errors.Is).
var ErrNotPublic = errors.New("not a public address")

// AddressError names a refused address and what it is.
type AddressError struct {
	Addr netip.Addr
	What string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("%s is %s, not a public address", e.Addr, e.What)
}

// Is makes errors.Is(err, ErrNotPublic) hold.
func (e *AddressError) Is(target error) bool { return target == ErrNotPublic }

// specialRange is a range of addresses that are not public unicast, and
// what its addresses are.
type specialRange struct {
	prefix netip.Prefix
	what   string
}

func special(cidr, what string) specialRange {
	return specialRange{netip.MustParsePrefix(cidr), what}
}

// specialRanges are the IANA special-purpose ranges (RFC 6890 and its
// updates) that are not public unicast. IPv4-mapped addresses are unmapped
// before the check; the IPv6 ranges that embed an IPv4 address (NAT64,
// 6to4, Teredo) are refused whole, as reaching through them is reaching
// what they embed.
var specialRanges = []specialRange{
	special("0.0.0.0/8", `"this network"`),
	special("10.0.0.0/8", "a private address"),
	special("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
	special("127.0.0.0/8", "a loopback address"),
	special("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
	special("172.16.0.0/12", "a private address"),
	special("192.0.0.0/24", "an IETF protocol address"),
	special("192.0.2.0/24", "a documentation address"),
	special("192.88.99.0/24", "a 6to4 relay address"),
	special("192.168.0.0/16", "a private address"),
	special("198.18.0.0/15", "a benchmarking address"),
	special("198.51.100.0/24", "a documentation address"),
	special("203.0.113.0/24", "a documentation address"),
	special("224.0.0.0/4", "a multicast address"),
	special("240.0.0.0/4", "a reserved address"),
	special("::/128", "the unspecified address"),
	special("::1/128", "a loopback address"),
	special("64:ff9b::/96", "a NAT64 address"),
	special("64:ff9b:1::/48", "a NAT64 address"),
	special("100::/64", "a discard address"),
	special("2001::/23", "an IETF protocol address (Teredo among them)"),
	special("2001:db8::/32", "a documentation address"),
	special("2002::/16", "a 6to4 address"),
	special("fc00::/7", "a private (unique local) address"),
	special("fe80::/10", "a link-local address"),
	special("fec0::/10", "a site-local address"),
	special("ff00::/8", "a multicast address"),
}

// globalUnicast6 is where every public IPv6 address lies (RFC 4291).
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// CheckPublic returns nil for a public unicast address, and an
// *AddressError naming what it is otherwise.
func CheckPublic(addr netip.Addr) error {
	a := addr.Unmap().WithZone("")
	if !a.IsValid() {
		return &AddressError{Addr: addr, What: "not an address"}
	}
	for _, s := range specialRanges {
		if s.prefix.Contains(a) {
			return &AddressError{Addr: a, What: s.what}
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return &AddressError{Addr: a, What: "outside IPv6 global unicast"}
	}
	return nil
}

// Options configure a Client.
type Options struct {
	// Timeout bounds a whole request, connection and body included.
	Timeout time.Duration
	// PrivateNetworks lets requests reach loopback and private addresses
	// (a development setup, or key servers on the operator's own network).
	PrivateNetworks bool
}

// Client returns an HTTP client for requests to tenant-chosen URLs. It
// follows no redirect (a public URL must not hand the request on to an
// internal one, and the answer is the URL's own), and ignores the
// environment's proxy: through a proxy the address dialled would be the
// proxy's, and the destination's would go unchecked.
func Client(o Options) *http.Client {
	dialer := &net.Dialer{Timeout: o.Timeout}
	if !o.PrivateNetworks {
		dialer.Control = refuseNonPublic
	}
	return &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: o.Timeout,
			MaxIdleConns:        100,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// refuseNonPublic is a net.Dialer's Control: it runs for each address the
// name resolved to, just before the connection is made to it.
func refuseNonPublic(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: dialling %s %q: %w", network, address, err)
	}
	return CheckPublic(ap.Addr())
}
