package engine

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"zkd/wire"
)

// A connection costs no goroutine: with 10,000 sessions connected (each
// with an exists watch), the server runs at most 100 goroutines, where
// one reader and one writer per connection made 20,000.
func TestTenThousandSessionsRunFewGoroutines(t *testing.T) {
	const n = 10000
	if addr := os.Getenv("ZKD_TEST_HOLD_SESSIONS"); addr != "" {
		holdSessions(t, addr, n)
		return
	}
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.MaxClientCnxns = 0
	s := startServer(t, cfg, Options{})

	// The clients run in a process of their own (this test, run again),
	// so neither process needs more than 10,000 open files.
	cmd := exec.Command(os.Args[0], "-test.run=^TestTenThousandSessionsRunFewGoroutines$", "-test.v")
	cmd.Env = append(os.Environ(), "ZKD_TEST_HOLD_SESSIONS="+s.Addr().String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var last string
		for sc.Scan() {
			if last = sc.Text(); strings.HasPrefix(last, "holding") {
				ready <- last
			}
		}
		ready <- "the client process ended: " + last
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "holding") {
			t.Fatalf("%s\n%s", line, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the client process did not connect %d sessions in 3 minutes\n%s", n, stderr.String())
	}
	if got := s.sessions.count(); got != n {
		t.Fatalf("%d sessions, want %d", got, n)
	}
	got := runtime.NumGoroutine() - before
	t.Logf("%d goroutines for %d sessions", got, n)
	if got > 100 {
		t.Errorf("the server runs %d goroutines with %d sessions connected, want at most 100", got, n)
	}
}

// holdSessions is the client side of TestTenThousandSessionsRunFewGoroutines:
// it opens n sessions with an exists watch each, says so on stdout, and
// holds them until stdin closes.
func holdSessions(t *testing.T, addr string, n int) {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	req := wire.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)}
	hello, start := wire.BeginFrame(nil)
	hello = wire.EndFrame(req.Append(hello), start)
	exists, start := wire.BeginFrame(nil)
	exists = (&wire.RequestHeader{Xid: 1, Type: wire.OpExists}).Append(exists)
	exists = wire.EndFrame((&wire.PathWatchRequest{Path: "/watched", Watch: true}).Append(exists), start)
	// The handshakes go out in waves and are read back after each, so
	// the createSession txns share fsyncs.
	const wave = 1000
	for len(conns) < n {
		first := len(conns)
		for i := 0; i < wave; i++ {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("connection %d: %v", len(conns), err)
			}
			conns = append(conns, nc)
			if _, err := nc.Write(append(append([]byte(nil), hello...), exists...)); err != nil {
				t.Fatal(err)
			}
		}
		for i, nc := range conns[first:] {
			nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			for k := 0; k < 2; k++ { // the handshake reply, then exists' NONODE
				var size [4]byte
				if _, err := io.ReadFull(nc, size[:]); err != nil {
					t.Fatalf("connection %d: %v", first+i, err)
				}
				if _, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
					t.Fatalf("connection %d: %v", first+i, err)
				}
			}
		}
	}
	fmt.Printf("holding %d sessions\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
}
