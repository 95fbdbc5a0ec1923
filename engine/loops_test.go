package engine_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/engine/zkdtest"
)

// Many connections on a few event loops: each of 2,000 go-zookeeper
// sessions, all connected at once, gets every watch event and every
// reply, each event ahead of the reply to the write that fired it, and
// reads its own writes.
func TestTwoThousandSessionsGetEveryEventAndReplyInOrder(t *testing.T) {
	if raceOn {
		t.Skip("SKIPPED under -race: 2,000 go-zookeeper sessions pass the race detector's limit of 8,128 goroutines; make test runs this test again without -race")
	}
	const n = 2000
	srv := zkdtest.Start(t, map[string]string{"maxClientCnxns": "0"})
	acl := zk.WorldACL(zk.PermAll)
	admin := connect(t, srv.Addr)
	check(admin.Create("/loops", nil, 0, acl))(t)
	check(admin.Create("/loops/shared", []byte("0"), 0, acl))(t)

	type session struct {
		c      *zk.Conn
		shared <-chan zk.Event
	}
	sessions := make([]session, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	// Every session connects and sets its watches at the same time.
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, events, err := zk.Connect([]string{srv.Addr}, 20*time.Second, zk.WithLogger(quietLogger{}))
			if err != nil {
				errs <- err
				return
			}
			sessions[i].c = c
			deadline := time.After(60 * time.Second)
			for connected := false; !connected; {
				select {
				case ev := <-events:
					connected = ev.State == zk.StateHasSession
				case <-deadline:
					errs <- fmt.Errorf("session %d: no session within 60 s", i)
					return
				}
			}
			own := fmt.Sprintf("/loops/s%d", i)
			if _, err := c.Create(own, []byte("a"), zk.FlagEphemeral, acl); err != nil {
				errs <- fmt.Errorf("session %d: create: %w", i, err)
				return
			}
			_, _, ch, err := c.ExistsW("/loops/shared")
			if err != nil {
				errs <- fmt.Errorf("session %d: exists: %w", i, err)
				return
			}
			sessions[i].shared = ch
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range sessions {
			if s.c != nil {
				s.c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// One write fires 2,000 watches.
	check(admin.Set("/loops/shared", []byte("1"), -1))(t)
	errs = make(chan error, n)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := sessions[i]
			select {
			case ev := <-s.shared:
				if ev.Type != zk.EventNodeDataChanged || ev.Path != "/loops/shared" {
					errs <- fmt.Errorf("session %d: got %v on %s, want a data change of /loops/shared", i, ev.Type, ev.Path)
					return
				}
			case <-time.After(60 * time.Second):
				errs <- fmt.Errorf("session %d: no event for /loops/shared within 60 s", i)
				return
			}
			// A read after the event shows what the event announced.
			if data, _, err := s.c.Get("/loops/shared"); err != nil || string(data) != "1" {
				errs <- fmt.Errorf("session %d: after the event, /loops/shared reads %q (%v), want 1", i, data, err)
				return
			}
			// A write to a watched znode: its event comes before its
			// reply, and the session's next read sees the write.
			own := fmt.Sprintf("/loops/s%d", i)
			_, _, ch, err := s.c.GetW(own)
			if err != nil {
				errs <- fmt.Errorf("session %d: getData: %w", i, err)
				return
			}
			if _, err := s.c.Set(own, []byte("b"), -1); err != nil {
				errs <- fmt.Errorf("session %d: setData: %w", i, err)
				return
			}
			select {
			case ev := <-ch:
				if ev.Type != zk.EventNodeDataChanged || ev.Path != own {
					errs <- fmt.Errorf("session %d: got %v on %s, want a data change of %s", i, ev.Type, ev.Path, own)
					return
				}
			default:
				errs <- fmt.Errorf("session %d: the reply to setData came before the event it fired", i)
				return
			}
			if data, _, err := s.c.Get(own); err != nil || string(data) != "b" {
				errs <- fmt.Errorf("session %d: its own write reads back %q (%v), want b", i, data, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 10 {
		t.Errorf("… and %d more sessions failed", failed-10)
	}
	kids := check2(admin.Children("/loops"))
	if got, _ := kids(t); len(got) != n+1 {
		t.Errorf("/loops has %d children, want %d ephemerals and /loops/shared", len(got), n)
	}
}

// A flood of connections that never complete a handshake, some silent
// and some stopping halfway through a frame, neither slows nor stops an
// established session, and each is closed once
// nio.sessionlessCnxnTimeout passes.
func TestConnectionsThatNeverHandshakeDoNotStopSessions(t *testing.T) {
	const flood = 2000
	srv := zkdtest.Start(t, map[string]string{"maxClientCnxns": "0", "nio.sessionlessCnxnTimeout": "3000"})
	c := connect(t, srv.Addr)
	acl := zk.WorldACL(zk.PermAll)
	check(c.Create("/flood", nil, 0, acl))(t)

	conns := make([]net.Conn, 0, flood)
	t.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
	})
	opened := time.Now()
	for i := 0; i < flood; i++ {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, nc)
		if i%2 == 1 {
			// Three bytes of a length prefix, and nothing more.
			if _, err := nc.Write([]byte{0, 0, 0}); err != nil {
				t.Fatal(err)
			}
		}
		if i%200 == 0 {
			// The session keeps working while the flood comes in.
			if _, err := c.Create(fmt.Sprintf("/flood/n%d", i), []byte("x"), 0, acl); err != nil {
				t.Fatalf("create during the flood: %v", err)
			}
		}
	}
	floodTook := time.Since(opened)
	for i := 0; i < 100; i++ {
		p := fmt.Sprintf("/flood/m%d", i)
		if _, err := c.Create(p, []byte("y"), 0, acl); err != nil {
			t.Fatalf("create with %d connections waiting for a handshake: %v", flood, err)
		}
		if data, _, err := c.Get(p); err != nil || string(data) != "y" {
			t.Fatalf("get with %d connections waiting: %q, %v", flood, data, err)
		}
	}
	if st := c.State(); st != zk.StateHasSession {
		t.Fatalf("the established session is %v", st)
	}
	// Every flood connection is closed by the server: a read sees EOF
	// after the handshake timeout (3 s) and well before twice it plus
	// the time the flood took to open.
	deadline := opened.Add(floodTook + 6*time.Second + 2*time.Second)
	open := 0
	for _, nc := range conns {
		nc.SetReadDeadline(deadline)
		var b [1]byte
		if _, err := nc.Read(b[:]); err == nil {
			t.Fatal("the server wrote to a connection that sent no handshake")
		} else {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open++
			}
		}
	}
	if open > 0 {
		t.Errorf("%d of %d connections without a handshake were still open %v after they opened", open, flood, time.Since(opened))
	}
	if !strings.Contains(srv.Log(), "did not complete its handshake in time") {
		t.Error("the log does not say why the connections were closed")
	}
	if _, err := c.Create("/flood/after", nil, 0, acl); err != nil {
		t.Fatalf("create after the flood: %v", err)
	}
}
