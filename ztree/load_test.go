package ztree_test

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"zkd/wire"
	"zkd/ztree"
)

// dump lists every znode of v with its Stat, data, ACL and persisted Stat,
// and every session: two trees with the same dump look the same to every
// client and snapshot.
func dump(v *ztree.View) string {
	var s string
	v.Walk(func(n ztree.Node) bool {
		s += fmt.Sprintf("%s %q %+v %v %+v\n", n.Path, n.Data, n.Stat, n.ACL, n.Persisted)
		return true
	})
	v.Sessions(func(x ztree.Session) bool {
		s += fmt.Sprintf("session %x %d\n", x.ID, x.Timeout)
		return true
	})
	return s
}

// reload rebuilds v's tree through a Loader, in Walk order.
func reload(t *testing.T, v *ztree.View, opts ztree.Options) *ztree.Tree {
	t.Helper()
	l := ztree.NewLoader(opts)
	acls := v.ACLTable()
	v.Walk(func(n ztree.Node) bool {
		if err := l.AddNode(n.Path, []byte(n.Data), acls[n.ACLIndex], n.Persisted); err != nil {
			t.Fatal(err)
		}
		return true
	})
	v.Sessions(func(s ztree.Session) bool { l.AddSession(s.ID, s.Timeout); return true })
	tree, err := l.Finish(v.Zxid())
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestLoaderRebuildsTheTree(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewSource(seed))
		h := newHarness(t, ztree.Options{})
		for s := int64(1); s <= 3; s++ {
			h.ok(s, wire.OpCreateSession, &wire.CreateSessionTxn{TimeOut: int32(4000 * s)})
		}
		h.create(1, "/q", wire.ModePersistent)
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/zookeeper/quota/q", ACL: ztree.OpenACL})
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/zookeeper/quota/q/zookeeper_limits", Data: []byte("count=10,bytes=-1"), ACL: ztree.OpenACL})
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/zookeeper/quota/q/zookeeper_stats", Data: []byte("count=1,bytes=0"), ACL: ztree.OpenACL})
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/acl", ACL: []wire.ACL{{Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}}})
		h.ok(2, wire.OpCreate, &wire.CreateRequest{Path: "/box", Flags: wire.ModeContainer, ACL: ztree.OpenACL})
		for i := 0; i < 300; i++ {
			o := randomOp(r)
			if o.kind == "close" || o.kind == "create" || o.kind == "delete" || o.kind == "set" {
				if r.Intn(4) == 0 {
					o.path = "/q" + o.path
				}
				h.do(o.session, o.request(0, 0).Op, o.request(0, 0).Body)
			}
		}
		v := h.tree.Published()
		got := reload(t, v, ztree.Options{})
		gv := got.Published()
		if dump(gv) != dump(v) {
			t.Fatalf("seed %d: loaded tree differs\n got %s\nwant %s", seed, dump(gv), dump(v))
		}
		if gv.Digest() != v.Digest() || gv.Zxid() != v.Zxid() || gv.NodeCount() != v.NodeCount() || gv.ApproximateDataSize() != v.ApproximateDataSize() {
			t.Fatalf("seed %d: digest %x zxid %d count %d size %d; want %x %d %d %d", seed,
				gv.Digest(), gv.Zxid(), gv.NodeCount(), gv.ApproximateDataSize(), v.Digest(), v.Zxid(), v.NodeCount(), v.ApproximateDataSize())
		}
		// The loaded tree keeps working: ephemerals, containers and the
		// quota are indexed as in the original.
		for s := int64(1); s <= 3; s++ {
			if a, b := fmt.Sprint(gv.AppendEphemerals(nil, s, "/")), fmt.Sprint(v.AppendEphemerals(nil, s, "/")); a != b {
				t.Fatalf("seed %d: ephemerals of %d: %s, want %s", seed, s, a, b)
			}
		}
		if a, b := fmt.Sprint(gv.Candidates(1<<62, 0)), fmt.Sprint(v.Candidates(1<<62, 0)); a != b {
			t.Fatalf("seed %d: reaper candidates %s, want %s", seed, a, b)
		}
		// The same writes on both give the same trees.
		h2 := &harness{t: t, tree: got, zxid: h.zxid, time: h.time, auth: h.auth}
		for _, hh := range []*harness{h, h2} {
			hh.do(1, wire.OpCloseSession, nil)
			hh.do(2, wire.OpCreate, &wire.CreateRequest{Path: "/q/more", ACL: ztree.OpenACL})
		}
		if dump(got.Published()) != dump(h.tree.Published()) || got.Digest() != h.tree.Digest() {
			t.Fatalf("seed %d: trees differ after the same writes", seed)
		}
	}
}

func TestLoaderRefusesWhatIsNotATree(t *testing.T) {
	st := wire.StatPersisted{}
	cases := map[string][]string{
		"orphan":                    {"", "/a/b"},
		"twice":                     {"", "/a", "/a"},
		"twice, apart":              {"", "/a", "/a/b", "/c", "/a"},
		"twice, below":              {"", "/a", "/a/b", "/a/b"},
		"twice, after its children": {"", "/a", "/a/x", "/a/y", "/a"},
		"second root":               {"", "/a", "/"},
		"bad path":                  {"", "/a/"},
	}
	for name, paths := range cases {
		l := ztree.NewLoader(ztree.Options{})
		var err error
		for _, p := range paths {
			if err = l.AddNode(p, nil, ztree.OpenACL, st); err != nil {
				break
			}
		}
		if err == nil { // some faults show only once the walk is done
			_, err = l.Finish(0)
		}
		if !errors.Is(err, ztree.ErrBadSnapshot) {
			t.Errorf("%s: got %v, want ErrBadSnapshot", name, err)
		}
	}
	if _, err := ztree.NewLoader(ztree.Options{}).Finish(0); !errors.Is(err, ztree.ErrBadSnapshot) {
		t.Errorf("no root: got %v", err)
	}
}

// A znode of a fuzzy snapshot that names an ACL the snapshot lacks grants
// nothing until a replayed txn gives it its ACL: a create that finds it
// there, or a setACL. One that goes (a delete, its session's close)
// awaits nothing any more; one that nothing settles stays named.
func TestZnodesAwaitingTheirACL(t *testing.T) {
	read := []wire.ACL{{Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	l := ztree.NewLoader(ztree.Options{})
	st := wire.StatPersisted{Czxid: 2, Mzxid: 2, Pzxid: 2}
	if err := l.AddNode("", nil, ztree.OpenACL, wire.StatPersisted{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/created", "/acl-set", "/deleted", "/ephemeral", "/unsettled"} {
		pst := st
		if p == "/ephemeral" {
			pst.EphemeralOwner = 0x77
		}
		if err := l.AddNodeAwaitingACL(p, []byte("d"), pst); err != nil {
			t.Fatal(err)
		}
	}
	l.AddSession(0x77, 10000)
	tree, err := l.Finish(1)
	if err != nil {
		t.Fatal(err)
	}
	v := tree.Published()
	if _, _, err := v.GetData("/created", nil); err != wire.ErrNoAuth {
		t.Fatalf("a znode awaiting its ACL is read with %v, want NOAUTH", err)
	}
	zxid := int64(1)
	apply := func(typ wire.OpCode, session int64, rec wire.Record) {
		zxid++
		tree.Apply(&wire.TxnHeader{ClientID: session, Zxid: zxid, Time: 1, Type: typ}, rec)
	}
	apply(wire.OpCreate, 1, &wire.CreateTxn{Path: "/created", Data: []byte("d"), ACL: read, ParentCVersion: 1})
	apply(wire.OpSetACL, 1, &wire.SetACLTxn{Path: "/acl-set", ACL: read, Version: 1})
	apply(wire.OpDelete, 1, &wire.DeleteTxn{Path: "/deleted"})
	apply(wire.OpCloseSession, 0x77, &wire.CloseSessionTxn{Paths2Delete: []string{"/ephemeral"}})
	tree.Publish()
	if got := fmt.Sprint(tree.ACLsAwaited()); got != "[/unsettled]" {
		t.Fatalf("awaiting: %s, want [/unsettled]", got)
	}
	v = tree.Published()
	for _, p := range []string{"/created", "/acl-set"} {
		acl, stat, err := v.ACL(p, nil)
		if err != nil || fmt.Sprint(acl) != fmt.Sprint(read) {
			t.Fatalf("%s has ACL %v (%v), want %v", p, acl, err, read)
		}
		if p == "/created" && stat.Aversion != 0 {
			t.Fatalf("the create that settled /created moved its aversion to %d", stat.Aversion)
		}
		if _, _, err := v.GetData(p, nil); err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
	}
}
