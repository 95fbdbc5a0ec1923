package ztree

import (
	"sort"
	"strings"

	"zkd/wire"
)

// View is an immutable version of the tree: everything applied up to its
// Zxid and nothing after. Any number of goroutines may read one View, and
// the applier never waits for them.
type View struct {
	state
	opts  Options
	seq   uint64     // counts the tree's publishes; see Readers
	cache *cellCache // the tree's, when it keeps cells
}

// Zxid is the zxid of the last txn this version contains.
func (v *View) Zxid() int64 { return v.zxid }

// Digest is the tree digest at Zxid, as ZooKeeper computes it.
func (v *View) Digest() uint64 { return v.digest }

// NodeCount is the number of znodes, the root and /zookeeper nodes included.
func (v *View) NodeCount() int { return v.count }

// ApproximateDataSize is the total length of every path and data, as
// ZooKeeper's mntr reports it.
func (v *View) ApproximateDataSize() int64 { return v.dataSize }

// Node is a znode as a reader sees it. Data shares the tree's memory and
// must not be changed.
type Node struct {
	Path string
	Data string
	Stat wire.Stat
	ACL  []wire.ACL
	// Persisted is the Stat as a snapshot stores it: the raw
	// ephemeralOwner and the cversion that counts creates only.
	Persisted wire.StatPersisted
	ACLIndex  uint32 // the ACL's index in ACLTable
}

func (v *View) node(it item) Node {
	m := it.meta()
	d := it.data()
	return Node{Path: it.path(), Data: d, Stat: m.stat(len(d), v.extended), ACL: v.acls[m.ACL],
		Persisted: m.persisted(), ACLIndex: m.ACL}
}

// Get returns the znode at path. An invalid path is simply not found, as
// ZooKeeper answers reads of one with NONODE.
func (v *View) Get(path string) (Node, bool) {
	it, ok := v.lookup(path)
	if !ok {
		return Node{}, false
	}
	return v.node(it), true
}

// Stat returns the Stat of the znode at path.
func (v *View) Stat(path string) (wire.Stat, bool) {
	it, ok := v.lookup(path)
	if !ok {
		return wire.Stat{}, false
	}
	m := it.meta()
	return m.stat(len(it.data()), v.extended), true
}

// clientPath is the path a client's read looks up. ZooKeeper's tree
// files its root under "" as well as "/", and its reads take the path as
// it comes, so a read of "" gets the root. (Its watches stay on "", which
// no change fires, as in ZooKeeper.)
func clientPath(path string) string {
	if path == "" {
		return rootPath
	}
	return path
}

// GetData is getData: NONODE, then NOAUTH without READ.
func (v *View) GetData(path string, ids []wire.Id) (string, wire.Stat, error) {
	it, ok := v.lookup(clientPath(path))
	if !ok {
		return "", wire.Stat{}, wire.ErrNoNode
	}
	m := it.meta()
	if !v.opts.permits(v.acls[m.ACL], wire.PermRead, ids) {
		return "", wire.Stat{}, wire.ErrNoAuth
	}
	d := it.data()
	return d, m.stat(len(d), v.extended), nil
}

// Exists is exists: it needs no permission.
func (v *View) Exists(path string) (wire.Stat, error) {
	st, ok := v.Stat(clientPath(path))
	if !ok {
		return st, wire.ErrNoNode
	}
	return st, nil
}

// AppendChildren is getChildren and getChildren2: it appends the names of
// path's children to dst, sorted, and returns path's Stat. NONODE, then
// NOAUTH without READ. The names share the tree's memory.
func (v *View) AppendChildren(dst []string, path string, ids []wire.Id) ([]string, wire.Stat, error) {
	path = clientPath(path)
	it, ok := v.lookup(path)
	if !ok {
		return dst, wire.Stat{}, wire.ErrNoNode
	}
	m := it.meta()
	if !v.opts.permits(v.acls[m.ACL], wire.PermRead, ids) {
		return dst, wire.Stat{}, wire.ErrNoAuth
	}
	n := len(path) + 1 // a child's name follows its parent's path and a slash
	if path == rootPath {
		n = 1
	}
	v.eachChild(path, func(c item) bool {
		dst = append(dst, c.path()[n:])
		return true
	})
	return dst, m.stat(len(it.data()), v.extended), nil
}

// eachChild calls fn for every child of path in name order until fn
// returns false.
func (v *View) eachChild(path string, fn func(item) bool) {
	eachChild(&v.shards, v.seq, path, fn)
}

// eachChild calls fn for every child of path in shards, as the View with
// sequence number seq has them, until fn returns false.
func eachChild(s *shards, seq uint64, path string, fn func(item) bool) {
	pivot := childrenKey(path)
	parent := pivot.path()
	n := len(parent)
	s[pivot.shard()].Ascend(pivot, func(c item) bool {
		if c.ph != pivot.ph {
			return false
		}
		// A child is parent + "/" + a name without a slash. The root is
		// filed under parent "" too, and a parent with the same hash
		// may have children here.
		p := c.path()
		if len(p) <= n+1 || p[n] != '/' || p[:n] != parent || strings.IndexByte(p[n+1:], '/') >= 0 {
			return true
		}
		return fn(c.as(seq))
	})
}

// ACL is getACL: NONODE; NOAUTH without READ or ADMIN; with READ but not
// ADMIN the digest hashes are redacted.
func (v *View) ACL(path string, ids []wire.Id) ([]wire.ACL, wire.Stat, error) {
	it, ok := v.lookup(clientPath(path))
	if !ok {
		return nil, wire.Stat{}, wire.ErrNoNode
	}
	m := it.meta()
	acl := v.acls[m.ACL]
	if !v.opts.permits(acl, wire.PermRead|wire.PermAdmin, ids) {
		return nil, wire.Stat{}, wire.ErrNoAuth
	}
	if !v.opts.permits(acl, wire.PermAdmin, ids) {
		acl = RedactACL(acl)
	}
	return acl, m.stat(len(it.data()), v.extended), nil
}

// AllChildrenNumber is getAllChildrenNumber: the number of descendants of
// path (for the root: every znode but the root). NONODE, then NOAUTH
// without READ. ZooKeeper counts the paths that start with path + "/":
// for "" that is every znode, the root included.
func (v *View) AllChildrenNumber(path string, ids []wire.Id) (int, error) {
	it, ok := v.lookup(clientPath(path))
	if !ok {
		return 0, wire.ErrNoNode
	}
	m := it.meta()
	if !v.opts.permits(v.acls[m.ACL], wire.PermRead, ids) {
		return 0, wire.ErrNoAuth
	}
	switch path {
	case "":
		return v.count, nil
	case rootPath:
		return v.count - 1, nil
	}
	return v.descendants(path), nil
}

func (v *View) descendants(path string) int {
	n := 0
	v.eachChild(path, func(c item) bool {
		n++
		m := c.meta()
		if m.NumChildren > 0 {
			n += v.descendants(c.path())
		}
		return true
	})
	return n
}

// AppendEphemerals is getEphemerals: the session's ephemeral paths that
// start with prefix (all of them for "" or "/"), sorted.
func (v *View) AppendEphemerals(dst []string, session int64, prefix string) []string {
	if strings.TrimSpace(prefix) == "/" || strings.TrimSpace(prefix) == "" {
		prefix = ""
	}
	v.ephemerals.Ascend(owned{session: session, path: prefix}, func(o owned) bool {
		if o.session != session || !strings.HasPrefix(o.path, prefix) {
			return false
		}
		dst = append(dst, o.path)
		return true
	})
	return dst
}

// Walk calls fn for every znode in depth-first pre-order (a parent before
// its children, children by name), the order of ZooKeeper's snapshots,
// until fn returns false. Walking a View never blocks the applier.
func (v *View) Walk(fn func(Node) bool) {
	root, _ := v.lookup(rootPath)
	v.walk(root, fn)
}

func (v *View) walk(it item, fn func(Node) bool) bool {
	n := v.node(it)
	if !fn(n) {
		return false
	}
	if n.Stat.NumChildren == 0 {
		return true
	}
	ok := true
	v.eachChild(it.path(), func(c item) bool {
		ok = v.walk(c, fn)
		return ok
	})
	return ok
}

// ACLTable returns the ACL lists by index, as a snapshot stores them; the
// result must not be changed.
func (v *View) ACLTable() [][]wire.ACL { return v.acls }

// MultiRead is multiRead: each getData or getChildren op answered on its
// own, a failing op giving an error result without affecting the others.
// Watches the ops ask for are the caller's to register.
func (v *View) MultiRead(ops []wire.MultiOp, ids []wire.Id) []wire.OpResult {
	out := make([]wire.OpResult, len(ops))
	for i := range ops {
		op := &ops[i]
		switch op.Type {
		case wire.OpGetData:
			data, st, err := v.GetData(op.Path, ids)
			if err != nil {
				out[i] = wire.OpResult{Type: wire.OpError, Err: err.(wire.ErrCode)}
				continue
			}
			var b []byte // null stays null
			if !isNull(data) {
				b = []byte(data)
			}
			out[i] = wire.OpResult{Type: wire.OpGetData, Data: b, Stat: st}
		case wire.OpGetChildren:
			kids, _, err := v.AppendChildren([]string{}, op.Path, ids)
			if err != nil {
				out[i] = wire.OpResult{Type: wire.OpError, Err: err.(wire.ErrCode)}
				continue
			}
			out[i] = wire.OpResult{Type: wire.OpGetChildren, Children: kids}
		default:
			out[i] = wire.OpResult{Type: wire.OpError, Err: wire.ErrBadArguments}
		}
	}
	return out
}

// Candidates lists, in path order, the znodes the container and TTL
// reaper should delete at time now (ms since the epoch), as ZooKeeper's
// ContainerManager picks them: an empty container that once had children
// (cversion > 0), or that never had any and is older than
// maxNeverUsedMs when that is not 0; a childless TTL node not modified for
// longer than its TTL. The server turns each into a deleteContainer txn,
// which Prep checks again.
func (v *View) Candidates(now, maxNeverUsedMs int64) []string {
	var out []string
	v.containers.Scan(func(p string) bool {
		it, ok := v.lookup(p)
		if !ok {
			return true
		}
		m := it.meta()
		if m.NumChildren == 0 && (m.Cversion > 0 || maxNeverUsedMs != 0 && now-m.Mtime > maxNeverUsedMs) {
			out = append(out, p)
		}
		return true
	})
	v.ttls.Scan(func(p string) bool {
		it, ok := v.lookup(p)
		if !ok {
			return true
		}
		m := it.meta()
		if ttl := m.Owner & ttlValueMask; m.NumChildren == 0 && ttl != 0 && now-m.Mtime > ttl {
			out = append(out, p)
		}
		return true
	})
	sort.Strings(out)
	return out
}
