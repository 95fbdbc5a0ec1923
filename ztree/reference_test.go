package ztree_test

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
	"zkd/ztree"
)

// TestSameAsReference runs one script of requests from three sessions
// against Apache ZooKeeper 3.8 and against the tree, and checks that
//   - every write preps into the same txn, byte for byte, that ZooKeeper
//     logged for it (header, record and digest: same checks, same error
//     codes, same sequential names, same ACL expansion, same tree digest);
//   - every reply, read or write, is the same;
//   - every session gets the same watch events;
//   - the final trees hold the same znodes with the same data and Stat.
//
// The tree gets each write's session, zxid and time from ZooKeeper's log.
func TestSameAsReference(t *testing.T) {
	s := zkreftest.Start(t, zkref.Options{SystemProperties: map[string]string{"zookeeper.extendedTypesEnabled": "true"}})
	var clients [3]*zkreftest.Client
	for i := range clients {
		clients[i] = zkreftest.Dial(t, s.Addr, zkreftest.NewSession())
	}
	ip := wire.Id{Scheme: "ip", ID: "127.0.0.1"}
	bob := wire.Id{Scheme: "digest", ID: ztree.DigestID("bob", "secret")}
	auth := [3][]wire.Id{{ip}, {ip, bob}, {ip}}
	if h, _ := clients[1].CallXid(wire.XidAuth, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("bob:secret")}); h.Err != wire.ErrOK {
		t.Fatalf("addauth: %v", h.Err)
	}

	open := ztree.OpenACL
	bobOnly := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "auth"}}}
	bobAndReaders := []wire.ACL{{Perms: wire.PermAll, ID: bob}, {Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	create := func(path, data string, mode wire.CreateMode, acl []wire.ACL) *wire.CreateRequest {
		return &wire.CreateRequest{Path: path, Data: []byte(data), ACL: acl, Flags: mode}
	}
	type step struct {
		who  int
		op   wire.OpCode
		body wire.Record
	}
	script := []step{
		{0, wire.OpCreate, create("/app", "v1", wire.ModePersistent, open)},
		{0, wire.OpCreate2, create("/app/seq-", "", wire.ModePersistentSequential, open)},
		{0, wire.OpCreate2, create("/app/seq-", "", wire.ModePersistentSequential, open)},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/app/seq-0000000000", Version: -1}},
		{0, wire.OpCreate2, create("/app/seq-", "", wire.ModePersistentSequential, open)},
		{0, wire.OpGetData, &wire.GetDataRequest{Path: "/app", Watch: true}},
		{0, wire.OpGetChildren2, &wire.GetChildren2Request{Path: "/app", Watch: true}},
		{1, wire.OpSetData, &wire.SetDataRequest{Path: "/app", Data: []byte("v2"), Version: 0}},
		{1, wire.OpSetData, &wire.SetDataRequest{Path: "/app", Data: []byte("v3"), Version: 0}},
		{0, wire.OpExists, &wire.ExistsRequest{Path: "/app/eph", Watch: true}},
		{1, wire.OpCreate, create("/app/eph", "e", wire.ModeEphemeral, open)},
		{1, wire.OpCreate, create("/app/eph/child", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/nope/x", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app//x", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app/.", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app/x/", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app/bad\x01", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("noslash", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app/flags", "", wire.CreateMode(9), open)},
		{0, wire.OpCreate, create("/app/noacl", "", wire.ModePersistent, nil)},
		{0, wire.OpCreate, create("/app/badacl", "", wire.ModePersistent, []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "nobody"}}})},
		{0, wire.OpCreate, create("/app/ipacl", "", wire.ModePersistent, []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "ip", ID: "10.0.0.0/8"}}})},
		{0, wire.OpGetData, &wire.GetDataRequest{Path: "/app/ipacl"}},
		{1, wire.OpCreate, create("/secure", "s", wire.ModePersistent, bobOnly)},
		{0, wire.OpCreate, create("/secure2", "", wire.ModePersistent, bobOnly)},
		{0, wire.OpGetData, &wire.GetDataRequest{Path: "/secure"}},
		{0, wire.OpCreate, create("/secure/x", "", wire.ModePersistent, open)},
		{1, wire.OpCreate, create("/secure/x", "", wire.ModePersistent, open)},
		{0, wire.OpGetACL, &wire.GetACLRequest{Path: "/secure"}},
		{1, wire.OpSetACL, &wire.SetACLRequest{Path: "/secure", ACL: bobAndReaders, Version: 0}},
		{1, wire.OpSetACL, &wire.SetACLRequest{Path: "/secure", ACL: bobAndReaders, Version: 0}},
		{0, wire.OpGetACL, &wire.GetACLRequest{Path: "/secure"}},
		{1, wire.OpGetACL, &wire.GetACLRequest{Path: "/secure"}},
		{0, wire.OpSetData, &wire.SetDataRequest{Path: "/secure", Data: []byte("no"), Version: -1}},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/secure/x", Version: -1}},
		{1, wire.OpDelete, &wire.DeleteRequest{Path: "/secure", Version: -1}},
		{1, wire.OpDelete, &wire.DeleteRequest{Path: "/secure/x", Version: 3}},
		{1, wire.OpDelete, &wire.DeleteRequest{Path: "/secure/x", Version: 0}},
		{0, wire.OpCreateContainer, create("/app/cont", "", wire.ModeContainer, open)},
		{0, wire.OpCreate, create("/app/cont/c1", "", wire.ModePersistent, open)},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/app/cont/c1", Version: -1}},
		{0, wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/app/ttl", Data: []byte("t"), ACL: open, Flags: wire.ModePersistentWithTTL, TTL: 1}},
		{0, wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/app/ttl0", ACL: open, Flags: wire.ModePersistentWithTTL, TTL: 0}},
		{0, wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/app/ttlseq-", ACL: open, Flags: wire.ModePersistentSequentialWithTTL, TTL: 5000}},
		{0, wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: "/m1", Data: []byte("a"), ACL: open},
			{Type: wire.OpCreate, Path: "/m1/a", ACL: open, Flags: wire.ModeEphemeral},
			{Type: wire.OpSetData, Path: "/m1", Data: []byte("b"), Version: 0},
			{Type: wire.OpCheck, Path: "/m1", Version: 1},
			{Type: wire.OpCreate, Path: "/m1/c", ACL: open, Flags: wire.ModeContainer},
			{Type: wire.OpCreate2, Path: "/m1/s-", ACL: open, Flags: wire.ModePersistentSequential},
			{Type: wire.OpDelete, Path: "/m1/a", Version: 0},
		}}},
		{0, wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: "/m2", ACL: open},
			{Type: wire.OpSetData, Path: "/m1", Data: []byte("c"), Version: 7},
			{Type: wire.OpDelete, Path: "/m1", Version: -1},
		}}},
		{0, wire.OpExists, &wire.ExistsRequest{Path: "/m2"}},
		{0, wire.OpAddWatch, &wire.AddWatchRequest{Path: "/app", Mode: wire.AddWatchPersistentRecursive}},
		{0, wire.OpAddWatch, &wire.AddWatchRequest{Path: "/m1", Mode: wire.AddWatchPersistent}},
		{1, wire.OpSetData, &wire.SetDataRequest{Path: "/app/seq-0000000001", Data: []byte("x"), Version: -1}},
		{1, wire.OpCreate, create("/app/seq-0000000001/deep", "", wire.ModePersistent, open)},
		{1, wire.OpCreate, create("/m1/p", "", wire.ModePersistent, open)},
		{1, wire.OpSetData, &wire.SetDataRequest{Path: "/m1", Data: []byte("d"), Version: -1}},
		{1, wire.OpDelete, &wire.DeleteRequest{Path: "/m1/p", Version: -1}},
		{0, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/app", Type: wire.WatcherData}},
		{0, wire.OpGetData, &wire.GetDataRequest{Path: "/app/seq-0000000002", Watch: true}},
		{0, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/app/seq-0000000002", Type: wire.WatcherData}},
		{0, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/app/seq-0000000002", Type: wire.WatcherData}},
		{0, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/app/seq-0000000002", Type: wire.WatcherData}},
		{0, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/m1", Type: wire.WatcherAny}},
		{2, wire.OpCreate, create("/app/c-eph", "", wire.ModeEphemeral, open)},
		{2, wire.OpCreate2, create("/app/c-seq-", "", wire.ModeEphemeralSequential, open)},
		{2, wire.OpGetEphemerals, &wire.GetEphemeralsRequest{Path: "/"}},
		{2, wire.OpGetEphemerals, &wire.GetEphemeralsRequest{Path: "/app/c-s"}},
		{0, wire.OpExists, &wire.ExistsRequest{Path: "/app/c-eph", Watch: true}},
		{2, wire.OpCloseSession, nil},
		{0, wire.OpGetAllChildrenNumber, &wire.GetAllChildrenNumberRequest{Path: "/app"}},
		{0, wire.OpGetAllChildrenNumber, &wire.GetAllChildrenNumberRequest{Path: "/"}},
		{0, wire.OpSetData, &wire.SetDataRequest{Path: "/zookeeper/config", Data: []byte("x"), Version: -1}},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/zookeeper", Version: -1}},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/zookeeper/quota", Version: -1}},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/", Version: -1}},
		{0, wire.OpGetData, &wire.GetDataRequest{Path: "/zookeeper/config"}},
		{0, wire.OpGetACL, &wire.GetACLRequest{Path: "/zookeeper/config"}},
		{0, wire.OpGetChildren2, &wire.GetChildren2Request{Path: "/zookeeper"}},
		{0, wire.OpGetChildren2, &wire.GetChildren2Request{Path: "/"}},
		{0, wire.OpCreate, create("/zookeeper/quota/app", "", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/zookeeper/quota/app/zookeeper_limits", "count=100,bytes=-1", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/zookeeper/quota/app/zookeeper_stats", "count=0,bytes=0", wire.ModePersistent, open)},
		{0, wire.OpCreate, create("/app/q", "12345", wire.ModePersistent, open)},
		{0, wire.OpSetData, &wire.SetDataRequest{Path: "/app/q", Data: []byte("1"), Version: -1}},
		{0, wire.OpDelete, &wire.DeleteRequest{Path: "/app/seq-0000000001/deep", Version: -1}},
		{0, wire.OpGetData, &wire.GetDataRequest{Path: "/zookeeper/quota/app/zookeeper_stats"}},
	}

	// Run the script on ZooKeeper, keeping every reply.
	type reply struct {
		err  wire.ErrCode
		body wire.Record
	}
	replies := make([]reply, len(script))
	for i, st := range script {
		c := clients[st.who]
		h, rec := c.Call(st.op, st.body)
		replies[i] = reply{h.Err, rec}
		if st.op == wire.OpCloseSession {
			c.ReadErr()
		}
	}
	for _, c := range clients[:2] { // collect the events still in flight
		c.Call(wire.OpExists, &wire.ExistsRequest{Path: "/"})
	}
	logged := zkreftest.ReadTxnLog(t, s.Dir+"/data")

	// Replay it on the tree.
	tree := ztree.New(ztree.Options{ExtendedTypes: true})
	var sessions [3]int64
	for i, c := range clients {
		sessions[i] = c.Session.SessionID
		tree.SetAuth(sessions[i], auth[i])
	}
	var events [3][]wire.WatcherEvent
	deliver := func(evs []ztree.Event) {
		for _, e := range evs {
			for i := range sessions {
				if sessions[i] == e.Session {
					events[i] = append(events[i], wire.WatcherEvent{Type: e.Type, State: wire.StateSyncConnected, Path: e.Path})
				}
			}
		}
	}
	next := 0
	for i, st := range script {
		sess := sessions[st.who]
		ids := auth[st.who]
		var gotErr wire.ErrCode
		var got wire.Record
		if isWrite(st.op) {
			for logged[next].Header.Type == wire.OpCreateSession {
				tree.Apply(&logged[next].Header, logged[next].Record)
				deliver(tree.Publish())
				next++
			}
			want := logged[next]
			next++
			h := want.Header
			txn, _ := tree.Prep(&ztree.Request{Session: sess, Cxid: h.Cxid, Zxid: h.Zxid, Time: h.Time, Op: st.op, Body: st.body, Auth: ids})
			if gotTxn := encodeTxn(txn); !bytes.Equal(gotTxn, want.Entry) {
				t.Errorf("step %d %v %s: txn differs\n got %s\nwant %s", i, st.op, describe(st.body),
					describeTxn(txn.Header, txn.Record, txn.HasDigest, txn.Digest), describeTxn(want.Header, want.Record, want.Digest != nil, derefDigest(want.Digest)))
			}
			res := tree.Apply(&want.Header, want.Record)
			deliver(tree.Publish())
			gotErr, got = res.Reply(st.op)
			if st.op == wire.OpCloseSession {
				continue
			}
		} else {
			gotErr, got = readReply(tree, sess, ids, st.op, st.body, deliver)
		}
		want := replies[i]
		if gotErr != want.err || !sameRecord(got, want.body) {
			t.Errorf("step %d %v %s: reply\n got %v %s\nwant %v %s", i, st.op, describe(st.body), gotErr, describe(got), want.err, describe(want.body))
		}
	}
	if next != len(logged) {
		t.Errorf("ZooKeeper logged %d txns, the script used %d", len(logged), next)
	}
	for i, c := range clients[:2] {
		if fmt.Sprint(c.Events) != fmt.Sprint(events[i]) {
			t.Errorf("session %d events\n got %v\nwant %v", i, events[i], c.Events)
		}
	}

	// Every znode the tree holds has ZooKeeper's Stat, and its data where
	// the session may read it.
	v := tree.Published()
	n := 0
	v.Walk(func(node ztree.Node) bool {
		n++
		h, rec := clients[1].Call(wire.OpExists, &wire.ExistsRequest{Path: node.Path})
		if h.Err != wire.ErrOK || rec.(*wire.ExistsResponse).Stat != node.Stat {
			t.Errorf("%s: Stat %+v, ZooKeeper says %v %+v", node.Path, node.Stat, h.Err, rec)
		}
		h, rec = clients[1].Call(wire.OpGetData, &wire.GetDataRequest{Path: node.Path})
		if h.Err == wire.ErrOK && string(rec.(*wire.GetDataResponse).Data) != node.Data {
			t.Errorf("%s: data %q, ZooKeeper has %q", node.Path, node.Data, rec.(*wire.GetDataResponse).Data)
		}
		return true
	})
	h, rec := clients[1].Call(wire.OpGetAllChildrenNumber, &wire.GetAllChildrenNumberRequest{Path: "/"})
	if h.Err != wire.ErrOK || int(rec.(*wire.GetAllChildrenNumberResponse).TotalNumber) != n-1 {
		t.Errorf("ZooKeeper has %v znodes below the root, the tree %d", rec, n-1)
	}
}

func isWrite(op wire.OpCode) bool {
	switch op {
	case wire.OpCreate, wire.OpCreate2, wire.OpCreateContainer, wire.OpCreateTTL, wire.OpDelete,
		wire.OpSetData, wire.OpSetACL, wire.OpMulti, wire.OpCloseSession:
		return true
	}
	return false
}

// readReply answers a read the way the server will, from the newest View,
// registering the watch the read asks for.
func readReply(tree *ztree.Tree, sess int64, ids []wire.Id, op wire.OpCode, body wire.Record, deliver func([]ztree.Event)) (wire.ErrCode, wire.Record) {
	v := tree.Published()
	code := func(err error) wire.ErrCode {
		if err == nil {
			return wire.ErrOK
		}
		return err.(wire.ErrCode)
	}
	watch := func(path string, kind ztree.WatchKind) {
		if ev, fired := tree.Watch(v, sess, path, kind); fired {
			deliver([]ztree.Event{ev})
		}
	}
	switch op {
	case wire.OpGetData:
		r := body.(*wire.GetDataRequest)
		data, st, err := v.GetData(r.Path, ids)
		if err != nil {
			return code(err), nil
		}
		if r.Watch {
			watch(r.Path, ztree.WatchData)
		}
		return wire.ErrOK, &wire.GetDataResponse{Data: []byte(data), Stat: st}
	case wire.OpExists:
		r := body.(*wire.ExistsRequest)
		st, err := v.Exists(r.Path)
		if r.Watch {
			watch(r.Path, ztree.WatchData)
		}
		if err != nil {
			return code(err), nil
		}
		return wire.ErrOK, &wire.ExistsResponse{Stat: st}
	case wire.OpGetChildren2:
		r := body.(*wire.GetChildren2Request)
		kids, st, err := v.AppendChildren(nil, r.Path, ids)
		if err != nil {
			return code(err), nil
		}
		if r.Watch {
			watch(r.Path, ztree.WatchChild)
		}
		return wire.ErrOK, &wire.GetChildren2Response{Children: kids, Stat: st}
	case wire.OpGetACL:
		acl, st, err := v.ACL(body.(*wire.GetACLRequest).Path, ids)
		if err != nil {
			return code(err), nil
		}
		return wire.ErrOK, &wire.GetACLResponse{ACL: acl, Stat: st}
	case wire.OpGetAllChildrenNumber:
		n, err := v.AllChildrenNumber(body.(*wire.GetAllChildrenNumberRequest).Path, ids)
		if err != nil {
			return code(err), nil
		}
		return wire.ErrOK, &wire.GetAllChildrenNumberResponse{TotalNumber: int32(n)}
	case wire.OpGetEphemerals:
		return wire.ErrOK, &wire.GetEphemeralsResponse{Strings: v.AppendEphemerals(nil, sess, body.(*wire.GetEphemeralsRequest).Path)}
	case wire.OpAddWatch:
		r := body.(*wire.AddWatchRequest)
		kind := ztree.WatchPersistent
		if r.Mode == wire.AddWatchPersistentRecursive {
			kind = ztree.WatchRecursive
		}
		tree.AddWatch(sess, r.Path, kind)
		return wire.ErrOK, &wire.ErrorResponse{}
	case wire.OpCheckWatches:
		r := body.(*wire.CheckWatchesRequest)
		return code(tree.CheckWatches(sess, r.Path, r.Type)), nil
	case wire.OpRemoveWatches:
		r := body.(*wire.RemoveWatchesRequest)
		return code(tree.RemoveWatches(sess, r.Path, r.Type)), nil
	}
	panic("readReply: " + op.String())
}

func encodeTxn(txn ztree.Txn) []byte {
	b := txn.Header.Append(nil)
	if txn.Record != nil {
		b = txn.Record.Append(b)
	}
	if txn.HasDigest {
		b = txn.Digest.Append(b)
	}
	return b
}

func derefDigest(d *wire.TxnDigest) wire.TxnDigest {
	if d == nil {
		return wire.TxnDigest{}
	}
	return *d
}

func describeTxn(h wire.TxnHeader, rec wire.Record, hasDigest bool, d wire.TxnDigest) string {
	s := fmt.Sprintf("%+v %s", h, describe(rec))
	if m, ok := rec.(*wire.MultiTxn); ok {
		for _, sub := range m.Txns {
			r, _ := wire.TxnRecord(sub.Type)
			r.Decode(sub.Data, wire.Copy)
			s += fmt.Sprintf("\n\t%v %s", sub.Type, describe(r))
		}
	}
	if hasDigest {
		s += fmt.Sprintf(" digest %+v", d)
	}
	return s
}

func describe(r wire.Record) string {
	if r == nil {
		return "<none>"
	}
	return fmt.Sprintf("%+v", r)
}

// sameRecord compares two reply bodies by their encoding; child lists are
// compared as sets (ZooKeeper returns them in hash order).
func sameRecord(a, b wire.Record) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	for _, r := range []wire.Record{a, b} {
		switch x := r.(type) {
		case *wire.GetChildren2Response:
			sort.Strings(x.Children)
		case *wire.StringsResponse:
			sort.Strings(x.Strings)
		}
	}
	return bytes.Equal(a.Append(nil), b.Append(nil))
}
