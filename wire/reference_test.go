package wire_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
)

// These tests speak to Apache ZooKeeper 3.8 (the Debian package) through this
// package's encoders and decoders only: every request zkd's codec builds must
// be accepted by the reference server, and every reply it sends must decode
// into what ZooKeeper's documented behaviour says.

// The client and the server start-up are shared with other packages' tests.
type refClient = zkreftest.Client

var (
	startReference = zkreftest.Start
	dialReference  = zkreftest.Dial
	newSession     = zkreftest.NewSession
)

var openACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}

func TestReferenceServerSpeaksOurCodec(t *testing.T) {
	s := startReference(t, zkref.Options{})
	c := dialReference(t, s.Addr, newSession())
	if c.Session.SessionID == 0 || c.Session.TimeOut != 30000 || len(c.Session.Passwd) != 16 || !c.Session.HasReadOnly {
		t.Fatalf("handshake: %+v", c.Session)
	}

	created := c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/ref", Data: []byte("v1"), ACL: openACL}).(*wire.PathRequest)
	if created.Path != "/ref" {
		t.Fatalf("create: %q", created.Path)
	}
	c.Fails(wire.OpCreate, &wire.CreateRequest{Path: "/ref", ACL: openACL}, wire.ErrNodeExists)
	c.Fails(wire.OpCreate, &wire.CreateRequest{Path: "/no/parent", ACL: openACL}, wire.ErrNoNode)

	seq := c.OK(wire.OpCreate2, &wire.CreateRequest{Path: "/ref/seq-", Data: nil, ACL: openACL, Flags: wire.ModeEphemeralSequential}).(*wire.Create2Response)
	if seq.Path != "/ref/seq-0000000000" || seq.Stat.EphemeralOwner != c.Session.SessionID {
		t.Fatalf("create2 sequential ephemeral: %+v", seq)
	}

	st := c.OK(wire.OpExists, &wire.PathWatchRequest{Path: "/ref", Watch: true}).(*wire.StatResponse)
	if st.Stat.Version != 0 || st.Stat.NumChildren != 1 || st.Stat.DataLength != 2 {
		t.Fatalf("exists: %+v", st.Stat)
	}
	// exists on a missing node is an error reply with no body.
	c.Fails(wire.OpExists, &wire.PathWatchRequest{Path: "/missing"}, wire.ErrNoNode)

	data := c.OK(wire.OpGetData, &wire.PathWatchRequest{Path: "/ref", Watch: true}).(*wire.GetDataResponse)
	if string(data.Data) != "v1" {
		t.Fatalf("getData: %q", data.Data)
	}

	// setData fires the data watch; the event arrives before the reply.
	c.Trace = nil
	set := c.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/ref", Data: []byte("v2"), Version: 0}).(*wire.StatResponse)
	if set.Stat.Version != 1 {
		t.Fatalf("setData: %+v", set.Stat)
	}
	if want := []string{"event /ref", "reply setData"}; !reflect.DeepEqual(c.Trace, want) {
		t.Fatalf("arrival order %q, want %q", c.Trace, want)
	}
	if ev := c.Events[len(c.Events)-1]; ev.Type != wire.EventNodeDataChanged || ev.State != wire.StateSyncConnected {
		t.Fatalf("event: %+v", ev)
	}
	c.Fails(wire.OpSetData, &wire.SetDataRequest{Path: "/ref", Data: []byte("v3"), Version: 0}, wire.ErrBadVersion)

	kids := c.OK(wire.OpGetChildren2, &wire.PathWatchRequest{Path: "/ref"}).(*wire.GetChildren2Response)
	if !reflect.DeepEqual(kids.Children, []string{"seq-0000000000"}) || kids.Stat.NumChildren != 1 {
		t.Fatalf("getChildren2: %+v", kids)
	}
	plain := c.OK(wire.OpGetChildren, &wire.PathWatchRequest{Path: "/"}).(*wire.StringsResponse)
	if len(plain.Strings) != 2 { // ref and zookeeper
		t.Fatalf("getChildren /: %q", plain.Strings)
	}

	acl := c.OK(wire.OpGetACL, &wire.PathRequest{Path: "/ref"}).(*wire.GetACLResponse)
	if !reflect.DeepEqual(acl.ACL, openACL) {
		t.Fatalf("getACL: %+v", acl.ACL)
	}
	setACL := c.OK(wire.OpSetACL, &wire.SetACLRequest{Path: "/ref", ACL: openACL, Version: 0}).(*wire.StatResponse)
	if setACL.Stat.Aversion != 1 {
		t.Fatalf("setACL: %+v", setACL.Stat)
	}
	if sync := c.OK(wire.OpSync, &wire.PathRequest{Path: "/ref"}).(*wire.PathRequest); sync.Path != "/ref" {
		t.Fatalf("sync: %q", sync.Path)
	}
	if n := c.OK(wire.OpGetAllChildrenNumber, &wire.PathRequest{Path: "/ref"}).(*wire.GetAllChildrenNumberResponse); n.TotalNumber != 1 {
		t.Fatalf("getAllChildrenNumber: %d", n.TotalNumber)
	}
	eph := c.OK(wire.OpGetEphemerals, &wire.PathRequest{Path: "/"}).(*wire.StringsResponse)
	if !reflect.DeepEqual(eph.Strings, []string{"/ref/seq-0000000000"}) {
		t.Fatalf("getEphemerals: %q", eph.Strings)
	}

	// TTL nodes need extendedTypesEnabled, off by default.
	c.Fails(wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/ttl", ACL: openACL, Flags: wire.ModePersistentWithTTL, TTL: 1000}, wire.ErrUnimplemented)
	cont := c.OK(wire.OpCreateContainer, &wire.CreateRequest{Path: "/cont", Data: []byte{}, ACL: openACL, Flags: wire.ModeContainer}).(*wire.Create2Response)
	// ZooKeeper marks containers with ephemeralOwner MinInt64 internally
	// but shows clients 0.
	contSt := c.OK(wire.OpExists, &wire.PathWatchRequest{Path: "/cont"}).(*wire.StatResponse)
	if cont.Stat.EphemeralOwner != 0 || contSt.Stat.EphemeralOwner != 0 {
		t.Fatalf("container ephemeralOwner: create2 %#x, exists %#x; want 0", cont.Stat.EphemeralOwner, contSt.Stat.EphemeralOwner)
	}
	c.OK(wire.OpDelete, &wire.PathVersionRequest{Path: "/cont", Version: -1})
	c.Fails(wire.OpDelete, &wire.PathVersionRequest{Path: "/ref", Version: -1}, wire.ErrNotEmpty)

	testReferenceMulti(t, c)
	testReferenceWatchesAndAuth(t, c)

	// reconfig on a standalone server with reconfig off.
	joining := "server.2=127.0.0.1:2888:3888;2182"
	c.Fails(wire.OpReconfig, &wire.ReconfigRequest{JoiningServers: &joining, CurConfigID: -1}, wire.ErrReconfigDisabled)

	// Ping uses its reserved xid.
	if h, rec := c.CallXid(wire.XidPing, wire.OpPing, nil); h.Err != wire.ErrOK || rec != nil {
		t.Fatalf("ping: %+v %v", h, rec)
	}

	// closeSession: an empty reply, then the server closes the connection.
	c.OK(wire.OpCloseSession, nil)
	if _, err := c.ReadErr(); !errors.Is(err, io.EOF) {
		t.Fatalf("after closeSession: %v, want EOF", err)
	}
}

func testReferenceMulti(t *testing.T, c *refClient) {
	ok := c.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
		{Type: wire.OpCreate, Path: "/ref/m", Data: []byte("m"), ACL: openACL},
		{Type: wire.OpCreate2, Path: "/ref/m2", ACL: openACL},
		{Type: wire.OpCreateContainer, Path: "/ref/m3", ACL: openACL, Flags: wire.ModeContainer},
		{Type: wire.OpSetData, Path: "/ref/m", Data: []byte("m2"), Version: 0},
		{Type: wire.OpCheck, Path: "/ref/m", Version: 1},
		{Type: wire.OpDelete, Path: "/ref/m", Version: 1},
	}}).(*wire.MultiResponse)
	var types []wire.OpCode
	for _, r := range ok.Results {
		types = append(types, r.Type)
	}
	// ZooKeeper's quirk: a create2 op answers with a plain create result,
	// a createContainer (or createTTL) op with a create2 result.
	if want := []wire.OpCode{wire.OpCreate, wire.OpCreate, wire.OpCreate2, wire.OpSetData, wire.OpCheck, wire.OpDelete}; !reflect.DeepEqual(types, want) {
		t.Fatalf("multi result types %v, want %v", types, want)
	}
	if ok.Results[0].Path != "/ref/m" || ok.Results[1].Path != "/ref/m2" || ok.Results[2].Stat.Czxid == 0 || ok.Results[3].Stat.Version != 1 {
		t.Fatalf("multi results: %+v", ok.Results)
	}

	// A failing multi: every result is an error; before the failure 0,
	// the failing op its code, after it RUNTIMEINCONSISTENCY. The reply
	// header itself carries no error.
	failed := c.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
		{Type: wire.OpCreate, Path: "/ref/x", ACL: openACL},
		{Type: wire.OpDelete, Path: "/ref/missing", Version: -1},
		{Type: wire.OpSetData, Path: "/ref", Version: -1},
	}}).(*wire.MultiResponse)
	want := []wire.OpResult{
		{Type: wire.OpError, Err: wire.ErrOK},
		{Type: wire.OpError, Err: wire.ErrNoNode},
		{Type: wire.OpError, Err: wire.ErrRuntimeInconsistency},
	}
	if !reflect.DeepEqual(failed.Results, want) {
		t.Fatalf("failed multi: %+v", failed.Results)
	}
	c.Fails(wire.OpExists, &wire.PathWatchRequest{Path: "/ref/x"}, wire.ErrNoNode) // rolled back
	testReferenceMultiRead(t, c)
}

func testReferenceMultiRead(t *testing.T, c *refClient) {
	res := c.OK(wire.OpMultiRead, &wire.MultiRequest{Ops: []wire.MultiOp{
		{Type: wire.OpGetData, Path: "/ref"},
		{Type: wire.OpGetChildren, Path: "/ref"},
		{Type: wire.OpGetData, Path: "/missing"},
	}}).(*wire.MultiResponse)
	if len(res.Results) != 3 || string(res.Results[0].Data) != "v2" ||
		len(res.Results[1].Children) != 3 ||
		res.Results[2].Type != wire.OpError || res.Results[2].Err != wire.ErrNoNode {
		t.Fatalf("multiRead: %+v", res.Results)
	}
}

func testReferenceWatchesAndAuth(t *testing.T, c *refClient) {
	// addWatch answers with an ErrorResponse carrying 0.
	if r := c.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/ref", Mode: wire.AddWatchPersistentRecursive}).(*wire.ErrorResponse); r.Err != wire.ErrOK {
		t.Fatalf("addWatch: %v", r.Err)
	}
	c.Events = nil
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/ref/w", ACL: openACL})
	if len(c.Events) != 1 || c.Events[0].Type != wire.EventNodeCreated || c.Events[0].Path != "/ref/w" {
		t.Fatalf("persistent recursive watch: %+v", c.Events)
	}
	c.OK(wire.OpCheckWatches, &wire.WatchesRequest{Path: "/ref", Type: wire.WatcherAny})
	c.OK(wire.OpRemoveWatches, &wire.WatchesRequest{Path: "/ref", Type: wire.WatcherAny})
	c.Fails(wire.OpRemoveWatches, &wire.WatchesRequest{Path: "/ref", Type: wire.WatcherAny}, wire.ErrNoWatcher)

	// setWatches2 with relativeZxid 0: the data watch on /ref fires at once
	// because /ref changed after zxid 0.
	c.Events = nil
	if h, _ := c.CallXid(wire.XidSetWatches, wire.OpSetWatches2, &wire.SetWatches2{
		RelativeZxid: 0, DataWatches: []string{"/ref"}, ExistWatches: []string{}, ChildWatches: []string{},
		PersistentWatches: []string{}, PersistentRecursiveWatches: []string{},
	}); h.Err != wire.ErrOK {
		t.Fatalf("setWatches2: %v", h.Err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Events) == 0 && time.Now().Before(deadline) {
		c.CallXid(wire.XidPing, wire.OpPing, nil)
	}
	if len(c.Events) == 0 || c.Events[0].Type != wire.EventNodeDataChanged || c.Events[0].Path != "/ref" {
		t.Fatalf("setWatches2 did not fire the stale data watch: %+v", c.Events)
	}

	if h, _ := c.CallXid(wire.XidAuth, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("alice:secret")}); h.Err != wire.ErrOK {
		t.Fatalf("auth: %v", h.Err)
	}
	who := c.OK(wire.OpWhoAmI, nil).(*wire.WhoAmIResponse)
	got := map[wire.ClientInfo]bool{}
	for _, ci := range who.ClientInfo {
		got[ci] = true
	}
	want := map[wire.ClientInfo]bool{{AuthScheme: "ip", User: "127.0.0.1"}: true, {AuthScheme: "digest", User: "alice"}: true}
	if len(who.ClientInfo) != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("whoAmI: %+v", who.ClientInfo)
	}
}

// The 44-byte handshake (no readOnly byte) gets a 36-byte answer; resuming a
// session with the wrong password gets the expired form (timeout 0, id 0).
func TestReferenceHandshakeForms(t *testing.T) {
	s := startReference(t, zkref.Options{})
	old := newSession()
	old.HasReadOnly = false
	c := dialReference(t, s.Addr, old)
	if c.Session.HasReadOnly || c.Session.SessionID == 0 {
		t.Fatalf("44-byte handshake answered with %+v", c.Session)
	}
	bad := newSession()
	bad.SessionID = c.Session.SessionID
	bad.Passwd = bytes.Repeat([]byte{0xee}, 16)
	d := dialReference(t, s.Addr, bad)
	if d.Session.SessionID != 0 || d.Session.TimeOut != 0 {
		t.Fatalf("wrong password answered with %+v", d.Session)
	}
}

// A frame above jute.maxbuffer makes the server close the connection, the
// same limit FrameReader enforces.
func TestReferenceRejectsOversizedFrame(t *testing.T) {
	s := startReference(t, zkref.Options{})
	c := dialReference(t, s.Addr, newSession())
	c.OK(wire.OpExists, &wire.PathWatchRequest{Path: "/"})
	if _, err := c.Conn.Write([]byte{0x00, 0x10, 0x00, 0x00}); err != nil { // DefaultMaxBuffer+1
		t.Fatal(err)
	}
	if _, err := c.ReadErr(); err == nil {
		t.Fatal("server kept the connection after an oversized frame")
	}
}

// The txn records must match what ZooKeeper writes into its log: run a mix
// of requests, then read the reference server's version-2/log.* with this
// package alone (file header, then per txn: Adler-32, length, TxnHeader +
// record + TxnDigest, end-of-record byte 'B') and re-encode each txn byte for
// byte.
func TestReferenceTxnLogDecodes(t *testing.T) {
	s := startReference(t, zkref.Options{SystemProperties: map[string]string{"zookeeper.extendedTypesEnabled": "true"}})
	c := dialReference(t, s.Addr, newSession())
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/log", Data: []byte("d"), ACL: openACL})
	c.OK(wire.OpCreate2, &wire.CreateRequest{Path: "/log/e-", ACL: openACL, Flags: wire.ModeEphemeralSequential})
	c.OK(wire.OpCreateContainer, &wire.CreateRequest{Path: "/log/c", Data: []byte{}, ACL: openACL, Flags: wire.ModeContainer})
	c.OK(wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/log/t", ACL: openACL, Flags: wire.ModePersistentWithTTL, TTL: 60000})
	c.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/log", Data: []byte("d2"), Version: -1})
	c.OK(wire.OpSetACL, &wire.SetACLRequest{Path: "/log", ACL: openACL, Version: -1})
	c.Fails(wire.OpCreate, &wire.CreateRequest{Path: "/log", ACL: openACL}, wire.ErrNodeExists)
	c.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
		{Type: wire.OpCreate, Path: "/log/m", ACL: openACL},
		{Type: wire.OpCheck, Path: "/log/m", Version: 0},
		{Type: wire.OpDelete, Path: "/log/m", Version: 0},
	}})
	c.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
		{Type: wire.OpCreate, Path: "/log/x", ACL: openACL},
		{Type: wire.OpDelete, Path: "/log/missing", Version: -1},
	}})
	c.OK(wire.OpDelete, &wire.PathVersionRequest{Path: "/log/t", Version: -1})
	c.OK(wire.OpCloseSession, nil)
	c.ReadErr() // the server closes after the reply; the txn is logged by then

	seen := map[wire.OpCode]int{}
	digests := 0
	var noDigest []wire.OpCode
	for _, lt := range zkreftest.ReadTxnLog(t, s.Dir+"/data") {
		h, rec := lt.Header, lt.Record
		re := rec.Append(h.Append(nil))
		if lt.Digest != nil {
			re = lt.Digest.Append(re)
			digests++
		} else {
			noDigest = append(noDigest, h.Type)
		}
		if !bytes.Equal(re, lt.Entry) {
			t.Fatalf("%v txn re-encodes differently\n got %x\nwant %x", h.Type, re, lt.Entry)
		}
		if mt, ok := rec.(*wire.MultiTxn); ok {
			for _, sub := range mt.Txns {
				subRec, ok := wire.TxnRecord(sub.Type)
				if !ok {
					t.Fatalf("multi sub-txn type %v has no record", sub.Type)
				}
				if sn, err := subRec.Decode(sub.Data, wire.Copy); err != nil || sn != len(sub.Data) {
					t.Fatalf("multi sub-txn %v: used %d of %d, %v", sub.Type, sn, len(sub.Data), err)
				}
				seen[sub.Type]++
			}
		}
		seen[h.Type]++
	}
	for _, op := range []wire.OpCode{wire.OpCreateSession, wire.OpCreate, wire.OpCreate2, wire.OpCreateContainer,
		wire.OpCreateTTL, wire.OpSetData, wire.OpSetACL, wire.OpError, wire.OpMulti, wire.OpCheck,
		wire.OpDelete, wire.OpCloseSession} {
		if seen[op] == 0 {
			t.Errorf("no %v txn in the log (seen %v)", op, seen)
		}
	}
	// ZooKeeper 3.8 enables digests by default and writes one after every
	// txn but an ErrorTxn.
	if digests == 0 {
		t.Error("no TxnDigest after any txn")
	}
	for _, op := range noDigest {
		if op != wire.OpError {
			t.Errorf("%v txn without a digest", op)
		}
	}
	t.Logf("txns by type %v; %d with a digest, without: %v", seen, digests, noDigest)
}
