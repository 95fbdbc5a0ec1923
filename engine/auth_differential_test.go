package engine_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
	"zkd/ztree"
)

// addauth with every scheme and shape of credentials, against ZooKeeper
// and zkd: the reply code, whether the connection stays, and the ids the
// session then holds (whoami) must be the same. go-zookeeper's own suite
// does AddAuth("digest", "blah"), with no colon.
func TestDifferentialAddAuth(t *testing.T) {
	super := "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" // digest of super:test
	zkdAddr, refAddr := bothServers(t, map[string]string{"DigestAuthenticationProvider.superDigest": super})
	cases := []struct{ scheme, auth string }{
		{"digest", "blah"},
		{"digest", "user:secret"},
		{"digest", "user:pass:with:colons"},
		{"digest", ""},
		{"digest", "super:test"},
		{"ip", "anything"},
		{"ip", ""},
		{"world", "anyone"},
		{"super", ""},
		{"sasl", "x"},
		{"nosuchscheme", "x"},
	}
	run := func(addr string) string {
		var b strings.Builder
		for _, c := range cases {
			cl := zkreftest.Dial(t, addr, zkreftest.NewSession())
			h, _ := cl.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: c.scheme, Auth: []byte(c.auth)})
			fmt.Fprintf(&b, "addauth %s %q: %v zxid %d;", c.scheme, c.auth, h.Err, h.Zxid)
			if h.Err != wire.ErrOK {
				_, err := cl.ReadErr()
				fmt.Fprintf(&b, " then the connection closes: %v\n", err != nil)
				continue
			}
			// A second addauth of the same adds nothing.
			cl.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: c.scheme, Auth: []byte(c.auth)})
			_, rec := cl.Call(wire.OpWhoAmI, nil)
			for _, ci := range rec.(*wire.WhoAmIResponse).ClientInfo {
				fmt.Fprintf(&b, " %s:%s", ci.AuthScheme, ci.User)
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	compareLines(t, "addauth", run(refAddr), run(zkdAddr))
}

// reconfig on a standalone server with reconfigEnabled answers
// UNIMPLEMENTED whoever asks and whatever the request holds, and the
// connection stays. (kazoo's TestReconfig expects NOAUTH and BADARGUMENTS
// because its harness runs even one ZooKeeper server in quorum mode,
// standaloneEnabled=false, which zkd refuses until it runs ensembles.)
func TestDifferentialReconfigStandalone(t *testing.T) {
	cfg := map[string]string{"reconfigEnabled": "true",
		"DigestAuthenticationProvider.superDigest": "super:D/InIHSb7yEEbrWz8b9l71RjZJU="}
	zkdAddr, refAddr := bothServers(t, cfg)
	joining, leaving, bad := "server.4=127.0.0.1:2888:3888;2181", "1", "some thing"
	reqs := []*wire.ReconfigRequest{
		{LeavingServers: &leaving, CurConfigID: -1},
		{JoiningServers: &bad, CurConfigID: -1},
		{JoiningServers: &joining, CurConfigID: -1},
	}
	run := func(addr string) string {
		var b strings.Builder
		for _, auth := range []string{"", "user:secret", "super:test"} {
			cl := zkreftest.Dial(t, addr, zkreftest.NewSession())
			if auth != "" {
				cl.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte(auth)})
			}
			for _, r := range reqs {
				h, _ := cl.Call(wire.OpReconfig, r)
				fmt.Fprintf(&b, "auth %q reconfig: %v\n", auth, h.Err)
			}
			// The connection is still good.
			h, _ := cl.Call(wire.OpExists, &wire.ExistsRequest{Path: "/zookeeper/config"})
			fmt.Fprintf(&b, "then exists: %v\n", h.Err)
		}
		return b.String()
	}
	compareLines(t, "reconfig", run(refAddr), run(zkdAddr))
}

// Standalone session ids are formed as ZooKeeper forms them: server id 1
// in the top byte, then the milliseconds of the monotonic clock when the
// server started, then a counter. Both servers read the same clock here,
// so their ids differ only by when each started.
func TestDifferentialSessionIDs(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, nil)
	ref := zkreftest.Dial(t, refAddr, zkreftest.NewSession()).Session.SessionID
	got := zkreftest.Dial(t, zkdAddr, zkreftest.NewSession()).Session.SessionID
	if got>>56 != ref>>56 {
		t.Fatalf("session 0x%016x has server id %d in its top byte; ZooKeeper's 0x%016x has %d", got, got>>56, ref, ref>>56)
	}
	ms := func(id int64) int64 { return id >> 16 & (1<<40 - 1) }
	if d := ms(got) - ms(ref); d < -60_000 || d > 60_000 {
		t.Fatalf("session 0x%016x starts from %d ms, ZooKeeper's 0x%016x from %d ms: not the same clock",
			got, ms(got), ref, ms(ref))
	}
}

// Watch events on znodes the watcher may not read: ZooKeeper (with the
// fix of CVE-2024-23944) delivers none, for one-shot, persistent and
// recursive watches alike; the watches are used up all the same.
func TestDifferentialWatchEventsNeedRead(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, nil)
	secret := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: "owner:" + ownerDigest}}}
	run := func(addr string) string {
		owner := zkreftest.Dial(t, addr, zkreftest.NewSession())
		owner.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("owner:pw")})
		w := zkreftest.Dial(t, addr, zkreftest.NewSession())
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/open", ACL: openACL})
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/open/hidden", Data: []byte("x"), ACL: secret})
		// exists needs no READ, so the watcher can watch what it cannot read.
		w.Call(wire.OpExists, &wire.ExistsRequest{Path: "/open/hidden", Watch: true})
		w.Call(wire.OpExists, &wire.ExistsRequest{Path: "/open/later", Watch: true})
		w.Call(wire.OpExists, &wire.ExistsRequest{Path: "/open/readable", Watch: true})
		w.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/open", Mode: 1}) // recursive
		w.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/open/hidden", Mode: 0})
		owner.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/open/hidden", Data: []byte("y"), Version: -1})
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/open/later", ACL: secret})
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/open/readable", ACL: openACL})
		owner.OK(wire.OpDelete, &wire.DeleteRequest{Path: "/open/later", Version: -1})
		// A readable change after them all: every event before it has
		// arrived once its own has.
		owner.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/open", Data: []byte("z"), Version: -1})
		w.Call(wire.OpSync, &wire.SyncRequest{Path: "/"})
		for len(w.Events) == 0 || w.Events[len(w.Events)-1].Path != "/open" {
			w.Call(wire.OpExists, &wire.ExistsRequest{Path: "/"})
		}
		var b strings.Builder
		for _, ev := range w.Events {
			fmt.Fprintf(&b, "%v %s\n", ev.Type, ev.Path)
		}
		return b.String()
	}
	compareLines(t, "events", run(refAddr), run(zkdAddr))
}

// ownerDigest is the digest part of owner:pw's digest id.
var ownerDigest = func() string {
	id := ztree.DigestID("owner", "pw")
	return id[len("owner:"):]
}()

// skipACL=yes lets a session with no credentials read, change and delete
// znodes only their owner may touch, get their whole ACL, and get their
// watch events; any other value (ZooKeeper compares with "yes" exactly)
// leaves every check on. Run against ZooKeeper and zkd with each value.
func TestDifferentialSkipACL(t *testing.T) {
	secret := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: "owner:" + ownerDigest}}}
	run := func(addr string) string {
		var b strings.Builder
		owner := zkreftest.Dial(t, addr, zkreftest.NewSession())
		owner.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("owner:pw")})
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/secret", Data: []byte("s"), ACL: secret})
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/secret/a", ACL: secret})
		in := zkreftest.Dial(t, addr, zkreftest.NewSession())
		say := func(what string, h wire.ReplyHeader, rec wire.Record) {
			fmt.Fprintf(&b, "%s: %v", what, h.Err)
			switch r := rec.(type) {
			case *wire.GetDataResponse:
				fmt.Fprintf(&b, " data %q version %d", r.Data, r.Stat.Version)
			case *wire.GetChildren2Response:
				fmt.Fprintf(&b, " children %v", r.Children)
			case *wire.GetACLResponse:
				fmt.Fprintf(&b, " acl %v", r.ACL)
			case *wire.GetAllChildrenNumberResponse:
				fmt.Fprintf(&b, " %d", r.TotalNumber)
			}
			b.WriteString("\n")
		}
		h, rec := in.Call(wire.OpGetData, &wire.GetDataRequest{Path: "/secret", Watch: true})
		say("getData", h, rec)
		h, rec = in.Call(wire.OpGetChildren2, &wire.GetChildren2Request{Path: "/secret", Watch: true})
		say("getChildren2", h, rec)
		h, rec = in.Call(wire.OpGetACL, &wire.GetACLRequest{Path: "/secret"})
		say("getACL", h, rec)
		h, rec = in.Call(wire.OpGetAllChildrenNumber, &wire.GetAllChildrenNumberRequest{Path: "/secret"})
		say("getAllChildrenNumber", h, rec)
		// On the root: a recursive watch on /secret would replace the
		// one-shot child watch there in ZooKeeper 3.8 (compatibility.md).
		h, rec = in.Call(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/", Mode: 1})
		say("addWatch", h, rec)
		// The owner's changes fire the watches the intruder could set.
		owner.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/secret/a", Data: []byte("o"), Version: -1})
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/secret/b", ACL: secret})
		h, rec = in.Call(wire.OpSetData, &wire.SetDataRequest{Path: "/secret", Data: []byte("i"), Version: -1})
		say("setData", h, rec)
		h, rec = in.Call(wire.OpCreate, &wire.CreateRequest{Path: "/secret/c", ACL: openACL})
		say("create", h, rec)
		h, rec = in.Call(wire.OpDelete, &wire.DeleteRequest{Path: "/secret/b", Version: -1})
		say("delete", h, rec)
		h, rec = in.Call(wire.OpSetACL, &wire.SetACLRequest{Path: "/secret/a", ACL: openACL, Version: -1})
		say("setACL", h, rec)
		// What the owner sees after it all.
		h, rec = owner.Call(wire.OpGetData, &wire.GetDataRequest{Path: "/secret"})
		say("owner getData", h, rec)
		h, rec = owner.Call(wire.OpGetChildren2, &wire.GetChildren2Request{Path: "/secret"})
		say("owner getChildren2", h, rec)
		h, rec = owner.Call(wire.OpGetACL, &wire.GetACLRequest{Path: "/secret/a"})
		say("owner getACL /secret/a", h, rec)
		// A readable change after them all: every event before it has
		// arrived once its own has.
		owner.OK(wire.OpCreate, &wire.CreateRequest{Path: "/open", ACL: openACL})
		in.OK(wire.OpExists, &wire.ExistsRequest{Path: "/open", Watch: true})
		owner.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/open", Data: []byte("z"), Version: -1})
		last := func() wire.WatcherEvent {
			if len(in.Events) == 0 {
				return wire.WatcherEvent{}
			}
			return in.Events[len(in.Events)-1]
		}
		for i := 0; i < 200 && (last().Path != "/open" || last().Type != wire.EventNodeDataChanged); i++ {
			in.Call(wire.OpExists, &wire.ExistsRequest{Path: "/"})
		}
		for _, ev := range in.Events {
			fmt.Fprintf(&b, "event %v %s\n", ev.Type, ev.Path)
		}
		return b.String()
	}
	for _, v := range []string{"yes", "true"} {
		t.Run("skipACL="+v, func(t *testing.T) {
			zkdAddr, refAddr := bothServers(t, map[string]string{"skipACL": v})
			ref, got := run(refAddr), run(zkdAddr)
			compareLines(t, "skipACL="+v, ref, got)
			// The two values must differ, or the key was not read.
			if strings.Contains(got, "getData: "+wire.ErrNoAuth.Error()) == (v == "yes") {
				t.Fatalf("skipACL=%s: the intruder's getData came out wrong:\n%s", v, got)
			}
			t.Logf("skipACL=%s:\n%s", v, got)
		})
	}
}

// A client that has seen a zxid the server has not reached yet is refused,
// with the connection closed and no answer, whether it asks for a new
// session or resumes one: it must not read a state older than one it has
// seen, and tries another server instead. A client whose last zxid is the
// server's own is let in, and the session a refused resume named lives
// on. The same run on ZooKeeper and zkd.
func TestDifferentialRefusesAClientAheadOfTheServer(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, nil)
	run := func(addr string) string {
		var out strings.Builder
		c := zkreftest.Dial(t, addr, zkreftest.NewSession())
		h, _ := c.Call(wire.OpCreate, &wire.CreateRequest{Path: "/seen", ACL: openACL})
		if h.Err != wire.ErrOK || h.Zxid == 0 {
			t.Fatalf("%s: create answered %+v", addr, h)
		}
		ahead := zkreftest.NewSession()
		ahead.LastZxidSeen = h.Zxid + 1
		fmt.Fprintf(&out, "new session, one zxid ahead: %s\n", connectOutcome(t, addr, ahead))
		ahead.SessionID, ahead.Passwd = c.Session.SessionID, c.Session.Passwd
		fmt.Fprintf(&out, "resume, one zxid ahead: %s\n", connectOutcome(t, addr, ahead))
		level := zkreftest.NewSession()
		level.LastZxidSeen = h.Zxid
		fmt.Fprintf(&out, "new session, level: %s\n", connectOutcome(t, addr, level))
		level.SessionID, level.Passwd = c.Session.SessionID, c.Session.Passwd
		fmt.Fprintf(&out, "resume, level: %s\n", connectOutcome(t, addr, level))
		return out.String()
	}
	ref, got := run(refAddr), run(zkdAddr)
	compareLines(t, "connects from clients ahead of the server", ref, got)
	if !strings.Contains(got, "one zxid ahead: closed, no answer") || !strings.Contains(got, "resume, level: session") {
		t.Fatalf("zkd:\n%s", got)
	}
}

// connectOutcome sends req as a handshake to addr and says what came back:
// a session, a refusal (session id 0), or the connection closed with no
// answer.
func connectOutcome(t *testing.T, addr string, req wire.ConnectRequest) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(wire.AppendFrame(nil, req.Append(nil))); err != nil {
		t.Fatal(err)
	}
	fr := wire.NewFrameReader(0)
	buf := make([]byte, 4096)
	for {
		if payload, err := fr.Next(); err == nil && payload != nil {
			var resp wire.ConnectResponse
			if _, err := resp.Decode(payload, wire.Copy); err != nil {
				t.Fatalf("connect response from %s: %v", addr, err)
			}
			if resp.SessionID == 0 {
				return "refused (session 0)"
			}
			if req.SessionID != 0 && resp.SessionID != req.SessionID {
				return "another session"
			}
			return "session"
		}
		n, err := conn.Read(buf)
		if n > 0 {
			fr.Write(buf[:n])
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return "closed, no answer"
		}
		t.Fatalf("reading the connect response from %s: %v", addr, err)
	}
}
