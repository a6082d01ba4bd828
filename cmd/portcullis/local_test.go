package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a buffer two goroutines may share; seen is closed once
// what was written holds marker.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	marker string
	seen   chan struct{}
}

func newSyncBuffer(marker string) *syncBuffer {
	return &syncBuffer{marker: marker, seen: make(chan struct{})}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.marker != "" && strings.Contains(s.b.String(), s.marker) {
		close(s.seen)
		s.marker = ""
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLocalRunsFromAnyDirectoryWithAPortTaken: `local` outside the
// repository uses the sample policy built into the binary, and with one of
// its ports taken it takes free ones and says so; the banner's token
// request works.
func TestLocalRunsFromAnyDirectoryWithAPortTaken(t *testing.T) {
	t.Chdir(t.TempDir())
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	base := taken.Addr().(*net.TCPAddr).Port
	if base > 65532 {
		base -= 3 // the taken port is then the fourth
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := newSyncBuffer("Enterprise Portal"), newSyncBuffer("")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"local", "--state", "state", "--listen-base", strconv.Itoa(base)}, stdout, stderr)
	}()
	select { // the banner is printed once both servers run
	case <-stdout.seen:
	case err := <-done:
		t.Fatalf("local ended: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "is taken, so local uses free ports") {
		t.Errorf("no word of the taken port:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join("state", "samples", "policy", "accounts.yaml")); err != nil {
		t.Errorf("the built-in sample policy was not used: %v", err)
	}
	banner := stdout.String()
	issuer := regexp.MustCompile(`issuer  (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(banner)
	creds := regexp.MustCompile(`-u (demo-client):(\S+) `).FindStringSubmatch(banner)
	if issuer == nil || creds == nil || strings.Contains(banner, taken.Addr().String()+" ") {
		t.Fatalf("banner:\n%s", banner)
	}
	req, _ := http.NewRequest(http.MethodPost, issuer[1]+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.SetBasicAuth(creds[1], creds[2])
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the banner's token request: %d", resp.StatusCode)
	}
	if !strings.Contains(banner, "check --addr 127.0.0.1:") {
		t.Errorf("the banner's checks do not name authz's address:\n%s", banner)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("local after Ctrl-C: %v", err)
	}
}
