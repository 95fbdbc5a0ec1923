package ztree_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"zkd/wire"
	"zkd/ztree"
)

// spreadSetDataBatches is setDataBatches over 4,096 znodes: each batch's
// setData txns go to znodes far apart, in different shards and leaves.
func spreadSetDataBatches(t *testing.T, h *harness) func(n int) {
	const znodes = 4096
	paths := make([]string, znodes)
	for i := range paths {
		paths[i] = fmt.Sprintf("/n%05d", i)
		h.create(1, paths[i], wire.ModePersistent)
	}
	data := make([]byte, 1024)
	body := &wire.SetDataRequest{Data: data, Version: -1}
	req := &ztree.Request{Session: 1, Time: 1, Op: wire.OpSetData, Body: body, SetDataTxn: new(wire.SetDataTxn)}
	next := 0
	return batchesOf(t, h, req, func() {
		body.Path = paths[next]
		next = (next + 977) % znodes // 977 is prime to 4,096: every znode in turn
		data[0]++
	})
}

// TestSpreadSetDataCopiesNoLeaf: with readers tracked, a setData on a znode
// that changed before leaves the B-tree alone, so a commit whose writes
// fall in many leaves allocates no more than one that touches a single
// znode. Without cells each leaf a commit touches is copied (2 or more
// allocations each).
func TestSpreadSetDataCopiesNoLeaf(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	h.tree.TrackReaders()
	batch := spreadSetDataBatches(t, h)
	for i := 0; i < 70; i++ {
		batch(64) // every znode has changed once: each has its cell
	}
	if a := perSetData(batch); a != 0 {
		t.Errorf("setData over many leaves made %v allocations, want 0", a)
	}
	// And every reader still sees each znode's newest data.
	v := h.tree.Published()
	for i := 0; i < 4096; i += 511 {
		_, st, err := v.GetData(fmt.Sprintf("/n%05d", i), nil)
		if err != nil || st.Version < 1 || st.DataLength != 1024 {
			t.Fatalf("/n%05d: %+v %v", i, st, err)
		}
	}
}

// TestChainsStayBoundedWhileAReaderHolds: a reader that keeps its slot
// (a snapshot being written) keeps every version written meanwhile, but
// only up to a bound: past it the tree stops making versions and the
// heap stays small, and the reader's own version is still whole.
func TestChainsStayBoundedWhileAReaderHolds(t *testing.T) {
	h := newHarness(t, ztree.Options{})
	readers := h.tree.TrackReaders()
	batch := setDataBatches(t, h)
	batch(10)
	slot := readers.NewSlot()
	slot.Enter()
	v := h.tree.Published()
	held, _, _ := v.GetData("/a", nil)
	want := strings.Clone(held)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 1600; i++ {
		batch(64) // 100 MB of 1 KB versions in all
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 48<<20 {
		t.Errorf("the live heap grew by %d MB while a reader held an old version", grew>>20)
	}
	if held != want {
		t.Fatal("the data the reader holds changed")
	}
	if got, _, _ := v.GetData("/a", nil); got != want {
		t.Fatal("the reader's version reads differently now")
	}
	slot.Leave()
	slot.Close()
	if got, st, _ := h.tree.Published().GetData("/a", nil); st.Version != 10+1600*64 || len(got) != 1024 {
		t.Fatalf("newest /a: version %d, %d bytes", st.Version, len(got))
	}
}

// TestKeptDigestsMatchRecomputedOnes: the node digest a cell keeps for the
// next write's tree digest is the one of the record the txn made, also
// after multis that change a znode twice. A tree with cells, applying what
// its Prep made, must reach the digests of a tree without them that hashes
// every change itself.
func TestKeptDigestsMatchRecomputedOnes(t *testing.T) {
	cells, plain := newHarness(t, ztree.Options{}), newHarness(t, ztree.Options{})
	cells.tree.TrackReaders()
	set := func(path, data string) wire.MultiOp {
		return wire.MultiOp{Type: wire.OpSetData, Path: path, Data: []byte(data), Version: -1}
	}
	steps := []struct {
		op   wire.OpCode
		body wire.Record
	}{
		{wire.OpCreate, &wire.CreateRequest{Path: "/a", ACL: ztree.OpenACL}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("1"), Version: -1}},
		{wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{set("/a", "x"), set("/a", "yy")}}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("2"), Version: -1}},
		{wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{set("/a", "zzz"),
			{Type: wire.OpCreate, Path: "/a/b", ACL: ztree.OpenACL}}}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("3"), Version: -1}},
		{wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{set("/a", "w")}}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("4"), Version: -1}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/a/b", Data: []byte("5"), Version: -1}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("6"), Version: -1}},
	}
	for i, s := range steps {
		for _, h := range []*harness{cells, plain} {
			h.zxid++
			txn, err := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: h.time, Op: s.op, Body: s.body})
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if h == cells {
				h.tree.ApplyPrepped(&txn)
			} else {
				h.tree.Apply(&txn.Header, txn.Record)
			}
			h.tree.Publish()
			h.tree.Visible(h.tree.Published())
		}
		if c, p := cells.tree.Digest(), plain.tree.Digest(); c != p {
			t.Fatalf("step %d: digest %x with cells, %x recomputed", i, c, p)
		}
	}
}

// TestFollowerDigestsMatchRecomputedOnes: a follower applies txns its own
// Prep never saw, so it hashes each change itself, and a cell keeps the
// new record's digest so that the next change need not hash the old
// record again. Txns a leader's tree prepped, applied on a follower's tree
// with cells and on one without, must give both the leader's digest after
// every txn, whatever mix of setData, creates and deletes under a
// changing znode, setACL and multis changing one znode twice came first.
func TestFollowerDigestsMatchRecomputedOnes(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		leader := newHarness(t, ztree.Options{})
		leader.tree.TrackReaders()
		cells, plain := ztree.New(ztree.Options{}), ztree.New(ztree.Options{})
		cells.TrackReaders()
		rng := rand.New(rand.NewPCG(seed, 7))
		paths := []string{"/a", "/a/b", "/c"}
		data := func() []byte { return []byte(strings.Repeat("d", rng.IntN(300))) }
		set := func(path string) wire.MultiOp {
			return wire.MultiOp{Type: wire.OpSetData, Path: path, Data: data(), Version: -1}
		}
		for i := 0; i < 600; i++ {
			var op wire.OpCode
			var body wire.Record
			path := paths[rng.IntN(len(paths))]
			switch rng.IntN(7) {
			case 0, 1, 2:
				op, body = wire.OpSetData, &wire.SetDataRequest{Path: path, Data: data(), Version: -1}
			case 3:
				op, body = wire.OpCreate, &wire.CreateRequest{Path: path, Data: data(), ACL: ztree.OpenACL}
			case 4:
				op, body = wire.OpDelete, &wire.DeleteRequest{Path: path, Version: -1}
			case 5:
				acl := ztree.OpenACL
				if rng.IntN(2) == 0 {
					acl = []wire.ACL{{Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
				}
				op, body = wire.OpSetACL, &wire.SetACLRequest{Path: path, ACL: acl, Version: -1}
			case 6:
				op, body = wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{set(path), set(path)}}
			}
			leader.zxid++
			txn, err := leader.tree.Prep(&ztree.Request{Session: 1, Zxid: leader.zxid, Time: leader.time, Op: op, Body: body})
			if err != nil {
				continue // refused: no txn
			}
			leader.tree.ApplyPrepped(&txn)
			leader.tree.Publish()
			leader.tree.Visible(leader.tree.Published())
			for _, f := range []*ztree.Tree{cells, plain} {
				f.Apply(&txn.Header, txn.Record)
				f.Publish()
				f.Visible(f.Published())
			}
			if l, c, p := leader.tree.Digest(), cells.Digest(), plain.Digest(); c != l || p != l {
				t.Fatalf("seed %d, txn %d (%v %+v): leader's digest %x, follower's with cells %x, without %x", seed, i, op, body, l, c, p)
			}
		}
	}
}

// TestPendingChangesKeepTheRecordsTheyRead: a prepped txn that changes a
// znode's metadata but not its data (a child's create changes its parent)
// carries the data Prep read from the znode's record, and so does every
// txn prepped after it on that znode until one sets new data. Such a
// record must not be reused while those txns wait: here the parent's
// record, made by a setData, is replaced by a create, its grace ends, and
// a setData of the same size wants a record, while creates prepped
// earlier still read the parent's data. A tree with cells must reach the
// digests of a tree without them.
func TestPendingChangesKeepTheRecordsTheyRead(t *testing.T) {
	cells, plain := newHarness(t, ztree.Options{}), newHarness(t, ztree.Options{})
	cells.tree.TrackReaders()
	x, y := strings.Repeat("x", 100), strings.Repeat("y", 100)
	setReq := func(path, data string) (wire.OpCode, wire.Record) {
		return wire.OpSetData, &wire.SetDataRequest{Path: path, Data: []byte(data), Version: -1}
	}
	createReq := func(path string) (wire.OpCode, wire.Record) {
		return wire.OpCreate, &wire.CreateRequest{Path: path, ACL: ztree.OpenACL}
	}
	for _, h := range []*harness{cells, plain} {
		h.create(1, "/x", wire.ModePersistent)
		h.create(1, "/y", wire.ModePersistent)
		h.create(1, "/z", wire.ModePersistent)
		op, body := setReq("/x", x)
		h.ok(1, op, body) // /x's record is now one a later setData may reuse
	}
	type step struct {
		op   wire.OpCode
		body wire.Record
	}
	var batch []step
	add := func(op wire.OpCode, body wire.Record) { batch = append(batch, step{op, body}) }
	add(createReq("/x/a"))
	for i := 0; i < 20; i++ { // enough replaced records for the pool to scan
		add(setReq("/z", strings.Repeat("z", 3000+i)))
	}
	add(createReq("/x/b"))
	add(setReq("/y", y)) // wants a record of /x's size
	add(createReq("/x/c"))
	for _, h := range []*harness{cells, plain} {
		// Prep everything first, as a pipeline does, then apply the first
		// 21 and publish; the rest wait, prepped.
		var txns []ztree.Txn
		for _, s := range batch {
			h.zxid++
			txn, err := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: h.time, Op: s.op, Body: s.body})
			if err != nil {
				t.Fatal(err)
			}
			txns = append(txns, txn)
		}
		apply := func(txns []ztree.Txn) {
			for i := range txns {
				if h == cells {
					h.tree.ApplyPrepped(&txns[i])
				} else {
					h.tree.Apply(&txns[i].Header, txns[i].Record)
				}
			}
			h.tree.Publish()
			h.tree.Visible(h.tree.Published())
		}
		apply(txns[:21])
		apply(txns[21:23]) // /x/b, and /y's setData takes a free record
		// A create prepped now reads /x as the waiting /x/c left it.
		h.zxid++
		op, body := createReq("/x/d")
		txn, err := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: h.time, Op: op, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		apply(append(txns[23:], txn))
	}
	if c, p := cells.tree.Digest(), plain.tree.Digest(); c != p {
		t.Fatalf("digest %x with cells, %x recomputed", c, p)
	}
	if got, _, _ := cells.tree.Published().GetData("/x", nil); got != x {
		t.Fatalf("/x holds %.20q…", got)
	}
}

// TestWarmChangesNothing warms paths of every kind, on a tree with cells
// and on one without its cell cache, and finds the trees as they were:
// same digest, same znodes, and the later writes to them as they would
// have been.
func TestWarmChangesNothing(t *testing.T) {
	for _, track := range []bool{true, false} {
		h := newHarness(t, ztree.Options{})
		if track {
			h.tree.TrackReaders()
		}
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/a", Data: []byte("x"), ACL: ztree.OpenACL})
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: "/a/b", Data: []byte("y"), ACL: ztree.OpenACL})
		h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/a/b", Data: []byte("z"), Version: -1}) // a cell
		digest := h.tree.Digest()
		paths := []string{"", "a", "/", "/a", "/a/b", "/a/b/c", "/missing", "/a/", "//", "/a/./b"}
		for range 3 {
			paths = append(paths, paths...) // past one stage of Warm
		}
		h.tree.Warm(paths)
		h.tree.Warm(nil)
		if got := h.tree.Digest(); got != digest {
			t.Fatalf("track=%v: digest %x after Warm, %x before", track, got, digest)
		}
		res := h.ok(1, wire.OpSetData, &wire.SetDataRequest{Path: "/a/b", Data: []byte("w"), Version: 1})
		if res.Stat.Version != 2 {
			t.Fatalf("track=%v: setData after Warm left version %d, want 2", track, res.Stat.Version)
		}
		if d, _, err := h.tree.Published().GetData("/a/b", nil); err != nil || d != "w" {
			t.Fatalf("track=%v: /a/b holds %q (%v), want w", track, d, err)
		}
	}
}

// TestAppendWarmPaths lists what each write's lookups touch: the znode a
// setData or delete changes, and the parent a create or delete changes.
func TestAppendWarmPaths(t *testing.T) {
	for _, tc := range []struct {
		rec  wire.Record
		want []string
	}{
		{&wire.SetDataRequest{Path: "/a/b"}, []string{"/a/b"}},
		{&wire.DeleteRequest{Path: "/a/b"}, []string{"/a/b", "/a"}},
		{&wire.DeleteTxn{Path: "/a"}, []string{"/a", "/"}},
		{&wire.CreateRequest{Path: "/a/b/c"}, []string{"/a/b"}},
		{&wire.CreateTTLRequest{Path: "/a"}, []string{"/"}},
		{&wire.CreateTxn{Path: "/a/b"}, []string{"/a"}},
		{&wire.CreateTTLTxn{Path: "/a/b"}, []string{"/a"}},
		{&wire.CreateContainerTxn{Path: "/a/b"}, []string{"/a"}},
		{&wire.SetACLRequest{Path: "/a/b"}, nil},
		{&wire.ErrorTxn{}, nil},
	} {
		if got := ztree.AppendWarmPaths(nil, tc.rec); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%T %+v: %q, want %q", tc.rec, tc.rec, got, tc.want)
		}
	}
}
