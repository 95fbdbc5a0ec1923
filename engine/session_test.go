package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
	"zkd/ztree"
)

func waitEvent(t testing.TB, ch <-chan zk.Event, want zk.EventType, path string) {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.Type != want || ev.Path != path {
			t.Fatalf("event %v on %q, want %v on %q", ev.Type, ev.Path, want, path)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no %v event on %s within 10 s", want, path)
	}
}

func TestWatchesFireOnceWithTheRightType(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	a, b := connect(t, srv.Addr), connect(t, srv.Addr)
	acl := zk.WorldACL(zk.PermAll)
	check(a.Create("/w", []byte("0"), 0, acl))(t)

	_, _, data, err := a.GetW("/w")
	if err != nil {
		t.Fatal(err)
	}
	_, _, exists, err := a.ExistsW("/w/new")
	if err != nil {
		t.Fatal(err)
	}
	_, _, kids, err := a.ChildrenW("/w")
	if err != nil {
		t.Fatal(err)
	}
	check(b.Set("/w", []byte("1"), -1))(t)
	waitEvent(t, data, zk.EventNodeDataChanged, "/w")
	check(b.Create("/w/new", nil, 0, acl))(t)
	waitEvent(t, exists, zk.EventNodeCreated, "/w/new")
	waitEvent(t, kids, zk.EventNodeChildrenChanged, "/w")

	// One-shot: a second change fires nothing on the old watch.
	check(b.Set("/w", []byte("2"), -1))(t)
	select {
	case ev, ok := <-data:
		if ok {
			t.Fatalf("a one-shot watch fired twice: %+v", ev)
		}
	case <-time.After(300 * time.Millisecond):
	}

	_, _, del, err := a.GetW("/w/new")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete("/w/new", -1); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, del, zk.EventNodeDeleted, "/w/new")
}

func TestClosingASessionRemovesItsEphemeralsAndFiresWatches(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	owner, watcher := connect(t, srv.Addr), connect(t, srv.Addr)
	check(owner.Create("/lock", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
	_, _, ch, err := watcher.ExistsW("/lock")
	if err != nil {
		t.Fatal(err)
	}
	owner.Close()
	waitEvent(t, ch, zk.EventNodeDeleted, "/lock")
	if ok, _ := check2(watcher.Exists("/lock"))(t); ok {
		t.Fatal("the ephemeral outlived its session")
	}
}

// A session whose client goes silent expires after its timeout: its
// ephemerals go, their watches fire, and resuming it gets the expired
// answer.
func TestSilentSessionExpires(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"tickTime": "100"})
	// The watcher is ready before the session goes silent, and the
	// session's timeout leaves room for a slow machine to set the watch.
	w := connect(t, srv.Addr)
	req := zkreftest.NewSession()
	req.TimeOut = 2000
	silent := zkreftest.Dial(t, srv.Addr, req)
	if got := silent.Session.TimeOut; got != 2000 {
		t.Fatalf("negotiated timeout %d, want 2000", got)
	}
	silent.OK(wire.OpCreate, &wire.CreateRequest{Path: "/eph", ACL: openACL, Flags: wire.ModeEphemeral})
	exists, _, ch, err := w.ExistsW("/eph")
	if err != nil || !exists {
		t.Fatalf("exists /eph: %v %v", exists, err)
	}
	id, pw := silent.Session.SessionID, silent.Session.Passwd
	// A session expires a timeout after its last packet, not after its
	// connection closes: count from the last packet.
	start := time.Now()
	silent.CallXid(wire.XidPing, wire.OpPing, nil)
	silent.Conn.Close()
	waitEvent(t, ch, zk.EventNodeDeleted, "/eph")
	if d := time.Since(start); d < 2000*time.Millisecond || d > 8*time.Second {
		t.Fatalf("the session expired %v after its last packet, with a 2 s timeout", d)
	}
	again := zkreftest.NewSession()
	again.SessionID, again.Passwd = id, pw
	c := zkreftest.Dial(t, srv.Addr, again)
	if c.Session.SessionID != 0 || c.Session.TimeOut != 0 {
		t.Fatalf("resuming an expired session was accepted: %+v", c.Session)
	}
}

var openACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}

// Reconnecting with the session id and password keeps the session's
// ephemerals; a wrong password gets the expired answer and changes nothing.
func TestResumeKeepsEphemeralsAndWrongPasswordIsRefused(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	first := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	first.OK(wire.OpCreate, &wire.CreateRequest{Path: "/mine", ACL: openACL, Flags: wire.ModeEphemeral})
	id, pw := first.Session.SessionID, first.Session.Passwd
	if len(pw) != 16 || id>>56 != 1 { // a standalone server's id is 1
		t.Fatalf("session 0x%x with a %d-byte password", id, len(pw))
	}
	first.Conn.Close()

	bad := zkreftest.NewSession()
	bad.SessionID, bad.Passwd = id, bytes.Repeat([]byte{7}, 16)
	if c := zkreftest.Dial(t, srv.Addr, bad); c.Session.SessionID != 0 || c.Session.TimeOut != 0 {
		t.Fatalf("a wrong password was accepted: %+v", c.Session)
	}

	good := zkreftest.NewSession()
	good.SessionID, good.Passwd = id, pw
	c := zkreftest.Dial(t, srv.Addr, good)
	if c.Session.SessionID != id || !bytes.Equal(c.Session.Passwd, pw) {
		t.Fatalf("resume answered %+v", c.Session)
	}
	r := c.OK(wire.OpExists, &wire.ExistsRequest{Path: "/mine"}).(*wire.ExistsResponse)
	if r.Stat.EphemeralOwner != id {
		t.Fatalf("ephemeralOwner 0x%x after resume, want 0x%x", r.Stat.EphemeralOwner, id)
	}
}

// go-zookeeper re-sends its watches with setWatches after a reconnect; a
// change made while it was away fires at once.
func TestWatchesSurviveAReconnect(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	c := connect(t, srv.Addr)
	other := connect(t, srv.Addr)
	check(c.Create("/r", []byte("a"), 0, zk.WorldACL(zk.PermAll)))(t)
	_, _, ch, err := c.GetW("/r")
	if err != nil {
		t.Fatal(err)
	}
	id := c.SessionID()
	srv.Stop()
	srv.Restart()
	// While c reconnects, another session changes the node.
	check(other.Set("/r", []byte("b"), -1))(t)
	waitEvent(t, ch, zk.EventNodeDataChanged, "/r")
	if c.SessionID() != id {
		t.Fatalf("session changed from 0x%x to 0x%x across a restart", id, c.SessionID())
	}
}

func TestTimeoutIsNegotiatedIntoTheConfiguredRange(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"tickTime": "1000", "maxSessionTimeout": "5000"})
	for _, c := range []struct{ ask, want int32 }{{100, 2000}, {3000, 3000}, {60000, 5000}} {
		req := zkreftest.NewSession()
		req.TimeOut = c.ask
		if got := zkreftest.Dial(t, srv.Addr, req).Session.TimeOut; got != c.want {
			t.Errorf("asked for %d ms, got %d, want %d", c.ask, got, c.want)
		}
	}
}

func TestUnknownOpcodeGetsUnimplementedAndTheConnectionLives(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	c := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	for _, op := range []wire.OpCode{55, 999, -77} {
		h, _ := c.Call(op, &wire.PathRequest{Path: "/"})
		if h.Err != wire.ErrUnimplemented {
			t.Fatalf("op %d answered %v, want UNIMPLEMENTED", op, h.Err)
		}
	}
	c.OK(wire.OpExists, &wire.ExistsRequest{Path: "/"})
	h, _ := c.Call(wire.OpReconfig, &wire.ReconfigRequest{})
	if h.Err != wire.ErrReconfigDisabled {
		t.Fatalf("reconfig answered %v, want RECONFIGDISABLED", h.Err)
	}
}

// TTL nodes (extendedTypesEnabled) and containers are removed by the
// reaper through ordinary delete txns, firing watches.
func TestTTLNodesExpire(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"extendedTypesEnabled": "true",
		"znode.container.checkIntervalMs": "200"})
	c := connect(t, srv.Addr)
	check(c.CreateTTL("/ttl", []byte("x"), zk.FlagTTL, zk.WorldACL(zk.PermAll), 400*time.Millisecond))(t)
	_, _, ch, err := c.ExistsW("/ttl")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitEvent(t, ch, zk.EventNodeDeleted, "/ttl")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("a 400 ms TTL node went after %v", d)
	}
}

// superDigest: a session that authenticates as the super user passes
// every ACL.
func TestSuperDigest(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{
		"DigestAuthenticationProvider.superDigest": "super:" + strings.TrimPrefix(ztree.DigestID("super", "s3cret"), "super:")})
	owner := connect(t, srv.Addr)
	check(owner.Create("/private", []byte("p"), 0, zk.DigestACL(zk.PermAll, "alice", "pw")))(t)
	admin := connect(t, srv.Addr)
	if _, _, err := admin.Get("/private"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("before auth: %v", err)
	}
	if err := admin.AddAuth("digest", []byte("super:wrong")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.Get("/private"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("with a wrong super password: %v", err)
	}
	su := connect(t, srv.Addr)
	if err := su.AddAuth("digest", []byte("super:s3cret")); err != nil {
		t.Fatal(err)
	}
	if d, _ := check2(su.Get("/private"))(t); string(d) != "p" {
		t.Fatalf("super read %q", d)
	}
}

// setWatches2 after a reconnect: a data watch whose node changed after
// relativeZxid fires at once, before the reply; a persistent watch is
// registered again and fires on the next change.
func TestSetWatches2AfterReconnect(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	first := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	first.OK(wire.OpCreate, &wire.CreateRequest{Path: "/sw", ACL: openACL})
	first.OK(wire.OpCreate, &wire.CreateRequest{Path: "/p", ACL: openACL})
	seen := first.OK(wire.OpExists, &wire.ExistsRequest{Path: "/sw"}).(*wire.ExistsResponse).Stat.Mzxid
	id, pw := first.Session.SessionID, first.Session.Passwd
	first.Conn.Close()

	other := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	other.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/sw", Data: []byte("changed"), Version: -1})

	req := zkreftest.NewSession()
	req.SessionID, req.Passwd = id, pw
	c := zkreftest.Dial(t, srv.Addr, req)
	h, _ := c.CallXid(wire.XidSetWatches, wire.OpSetWatches2, &wire.SetWatches2{RelativeZxid: seen,
		DataWatches: []string{"/sw"}, PersistentWatches: []string{"/p"}})
	if h.Err != wire.ErrOK || h.Xid != wire.XidSetWatches {
		t.Fatalf("setWatches2 reply %+v", h)
	}
	if len(c.Events) != 1 || c.Events[0].Type != wire.EventNodeDataChanged || c.Events[0].Path != "/sw" {
		t.Fatalf("events before the reply: %+v", c.Events)
	}
	other.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/p", Data: []byte("1"), Version: -1})
	other.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/p", Data: []byte("2"), Version: -1})
	c.OK(wire.OpSync, &wire.SyncRequest{Path: "/p"})
	if len(c.Events) != 3 || c.Events[1].Path != "/p" || c.Events[2].Type != wire.EventNodeDataChanged {
		t.Fatalf("persistent watch events: %+v", c.Events)
	}
}

// A write whose body cannot be read gets MARSHALLINGERROR in its place in
// the reply order, and the connection goes on.
func TestUnreadableWriteBodyKeepsOrder(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	p := dialPipelined(t, srv.Addr)
	for i := 0; i < 50; i++ {
		p.send(wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/u%d", i), ACL: openACL}, uint64(i))
	}
	// setData whose body is a bare, truncated path.
	p.send(wire.OpSetData, &wire.PathRequest{Path: "/u1"}, 50)
	p.send(wire.OpExists, &wire.ExistsRequest{Path: "/u49"}, 51)
	got := p.waitReplies(52)
	for i, a := range got {
		if a.tag != uint64(i) {
			t.Fatalf("reply %d has tag %d", i, a.tag)
		}
	}
	if got[50].err != wire.ErrMarshallingError || got[51].err != wire.ErrOK {
		t.Fatalf("bad body: %v, then exists: %v", got[50].err, got[51].err)
	}
}
