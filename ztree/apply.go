package ztree

import (
	"slices"
	"sync"

	"zkd/wire"
)

// Result is what applying one txn did, for the reply to the client that
// sent it.
type Result struct {
	Type wire.OpCode  // the txn type; OpError when it failed
	Err  wire.ErrCode // why it failed
	Path string       // the znode it acted on (the created path for creates)
	Stat wire.Stat    // the znode's Stat after the change (create2, setData, setACL, …)
	// Multi holds one result per op of a multi. A multi's own reply header
	// always carries OK; a failed multi shows up as error results only.
	Multi []Result
	// Ephemerals are, for a closeSession, the znodes it set out to
	// delete, in ZooKeeper's order, each with whether it was there.
	Ephemerals []EphemeralDelete

	reply replyRecords // what Reply hands out, so it need not allocate
}

// SessionMoved says whether the write failed, or an op of the multi did,
// because its session had moved to another server (SESSIONMOVED):
// ZooKeeper answers such a write by closing the connection.
func (r *Result) SessionMoved() bool {
	if r.Type == wire.OpError && r.Err == wire.ErrSessionMoved {
		return true
	}
	for i := range r.Multi {
		if r.Multi[i].Err == wire.ErrSessionMoved {
			return true
		}
	}
	return false
}

type replyRecords struct {
	path    wire.CreateResponse
	created wire.Create2Response
	stat    wire.StatResponse
}

// Apply applies one committed txn: hdr and the txn record that hdr.Type
// names (nil for txns without one). It is deterministic: the same txns in
// the same order give the same tree and digest on every server. Watch
// triggers are kept until the next Publish.
//
// Like ZooKeeper's DataTree.processTxn, Apply does not re-check what Prep
// checked; a txn that cannot apply (a replay over a fuzzy snapshot, say)
// yields an error Result and leaves the tree consistent.
func (t *Tree) Apply(hdr *wire.TxnHeader, rec wire.Record) Result {
	r := t.apply(hdr, hdr.Type, rec)
	if hdr.Zxid > t.st.zxid {
		t.st.zxid = hdr.Zxid
	}
	t.prep.applied(hdr.Zxid)
	if !t.knownDigest {
		t.digests.add(hdr.Zxid, t.st.digest)
	}
	return r
}

// ApplyPrepped applies a txn that this tree's Prep made. Prep has already
// worked out the tree digest after it (txn.Digest), so the znodes it
// changes are not hashed a second time; a replayed txn, whose digest is
// only a claim, goes through Apply.
func (t *Tree) ApplyPrepped(txn *Txn) Result {
	if !txn.HasDigest {
		return t.Apply(&txn.Header, txn.Record)
	}
	t.knownDigest = true
	r := t.Apply(&txn.Header, txn.Record)
	t.knownDigest = false
	t.st.digest = uint64(txn.Digest.TreeDigest)
	t.digests.add(txn.Header.Zxid, t.st.digest)
	return r
}

// digestLogEvery and digestLogLimit are ZooKeeper's: the tree digest is
// logged after every txn whose zxid is a multiple of 128, and the newest
// 1,024 such entries are kept, for the hash four-letter word.
const (
	digestLogEvery = 128
	digestLogLimit = 1024
)

// ZxidDigest is the tree's digest after txn Zxid.
type ZxidDigest struct {
	Zxid   int64
	Digest uint64
}

// digestLog is the applier's log of digests, read by other goroutines.
type digestLog struct {
	mu      sync.Mutex
	entries []ZxidDigest
}

func (l *digestLog) add(zxid int64, digest uint64) {
	if zxid%digestLogEvery != 0 {
		return
	}
	l.mu.Lock()
	if len(l.entries) == digestLogLimit {
		l.entries = append(l.entries[:0], l.entries[1:]...)
	}
	l.entries = append(l.entries, ZxidDigest{zxid, digest})
	l.mu.Unlock()
}

// DigestLog returns the digests logged so far, oldest first: one for each
// applied txn whose zxid is a multiple of 128, the newest 1,024, as
// ZooKeeper's hash four-letter word lists them.
func (t *Tree) DigestLog() []ZxidDigest {
	t.digests.mu.Lock()
	defer t.digests.mu.Unlock()
	return slices.Clone(t.digests.entries)
}

func (t *Tree) apply(hdr *wire.TxnHeader, typ wire.OpCode, rec wire.Record) Result {
	r := Result{Type: typ}
	var err error
	switch typ {
	case wire.OpCreate, wire.OpCreate2:
		c := rec.(*wire.CreateTxn)
		owner := int64(0)
		if c.Ephemeral {
			owner = hdr.ClientID
		}
		r.Path = c.Path
		r.Stat, err = t.createNode(c.Path, c.Data, c.ACL, owner, c.ParentCVersion, hdr.Zxid, hdr.Time)
		if err == wire.ErrNodeExists && typ == wire.OpCreate {
			// Replaying over a fuzzy snapshot: the node was deleted and
			// re-created in the fuzzy range. ZooKeeper still moves the
			// parent's cversion and pzxid forward.
			parent, _ := splitPath(c.Path)
			if e := t.setCversionPzxid(parent, c.ParentCVersion, hdr.Zxid); e != nil {
				err = e
			}
		}
	case wire.OpCreateTTL:
		c := rec.(*wire.CreateTTLTxn)
		r.Path = c.Path
		r.Stat, err = t.createNode(c.Path, c.Data, c.ACL, ttlOwner(c.TTL), c.ParentCVersion, hdr.Zxid, hdr.Time)
	case wire.OpCreateContainer:
		c := rec.(*wire.CreateContainerTxn)
		r.Path = c.Path
		r.Stat, err = t.createNode(c.Path, c.Data, c.ACL, containerOwner, c.ParentCVersion, hdr.Zxid, hdr.Time)
	case wire.OpDelete, wire.OpDeleteContainer:
		d := rec.(*wire.DeleteTxn)
		r.Path = d.Path
		err = t.deleteNode(d.Path, hdr.Zxid)
	case wire.OpSetData, wire.OpReconfig:
		s := rec.(*wire.SetDataTxn)
		r.Path = s.Path
		r.Stat, err = t.setData(s.Path, s.Data, s.Version, hdr.Zxid, hdr.Time)
	case wire.OpSetACL:
		s := rec.(*wire.SetACLTxn)
		r.Path = s.Path
		r.Stat, err = t.setACL(s.Path, s.ACL, s.Version)
	case wire.OpCloseSession:
		var paths []string
		if c, ok := rec.(*wire.CloseSessionTxn); ok && c != nil {
			paths = c.Paths2Delete
		}
		r.Ephemerals = t.killSession(hdr.ClientID, hdr.Zxid, paths)
		if _, ok := t.st.sessions.Delete(Session{ID: hdr.ClientID}); ok {
			t.dirtyIndex = true
		}
	case wire.OpCreateSession:
		if c, ok := rec.(*wire.CreateSessionTxn); ok && c != nil {
			t.st.sessions.Set(Session{ID: hdr.ClientID, Timeout: c.TimeOut})
			t.dirtyIndex = true
		}
	case wire.OpError:
		r.Err = wire.ErrCode(rec.(*wire.ErrorTxn).Err)
	case wire.OpCheck:
		r.Path = rec.(*wire.CheckVersionTxn).Path
	case wire.OpMulti:
		r.Multi = t.applyMulti(hdr, rec.(*wire.MultiTxn))
		for _, s := range r.Multi {
			if s.Err != wire.ErrOK {
				r.Err = s.Err
				break
			}
		}
	default:
		r.Err = wire.ErrUnimplemented
	}
	if len(t.aclAwaited) > 0 {
		t.settleAwaitedACL(rec, err)
	}
	if err != nil {
		r.Err = err.(wire.ErrCode)
	}
	if r.Err != wire.ErrOK && typ != wire.OpMulti {
		r.Type = wire.OpError
	}
	return r
}

// applyMulti applies the ops of a multi in order. When any op failed in
// prep, none is applied: the ops before the failing one report OK (rolled
// back), the failing one its code, the ones after RUNTIMEINCONSISTENCY.
func (t *Tree) applyMulti(hdr *wire.TxnHeader, m *wire.MultiTxn) []Result {
	failed := false
	for _, s := range m.Txns {
		if s.Type == wire.OpError {
			failed = true
			break
		}
	}
	out := make([]Result, 0, len(m.Txns))
	postFailed := false
	for _, s := range m.Txns {
		if failed && s.Type != wire.OpError {
			code := wire.ErrOK
			if postFailed {
				code = wire.ErrRuntimeInconsistency
			}
			out = append(out, Result{Type: wire.OpError, Err: code})
			continue
		}
		if s.Type == wire.OpError {
			postFailed = true
		}
		rec, known := wire.TxnRecord(s.Type)
		if !known || rec == nil {
			out = append(out, Result{Type: wire.OpError, Err: wire.ErrMarshallingError})
			continue
		}
		if _, err := rec.Decode(s.Data, wire.Copy); err != nil {
			out = append(out, Result{Type: wire.OpError, Err: wire.ErrMarshallingError})
			continue
		}
		sub := *hdr
		sub.Type = s.Type
		out = append(out, t.apply(&sub, s.Type, rec))
	}
	return out
}

// replace swaps old for nw in the tree, keeping the digest current.
// Neither record goes back to the pool: see change.
func (t *Tree) replace(old, nw item) { t.replaceFrom(old, nw, false, 0, false) }

// replaceFrom is replace for a record that may go back to the pool, with
// its node digest if known.
//
// A txn that did not come through this tree's Prep (a follower's, a
// replay's) hashes the new record here, and the old one unless its cell
// kept its digest; the new digest is kept for the next change. A changing
// znode's old record was written long before and is rarely in the
// processor's cache, so skipping it saves most of the hashing.
func (t *Tree) replaceFrom(old, nw item, reusable bool, digest uint64, digestOK bool) {
	if !t.knownDigest {
		before, ok := t.cellDigest(old)
		if !ok {
			before = itemDigest(old)
		}
		digest, digestOK = itemDigest(nw), true
		t.st.digest += digest - before
	}
	t.change(old, nw, reusable, digest, digestOK)
}

func (t *Tree) createNode(path string, data []byte, acl []wire.ACL, owner int64, parentCVersion int32, zxid, time int64) (wire.Stat, error) {
	parentPath, name := splitPath(path)
	parent, ok := t.get(parentPath)
	if !ok || name == "" {
		return wire.Stat{}, wire.ErrNoNode
	}
	aclIdx := t.acl.intern(acl)
	if old, exists := t.get(path); exists {
		// ZooKeeper gives the existing node the txn's ACL here (a replay
		// detail of its fuzzy snapshots); do the same so replays agree.
		m := old.meta()
		if m.ACL != aclIdx {
			m.ACL = aclIdx
			t.replace(old, makeItem(old, &m, old.data()))
		}
		return wire.Stat{}, wire.ErrNodeExists
	}
	pm := parent.meta()
	pm.advanceCversion(parentCVersion, zxid)
	pm.NumChildren++
	t.replace(parent, makeItem(parent, &pm, parent.data()))

	m := meta{Czxid: zxid, Mzxid: zxid, Pzxid: zxid, Ctime: time, Mtime: time, Owner: owner, ACL: aclIdx}
	it := makeItem(keyOf(path), &m, stringOf(data)) // makeItem copies
	path = it.path()                                // the tree's own copy, safe to keep
	if !t.knownDigest {
		t.st.digest += itemDigest(it)
	}
	t.put(it)
	t.st.count++
	t.st.dataSize += int64(len(path) + len(data))
	t.indexNode(path, owner, true)
	t.quotaCreated(path, parentPath, name, int64(len(data)))
	t.pending = append(t.pending,
		trigger{kind: trigCreated, path: path, acl: aclIdx, zxid: zxid},
		trigger{kind: trigChildren, path: parent.path(), acl: pm.ACL, zxid: zxid})
	t.nsWrites.add(path, len(data))
	return m.stat(len(data), t.opts.ExtendedTypes), nil
}

// indexNode adds a znode to (or removes it from) the ephemerals, container
// or TTL index its owner puts it in; a persistent znode is in none.
func (t *Tree) indexNode(path string, owner int64, add bool) {
	switch ephemeralKind(owner, t.opts.ExtendedTypes) {
	case kindContainer:
		if add {
			t.st.containers.Set(path)
		} else {
			t.st.containers.Delete(path)
		}
	case kindTTL:
		if add {
			t.st.ttls.Set(path)
		} else {
			t.st.ttls.Delete(path)
		}
	case kindEphemeral:
		if add {
			t.st.ephemerals.Set(owned{session: owner, path: path})
		} else {
			t.st.ephemerals.Delete(owned{session: owner, path: path})
		}
	default:
		return
	}
	t.dirtyIndex = true
}

func (t *Tree) deleteNode(path string, zxid int64) error {
	parentPath, _ := splitPath(path)
	parent, ok := t.get(parentPath)
	if !ok || path == rootPath {
		return wire.ErrNoNode
	}
	node, exists := t.get(path)
	pm := parent.meta()
	changed := false
	if exists {
		pm.NumChildren--
		changed = true
	}
	// ZooKeeper moves pzxid forward even when the child is already gone
	// (a replay over a fuzzy snapshot), but never backwards.
	if zxid > pm.Pzxid {
		pm.Pzxid = zxid
		changed = true
	}
	if changed {
		old := parent
		parent = makeItem(old, &pm, old.data())
		t.replace(old, parent)
	}
	if !exists {
		return wire.ErrNoNode
	}
	m := node.meta()
	data := node.data()
	path = node.path()
	if !t.knownDigest {
		t.st.digest -= itemDigest(node)
	}
	t.remove(path)
	t.st.count--
	t.st.dataSize -= int64(len(path) + len(data))
	t.indexNode(path, m.Owner, false)
	t.quotaDeleted(path, int64(len(data)))
	t.pending = append(t.pending,
		trigger{kind: trigDeleted, path: path, acl: m.ACL, zxid: zxid},
		trigger{kind: trigChildren, path: parent.path(), acl: pm.ACL, zxid: zxid})
	return nil
}

func (t *Tree) setData(path string, data []byte, version int32, zxid, time int64) (wire.Stat, error) {
	node, ok := t.get(path)
	if !ok {
		return wire.Stat{}, wire.ErrNoNode
	}
	m := node.meta()
	old := node.data()
	m.Mtime = time
	m.Mzxid = zxid
	m.Version = version
	nw := makeItemFrom(&t.pool, node, &m, stringOf(data)) // copies
	d, dok := t.preppedDigest(zxid, path)
	t.replaceFrom(node, nw, m.Owner == 0, d, dok)
	t.st.dataSize += int64(len(data) - len(old))
	t.quotaChanged(nw.path(), int64(len(data)-len(old)), 0)
	t.pending = append(t.pending, trigger{kind: trigDataChanged, path: nw.path(), acl: m.ACL, zxid: zxid})
	t.nsWrites.add(path, len(data))
	return m.stat(len(data), t.opts.ExtendedTypes), nil
}

func (t *Tree) setACL(path string, acl []wire.ACL, version int32) (wire.Stat, error) {
	node, ok := t.get(path)
	if !ok {
		return wire.Stat{}, wire.ErrNoNode
	}
	m := node.meta()
	m.Aversion = version
	m.ACL = t.acl.intern(acl)
	t.replace(node, makeItem(node, &m, node.data()))
	return m.stat(len(node.data()), t.opts.ExtendedTypes), nil
}

func (t *Tree) setCversionPzxid(path string, cversion int32, zxid int64) error {
	node, ok := t.get(path)
	if !ok {
		return wire.ErrNoNode
	}
	m := node.meta()
	if m.advanceCversion(cversion, zxid) {
		t.replace(node, makeItem(node, &m, node.data()))
	}
	return nil
}

// advanceCversion sets cversion (-1: one more than now) and pzxid, but only
// forward: a replay over a fuzzy snapshot must not move them back.
func (m *meta) advanceCversion(cversion int32, zxid int64) bool {
	if cversion == -1 {
		cversion = m.Cversion + 1
	}
	if cversion <= m.Cversion {
		return false
	}
	m.Cversion = cversion
	m.Pzxid = zxid
	return true
}

// killSession deletes a closed or expired session's ephemerals: first the
// paths its closeSession txn lists, then any the tree still knows of, in
// path order. Ephemerals already gone are skipped. It returns the paths it
// tried, for the audit log.
func (t *Tree) killSession(session, zxid int64, paths []string) []EphemeralDelete {
	var out []EphemeralDelete
	for _, p := range paths {
		out = append(out, EphemeralDelete{Path: p, Deleted: t.deleteNode(p, zxid) == nil})
	}
	for _, p := range t.sessionEphemerals(session) {
		out = append(out, EphemeralDelete{Path: p, Deleted: t.deleteNode(p, zxid) == nil})
	}
	t.pending = append(t.pending, trigger{kind: trigSessionGone, session: session, zxid: zxid})
	return out
}

// EphemeralDelete is an ephemeral znode a closeSession txn deleted, or
// found gone already when its txn named it.
type EphemeralDelete struct {
	Path    string
	Deleted bool
}

// sessionEphemerals lists the session's ephemerals in the applier's tree.
func (t *Tree) sessionEphemerals(session int64) []string {
	var out []string
	t.st.ephemerals.Ascend(owned{session: session}, func(o owned) bool {
		if o.session != session {
			return false
		}
		out = append(out, o.path)
		return true
	})
	return out
}

// Reply is the reply a client gets for the request whose txn gave r
// (ZooKeeper's FinalRequestProcessor): the reply header's error and the
// body record, nil when the reply has no body. op is the request's op code.
// The record may live inside r: encode it before r changes.
func (r *Result) Reply(op wire.OpCode) (wire.ErrCode, wire.Record) {
	if op == wire.OpMulti && r.Type != wire.OpError {
		out := &wire.MultiResponse{Results: make([]wire.OpResult, len(r.Multi))}
		for i := range r.Multi {
			out.Results[i] = r.Multi[i].opResult()
		}
		return wire.ErrOK, out
	}
	if r.Type == wire.OpError || r.Err != wire.ErrOK {
		return r.Err, nil
	}
	switch op {
	case wire.OpCreate:
		r.reply.path = wire.CreateResponse{Path: r.Path}
		return wire.ErrOK, &r.reply.path
	case wire.OpCreate2, wire.OpCreateTTL, wire.OpCreateContainer:
		r.reply.created = wire.Create2Response{Path: r.Path, Stat: r.Stat}
		return wire.ErrOK, &r.reply.created
	case wire.OpSetData, wire.OpSetACL:
		r.reply.stat = wire.StatResponse{Stat: r.Stat}
		return wire.ErrOK, &r.reply.stat
	}
	return wire.ErrOK, nil
}

// opResult is one op's result inside a multi reply: creates of containers
// and TTL nodes answer with the Stat too, plain creates with the path only.
func (r *Result) opResult() wire.OpResult {
	switch r.Type {
	case wire.OpCreate:
		return wire.OpResult{Type: wire.OpCreate, Path: r.Path}
	case wire.OpCreate2, wire.OpCreateTTL, wire.OpCreateContainer:
		return wire.OpResult{Type: wire.OpCreate2, Path: r.Path, Stat: r.Stat}
	case wire.OpDelete, wire.OpDeleteContainer:
		return wire.OpResult{Type: wire.OpDelete}
	case wire.OpSetData:
		return wire.OpResult{Type: wire.OpSetData, Stat: r.Stat}
	case wire.OpCheck:
		return wire.OpResult{Type: wire.OpCheck}
	}
	return wire.OpResult{Type: wire.OpError, Err: r.Err}
}
