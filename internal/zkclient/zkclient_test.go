package zkclient_test

import (
	"errors"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/internal/zkclient"
	"zkd/wire"
)

// A session outlives its server's restart: the client finds the server
// again, keeps its session and its auth, sets its watches there again,
// and the watch fires for a change made after the restart. The requests
// in flight when the connection broke fail with ConnectionLoss, not with
// a wrong answer.
func TestSessionSurvivesARestartWithItsWatches(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	events := make(chan zkclient.Event, 16)
	c, err := zkclient.Dial([]string{srv.Addr}, 10*time.Second, func(ev zkclient.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expect := func(want zkclient.Event) {
		t.Helper()
		select {
		case ev := <-events:
			// A watch event tells how many replies came before it;
			// here every one follows a request's reply.
			if ev.Type != wire.EventNone && ev.After == 0 {
				t.Fatalf("event %+v says no reply came before it", ev)
			}
			ev.After = 0
			if ev != want {
				t.Fatalf("event %+v, want %+v", ev, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no event; want %+v", want)
		}
	}
	expect(zkclient.Event{Type: wire.EventNone, State: wire.StateSyncConnected})
	open := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	if _, err := c.Create("/w", []byte("one"), open, wire.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAuth("digest", []byte("u:p")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get("/w", true); err != nil {
		t.Fatal(err)
	}
	// An exists that finds its znode sets a data watch, which must be
	// set again as one: as an exist watch, the server would answer it
	// with NodeCreated at once and keep no watch.
	if _, err := c.Create("/x", nil, open, wire.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Exists("/x", true); err != nil || !found {
		t.Fatalf("exists /x: %v, %v", found, err)
	}
	sid := c.SessionID()

	srv.Kill()
	expect(zkclient.Event{Type: wire.EventNone, State: wire.StateDisconnected})
	if _, _, err := c.Get("/w", false); !errors.Is(err, wire.ErrConnectionLoss) {
		t.Fatalf("a get while the server is down: %v, want ConnectionLoss", err)
	}
	srv.Restart()
	expect(zkclient.Event{Type: wire.EventNone, State: wire.StateSyncConnected})
	if c.SessionID() != sid {
		t.Fatalf("session 0x%x after the restart, was 0x%x", c.SessionID(), sid)
	}
	ids, err := c.WhoAmI()
	if err != nil || len(ids) != 2 || ids[1] != (wire.ClientInfo{AuthScheme: "digest", User: "u"}) {
		t.Fatalf("whoami after the restart: %v, %v; want the digest identity again", ids, err)
	}
	other, err := zkclient.Dial([]string{srv.Addr}, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Set("/w", []byte("two"), -1); err != nil {
		t.Fatal(err)
	}
	// It came on the session's second connection, the one after the
	// restart, which set the watch again.
	expect(zkclient.Event{Type: wire.EventNodeDataChanged, State: wire.StateSyncConnected, Path: "/w", Conn: 2})
	if _, err := other.Set("/x", []byte("changed"), -1); err != nil {
		t.Fatal(err)
	}
	expect(zkclient.Event{Type: wire.EventNodeDataChanged, State: wire.StateSyncConnected, Path: "/x", Conn: 2})
}

// A session that finds no server for its whole timeout is over: the
// client reports it expired, and every request after fails with
// SessionExpired instead of waiting.
func TestExpiredSession(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"tickTime": "200", "minSessionTimeout": "400"})
	events := make(chan zkclient.Event, 16)
	c, err := zkclient.Dial([]string{srv.Addr}, 400*time.Millisecond, func(ev zkclient.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.Pause() // no answer to the pings, nor to a new connection
	time.Sleep(1500 * time.Millisecond)
	srv.Resume()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State != wire.StateExpired {
				continue
			}
			if _, _, err := c.Get("/", false); !errors.Is(err, wire.ErrSessionExpired) {
				t.Fatalf("a get after the expiry: %v, want SessionExpired", err)
			}
			return
		case <-deadline:
			t.Fatal("no Expired event")
		}
	}
}

// A server that accepts connections and never answers (paused) takes only
// its share of the time: the session is opened on the next server.
func TestAPausedServerDoesNotHoldTheSession(t *testing.T) {
	paused, good := zkdtest.Start(t, nil), zkdtest.Start(t, nil)
	paused.Pause()
	defer paused.Resume()
	start := time.Now()
	c, err := zkclient.Dial([]string{paused.Addr, good.Addr}, 6*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Server() != good.Addr || time.Since(start) > 5*time.Second {
		t.Fatalf("session on %s after %v; want %s, within the paused server's share (3 s) and a little", c.Server(), time.Since(start), good.Addr)
	}
}

// Hop carries the session to the next server of the list: the same
// session, its ephemeral kept, its watch set again there and fired by a
// change made through yet another server.
func TestHopMovesTheSessionToTheNextServer(t *testing.T) {
	e := zkdtest.StartEnsemble(t, 3, nil)
	addrs := e.Addrs()
	events := make(chan zkclient.Event, 16)
	c, err := zkclient.Dial(addrs, 10*time.Second, func(ev zkclient.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Server() != addrs[0] {
		t.Fatalf("session on %s, want the list's first, %s", c.Server(), addrs[0])
	}
	open := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	if _, err := c.Create("/hop", nil, open, wire.ModeEphemeral, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get("/hop", true); err != nil {
		t.Fatal(err)
	}
	sid := c.SessionID()
	// A server refuses a session that has seen more than it has applied,
	// and the client goes on to the next in its list (as ZooKeeper's
	// do): the hop lands on the second server once that has the create.
	caughtUp(t, addrs[1], "/hop")
	c.Hop()
	hopped(t, events)
	if c.Server() != addrs[1] || c.SessionID() != sid {
		t.Fatalf("after a hop: session 0x%x on %s; want 0x%x on %s", c.SessionID(), c.Server(), sid, addrs[1])
	}
	other, err := zkclient.Dial(addrs[2:], 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok, err := other.Exists("/hop", false); err != nil || !ok {
		t.Fatalf("the hopped session's ephemeral: exists %v, %v", ok, err)
	}
	if _, err := other.Set("/hop", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Type != wire.EventNodeDataChanged || ev.Path != "/hop" {
			t.Fatalf("event %+v, want /hop's data change", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the watch set before the hop did not fire")
	}
}

// A session that moves sets its watches again with empty lists for the
// kinds it has none of, as the Java client does: Apache ZooKeeper 3.8.0
// stops at the first null list of a setWatches (a NullPointerException)
// and sets none of the watches after it, so the change below would go
// unannounced.
func TestWatchesSetAgainOnApacheZooKeeper(t *testing.T) {
	zk := zkreftest.Start(t, zkref.Options{})
	events := make(chan zkclient.Event, 16)
	// The one server twice: a hop reconnects to it.
	c, err := zkclient.Dial([]string{zk.Addr, zk.Addr}, 10*time.Second, func(ev zkclient.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	if _, err := c.Create("/watched", nil, open, wire.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	// A child watch alone: the data and exist lists are empty.
	if _, _, err := c.Children("/watched", true); err != nil {
		t.Fatal(err)
	}
	c.Hop()
	hopped(t, events)
	// A request after the setWatches, on the same connection, comes
	// back once the server has handled it.
	if _, _, err := c.Exists("/", false); err != nil {
		t.Fatal(err)
	}
	other, err := zkclient.Dial([]string{zk.Addr}, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Create("/watched/child", nil, open, wire.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Type != wire.EventNodeChildrenChanged || ev.Path != "/watched" {
			t.Fatalf("event %+v, want /watched's children change", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch set again after the reconnect did not fire: ZooKeeper did not take the setWatches")
	}
}

// caughtUp waits until the server at addr shows path.
func caughtUp(t *testing.T, addr, path string) {
	t.Helper()
	c, err := zkclient.Dial([]string{addr}, 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, ok, err := c.Exists(path, false)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s after 10 s: exists %v, %v", path, addr, ok, err)
		}
	}
}

// hopped waits for the session events of a Dial and a Hop after it:
// SyncConnected, then Disconnected and SyncConnected again.
func hopped(t *testing.T, events <-chan zkclient.Event) {
	t.Helper()
	for _, want := range []wire.KeeperState{wire.StateSyncConnected, wire.StateDisconnected, wire.StateSyncConnected} {
		select {
		case ev := <-events:
			if ev != (zkclient.Event{Type: wire.EventNone, State: want}) {
				t.Fatalf("event %+v, want state %v", ev, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no event; want state %v", want)
		}
	}
}
