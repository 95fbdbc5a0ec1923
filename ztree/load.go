package ztree

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tidwall/btree"

	"zkd/wire"
)

// ErrBadSnapshot means the znodes given to a Loader do not form a tree.
var ErrBadSnapshot = errors.New("ztree: snapshot is not a tree")

// Loader rebuilds a tree from a snapshot: the znodes, each with its
// persisted Stat and ACL, parents before their children, and the sessions.
// ZooKeeper writes its snapshots depth first, and the Loader is fastest in
// that order; any parent-first order works. Like Tree, a Loader belongs to
// one goroutine.
type Loader struct {
	t *Tree
	// open is the path from the root to the node added last: the nodes
	// whose child count may still grow. They are put into the tree when
	// the walk leaves them, so a parent is written once, not once per child.
	open []pending
	// err is a znode found twice when it was put into the tree; AddNode
	// and Finish report it.
	err error
	// hints make the inserts of a shard's keys, which mostly come in
	// order, cheap.
	hints [shardCount]btree.PathHint
}

// pending is an open node: its record is made when it is added, with no
// children, and made again only if children came (most znodes are
// leaves), so loading leaves no garbage per znode behind.
type pending struct {
	it       item
	m        meta
	children int32
}

// NewLoader starts an empty tree.
func NewLoader(opts Options) *Loader {
	return &Loader{t: newTree(opts)}
}

// AddNode adds one znode. The root is "/" (ZooKeeper's snapshots spell it
// ""); its parent must have been added already, and the node itself must
// not have been.
func (l *Loader) AddNode(path string, data []byte, acl []wire.ACL, st wire.StatPersisted) error {
	if path == "" {
		path = rootPath
	}
	if l.err != nil {
		return l.err
	}
	t := l.t
	m := meta{
		Czxid: st.Czxid, Mzxid: st.Mzxid, Pzxid: st.Pzxid,
		Ctime: st.Ctime, Mtime: st.Mtime,
		Version: st.Version, Cversion: st.Cversion, Aversion: st.Aversion,
		Owner: st.EphemeralOwner,
		ACL:   t.acl.intern(acl),
	}
	if path == rootPath {
		if len(l.open) > 0 || t.st.count > 0 {
			return fmt.Errorf("%w: a second root", ErrBadSnapshot)
		}
		l.open = append(l.open, pending{it: makeItem(keyOf(path), &m, stringOf(data)), m: m})
		return nil
	}
	if !ValidatePath(path) {
		return fmt.Errorf("%w: znode %q has an invalid path", ErrBadSnapshot, path)
	}
	parentPath, _ := splitPath(path)
	// Close the nodes the walk has left.
	for len(l.open) > 0 && l.open[len(l.open)-1].it.path() != parentPath {
		l.close()
	}
	if len(l.open) > 0 {
		l.open[len(l.open)-1].children++
	} else {
		parent, ok := t.get(parentPath)
		if !ok {
			return fmt.Errorf("%w: znode %q comes before its parent", ErrBadSnapshot, path)
		}
		pm := parent.meta()
		pm.NumChildren++
		t.put(makeItem(parent, &pm, parent.data()))
	}
	// A znode given twice is found when it goes into the tree (close),
	// which costs no search of its own.
	// makeItem copies path and data: the caller may reuse both.
	l.open = append(l.open, pending{it: makeItem(keyOf(path), &m, stringOf(data)), m: m})
	return nil
}

// noAccess is the ACL of a znode awaiting its own: it grants nothing.
var noAccess = []wire.ACL{{Perms: 0, ID: wire.Id{Scheme: "world", ID: "anyone"}}}

// AddNodeAwaitingACL adds a znode of a fuzzy snapshot that names an ACL
// the snapshot's ACL table lacks. ZooKeeper writes the table first and the
// znodes after, while it goes on applying txns: a znode created, or given
// a new ACL, in between names an ACL only the txn log after the snapshot
// holds. Until a replayed txn gives it that ACL (a create that finds it
// there already, or a setACL), the znode grants nothing, and
// Tree.ACLsAwaited names it.
func (l *Loader) AddNodeAwaitingACL(path string, data []byte, st wire.StatPersisted) error {
	if err := l.AddNode(path, data, noAccess, st); err != nil {
		return err
	}
	if path == "" {
		path = rootPath
	}
	if l.t.aclAwaited == nil {
		l.t.aclAwaited = map[string]struct{}{}
	}
	l.t.aclAwaited[path] = struct{}{}
	return nil
}

// ACLsAwaited are the znodes added by AddNodeAwaitingACL that are still
// there and that no txn has given their ACL yet, sorted.
func (t *Tree) ACLsAwaited() []string {
	for p := range t.aclAwaited {
		if _, ok := t.get(p); !ok {
			delete(t.aclAwaited, p) // deleted, or gone with its session
		}
	}
	return slices.Sorted(maps.Keys(t.aclAwaited))
}

// settleAwaitedACL gives a znode awaiting its ACL the one a replayed txn
// carries, if it does: a create of the znode, which found it there already
// (ZooKeeper's replay puts the create's ACL into its table before it finds
// the znode, which resolves the name the snapshot held), or a setACL of
// it. A create that made the znode anew, after a delete, ends the wait
// too; a znode deleted for good drops out of ACLsAwaited.
func (t *Tree) settleAwaitedACL(rec wire.Record, err error) {
	var path string
	var acl []wire.ACL
	create := true
	switch c := rec.(type) {
	case *wire.CreateTxn:
		path, acl = c.Path, c.ACL
	case *wire.CreateTTLTxn:
		path, acl = c.Path, c.ACL
	case *wire.CreateContainerTxn:
		path, acl = c.Path, c.ACL
	case *wire.SetACLTxn:
		path, create = c.Path, false
	default:
		return
	}
	if _, ok := t.aclAwaited[path]; !ok {
		return
	}
	if create && err == wire.ErrNodeExists {
		if node, ok := t.get(path); ok {
			m := node.meta()
			m.ACL = t.acl.intern(acl)
			t.replace(node, makeItem(node, &m, node.data()))
		}
	} else if err != nil {
		return
	}
	delete(t.aclAwaited, path)
}

// close puts the deepest open node into the tree.
func (l *Loader) close() {
	t := l.t
	p := l.open[len(l.open)-1]
	l.open[len(l.open)-1] = pending{}
	l.open = l.open[:len(l.open)-1]
	it := p.it
	if p.children > 0 {
		p.m.NumChildren += p.children
		it = makeItem(it, &p.m, it.data())
	}
	path := it.path()
	i := it.shard()
	if _, dup := t.st.shards[i].SetHint(it, &l.hints[i]); dup && l.err == nil {
		l.err = fmt.Errorf("%w: znode %q twice", ErrBadSnapshot, path)
	}
	t.dirty[i] = true
	t.st.count++
	t.st.dataSize += int64(len(path) + len(it.data()))
	t.indexNode(path, p.m.Owner, true)
}

// AddSession records an open session and its timeout.
func (l *Loader) AddSession(id int64, timeout int32) {
	l.t.st.sessions.Set(Session{ID: id, Timeout: timeout})
}

// Finish returns the loaded tree as of zxid, published, with its digest
// computed, quota stats recounted and any missing /zookeeper system node
// added. Replay the txns after zxid with Apply.
func (l *Loader) Finish(zxid int64) (*Tree, error) {
	for len(l.open) > 0 {
		l.close()
	}
	if l.err != nil {
		return nil, l.err
	}
	t := l.t
	if _, ok := t.get(rootPath); !ok {
		return nil, fmt.Errorf("%w: no root", ErrBadSnapshot)
	}
	t.addSystemNodes()
	t.st.zxid = zxid
	t.RebuildQuotas()
	t.st.digest = t.digestAll()
	t.dirtyIndex = true
	t.pending = nil
	t.Publish()
	return t, nil
}

// Sessions calls fn for each open session, by id.
func (v *View) Sessions(fn func(Session) bool) {
	v.sessions.Scan(fn)
}

// SessionCount is the number of open sessions.
func (v *View) SessionCount() int { return v.sessions.Len() }
