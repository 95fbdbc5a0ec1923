package ztree_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"zkd/wire"
	"zkd/ztree"
)

// model is a deliberately plain namespace: a map of paths, children found by
// scanning, the digest recomputed from scratch. The tree must agree with it
// on every result, Stat, watch event and digest over long random runs.
type model struct {
	nodes   map[string]*mnode
	watches map[string]map[int64]ztree.WatchKind // one-shot data and child watches
}

type mnode struct {
	data                string
	czxid, mzxid, pzxid int64
	ctime, mtime        int64
	version, cversion   int32
	aversion            int32
	owner               int64
}

func newModel() *model {
	m := &model{nodes: map[string]*mnode{}, watches: map[string]map[int64]ztree.WatchKind{}}
	for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
		m.nodes[p] = &mnode{}
	}
	m.nodes["/zookeeper/config"].aversion = -1 // ZooKeeper sets its ACL with version -1
	return m
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

func (m *model) children(p string) []string {
	var out []string
	for q := range m.nodes {
		if q != "/" && parentOf(q) == p {
			out = append(out, q[strings.LastIndexByte(q, '/')+1:])
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) stat(p string) wire.Stat {
	n := m.nodes[p]
	kids := int32(len(m.children(p)))
	return wire.Stat{Czxid: n.czxid, Mzxid: n.mzxid, Ctime: n.ctime, Mtime: n.mtime, Version: n.version,
		Cversion: 2*n.cversion - kids, Aversion: n.aversion, EphemeralOwner: n.owner, DataLength: int32(len(n.data)),
		NumChildren: kids, Pzxid: n.pzxid}
}

// digest is ZooKeeper's tree digest, computed from scratch.
func (m *model) digest() uint64 {
	var sum uint64
	for p, n := range m.nodes {
		if strings.HasPrefix(p, "/zookeeper/") {
			continue
		}
		if p == "/" {
			p = ""
		}
		var b [60]byte
		for i, v := range []int64{n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime} {
			binary.BigEndian.PutUint64(b[8*i:], uint64(v))
		}
		binary.BigEndian.PutUint32(b[40:], uint32(n.version))
		binary.BigEndian.PutUint32(b[44:], uint32(n.cversion))
		binary.BigEndian.PutUint32(b[48:], uint32(n.aversion))
		binary.BigEndian.PutUint64(b[52:], uint64(n.owner))
		sum += uint64(crc32.ChecksumIEEE(append(append([]byte(p), n.data...), b[:]...)))
	}
	return sum
}

func (m *model) fire(evs []ztree.Event, p string, kinds ztree.WatchKind, typ wire.EventType, zxid int64) []ztree.Event {
	var hit []int64
	for s, k := range m.watches[p] {
		if k&kinds != 0 {
			hit = append(hit, s)
			if k &^= kinds; k == 0 {
				delete(m.watches[p], s)
			} else {
				m.watches[p][s] = k
			}
		}
	}
	sort.Slice(hit, func(i, j int) bool { return hit[i] < hit[j] })
	for _, s := range hit {
		evs = append(evs, ztree.Event{Session: s, Type: typ, Path: p, Zxid: zxid})
	}
	return evs
}

// op is one random request: a write, or a read that may set a watch.
type op struct {
	kind    string
	session int64
	path    string
	data    string
	version int32
	mode    wire.CreateMode
	watch   bool
}

// write applies a write to the model; it returns the error, the created
// path and the watch events, or leaves the model untouched on error.
func (m *model) write(o op, zxid, time int64) (wire.ErrCode, string, []ztree.Event) {
	switch o.kind {
	case "create":
		parent, ok := m.nodes[parentOf(o.path)]
		if !ok {
			return wire.ErrNoNode, "", nil
		}
		p := o.path
		if o.mode.Sequential() {
			p += fmt.Sprintf("%010d", parent.cversion)
		}
		if _, exists := m.nodes[p]; exists {
			return wire.ErrNodeExists, "", nil
		}
		if parent.owner != 0 {
			return wire.ErrNoChildrenForEphemerals, "", nil
		}
		parent.cversion++
		parent.pzxid = zxid
		n := &mnode{data: o.data, czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time, mtime: time}
		if o.mode.Ephemeral() {
			n.owner = o.session
		}
		m.nodes[p] = n
		evs := m.fire(nil, p, ztree.WatchData, wire.EventNodeCreated, zxid)
		return wire.ErrOK, p, m.fire(evs, parentOf(p), ztree.WatchChild, wire.EventNodeChildrenChanged, zxid)
	case "delete":
		n, ok := m.nodes[o.path]
		if !ok {
			return wire.ErrNoNode, "", nil
		}
		if o.version != -1 && o.version != n.version {
			return wire.ErrBadVersion, "", nil
		}
		if len(m.children(o.path)) > 0 {
			return wire.ErrNotEmpty, "", nil
		}
		return wire.ErrOK, o.path, m.remove(o.path, zxid)
	case "set":
		n, ok := m.nodes[o.path]
		if !ok {
			return wire.ErrNoNode, "", nil
		}
		if o.version != -1 && o.version != n.version {
			return wire.ErrBadVersion, "", nil
		}
		n.data, n.version, n.mzxid, n.mtime = o.data, n.version+1, zxid, time
		return wire.ErrOK, o.path, m.fire(nil, o.path, ztree.WatchData, wire.EventNodeDataChanged, zxid)
	case "close":
		var mine []string
		for p, n := range m.nodes {
			if n.owner == o.session {
				mine = append(mine, p)
			}
		}
		sort.Strings(mine)
		var evs []ztree.Event
		for _, p := range mine {
			evs = append(evs, m.remove(p, zxid)...)
		}
		for _, ws := range m.watches {
			delete(ws, o.session)
		}
		return wire.ErrOK, "", evs
	}
	panic(o.kind)
}

func (m *model) remove(p string, zxid int64) []ztree.Event {
	delete(m.nodes, p)
	parent := m.nodes[parentOf(p)]
	if zxid > parent.pzxid {
		parent.pzxid = zxid
	}
	evs := m.fire(nil, p, ztree.WatchData|ztree.WatchChild, wire.EventNodeDeleted, zxid)
	return m.fire(evs, parentOf(p), ztree.WatchChild, wire.EventNodeChildrenChanged, zxid)
}

func randomOp(r *rand.Rand) op {
	paths := []string{"/a", "/a/b", "/a/b/c", "/d", "/d/e", "/a/s-", "/d/s-"}
	o := op{session: int64(1 + r.Intn(3)), path: paths[r.Intn(len(paths))], version: -1}
	if r.Intn(3) == 0 {
		o.version = int32(r.Intn(3))
	}
	switch x := r.Intn(20); {
	case x < 6:
		o.kind = "create"
		o.mode = []wire.CreateMode{wire.ModePersistent, wire.ModeEphemeral, wire.ModePersistentSequential, wire.ModeEphemeralSequential}[r.Intn(4)]
		o.data = strings.Repeat("x", r.Intn(5))
	case x < 9:
		o.kind = "delete"
	case x < 12:
		o.kind = "set"
		o.data = fmt.Sprint(r.Intn(100))
	case x < 13:
		o.kind = "close"
	case x < 15:
		o.kind = "getData"
		o.watch = r.Intn(2) == 0
	case x < 17:
		o.kind = "exists"
		o.watch = r.Intn(2) == 0
	default:
		o.kind = "children"
		o.watch = r.Intn(2) == 0
	}
	return o
}

func (o op) request(zxid, time int64) *ztree.Request {
	req := &ztree.Request{Session: o.session, Zxid: zxid, Time: time, Auth: nil}
	switch o.kind {
	case "create":
		req.Op, req.Body = wire.OpCreate, &wire.CreateRequest{Path: o.path, Data: []byte(o.data), ACL: ztree.OpenACL, Flags: o.mode}
	case "delete":
		req.Op, req.Body = wire.OpDelete, &wire.DeleteRequest{Path: o.path, Version: o.version}
	case "set":
		req.Op, req.Body = wire.OpSetData, &wire.SetDataRequest{Path: o.path, Data: []byte(o.data), Version: o.version}
	case "close":
		req.Op = wire.OpCloseSession
	}
	return req
}

// TestTreeMatchesModel runs random writes and reads against the tree and
// the model. Writes go through the pipeline in batches of up to eight: all
// of a batch is prepped before any of it is applied, so Prep must see the
// effects of txns it prepped but that are not in the tree yet. As in the
// engine, applying lags prepping: after each batch is prepped, a random
// number of the oldest prepped txns are applied and published (their
// watches fired) at once, and the rest wait, still prepped, while the next
// batch is prepped behind them. A read first applies everything.
func TestTreeMatchesModel(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewSource(seed))
		tree := ztree.New(ztree.Options{})
		m := newModel()
		// Half the seeds run with record reuse and cells on, and keep
		// some published versions in read slots over later batches:
		// each must still read exactly as the model did then.
		var readers *ztree.Readers
		if seed%4 >= 2 {
			readers = tree.TrackReaders()
		}
		var held []heldView
		zxid := int64(0)
		var batch, prepped []op
		var txns []ztree.Txn
		flush := func(where string, all bool) {
			for _, o := range batch {
				z := zxid + int64(len(prepped)) + 1
				txn, _ := tree.Prep(o.request(z, 999+z))
				txns = append(txns, txn)
				prepped = append(prepped, o)
			}
			batch = batch[:0]
			n := len(prepped)
			if !all {
				n = r.Intn(n + 1)
			}
			var want []ztree.Event
			for i, o := range prepped[:n] {
				zxid++
				// Odd seeds apply as the engine does, trusting Prep's
				// digest; the model's digest below still checks it.
				var res ztree.Result
				if seed%2 == 1 {
					res = tree.ApplyPrepped(&txns[i])
				} else {
					res = tree.Apply(&txns[i].Header, txns[i].Record)
				}
				wantErr, wantPath, evs := m.write(o, zxid, 1000+zxid-1)
				want = append(want, evs...)
				if res.Err != wantErr || wantErr == wire.ErrOK && o.kind == "create" && res.Path != wantPath {
					t.Fatalf("%s: batch op %d %+v: got %v %q, want %v %q", where, i, o, res.Err, res.Path, wantErr, wantPath)
				}
				if wantErr == wire.ErrOK && o.kind == "set" && (res.Path != o.path || res.Stat != m.stat(o.path)) {
					t.Fatalf("%s: batch op %d %+v: setData result %q %+v, want %+v", where, i, o, res.Path, res.Stat, m.stat(o.path))
				}
				if txns[i].HasDigest && uint64(txns[i].Digest.TreeDigest) != tree.Digest() {
					t.Fatalf("%s: batch op %d %+v: prep digest %x, tree after apply %x", where, i, o, txns[i].Digest.TreeDigest, tree.Digest())
				}
			}
			if got := tree.Publish(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: events\n got %v\nwant %v", where, got, want)
			}
			if d := m.digest(); d != tree.Digest() {
				t.Fatalf("%s: digest %x, model %x", where, tree.Digest(), d)
			}
			if readers != nil {
				held = holdViews(t, r, where, readers, tree, m, held)
			}
			prepped = append(prepped[:0], prepped[n:]...)
			txns = append(txns[:0], txns[n:]...)
		}
		for i := 0; i < 400; i++ {
			o := randomOp(r)
			where := fmt.Sprintf("seed %d op %d", seed, i)
			switch o.kind {
			case "getData", "exists", "children":
				flush(where, true)
				checkRead(t, where, tree, m, o)
				continue
			}
			batch = append(batch, o)
			if len(batch) == 1+r.Intn(8) {
				flush(where, false)
			}
		}
		flush("end", true)
		compareAll(t, fmt.Sprintf("seed %d", seed), tree.Published(), m)
		for _, h := range held {
			h.slot.Leave()
			h.slot.Close()
		}
	}
}

// heldView is a published version a reader keeps in its slot, with a copy
// of the model as it was then.
type heldView struct {
	slot  *ztree.ReadSlot
	view  *ztree.View
	model *model
	where string
}

// holdViews checks every held version against its model, lets some go,
// and holds the newest one now and then, as a slow reader would.
func holdViews(t *testing.T, r *rand.Rand, where string, readers *ztree.Readers, tree *ztree.Tree, m *model, held []heldView) []heldView {
	t.Helper()
	tree.Visible(tree.Published())
	kept := held[:0]
	for _, h := range held {
		compareAll(t, where+", version of "+h.where, h.view, h.model)
		if r.Intn(4) == 0 {
			h.slot.Leave()
			h.slot.Close()
			continue
		}
		kept = append(kept, h)
	}
	if len(kept) < 4 && r.Intn(3) == 0 {
		slot := readers.NewSlot()
		slot.Enter()
		c := &model{nodes: make(map[string]*mnode, len(m.nodes))}
		for p, n := range m.nodes {
			nn := *n
			c.nodes[p] = &nn
		}
		kept = append(kept, heldView{slot: slot, view: tree.Published(), model: c, where: where})
	}
	return kept
}

func checkRead(t *testing.T, where string, tree *ztree.Tree, m *model, o op) {
	t.Helper()
	v := tree.Published()
	_, exists := m.nodes[o.path]
	var kind ztree.WatchKind
	switch o.kind {
	case "getData":
		data, st, err := v.GetData(o.path, nil)
		if exists != (err == nil) || exists && (data != m.nodes[o.path].data || st != m.stat(o.path)) {
			t.Fatalf("%s: got %q %+v %v", where, data, st, err)
		}
		kind = ztree.WatchData
	case "exists":
		st, err := v.Exists(o.path)
		if exists != (err == nil) || exists && st != m.stat(o.path) {
			t.Fatalf("%s: got %+v %v", where, st, err)
		}
		kind = ztree.WatchData
		exists = true // exists leaves a watch on a missing node too
	case "children":
		kids, _, err := v.AppendChildren(nil, o.path, nil)
		if exists != (err == nil) || exists && fmt.Sprint(kids) != fmt.Sprint(m.children(o.path)) {
			t.Fatalf("%s: got %v %v, want %v", where, kids, err, m.children(o.path))
		}
		kind = ztree.WatchChild
	}
	if o.watch && exists {
		if _, fired := tree.Watch(v, o.session, o.path, kind); fired {
			t.Fatalf("%s: watch fired at once on the newest version", where)
		}
		if m.watches[o.path] == nil {
			m.watches[o.path] = map[int64]ztree.WatchKind{}
		}
		m.watches[o.path][o.session] |= kind
	}
}

func compareAll(t *testing.T, where string, v *ztree.View, m *model) {
	t.Helper()
	seen, size := 0, int64(0)
	v.Walk(func(n ztree.Node) bool {
		seen++
		size += int64(len(n.Path) + len(n.Data))
		mn, ok := m.nodes[n.Path]
		p := n.Persisted
		if !ok || n.Data != mn.data || n.Stat != m.stat(n.Path) || p.Cversion != mn.cversion || p.EphemeralOwner != mn.owner || p.Pzxid != mn.pzxid {
			t.Fatalf("%s: %s: tree %q %+v, model %v", where, n.Path, n.Data, n.Stat, mn)
		}
		return true
	})
	if seen != len(m.nodes) || v.NodeCount() != seen {
		t.Fatalf("%s: tree walks %d znodes (counts %d), model has %d", where, seen, v.NodeCount(), len(m.nodes))
	}
	// mntr's approximate_data_size is kept up as txns apply; it must be
	// what the znodes add up to.
	if v.ApproximateDataSize() != size {
		t.Fatalf("%s: approximate data size %d, the znodes add up to %d", where, v.ApproximateDataSize(), size)
	}
}
