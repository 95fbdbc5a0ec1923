package client_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zkd/bench/client"
	"zkd/bench/nullserver"
	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
)

// TestEveryReplyMatchesItsRequest pipelines thousands of requests on
// several connections and checks each comes back exactly once, to its own
// request, in order.
func TestEveryReplyMatchesItsRequest(t *testing.T) {
	srv, err := nullserver.Start("127.0.0.1:0", 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const conns, perConn, window = 6, 3000, 64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mu sync.Mutex // orders the first window's sends with the handler's
			var sent, got int
			var last uint64
			done := make(chan struct{})
			var bad error
			var c *client.Conn
			req := &wire.GetDataRequest{Path: "/x"}
			c, err := client.Dial(srv.Addr(), client.Options{OnReply: func(c *client.Conn, r *client.Reply) {
				mu.Lock()
				defer mu.Unlock()
				got++
				if r.Tag != last+1 || r.Op != wire.OpGetData || r.Err != wire.ErrOK || len(r.Body) != 4+1024+68 {
					bad = errors.New("reply does not match its request")
				}
				last = r.Tag
				if sent < perConn {
					sent++
					c.Send(wire.OpGetData, req, uint64(sent))
				}
				if got == perConn {
					close(done)
				}
			}})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			mu.Lock()
			for sent < window {
				sent++
				c.Send(wire.OpGetData, req, uint64(sent))
			}
			mu.Unlock()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				errs <- errors.New("timed out")
				return
			}
			mu.Lock()
			if bad != nil {
				errs <- bad
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := srv.Served(); n < conns*perConn {
		t.Fatalf("server answered %d requests, want %d", n, conns*perConn)
	}
}

func TestOutOfOrderReplyClosesTheConnection(t *testing.T) {
	srv, err := nullserver.Start("127.0.0.1:0", 10)
	if err != nil {
		t.Fatal(err)
	}
	srv.Swap = true
	defer srv.Close()
	closed := make(chan error, 1)
	c, err := client.Dial(srv.Addr(), client.Options{OnClose: func(_ *client.Conn, err error) { closed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(wire.OpGetData, &wire.GetDataRequest{Path: "/a"}, 1)
	c.Send(wire.OpGetData, &wire.GetDataRequest{Path: "/b"}, 2)
	select {
	case err := <-closed:
		if !errors.Is(err, client.ErrOutOfOrder) {
			t.Fatalf("closed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an out-of-order reply went unnoticed")
	}
	if err := c.Send(wire.OpGetData, &wire.GetDataRequest{Path: "/a"}, 3); !errors.Is(err, client.ErrOutOfOrder) {
		t.Fatalf("send after the failure: %v", err)
	}
}

// TestAgainstTheReferenceServer checks error codes, zxids and watch events
// arrive as ZooKeeper sends them.
func TestAgainstTheReferenceServer(t *testing.T) {
	zk := zkreftest.Start(t, zkref.Options{})
	type rep struct {
		op   wire.OpCode
		err  wire.ErrCode
		zxid int64
		tag  uint64
	}
	replies := make(chan rep, 16)
	events := make(chan string, 4)
	c, err := client.Dial(zk.Addr, client.Options{
		OnReply: func(_ *client.Conn, r *client.Reply) { replies <- rep{r.Op, r.Err, r.Zxid, r.Tag} },
		OnEvent: func(_ *client.Conn, ev *wire.WatcherEvent, _ time.Time) { events <- ev.Path },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(wire.OpCreate, &wire.CreateRequest{Path: "/c", Data: []byte("x"), ACL: []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}}, 1)
	c.Send(wire.OpExists, &wire.ExistsRequest{Path: "/c", Watch: true}, 2)
	c.Send(wire.OpGetData, &wire.GetDataRequest{Path: "/missing"}, 3)
	c.Send(wire.OpDelete, &wire.DeleteRequest{Path: "/c", Version: -1}, 4)
	want := []rep{{wire.OpCreate, wire.ErrOK, 0, 1}, {wire.OpExists, wire.ErrOK, 0, 2}, {wire.OpGetData, wire.ErrNoNode, 0, 3}, {wire.OpDelete, wire.ErrOK, 0, 4}}
	var zxids []int64
	for _, w := range want {
		select {
		case r := <-replies:
			zxids = append(zxids, r.zxid)
			r.zxid = 0
			if r != w {
				t.Fatalf("got %+v, want %+v", r, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reply")
		}
	}
	if zxids[3] != zxids[0]+1 {
		t.Fatalf("zxids %v: the delete should be the txn after the create", zxids)
	}
	select {
	case p := <-events:
		if p != "/c" {
			t.Fatalf("event for %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
}

// BenchmarkGetDataAgainstNullServer is the client's own ceiling: 1 KB
// getData replies from a server that does nothing, 32 connections × 16
// outstanding.
func BenchmarkGetDataAgainstNullServer(b *testing.B) {
	srv, err := nullserver.Start("127.0.0.1:0", 1024)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	const conns, window = 32, 16
	var remaining atomic.Int64
	remaining.Store(int64(b.N))
	var wg sync.WaitGroup
	req := &wire.GetDataRequest{Path: "/bench"}
	cs := make([]*client.Conn, conns)
	for i := range cs {
		cs[i], err = client.Dial(srv.Addr(), client.Options{OnReply: func(c *client.Conn, r *client.Reply) {
			if remaining.Add(-1) >= 0 {
				c.Send(wire.OpGetData, req, 0)
			}
			wg.Done()
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	wg.Add(b.N) // one Done per reply; each reply sends the next request
	for _, c := range cs {
		for j := 0; j < window && remaining.Add(-1) >= 0; j++ {
			c.Send(wire.OpGetData, req, 0)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	b.StopTimer()
	for _, c := range cs {
		c.Close()
	}
}
