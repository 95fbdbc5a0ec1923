package wal_test

import (
	"encoding/binary"

	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zkd/wal"
	"zkd/wire"
	"zkd/ztree"
)

// quiet is a logger for stores whose notices a test does not read.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// writer drives a Store and its tree the way the engine does: prep a
// batch of requests, append their txns, apply each only once it is
// durable, publish.
type writer struct {
	t     testing.TB
	s     *wal.Store
	tree  *ztree.Tree
	zxid  int64
	r     *rand.Rand
	open  []int64     // sessions created and not closed
	acked int64       // the last zxid whose Append completed without error
	all   []ztree.Txn // every txn prepped, in zxid order
}

func newWriter(t testing.TB, s *wal.Store, seed int64) *writer {
	tree := treeOf(s)
	return &writer{t: t, s: s, tree: tree, zxid: tree.Zxid(), r: rand.New(rand.NewSource(seed))}
}

// request makes a random write: sessions come and go, znodes (some
// ephemeral, some sequential, some with big data) are created, changed and
// deleted, and the odd multi and error txn is thrown in.
func (w *writer) request() *ztree.Request {
	w.zxid++
	req := &ztree.Request{Zxid: w.zxid, Time: 1_700_000_000_000 + w.zxid, Cxid: int32(w.zxid)}
	r := w.r
	if len(w.open) == 0 || r.Intn(40) == 0 {
		id := int64(0x100000000 + w.zxid)
		req.Session, req.Op, req.Body = id, wire.OpCreateSession, &wire.CreateSessionTxn{TimeOut: int32(20000 + r.Intn(20000))}
		w.open = append(w.open, id)
		return req
	}
	req.Session = w.open[r.Intn(len(w.open))]
	path := fmt.Sprintf("/n%d", r.Intn(12))
	if r.Intn(2) == 0 {
		path += fmt.Sprintf("/c%d", r.Intn(6))
	}
	data := []byte(strings.Repeat(string(rune('a'+r.Intn(26))), r.Intn(50)))
	if len(data) == 0 && w.zxid%2 == 0 {
		data = nil // null data, which ZooKeeper keeps apart from empty
	}
	if r.Intn(50) == 0 {
		data = make([]byte, 20000+r.Intn(50000))
		r.Read(data)
	}
	switch x := r.Intn(100); {
	case x < 40:
		mode := []wire.CreateMode{wire.ModePersistent, wire.ModeEphemeral, wire.ModePersistentSequential, wire.ModeContainer}[r.Intn(4)]
		req.Op, req.Body = wire.OpCreate, &wire.CreateRequest{Path: path, Data: data, ACL: ztree.OpenACL, Flags: mode}
	case x < 65:
		req.Op, req.Body = wire.OpSetData, &wire.SetDataRequest{Path: path, Data: data, Version: -1}
	case x < 85:
		req.Op, req.Body = wire.OpDelete, &wire.DeleteRequest{Path: path, Version: -1}
	case x < 92:
		req.Op, req.Body = wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: path + "m", Data: data, ACL: ztree.OpenACL},
			{Type: wire.OpSetData, Path: path, Data: data, Version: -1},
		}}
	case x < 95:
		acl := []wire.ACL{{Perms: wire.PermRead | wire.PermWrite, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
		req.Op, req.Body = wire.OpSetACL, &wire.SetACLRequest{Path: path, ACL: acl, Version: -1}
	default:
		i := r.Intn(len(w.open))
		req.Session = w.open[i]
		w.open = append(w.open[:i], w.open[i+1:]...)
		req.Op = wire.OpCloseSession
	}
	return req
}

// batch preps n requests, appends them, waits until they are durable and
// applies them. It returns the Append error, if any.
func (w *writer) batch(n int) error {
	reqs := make([]*ztree.Request, n)
	for i := range reqs {
		reqs[i] = w.request()
	}
	return w.batchOf(reqs)
}

// batchOf is batch with the requests given; each takes the next zxid.
func (w *writer) batchOf(reqs []*ztree.Request) error {
	txns := make([]ztree.Txn, len(reqs))
	for i, req := range reqs {
		if req.Zxid == 0 {
			w.zxid++
			req.Zxid, req.Time = w.zxid, 1_700_000_000_000+w.zxid
		}
		// A request that fails still gives a txn (an error txn).
		txns[i], _ = w.tree.Prep(req)
	}
	n := len(txns)
	w.all = append(w.all, txns...)
	done := make(chan error, n)
	for i := range txns {
		if err := w.s.Append(logged(&txns[i]), func(err error) { done <- err }); err != nil {
			return err
		}
	}
	for i := range txns {
		if err := <-done; err != nil {
			return err
		}
		w.tree.Apply(&txns[i].Header, txns[i].Record)
		w.acked = txns[i].Header.Zxid
	}
	w.tree.Publish()
	return nil
}

// logged is the log entry of a prepped txn.
func logged(t *ztree.Txn) *wal.Txn {
	lt := &wal.Txn{Header: t.Header, Record: t.Record}
	if t.HasDigest {
		d := t.Digest
		lt.Digest = &d
	}
	return lt
}

// dump lists every znode with its Stat, data and ACL, and every session.
func dump(v *ztree.View) string {
	var b strings.Builder
	v.Walk(func(n ztree.Node) bool {
		fmt.Fprintf(&b, "%s %x %+v %v %+v\n", n.Path, n.Data, n.Stat, n.ACL, n.Persisted)
		return true
	})
	v.Sessions(func(s ztree.Session) bool {
		fmt.Fprintf(&b, "session %x %d\n", s.ID, s.Timeout)
		return true
	})
	fmt.Fprintf(&b, "zxid %x digest %x\n", v.Zxid(), v.Digest())
	return b.String()
}

// replayed is the tree after the first n txns of all, applied to a fresh
// tree: what a recovery that ends at txn n must give.
func replayed(all []ztree.Txn, base *ztree.Tree, n int) *ztree.Tree {
	t := base
	for i := 0; i < n; i++ {
		t.Apply(&all[i].Header, all[i].Record)
	}
	t.Publish()
	return t
}

var fingerprintSeed = maphash.MakeSeed()

// fingerprint hashes what dump prints, without fmt: the crash test
// compares thousands of trees.
func fingerprint(v *ztree.View) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	var b []byte
	v.Walk(func(n ztree.Node) bool {
		p := n.Persisted
		b = append(b[:0], n.Path...)
		b = append(b, 0)
		b = append(b, n.Data...)
		for _, x := range []int64{p.Czxid, p.Mzxid, p.Pzxid, p.Ctime, p.Mtime, int64(p.Version), int64(p.Cversion),
			int64(p.Aversion), p.EphemeralOwner, int64(n.Stat.NumChildren)} {
			b = binary.AppendVarint(b, x)
		}
		for _, a := range n.ACL {
			b = a.Append(b)
		}
		h.Write(b)
		return true
	})
	v.Sessions(func(s ztree.Session) bool {
		b = binary.AppendVarint(binary.AppendVarint(b[:0], s.ID), int64(s.Timeout))
		h.Write(b)
		return true
	})
	b = binary.AppendVarint(binary.AppendVarint(b[:0], v.Zxid()), int64(v.Digest()))
	h.Write(b)
	return h.Sum64()
}

// owner is what the engine is to a Store in these tests: it holds the
// tree Open returned and writes the snapshots the log asks for, from that
// tree, in the background and one at a time.
type owner struct {
	log  *slog.Logger
	s    *wal.Store
	tree *ztree.Tree
	busy atomic.Bool
}

// owners maps each Store a test opened with openStore to its owner.
var owners sync.Map

// openStore opens a Store as the engine does: the snapshot points the log
// reaches are honoured, and a recovery that replayed txns is followed by
// a snapshot.
func openStore(opts wal.Options) (*wal.Store, error) {
	o := &owner{log: opts.Logger}
	if o.log == nil {
		o.log = quiet
	}
	opts.OnSnapshotDue = o.snapshot
	s, tree, err := wal.Open(opts)
	if err != nil {
		return nil, err
	}
	o.s, o.tree = s, tree
	owners.Store(s, o)
	if s.Stopped() == nil && s.Recovery().Replayed > 0 {
		o.snapshot()
	}
	return s, nil
}

// treeOf is the tree Open returned with s.
func treeOf(s *wal.Store) *ztree.Tree {
	o, _ := owners.Load(s)
	return o.(*owner).tree
}

// snapshot starts writing a snapshot unless one is being written.
func (o *owner) snapshot() {
	if !o.busy.CompareAndSwap(false, true) {
		o.log.Warn("too busy to snapshot, skipping: the previous snapshot is still being written")
		return
	}
	go func() {
		defer o.busy.Store(false)
		// A failure is the test's fault injection at work; the log
		// still holds every txn, and the test checks what recovers.
		o.s.Snapshot(o.tree.Published())
	}()
}

// waitSnapshots waits, up to ten seconds, until no background snapshot is
// being written for s. A roll point reached while one is written skips its
// own snapshot, so a test that counts snapshots waits after each batch
// rather than depend on how fast a loaded machine writes them.
func waitSnapshots(s *wal.Store) {
	o, _ := owners.Load(s)
	for end := time.Now().Add(10 * time.Second); o.(*owner).busy.Load() && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
}
