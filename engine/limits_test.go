package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
	"zkd/ztree"
)

// closedWithin reports whether the server closes nc within d, reading
// and dropping whatever it sends meanwhile.
func closedWithin(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// Connections that never send a handshake are closed after
// nio.sessionlessCnxnTimeout, as ZooKeeper closes them, while an
// established session goes on being served.
func TestConnectionsWithoutHandshakeAreClosed(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"nio.sessionlessCnxnTimeout": "700", "maxClientCnxns": "0"})
	c := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	var silent []net.Conn
	begin := time.Now() // no connection below is older than this
	for i := 0; i < 300; i++ {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if i%3 == 0 {
			nc.Write([]byte{0, 0}) // half a length prefix, then nothing
		}
		silent = append(silent, nc)
	}
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/still-served", ACL: ztree.OpenACL})
	for i, nc := range silent {
		if !closedWithin(nc, 10*time.Second-time.Since(begin)) {
			t.Fatalf("connection %d without a handshake still open %v after the first was made", i, time.Since(begin))
		}
	}
	// Each closes 700 ms after the server accepted it, which is after
	// begin: all of them cannot be gone sooner.
	if took := time.Since(begin); took < 650*time.Millisecond {
		t.Fatalf("connections closed %v after they were made, before the 700 ms timeout", took)
	}
	c.OK(wire.OpExists, &wire.ExistsRequest{Path: "/still-served"})
}

// A zero-length frame after the handshake closes the connection at once,
// as ZooKeeper does, not when its session expires.
func TestZeroLengthFrameClosesTheConnection(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	c := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	if _, err := c.Conn.Write([]byte{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(c.Conn, 3*time.Second) {
		t.Fatal("a zero-length frame left the connection open")
	}
	// A frame too short for a request header is the same.
	c2 := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	c2.Conn.Write([]byte{0, 0, 0, 3, 0, 0, 1})
	if !closedWithin(c2.Conn, 3*time.Second) {
		t.Fatal("a 3-byte frame left the connection open")
	}
}

// Out of file descriptors, the accept loop backs off and logs a line now
// and then instead of ~100 a second; once the handshake timeout frees
// descriptors, new clients get in.
func TestAcceptBacksOffWhenOutOfDescriptors(t *testing.T) {
	srv := zkdtest.StartWith(t, map[string]string{"nio.sessionlessCnxnTimeout": "1500", "maxClientCnxns": "0"},
		zkdtest.Options{Prefix: []string{"prlimit", "--nofile=96:96", "--"}})
	var flood []net.Conn
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	for i := 0; i < 200; i++ {
		nc, err := net.DialTimeout("tcp", srv.Addr, 2*time.Second)
		if err != nil {
			break // the backlog is full: the flood has done its part
		}
		flood = append(flood, nc)
	}
	time.Sleep(1200 * time.Millisecond)
	lines := strings.Count(srv.Log(), "accept failed")
	if !strings.Contains(srv.Log(), "too many open files") {
		t.Fatalf("the flood of %d connections never ran the server out of descriptors; log:\n%s", len(flood), srv.Log())
	}
	if lines > 2 {
		t.Fatalf("%d accept-failure lines in 1.2 s: the log is flooded", lines)
	}
	// The flood holds its sockets open; the server closes its side at
	// the handshake timeout, and a real client gets in.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := func() bool {
			nc, err := net.DialTimeout("tcp", srv.Addr, 2*time.Second)
			if err != nil {
				return false
			}
			defer nc.Close()
			req := zkreftest.NewSession()
			nc.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := nc.Write(wire.AppendFrame(nil, req.Append(nil))); err != nil {
				return false
			}
			var b [4]byte
			_, err = io.ReadFull(nc, b[:])
			return err == nil
		}()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new client got a session within 20 s of the flood; log:\n%s", srv.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rss is a process's resident memory in bytes.
func rss(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

var connectionsLine = regexp.MustCompile(`Connections: (\d+)`)

// Clients that pipeline getData of a 100 KB znode and never read their
// replies cannot take the server's memory: past the output limit the
// server stops reading their requests, and after a session timeout of not
// reading it closes them. Another client is answered all along.
func TestClientThatNeverReadsIsCappedAndClosed(t *testing.T) {
	srv := zkdtest.Start(t, nil) // tickTime 2000: sessions of 4 s at the least
	setup := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	setup.OK(wire.OpCreate, &wire.CreateRequest{Path: "/big", Data: make([]byte, 100<<10), ACL: ztree.OpenACL})
	setup.OK(wire.OpCreate, &wire.CreateRequest{Path: "/small", Data: []byte("x"), ACL: ztree.OpenACL})
	before := rss(t, srv.Pid())

	var get []byte
	for i := 0; i < 3000; i++ {
		p := (&wire.RequestHeader{Xid: int32(i + 1), Type: wire.OpGetData}).Append(nil)
		p = (&wire.GetDataRequest{Path: "/big"}).Append(p)
		get = wire.AppendFrame(get, p)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		req := zkreftest.NewSession()
		req.TimeOut = 4000
		c := zkreftest.Dial(t, srv.Addr, req)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 300 MB of replies asked for; the writes block once the
			// server stops reading, until it closes the connection.
			c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			c.Conn.Write(get)
		}()
	}
	probe := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	var peak int64
	var slowest time.Duration
	for i := 0; i < 30; i++ {
		start := time.Now()
		probe.OK(wire.OpGetData, &wire.GetDataRequest{Path: "/small"})
		slowest = max(slowest, time.Since(start))
		peak = max(peak, rss(t, srv.Pid()))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("resident memory grew by %d MB; another client's slowest getData took %v", (peak-before)>>20, slowest)
	if grew := peak - before; grew > 300<<20 {
		t.Fatalf("resident memory grew by %d MB for 4 clients that read nothing", grew>>20)
	}
	if slowest > 2*time.Second {
		t.Fatalf("another client's getData took %v meanwhile", slowest)
	}
	// Past a session timeout without reading, they are closed.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := zkdtest.FourLetterWord(srv.Addr, "srvr")
		if err != nil {
			t.Fatal(err)
		}
		m := connectionsLine.FindStringSubmatch(out)
		if n, _ := strconv.Atoi(m[1]); m != nil && n <= 3 { // setup, probe, srvr
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clients that read nothing are still connected:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	probe.OK(wire.OpGetData, &wire.GetDataRequest{Path: "/small"})
}
