package ztree_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"zkd/wire"
	"zkd/ztree"
)

// harness drives a tree the way the server does: prep, apply, publish.
type harness struct {
	t    *testing.T
	tree *ztree.Tree
	zxid int64
	time int64
	auth map[int64][]wire.Id
}

func newHarness(t *testing.T, opts ztree.Options) *harness {
	return &harness{t: t, tree: ztree.New(opts), time: 1_700_000_000_000, auth: map[int64][]wire.Id{}}
}

// do runs one write and returns its result and the events it fired.
func (h *harness) do(session int64, op wire.OpCode, body wire.Record) (ztree.Result, []ztree.Event) {
	h.t.Helper()
	h.zxid++
	txn, _ := h.tree.Prep(&ztree.Request{Session: session, Zxid: h.zxid, Time: h.time, Op: op, Body: body, Auth: h.auth[session]})
	res := h.tree.Apply(&txn.Header, txn.Record)
	return res, h.tree.Publish()
}

func (h *harness) ok(session int64, op wire.OpCode, body wire.Record) ztree.Result {
	h.t.Helper()
	res, _ := h.do(session, op, body)
	if res.Err != wire.ErrOK {
		h.t.Fatalf("%v %+v: %v", op, body, res.Err)
	}
	return res
}

func (h *harness) create(session int64, path string, mode wire.CreateMode) ztree.Result {
	h.t.Helper()
	return h.ok(session, wire.OpCreate, &wire.CreateRequest{Path: path, ACL: ztree.OpenACL, Flags: mode})
}

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/", true}, {"/a", true}, {"/a/b.c", true}, {"/a/..b", true}, {"/a/.b", true}, {"/zookeeper", true},
		{"/é/日本", true},
		{"", false}, {"a", false}, {"/a/", false}, {"//a", false}, {"/a//b", false},
		{"/.", false}, {"/a/.", false}, {"/a/./b", false}, {"/..", false}, {"/a/../b", false},
		{"/a\x00b", false}, {"/a\x01", false}, {"/a\x1f", false}, {"/a\x7f", false},
		{"/a\u0085", false}, {"/a\ue000", false}, {"/a\ufff0", false}, {"/a\U0001F600", false},
		{"/a\xff", false},
	} {
		if got := ztree.ValidatePath(tc.path); got != tc.ok {
			t.Errorf("ValidatePath(%q) = %v, want %v", tc.path, got, tc.ok)
		}
	}
}

// TestEmptyAndNullDataStayApart: a znode created or set with empty data
// reads back as an empty buffer (length 0), one created or set with null
// data as null (length -1), as ZooKeeper keeps them: kazoo reads b"" for
// the one and None for the other. The server sends whatever GetData
// returns; a string without a pointer goes out as null.
func TestEmptyAndNullDataStayApart(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/empty", Data: []byte{}, ACL: ztree.OpenACL})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/null", Data: nil, ACL: ztree.OpenACL})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/set-empty", Data: []byte("x"), ACL: ztree.OpenACL})
	h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/set-empty", Data: []byte{}, Version: -1})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/set-null", Data: []byte("x"), ACL: ztree.OpenACL})
	h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/set-null", Data: nil, Version: -1})
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/", "\x00\x00\x00\x00"}, {"/zookeeper", "\x00\x00\x00\x00"},
		{"/empty", "\x00\x00\x00\x00"}, {"/set-empty", "\x00\x00\x00\x00"},
		{"/null", "\xff\xff\xff\xff"}, {"/set-null", "\xff\xff\xff\xff"},
	} {
		data, st, err := h.tree.Published().GetData(tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp := wire.GetDataResponse{Data: unsafe.Slice(unsafe.StringData(data), len(data))}
		if got := resp.Append(nil); len(got) < 4 || string(got[:4]) != tc.want || st.DataLength != 0 {
			t.Errorf("%s: data encodes as % x (dataLength %d), want % x", tc.path, got[:min(4, len(got))], st.DataLength, tc.want)
		}
	}
}

func TestErrorsOfWrites(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/p", wire.ModePersistent)
	h.create(1, "/p/c", wire.ModePersistent)
	h.create(1, "/e", wire.ModeEphemeral)
	for _, tc := range []struct {
		op   wire.OpCode
		body wire.Record
		want wire.ErrCode
	}{
		{wire.OpCreate, &wire.CreateRequest{Path: "/p", ACL: ztree.OpenACL}, wire.ErrNodeExists},
		{wire.OpCreate, &wire.CreateRequest{Path: "/x/y", ACL: ztree.OpenACL}, wire.ErrNoNode},
		{wire.OpCreate, &wire.CreateRequest{Path: "/e/c", ACL: ztree.OpenACL}, wire.ErrNoChildrenForEphemerals},
		{wire.OpCreate, &wire.CreateRequest{Path: "/p/.", ACL: ztree.OpenACL}, wire.ErrBadArguments},
		{wire.OpCreate, &wire.CreateRequest{Path: "/q", ACL: nil}, wire.ErrInvalidACL},
		{wire.OpCreate, &wire.CreateRequest{Path: "/q", ACL: ztree.OpenACL, Flags: 7}, wire.ErrBadArguments},
		{wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/q", ACL: ztree.OpenACL, Flags: wire.ModePersistentWithTTL, TTL: 10}, wire.ErrUnimplemented},
		{wire.OpDelete, &wire.DeleteRequest{Path: "/p", Version: -1}, wire.ErrNotEmpty},
		{wire.OpDelete, &wire.DeleteRequest{Path: "/p/c", Version: 4}, wire.ErrBadVersion},
		{wire.OpDelete, &wire.DeleteRequest{Path: "/zookeeper/config", Version: -1}, wire.ErrBadArguments},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/nope", Version: -1}, wire.ErrNoNode},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/p", Version: 9}, wire.ErrBadVersion},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/zookeeper/config", Version: -1}, wire.ErrNoAuth},
		{wire.OpSetACL, &wire.SetACLRequest{Path: "/p", ACL: ztree.OpenACL, Version: 3}, wire.ErrBadVersion},
		{wire.OpSetACL, &wire.SetACLRequest{Path: "/p", ACL: []wire.ACL{{Perms: 31, ID: wire.Id{Scheme: "digest", ID: "nocolon"}}}, Version: -1}, wire.ErrInvalidACL},
	} {
		res, _ := h.do(1, tc.op, tc.body)
		if res.Err != tc.want || res.Type != wire.OpError {
			t.Errorf("%v %+v: %v (%v), want %v", tc.op, tc.body, res.Err, res.Type, tc.want)
		}
	}
}

func TestStatBookkeeping(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/p", wire.ModePersistent)
	c := h.create(1, "/p/s-", wire.ModePersistentSequential)
	if c.Path != "/p/s-0000000000" {
		t.Fatalf("sequential path %q", c.Path)
	}
	h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/p/s-0000000000", Data: []byte("abc"), Version: 0})
	st, _ := h.tree.Published().Stat("/p")
	if st.Cversion != 1 || st.NumChildren != 1 || st.Pzxid != 2 || st.Mzxid != 1 {
		t.Fatalf("child setData moved the parent: %+v", st)
	}
	h.ok(1, wire.OpDelete, &wire.DeleteRequest{Path: "/p/s-0000000000", Version: 1})
	st, _ = h.tree.Published().Stat("/p")
	if st.Cversion != 2 || st.NumChildren != 0 || st.Pzxid != 4 {
		t.Fatalf("after a child delete: %+v (cversion counts the delete, pzxid moves)", st)
	}
	if c := h.create(1, "/p/s-", wire.ModePersistentSequential); c.Path != "/p/s-0000000001" {
		t.Fatalf("the suffix is the persisted cversion, which counts creates: %q", c.Path)
	}
	e := h.create(7, "/p/e", wire.ModeEphemeral)
	if _, body := e.Reply(wire.OpCreate); fmt.Sprintf("%+v", body) != "&{Path:/p/e}" {
		t.Fatalf("create replies with the path only: %v", body)
	}
	st, _ = h.tree.Published().Stat("/p/e")
	if st.EphemeralOwner != 7 {
		t.Fatalf("ephemeral owner %d", st.EphemeralOwner)
	}
	root, _ := h.tree.Published().Stat("/")
	if root.Cversion != 2*1-2 || root.NumChildren != 2 { // one create (/p) plus /zookeeper from the start
		t.Fatalf("root %+v", root)
	}
}

// TestSequentialSuffixAtTheLimit pins ZooKeeper's behaviour when a parent's
// cversion reaches MaxInt32: the suffix is the full number, and the next
// cversion wraps negative, which the apply ignores because it only moves
// cversion forward, so further sequential creates under that parent fail
// with NODEEXISTS, as they do in ZooKeeper 3.8.
func TestSequentialSuffixAtTheLimit(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/p", wire.ModePersistent)
	// Bring the persisted cversion to MaxInt32 through replayed creates
	// that carry a parent cversion, as a log from a long-lived server does.
	h.zxid++
	h.tree.Apply(&wire.TxnHeader{Zxid: h.zxid, Type: wire.OpCreate}, &wire.CreateTxn{Path: "/p/x", ACL: ztree.OpenACL, ParentCVersion: 1<<31 - 1})
	h.tree.Publish()
	if c := h.create(1, "/p/s-", wire.ModePersistentSequential); c.Path != "/p/s-2147483647" {
		t.Fatalf("%q", c.Path)
	}
	if res, _ := h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/p/s-", ACL: ztree.OpenACL, Flags: wire.ModePersistentSequential}); res.Err != wire.ErrNodeExists {
		t.Fatalf("after the wrap: %v %q", res.Err, res.Path)
	}
}

func TestContainersAndTTL(t *testing.T) {
	h := newHarness(t, ztree.Options{ExtendedTypes: true})
	h.ok(1, wire.OpCreateContainer, &wire.CreateRequest{Path: "/c", ACL: ztree.OpenACL, Flags: wire.ModeContainer})
	h.ok(1, wire.OpCreateContainer, &wire.CreateRequest{Path: "/never", ACL: ztree.OpenACL, Flags: wire.ModeContainer})
	h.ok(1, wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/t", ACL: ztree.OpenACL, Flags: wire.ModePersistentWithTTL, TTL: 500})
	st, _ := h.tree.Published().Stat("/c")
	if st.EphemeralOwner != 0 {
		t.Fatalf("a container shows its marker: %+v", st)
	}
	now := h.time
	if got := h.tree.Published().Candidates(now, 0); len(got) != 0 {
		t.Fatalf("fresh nodes are candidates: %v", got)
	}
	h.create(1, "/c/x", wire.ModePersistent)
	h.ok(1, wire.OpDelete, &wire.DeleteRequest{Path: "/c/x", Version: -1})
	if got := fmt.Sprint(h.tree.Published().Candidates(now+501, 0)); got != "[/c /t]" {
		t.Fatalf("candidates %s", got)
	}
	if got := fmt.Sprint(h.tree.Published().Candidates(now+501, 100)); got != "[/c /never /t]" {
		t.Fatalf("with maxNeverUsed: %s", got)
	}
	h.create(1, "/t/kid", wire.ModePersistent)
	if got := fmt.Sprint(h.tree.Published().Candidates(now+10_000, 0)); got != "[/c]" {
		t.Fatalf("a TTL node with a child is kept: %s", got)
	}
	res, _ := h.do(0, wire.OpDeleteContainer, &wire.DeleteContainerRequest{Path: "/c"})
	if res.Err != wire.ErrOK {
		t.Fatalf("deleteContainer: %v", res.Err)
	}
	h.create(9, "/eph", wire.ModeEphemeral)
	if res, _ := h.do(0, wire.OpDeleteContainer, &wire.DeleteContainerRequest{Path: "/eph"}); res.Err != wire.ErrBadVersion {
		t.Fatalf("deleteContainer of an ephemeral: %v", res.Err)
	}
}

func TestACLs(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	bob := wire.Id{Scheme: "digest", ID: ztree.DigestID("bob", "pw")}
	h.auth[2] = []wire.Id{{Scheme: "ip", ID: "10.1.2.3"}, bob}
	h.auth[3] = []wire.Id{{Scheme: "ip", ID: "10.9.9.9"}}
	h.auth[4] = []wire.Id{{Scheme: "super"}}
	h.ok(2, wire.OpCreate, &wire.CreateRequest{Path: "/b", ACL: []wire.ACL{
		{Perms: wire.PermAll, ID: wire.Id{Scheme: "auth"}},
		{Perms: wire.PermRead, ID: wire.Id{Scheme: "ip", ID: "10.9.0.0/16"}},
	}})
	v := h.tree.Published()
	acl, _, err := v.ACL("/b", h.auth[2])
	if err != nil || len(acl) != 2 || acl[0].ID != bob {
		t.Fatalf("auth expands to the digest identity only: %v %v", acl, err)
	}
	if _, _, err := v.GetData("/b", h.auth[3]); err != nil {
		t.Fatalf("ip network match: %v", err)
	}
	if _, _, err := v.GetData("/b", []wire.Id{{Scheme: "ip", ID: "10.8.0.1"}}); err != wire.ErrNoAuth {
		t.Fatalf("outside the network: %v", err)
	}
	if acl, _, _ := v.ACL("/b", h.auth[3]); !strings.HasSuffix(acl[0].ID.ID, ":x") {
		t.Fatalf("READ without ADMIN must redact digests: %v", acl)
	}
	for _, tc := range []struct {
		session int64
		want    wire.ErrCode
	}{{3, wire.ErrNoAuth}, {2, wire.ErrOK}, {4, wire.ErrOK}} {
		res, _ := h.do(tc.session, wire.OpSetData, &wire.SetDataRequest{Path: "/b", Version: -1})
		if res.Err != tc.want {
			t.Errorf("setData by session %d: %v, want %v", tc.session, res.Err, tc.want)
		}
	}
	if res, _ := h.do(3, wire.OpCreate, &wire.CreateRequest{Path: "/b/kid", ACL: ztree.OpenACL}); res.Err != wire.ErrNoAuth {
		t.Fatalf("create needs CREATE on the parent: %v", res.Err)
	}
	if res, _ := h.do(3, wire.OpCreate, &wire.CreateRequest{Path: "/mine", ACL: []wire.ACL{{Perms: 31, ID: wire.Id{Scheme: "auth"}}}}); res.Err != wire.ErrInvalidACL {
		t.Fatalf("auth ACL without an authenticated identity: %v", res.Err)
	}
}

func TestQuotas(t *testing.T) {
	h := newHarness(t, ztree.Options{EnforceQuota: true})
	h.create(1, "/q", wire.ModePersistent)
	h.create(1, "/zookeeper/quota/q", wire.ModePersistent)
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/zookeeper/quota/q/zookeeper_limits", Data: []byte("count=-1,bytes=-1=;countHardLimit=3"), ACL: ztree.OpenACL})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/zookeeper/quota/q/zookeeper_stats", Data: []byte("count=0,bytes=0"), ACL: ztree.OpenACL})
	stats := func() string {
		n, _ := h.tree.Published().Get("/zookeeper/quota/q/zookeeper_stats")
		return n.Data
	}
	if s := stats(); s != "count=1,bytes=0" {
		t.Fatalf("stats after setup: %s", s)
	}
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/q/a", Data: []byte("12345"), ACL: ztree.OpenACL})
	h.create(1, "/q/b", wire.ModePersistent)
	if s := stats(); s != "count=3,bytes=5" {
		t.Fatalf("stats: %s", s)
	}
	if res, _ := h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/q/c", ACL: ztree.OpenACL}); res.Err != wire.ErrQuotaExceeded {
		t.Fatalf("past the hard count limit: %v", res.Err)
	}
	h.ok(1, wire.OpDelete, &wire.DeleteRequest{Path: "/q/a", Version: -1})
	if s := stats(); s != "count=2,bytes=0" {
		t.Fatalf("stats after a delete: %s", s)
	}
	h.create(1, "/q/c", wire.ModePersistent)
	// A stats node that went wrong (a snapshot taken mid-change, say) is
	// recounted when the quotas are rebuilt after a load.
	h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/zookeeper/quota/q/zookeeper_stats", Data: []byte("count=99,bytes=99"), Version: -1})
	h.tree.RebuildQuotas()
	h.tree.Publish()
	if s := stats(); s != "count=3,bytes=0" {
		t.Fatalf("stats after a rebuild: %s", s)
	}
	if res, _ := h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/q/d", ACL: ztree.OpenACL}); res.Err != wire.ErrQuotaExceeded {
		t.Fatalf("the rebuilt quota is enforced: %v", res.Err)
	}
}

func TestMultiIsAllOrNothing(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/a", wire.ModePersistent)
	before := h.tree.Digest()
	res, evs := h.do(1, wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
		{Type: wire.OpCreate, Path: "/a/x", ACL: ztree.OpenACL},
		{Type: wire.OpSetData, Path: "/a", Version: 5},
		{Type: wire.OpDelete, Path: "/a/x", Version: -1},
	}})
	errs := fmt.Sprint(res.Multi[0].Err, res.Multi[1].Err, res.Multi[2].Err)
	if errs != fmt.Sprint(wire.ErrOK, wire.ErrBadVersion, wire.ErrRuntimeInconsistency) || len(evs) != 0 {
		t.Fatalf("failed multi: %s, events %v", errs, evs)
	}
	if _, ok := h.tree.Published().Get("/a/x"); ok || h.tree.Digest() != before {
		t.Fatal("a failed multi changed the tree")
	}
	// The next request must not see the rolled-back create either.
	h.create(1, "/a/x", wire.ModePersistent)
}

// TestRemoveWatchesKeepsNoViewOfTheRequest: the engine hands
// removeWatches a path that is a view of the request's buffer, which the
// next request overwrites. Removing one registry's part of a persistent
// watch leaves an entry in the table, and that entry must keep a path of
// its own: here the buffer is overwritten, and the data part of the watch
// must still fire and be found.
func TestRemoveWatchesKeepsNoViewOfTheRequest(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/abc", wire.ModePersistent)
	h.tree.AddWatch(2, "/abc", ztree.WatchPersistent)
	buf := []byte("/abc")
	if err := h.tree.RemoveWatches(2, unsafe.String(&buf[0], len(buf)), wire.WatcherChildren); err != nil {
		t.Fatal(err)
	}
	copy(buf, "/zzz")
	if _, evs := h.do(1, wire.OpSetData, &wire.SetDataRequest{Path: "/abc", Version: -1}); fmt.Sprint(evs) != "[{2 NodeDataChanged /abc 2}]" {
		t.Fatalf("events after the request's buffer changed: %v", evs)
	}
	if _, evs := h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/abc/k", ACL: ztree.OpenACL}); len(evs) != 0 {
		t.Fatalf("the removed child part fired: %v", evs)
	}
	if err := h.tree.RemoveWatches(2, "/abc", wire.WatcherData); err != nil {
		t.Fatalf("the data part of the watch is lost: %v", err)
	}
}

// TestWatchSetOnAnOlderView: a read answered from a View a few versions
// old registers its watch after changes it did not see. ZooKeeper would
// have registered it before them, so the first of them fires it, once:
// zkd fires it at once, unless another watch of the session already told
// it of that change, which in ZooKeeper's order was the same event.
func TestWatchSetOnAnOlderView(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/x", wire.ModePersistent)
	h.create(1, "/r", wire.ModePersistent)
	h.create(1, "/r/c", wire.ModePersistent)
	h.create(1, "/p", wire.ModePersistent)
	set := func(path string) []ztree.Event {
		_, evs := h.do(1, wire.OpSetData, &wire.SetDataRequest{Path: path, Version: -1})
		return evs
	}

	// No other watch: the change fires the late one at once.
	old := h.tree.Published()
	set("/x")
	if ev, fired := h.tree.Watch(old, 2, "/x", ztree.WatchData); !fired || ev.Type != wire.EventNodeDataChanged {
		t.Fatalf("a watch set on an older view: %+v %v", ev, fired)
	}

	// The same one-shot watch set before, used up by the change.
	if _, fired := h.tree.Watch(h.tree.Published(), 2, "/x", ztree.WatchData); fired {
		t.Fatal("fired on the current view")
	}
	old = h.tree.Published()
	if evs := set("/x"); len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	if ev, fired := h.tree.Watch(old, 2, "/x", ztree.WatchData); fired {
		t.Fatalf("the change told the session twice: %+v", ev)
	}
	if evs := set("/x"); len(evs) != 0 {
		t.Fatalf("the late watch was kept: %v", evs)
	}

	// A recursive watch above told the session of the change.
	h.tree.AddWatch(2, "/r", ztree.WatchRecursive)
	old = h.tree.Published()
	if evs := set("/r/c"); len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	if ev, fired := h.tree.Watch(old, 2, "/r/c", ztree.WatchData); fired {
		t.Fatalf("the recursive watch's event came twice: %+v", ev)
	}
	if evs := set("/r/c"); len(evs) != 1 || evs[0].Type != wire.EventNodeDataChanged {
		t.Fatalf("after the late watch: %v", evs)
	}

	// A persistent watch on the path itself: the late one-shot watch
	// replaced it in the data registry, and the change used that up.
	h.tree.AddWatch(2, "/p", ztree.WatchPersistent)
	old = h.tree.Published()
	if evs := set("/p"); len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	if ev, fired := h.tree.Watch(old, 2, "/p", ztree.WatchData); fired {
		t.Fatalf("the persistent watch's event came twice: %+v", ev)
	}
	if evs := set("/p"); len(evs) != 0 {
		t.Fatalf("the data registry kept the persistent watch: %v", evs)
	}
	if _, evs := h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/p/k", ACL: ztree.OpenACL}); len(evs) != 1 || evs[0].Type != wire.EventNodeChildrenChanged {
		t.Fatalf("the child registry lost the persistent watch: %v", evs)
	}
}

// TestCreateTTLOfAnotherMode: a createTTL whose mode is not a TTL mode is
// refused, whatever its TTL (ZooKeeper takes one with a negative TTL and
// then fails to apply its txn).
func TestCreateTTLOfAnotherMode(t *testing.T) {
	h := newHarness(t, ztree.Options{ExtendedTypes: true})
	for _, ttl := range []int64{-5, -1, 0, 1000} {
		for _, mode := range []wire.CreateMode{wire.ModePersistent, wire.ModeEphemeral, wire.ModeContainer} {
			res, _ := h.do(1, wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/t", ACL: ztree.OpenACL, Flags: mode, TTL: ttl})
			if res.Err != wire.ErrBadArguments {
				t.Errorf("createTTL of mode %v with TTL %d: %v", mode, ttl, res.Err)
			}
		}
	}
	if res, _ := h.do(1, wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/t", ACL: ztree.OpenACL, Flags: wire.ModePersistentWithTTL, TTL: 1000}); res.Err != wire.ErrOK {
		t.Fatalf("createTTL of a TTL mode: %v", res.Err)
	}
}

func TestWatches(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/w", wire.ModePersistent)
	v := h.tree.Published()
	h.create(1, "/w/k", wire.ModePersistent) // a change the reader of v has not seen
	if ev, fired := h.tree.Watch(v, 2, "/w", ztree.WatchChild); !fired || ev.Type != wire.EventNodeChildrenChanged {
		t.Fatalf("a watch set on an old version must fire at once: %+v %v", ev, fired)
	}
	if _, fired := h.tree.Watch(h.tree.Published(), 2, "/w", ztree.WatchData); fired {
		t.Fatal("fired on the current version")
	}
	h.tree.AddWatch(3, "/w", ztree.WatchRecursive)
	h.tree.AddWatch(4, "/w", ztree.WatchPersistent)
	_, evs := h.do(1, wire.OpSetData, &wire.SetDataRequest{Path: "/w", Version: -1})
	if fmt.Sprint(evs) != "[{2 NodeDataChanged /w 3} {3 NodeDataChanged /w 3} {4 NodeDataChanged /w 3}]" {
		t.Fatalf("setData events %v", evs)
	}
	_, evs = h.do(1, wire.OpSetData, &wire.SetDataRequest{Path: "/w", Version: -1})
	if fmt.Sprint(evs) != "[{3 NodeDataChanged /w 4} {4 NodeDataChanged /w 4}]" {
		t.Fatalf("the one-shot watch fired twice: %v", evs)
	}
	_, evs = h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/w/k/deep", ACL: ztree.OpenACL})
	if fmt.Sprint(evs) != "[{3 NodeCreated /w/k/deep 5}]" {
		t.Fatalf("recursive watches see creates below, never NodeChildrenChanged: %v", evs)
	}
	// No READ on the znode, no recursive event.
	_, evs = h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/w/secret", ACL: []wire.ACL{{Perms: wire.PermRead, ID: wire.Id{Scheme: "digest", ID: "u:h"}}}})
	if fmt.Sprint(evs) != "[{4 NodeChildrenChanged /w 6}]" {
		t.Fatalf("events for an unreadable child: %v", evs)
	}
	if err := h.tree.RemoveWatches(3, "/w", wire.WatcherAny); err != nil {
		t.Fatal(err)
	}
	if err := h.tree.RemoveWatches(3, "/w", wire.WatcherAny); err != wire.ErrNoWatcher {
		t.Fatalf("removeWatches after remove: %v", err)
	}
	// ZooKeeper 3.8 knows no other WatcherType than Children, Data and Any.
	if err := h.tree.RemoveWatches(4, "/w", wire.WatcherPersistent); err != wire.ErrMarshallingError {
		t.Fatalf("removeWatches of type Persistent: %v", err)
	}
	// Reconnect: watches set with relativeZxid fire for what changed since.
	evs, at := h.tree.SetWatches(5, 3, []string{"/w", "/gone"}, []string{"/w/k"}, []string{"/w"}, nil, nil)
	if fmt.Sprint(evs) != "[{5 NodeDataChanged /w 6} {5 NodeDeleted /gone 6} {5 NodeCreated /w/k 6} {5 NodeChildrenChanged /w 6}]" || at != 6 {
		t.Fatalf("setWatches events %v, at %d", evs, at)
	}
	if err := h.tree.RemoveWatches(5, "/w", wire.WatcherData); err != wire.ErrNoWatcher {
		t.Fatalf("a watch that fired at once was kept: %v", err)
	}
	// Closing a session deletes its ephemerals and fires their watches.
	h.create(8, "/w/e", wire.ModeEphemeral)
	h.tree.Watch(h.tree.Published(), 2, "/w/e", ztree.WatchData)
	_, evs = h.do(8, wire.OpCloseSession, nil)
	if fmt.Sprint(evs) != "[{2 NodeDeleted /w/e 8} {4 NodeChildrenChanged /w 8}]" {
		t.Fatalf("close session events %v", evs)
	}
	if got := h.tree.Published().AppendEphemerals(nil, 8, ""); len(got) != 0 {
		t.Fatalf("ephemerals left: %v", got)
	}
}

// TestReadersDuringApplies reads published versions on several goroutines
// while the applier keeps writing; run it with -race. Every version a reader
// holds must be internally consistent: the counter node's data is its
// version, and the parent's NumChildren is its listed children.
func TestReadersDuringApplies(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/ctr", Data: []byte("0"), ACL: ztree.OpenACL})
	h.create(1, "/kids", wire.ModePersistent)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := h.tree.Published()
				if v.Zxid() < last {
					errs <- "versions went backwards"
					return
				}
				last = v.Zxid()
				data, st, err := v.GetData("/ctr", nil)
				if err != nil || data != fmt.Sprint(st.Version) {
					errs <- fmt.Sprintf("counter %q at version %d (%v)", data, st.Version, err)
					return
				}
				kids, kst, _ := v.AppendChildren(nil, "/kids", nil)
				if int32(len(kids)) != kst.NumChildren {
					errs <- fmt.Sprintf("%d children listed, NumChildren %d", len(kids), kst.NumChildren)
					return
				}
			}
		}()
	}
	h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/ctr", Data: []byte("1"), Version: -1})
	for i := 2; i < 3000; i++ {
		h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/ctr", Data: []byte(fmt.Sprint(i)), Version: -1})
		if i%3 == 0 {
			h.create(1, fmt.Sprintf("/kids/k%d", i), wire.ModePersistent)
		}
		if i%5 == 0 {
			h.do(1, wire.OpDelete, &wire.DeleteRequest{Path: fmt.Sprintf("/kids/k%d", i-3), Version: -1})
		}
	}
	close(stop)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
}

func TestMultiReadAnswersEachOp(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/r", Data: []byte("d"), ACL: ztree.OpenACL})
	h.create(1, "/r/k", wire.ModePersistent)
	h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/locked", ACL: []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: "u:h"}}}})
	got := h.tree.Published().MultiRead([]wire.MultiOp{
		{Type: wire.OpGetData, Path: "/r"},
		{Type: wire.OpGetData, Path: "/missing"},
		{Type: wire.OpGetChildren, Path: "/r"},
		{Type: wire.OpGetChildren, Path: "/locked"},
	}, nil)
	if len(got) != 4 || string(got[0].Data) != "d" || got[0].Stat.NumChildren != 1 ||
		got[1].Type != wire.OpError || got[1].Err != wire.ErrNoNode ||
		fmt.Sprint(got[2].Children) != "[k]" ||
		got[3].Type != wire.OpError || got[3].Err != wire.ErrNoAuth {
		t.Fatalf("multiRead results %+v", got)
	}
}

// setDataBatches prepares warm setData txns of 1 KB on /a whose caller
// supplies the txn record's memory (as the server does, from its reused
// requests), and returns a function that preps and applies n more and
// publishes them as one version, as the server's applier does with a
// commit.
func setDataBatches(t *testing.T, h *harness) func(n int) {
	h.create(1, "/a", wire.ModePersistent)
	data := make([]byte, 1024)
	req := &ztree.Request{Session: 1, Time: 1, Op: wire.OpSetData,
		Body:       &wire.SetDataRequest{Path: "/a", Data: data, Version: -1},
		SetDataTxn: new(wire.SetDataTxn)}
	return batchesOf(t, h, req, func() {
		data[0]++ // each version's data differs from the last
	})
}

// batchesOf returns a function that preps and applies n txns of req (next
// changes req before each) and publishes them as one version.
func batchesOf(t *testing.T, h *harness, req *ztree.Request, next func()) func(n int) {
	return func(n int) {
		for i := 0; i < n; i++ {
			h.zxid++
			req.Zxid = h.zxid
			next()
			txn, err := h.tree.Prep(req)
			if err != nil {
				t.Fatal(err)
			}
			if res := h.tree.ApplyPrepped(&txn); res.Err != wire.ErrOK {
				t.Fatal(res.Err)
			}
		}
		h.tree.Publish()
		h.tree.Visible(h.tree.Published())
	}
}

// perSetData is what one more setData in a published batch allocates:
// the allocations of a batch of 65 less those of a batch of 1 (the
// publish's own), over 64.
func perSetData(batch func(int)) float64 {
	for i := 0; i < 10; i++ {
		batch(65)
	}
	big := testing.AllocsPerRun(20, func() { batch(65) })
	one := testing.AllocsPerRun(20, func() { batch(1) })
	return (big - one) / 64
}

// TestSetDataAllocatesOnlyTheNewZnode: without record reuse, a warm
// setData costs one allocation from prep to apply, the znode's new record;
// the change record Prep keeps for it is reused once the txn is applied.
func TestSetDataAllocatesOnlyTheNewZnode(t *testing.T) {
	if a := perSetData(setDataBatches(t, newHarness(t, ztree.Options{}))); a != 1 {
		t.Errorf("setData made %v allocations, want 1", a)
	}
}

// TestSetDataReusesRecordsNoReaderHolds: with readers tracked, a setData
// writes its znode's new record into one an earlier setData replaced, once
// no reader can hold it, and allocates nothing.
func TestSetDataReusesRecordsNoReaderHolds(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.tree.TrackReaders()
	if a := perSetData(setDataBatches(t, h)); a != 0 {
		t.Errorf("setData made %v allocations, want 0", a)
	}
}

// TestReusedRecordsSpareReadersInTheirSlots: a reader that entered its slot
// before loading a View keeps reading that View's data unchanged, however
// many setData txns of the same size follow; records come back into use
// once it leaves. An idle slot holds nothing back.
func TestReusedRecordsSpareReadersInTheirSlots(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	readers := h.tree.TrackReaders()
	idle := readers.NewSlot()
	defer idle.Close()
	batch := setDataBatches(t, h)
	for i := 0; i < 20; i++ {
		batch(10)
	}
	slot := readers.NewSlot()
	slot.Enter()
	v := h.tree.Published()
	held, _, err := v.GetData("/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Clone(held)
	for i := 0; i < 200; i++ {
		batch(10)
		if held != want {
			t.Fatalf("after %d setData the data a reader holds changed", 10*(i+1))
		}
	}
	// Held: each setData's record is new, and so is the version that
	// puts it on /a's chain.
	if a := perSetData(batch); a != 2 {
		t.Errorf("setData made %v allocations while a reader holds an old version, want 2", a)
	}
	slot.Leave()
	slot.Close()
	if a := perSetData(batch); a != 0 {
		t.Errorf("setData made %v allocations once the reader left, want 0", a)
	}
}

// TestEphemeralRecordsAreNotReused: an ephemeral znode's path lives on in
// the session's index, sharing its first record, so its records are left
// to the collector. Here a record the ephemeral's could be reused for
// (same length) is wanted right after the ephemeral's data changed and
// records of another length were freed; the index still names it.
func TestEphemeralRecordsAreNotReused(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.tree.TrackReaders()
	set := func(path string, data []byte) {
		h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: path, Data: data, Version: -1})
		h.tree.Visible(h.tree.Published())
	}
	h.ok(7, wire.OpCreateSession, &wire.CreateSessionTxn{TimeOut: 30000})
	h.create(1, "/big", wire.ModePersistent)
	for _, p := range []string{"/f", "/g", "/h"} {
		h.create(1, p, wire.ModePersistent)
	}
	h.ok(7, wire.OpCreate, &wire.CreateRequest{Path: "/e", Data: []byte("x"), ACL: ztree.OpenACL, Flags: wire.ModeEphemeral})
	set("/e", []byte("y"))
	for i := 0; i < 40; i++ {
		set("/big", make([]byte, 100))
	}
	for i := 0; i < 3; i++ {
		for _, p := range []string{"/f", "/g", "/h"} {
			set(p, []byte("z"))
		}
	}
	if got := h.tree.Published().AppendEphemerals(nil, 7, "/"); len(got) != 1 || got[0] != "/e" {
		t.Fatalf("session's ephemerals = %q, want [/e]", got)
	}
}

// TestTxnRecordsOutliveTheirApply: Prep reuses its own bookkeeping once a
// txn is applied, but a txn's record stays as it was, for callers that
// keep txns (to replay them, or to send them on).
func TestTxnRecordsOutliveTheirApply(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/a", wire.ModePersistent)
	var kept []ztree.Txn
	for i := 0; i < 20; i++ {
		h.zxid++
		txn, err := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: 1, Op: wire.OpSetData,
			Body: &wire.SetDataRequest{Path: "/a", Data: []byte(fmt.Sprint(i)), Version: -1}})
		if err != nil {
			t.Fatal(err)
		}
		if res := h.tree.ApplyPrepped(&txn); res.Err != wire.ErrOK {
			t.Fatal(res.Err)
		}
		kept = append(kept, txn)
	}
	for i, txn := range kept {
		rec, ok := txn.Record.(*wire.SetDataTxn)
		if !ok || rec.Path != "/a" || string(rec.Data) != fmt.Sprint(i) || rec.Version != int32(i+1) {
			t.Fatalf("txn %d's record is now %+v", i, txn.Record)
		}
	}
}

// TestEventPathsOutliveRecordReuse: an event names its znode with a path
// of its own. The server encodes events later than it applies their txns
// (on the connection's event loop), by which time the znode's record of
// that txn may have been replaced and its memory reused for another
// znode's of the same length; an event that borrowed the record's path
// then named the other znode (zkbench check's watch workload found it:
// watchers of /check-watch/w2 told that w3 changed).
func TestEventPathsOutliveRecordReuse(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.tree.TrackReaders()
	// As the server's applier does: the txn record's memory is the
	// caller's, reused.
	set := func(path string) []ztree.Event {
		h.zxid++
		txn, err := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: 1, Op: wire.OpSetData,
			Body:       &wire.SetDataRequest{Path: path, Data: make([]byte, 1024), Version: -1},
			SetDataTxn: new(wire.SetDataTxn)})
		if err != nil {
			t.Fatal(err)
		}
		if res := h.tree.ApplyPrepped(&txn); res.Err != wire.ErrOK {
			t.Fatal(res.Err)
		}
		evs := h.tree.Publish()
		h.tree.Visible(h.tree.Published())
		return evs
	}
	paths := []string{"/w0", "/w1", "/w2", "/w3"}
	for _, p := range paths {
		h.create(1, p, wire.ModePersistent)
	}
	type fired struct{ want, got string }
	var all []fired
	for i := 0; i < 400; i++ {
		p := paths[(i*7)%len(paths)]
		if _, ok := h.tree.Watch(h.tree.Published(), 5, p, ztree.WatchData); ok {
			t.Fatalf("a watch on %s fired at once", p)
		}
		for _, ev := range set(p) {
			all = append(all, fired{p, ev.Path})
		}
	}
	for i, f := range all {
		if f.got != f.want {
			t.Fatalf("event %d of %d, of a setData of %s, now names %q", i, len(all), f.want, f.got)
		}
	}
}

// The sasl ACL scheme is there once the server has ZooKeeper's SASL
// provider (authProvider.N): an id that parses as a Kerberos principal,
// or has no @, is valid.
func TestSASLACLs(t *testing.T) {
	for _, c := range []struct {
		on    bool
		id    string
		valid bool
	}{
		{false, "bob", false},
		{true, "bob", true},
		{true, "zookeeper/host.example.com@EXAMPLE.COM", true},
		{true, "bob@EXAMPLE.COM", true},
		{true, "bob@EX@AMPLE", false},
		{true, "a/b/c@REALM", false},
	} {
		h := newHarness(t, ztree.Options{SASLACLs: c.on})
		res, _ := h.do(1, wire.OpCreate, &wire.CreateRequest{Path: "/s",
			ACL: []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "sasl", ID: c.id}}}})
		if (res.Err == wire.ErrOK) != c.valid || !c.valid && res.Err != wire.ErrInvalidACL {
			t.Errorf("sasl:%s with the provider %v: %v, want valid %v", c.id, c.on, res.Err, c.valid)
		}
	}
}

// A write whose session the server says is closing or unknown fails with
// what ZooKeeper's leader logs for it, at the step ZooKeeper checks the
// session: after a create's flags and TTL, before anything else. An
// ephemeral create of an unknown session says SESSIONEXPIRED; nothing is
// created, changed or deleted.
func TestWritesOfClosedSessionsFail(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.create(1, "/p", wire.ModePersistent)
	h.create(1, "/p/c", wire.ModePersistent)
	before := h.tree.Digest()
	expired, unknown := wire.ErrSessionExpired, wire.ErrUnknownSession
	for _, tc := range []struct {
		session wire.ErrCode
		op      wire.OpCode
		body    wire.Record
		want    wire.ErrCode
	}{
		{expired, wire.OpCreate, &wire.CreateRequest{Path: "/p/e", ACL: ztree.OpenACL, Flags: wire.ModeEphemeral}, expired},
		{unknown, wire.OpCreate, &wire.CreateRequest{Path: "/p/e", ACL: ztree.OpenACL, Flags: wire.ModeEphemeral}, expired},
		{unknown, wire.OpCreate2, &wire.CreateRequest{Path: "/p/e", ACL: ztree.OpenACL, Flags: wire.ModeEphemeralSequential}, expired},
		{unknown, wire.OpCreate, &wire.CreateRequest{Path: "/p/q", ACL: ztree.OpenACL}, unknown},
		{unknown, wire.OpCreateContainer, &wire.CreateRequest{Path: "/p/q", ACL: ztree.OpenACL, Flags: wire.ModeContainer}, unknown},
		{expired, wire.OpCreate, &wire.CreateRequest{Path: "/p/c", ACL: ztree.OpenACL}, expired},
		{expired, wire.OpCreate, &wire.CreateRequest{Path: "/q", ACL: ztree.OpenACL, Flags: 7}, wire.ErrBadArguments},
		{expired, wire.OpDelete, &wire.DeleteRequest{Path: "/p/c", Version: -1}, expired},
		{unknown, wire.OpDelete, &wire.DeleteRequest{Path: "/nope", Version: -1}, unknown},
		{expired, wire.OpSetData, &wire.SetDataRequest{Path: "/p", Version: -1}, expired},
		{unknown, wire.OpSetACL, &wire.SetACLRequest{Path: "/p", ACL: ztree.OpenACL, Version: -1}, unknown},
		{expired, wire.OpCheck, &wire.CheckVersionRequest{Path: "/p", Version: -1}, expired},
		{wire.ErrSessionMoved, wire.OpCreate, &wire.CreateRequest{Path: "/p/e", ACL: ztree.OpenACL, Flags: wire.ModeEphemeral}, wire.ErrSessionMoved},
		{wire.ErrSessionMoved, wire.OpSetData, &wire.SetDataRequest{Path: "/p", Version: -1}, wire.ErrSessionMoved},
	} {
		h.zxid++
		txn, err := h.tree.Prep(&ztree.Request{Session: 2, Zxid: h.zxid, Time: h.time, Op: tc.op, Body: tc.body, SessionErr: tc.session})
		res := h.tree.Apply(&txn.Header, txn.Record)
		h.tree.Publish()
		if err != tc.want || res.Err != tc.want || res.Type != wire.OpError {
			t.Errorf("%v %+v of a session %v: %v, %v (%v), want %v", tc.op, tc.body, tc.session, err, res.Err, res.Type, tc.want)
		}
		if res.SessionMoved() != (tc.want == wire.ErrSessionMoved) {
			t.Errorf("%v %+v failing with %v: SessionMoved says %v", tc.op, tc.body, res.Err, res.SessionMoved())
		}
	}
	h.zxid++
	txn, _ := h.tree.Prep(&ztree.Request{Session: 2, Zxid: h.zxid, Time: h.time, Op: wire.OpMulti, SessionErr: expired,
		Body: &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: "/p/m", ACL: ztree.OpenACL, Flags: wire.ModeEphemeral},
			{Type: wire.OpSetData, Path: "/p", Version: -1},
		}}})
	res := h.tree.Apply(&txn.Header, txn.Record)
	h.tree.Publish()
	if len(res.Multi) != 2 || res.Multi[0].Err != expired || res.Multi[1].Err != wire.ErrRuntimeInconsistency {
		t.Errorf("a multi of an expired session: %+v", res.Multi)
	}
	h.zxid++
	txn, _ = h.tree.Prep(&ztree.Request{Session: 2, Zxid: h.zxid, Time: h.time, Op: wire.OpMulti, SessionErr: wire.ErrSessionMoved,
		Body: &wire.MultiRequest{Ops: []wire.MultiOp{{Type: wire.OpCheck, Path: "/p", Version: -1}}}})
	if res := h.tree.Apply(&txn.Header, txn.Record); !res.SessionMoved() {
		t.Errorf("a multi of a moved session: %+v, and SessionMoved says no", res.Multi)
	}
	h.tree.Publish()
	if h.tree.Digest() != before {
		t.Error("writes of a closed session changed the tree")
	}
	// The same requests of an open session go through.
	h.create(2, "/p/e", wire.ModeEphemeral)
	h.ok(2, wire.OpSetData, &wire.SetDataRequest{Path: "/p", Version: -1})
}
