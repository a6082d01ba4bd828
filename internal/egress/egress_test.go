package egress

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheckPublic(t *testing.T) {
	t.Parallel()
	for addr, public := range map[string]bool{
		"93.184.215.14":          true,
		"8.8.8.8":                true,
		"2606:4700:4700::1111":   true,
		"127.0.0.1":              false,
		"127.255.255.254":        false,
		"10.1.2.3":               false,
		"172.31.255.255":         false,
		"172.32.0.1":             true,
		"192.168.1.1":            false,
		"169.254.169.254":        false, // cloud metadata
		"100.100.100.200":        false, // a cloud's metadata, in shared space
		"0.0.0.0":                false,
		"224.0.0.1":              false,
		"255.255.255.255":        false,
		"198.18.0.1":             false,
		"::1":                    false,
		"::":                     false,
		"::ffff:127.0.0.1":       false, // IPv4-mapped loopback
		"::ffff:169.254.169.254": false,
		"::ffff:8.8.8.8":         true,
		"64:ff9b::a9fe:a9fe":     false, // NAT64 to the metadata address
		"2002:7f00:1::1":         false, // 6to4 embedding loopback
		"2001::1":                false, // Teredo
		"fd00:ec2::254":          false, // a cloud's IPv6 metadata
		"fe80::1%eth0":           false,
		"ff02::1":                false,
		"2001:db8::1":            false,
		"::127.0.0.1":            false, // IPv4-compatible, outside global unicast
	} {
		err := CheckPublic(netip.MustParseAddr(addr))
		if public != (err == nil) {
			t.Errorf("%s: public=%v, got %v", addr, public, err)
		}
		if err != nil && !errors.Is(err, ErrNotPublic) {
			t.Errorf("%s: %v is not ErrNotPublic", addr, err)
		}
	}
}

// TestClientReachesPublicAddressesOnly: the loopback server is refused by
// address and by a name that resolves to it, before any byte is sent; with
// PrivateNetworks it is reached.
func TestClientReachesPublicAddressesOnly(t *testing.T) {
	t.Parallel()
	hits := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		io.WriteString(w, "internal")
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	strict := Client(Options{Timeout: 5 * time.Second})
	for _, u := range []string{srv.URL + "/by-address", "http://localhost" + port + "/by-name"} {
		resp, err := strict.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s was reached: %s", u, resp.Status)
		}
		var addrErr *AddressError
		if !errors.Is(err, ErrNotPublic) || !errors.As(err, &addrErr) || !addrErr.Addr.IsLoopback() {
			t.Fatalf("%s: %v, want a refused loopback address", u, err)
		}
	}
	select {
	case p := <-hits:
		t.Fatalf("the internal server heard %s", p)
	default:
	}

	open := Client(Options{Timeout: 5 * time.Second, PrivateNetworks: true})
	resp, err := open.Get(srv.URL + "/allowed")
	if err != nil {
		t.Fatalf("with PrivateNetworks: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "internal" || <-hits != "/allowed" {
		t.Fatalf("with PrivateNetworks: %q", body)
	}
}

// TestClientFollowsNoRedirect: a URL that answers with a redirect is
// answered by that redirect; its target is never asked.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	target := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/internal" {
			target <- struct{}{}
			return
		}
		http.Redirect(w, r, "/internal", http.StatusFound)
	}))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/keys", nil)
	resp, err := Client(Options{Timeout: 5 * time.Second, PrivateNetworks: true}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want the redirect itself", resp.StatusCode)
	}
	select {
	case <-target:
		t.Fatal("the redirect was followed")
	default:
	}
}
