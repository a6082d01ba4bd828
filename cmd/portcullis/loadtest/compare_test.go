package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
)

// childEnv makes this test binary a stand-in server when it is set: "exit"
// exits at once, an address is bound and answers 200 to every request, as
// the load tool's servers do once ready.
const childEnv = "PORTCULLIS_LOADTEST_CHILD"

func TestMain(m *testing.M) {
	switch what := os.Getenv(childEnv); what {
	case "":
		os.Exit(m.Run())
	case "exit":
		os.Exit(3)
	default:
		ln, err := net.Listen("tcp", what)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	}
}

func startChild(t *testing.T, what string) *child {
	t.Helper()
	c, err := start(exec.Command(os.Args[0]), []string{childEnv + "=" + what}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return c
}

func TestServerThatExitsAtStartUpIsNotWaitedFor(t *testing.T) {
	t.Parallel()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "exit")
	if err := c.waitReady("http://" + addr + "/"); !errors.Is(err, errExited) {
		t.Fatalf("waitReady = %v, want errExited", err)
	}
}

func TestAnotherProcessOnTheServersPortIsNotTakenForTheServer(t *testing.T) {
	t.Parallel()
	foreign, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	go http.Serve(foreign, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	c := startChild(t, foreign.Addr().String()) // cannot bind: exits
	<-c.exited
	if err := c.waitReady("http://" + foreign.Addr().String() + "/"); !errors.Is(err, errExited) {
		t.Fatalf("waitReady = %v, want errExited although the port answers 200", err)
	}
}

func TestServerWhosePortWasTakenStartsAgainOnOthers(t *testing.T) {
	t.Parallel()
	var taken []net.Listener
	defer func() {
		for _, ln := range taken {
			ln.Close()
		}
	}()
	var children []*child
	s, err := startOnFreePorts("stand-in", func(addr, other string) (*server, error) {
		if len(children) == 0 {
			// Another process takes the port between freePort and the server.
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			taken = append(taken, ln)
		}
		c := startChild(t, addr)
		children = append(children, c)
		if err := c.waitReady("http://" + addr + "/"); err != nil {
			return nil, err
		}
		return &server{name: "stand-in", addr: addr, proc: c}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 2 {
		t.Fatalf("started %d times, want 2: once on the taken port, once on another", len(children))
	}
	if s.addr == taken[0].Addr().String() {
		t.Errorf("server on the taken port %s", s.addr)
	}
	select {
	case <-s.proc.exited:
		t.Error("the server that was started again has exited")
	default:
	}
}

func TestStatusCountsReadAsPeopleWrite(t *testing.T) {
	if got := statusCounts(map[int]int64{401: 3, 200: 97}); got != "200: 97, 401: 3" {
		t.Fatalf("%q", got)
	}
	if got := statusCounts(nil); got != "none" {
		t.Fatalf("%q", got)
	}
}
