package ztree

import (
	"fmt"
	"sort"
	"strings"

	"zkd/wire"
)

// Request is a write request as Prep sees it.
type Request struct {
	Session int64
	Cxid    int32
	Zxid    int64 // the zxid the txn gets
	Time    int64 // ms since the epoch, the txn's time
	Op      wire.OpCode
	// Body is the decoded request record: *wire.CreateRequest,
	// *wire.CreateTTLRequest, *wire.DeleteRequest, *wire.SetDataRequest,
	// *wire.SetACLRequest, *wire.CheckVersionRequest, *wire.MultiRequest,
	// *wire.DeleteContainerRequest, or *wire.CreateSessionTxn for
	// createSession; nil for closeSession. Prep keeps referring to the
	// strings and byte slices in Body until the txn is applied: their
	// memory must not change until then.
	Body wire.Record
	Auth []wire.Id // the session's identities
	// SetDataTxn, when not nil, is where Prep builds a setData's txn
	// record (the Txn's Record then points to it), so that a caller that
	// reuses its requests saves an allocation; Prep allocates one when it
	// is nil. A multi's setData ops always get records of their own.
	SetDataTxn *wire.SetDataTxn
	// SessionErr is what the server's session tracker says of Session
	// as of the txns prepped before this one: ErrOK while it is open,
	// ErrSessionExpired once its closeSession is on its way,
	// ErrUnknownSession when it has none, ErrSessionMoved when its
	// client is on another server than the one the request came
	// through. Every op ZooKeeper checks the
	// session for (create, delete, setData, setACL, check, each op of a
	// multi) fails with it, at the step ZooKeeper checks it; an
	// ephemeral create of an unknown session fails with
	// ErrSessionExpired, as ZooKeeper's global-session check says.
	SessionErr wire.ErrCode
}

// sessionErr is the error an op of req fails with for its session's sake,
// nil when the session is open; ephemeral is set for an ephemeral create.
func (req *Request) sessionErr(ephemeral bool) error {
	switch {
	case req.SessionErr == wire.ErrOK:
		return nil
	case ephemeral && req.SessionErr == wire.ErrUnknownSession:
		return wire.ErrSessionExpired
	}
	return req.SessionErr
}

// Txn is a prepared txn: what the log stores and Apply takes.
type Txn struct {
	Header wire.TxnHeader
	Record wire.Record
	// Digest is the tree digest after this txn. ZooKeeper logs one after
	// every txn but an ErrorTxn; HasDigest says whether to.
	Digest    wire.TxnDigest
	HasDigest bool
}

// change is the state a prepped but not yet applied txn leaves a znode in
// (ZooKeeper's ChangeRecord). Prep checks requests against these first, so
// a request sees every write ordered before it, committed or not.
type change struct {
	zxid   int64
	path   string
	exists bool
	node   nodeRec
	tree   uint64 // the tree digest after this change
	// prev is what it replaced, for rolling back a failed multi. Only
	// that rollback, within the Prep that made the change, reads it, and
	// prev is not applied then: an applied change is out of byPath.
	prev *change
}

// nodeRec is a znode as Prep sees it.
type nodeRec struct {
	m      meta
	acl    []wire.ACL
	data   string
	digest uint64 // set on changes only; see digestBefore
	from   item   // the applied znode this was read from, if it was
}

type prepState struct {
	byPath map[string]*change
	// queue[head:] are the changes not applied yet, in zxid order. The
	// applied ones before head are nil, and are cut away once they are
	// the larger part, so the queue's array is reused rather than grown.
	queue []*change
	head  int
	// free are changes of applied txns, for reuse: nothing refers to a
	// change once its txn is applied.
	free []*change
}

// maxFreeChanges bounds the spare changes kept after a burst of writes.
const maxFreeChanges = 4096

// applied drops the changes of txns up to zxid: the tree has them now.
func (p *prepState) applied(zxid int64) {
	q, n := p.queue, p.head
	for n < len(q) && q[n].zxid <= zxid {
		c := q[n]
		if p.byPath[c.path] == c {
			delete(p.byPath, c.path)
		}
		if len(p.free) < maxFreeChanges {
			*c = change{}
			p.free = append(p.free, c)
		}
		q[n] = nil
		n++
	}
	switch {
	case n == len(q):
		p.queue, p.head = q[:0], 0
	case n > len(q)/2:
		k := copy(q, q[n:])
		clear(q[k:])
		p.queue, p.head = q[:k], 0
	default:
		p.head = n
	}
}

// record returns path's znode as of the last prepped txn.
func (t *Tree) record(path string) (nodeRec, bool) {
	if c, ok := t.prep.byPath[path]; ok {
		return c.node, c.exists
	}
	it, ok := t.get(path)
	if !ok {
		return nodeRec{}, false
	}
	m := it.meta()
	return nodeRec{m: m, acl: t.acl.lists[m.ACL], data: it.data(), from: it}, true
}

// digestBefore is the node digest path has before a new change: the last
// change's, or the applied znode's, computed only here because most
// record lookups (existence, ACL checks) never need it.
func (t *Tree) digestBefore(path string, n *nodeRec) uint64 {
	if c, ok := t.prep.byPath[path]; ok {
		return c.node.digest
	}
	if n.from.p != nil && n.from.path() == path {
		if d, ok := t.cellDigest(n.from); ok {
			return d
		}
		return itemDigest(n.from)
	}
	if it, ok := t.get(path); ok {
		return itemDigest(it)
	}
	return 0
}

// prepDigest is the tree digest after the last prepped txn.
func (t *Tree) prepDigest() uint64 {
	if n := len(t.prep.queue); n > t.prep.head {
		return t.prep.queue[n-1].tree
	}
	return t.st.digest
}

func (t *Tree) addChange(zxid int64, path string, exists bool, n nodeRec) *change {
	before := t.digestBefore(path, &n)
	if exists {
		n.digest = nodeDigest(path, n.data, &n.m)
		n.from = item{}
	} else {
		n = nodeRec{}
	}
	if t.prep.byPath == nil {
		t.prep.byPath = make(map[string]*change)
	}
	var c *change
	if k := len(t.prep.free); k > 0 {
		c = t.prep.free[k-1]
		t.prep.free = t.prep.free[:k-1]
	} else {
		c = new(change)
	}
	*c = change{zxid: zxid, path: path, exists: exists, node: n, tree: t.prepDigest() - before + n.digest}
	c.prev = t.prep.byPath[path]
	t.prep.byPath[path] = c
	t.prep.queue = append(t.prep.queue, c)
	return c
}

// rollback undoes the changes queued since mark (a failed multi).
func (t *Tree) rollback(mark int) {
	for i := len(t.prep.queue) - 1; i >= mark; i-- {
		c := t.prep.queue[i]
		if t.prep.byPath[c.path] == c {
			if c.prev != nil {
				t.prep.byPath[c.path] = c.prev
			} else {
				delete(t.prep.byPath, c.path)
			}
		}
		t.prep.queue[i] = nil
	}
	t.prep.queue = t.prep.queue[:mark]
}

// Prep checks a write request against the tree plus every txn prepped
// before it, the way ZooKeeper's PrepRequestProcessor does (same checks,
// same order, same error codes), and builds its txn. A request that fails
// becomes an ErrorTxn carrying the error, which is returned as well; a
// multi that fails becomes a MultiTxn of error txns. Either way the txn
// takes req.Zxid and must be logged and applied like any other.
func (t *Tree) Prep(req *Request) (Txn, error) {
	hdr := wire.TxnHeader{ClientID: req.Session, Cxid: req.Cxid, Zxid: req.Zxid, Time: req.Time, Type: req.Op}
	if req.Op == wire.OpMulti {
		m, ok := req.Body.(*wire.MultiRequest)
		if !ok {
			return t.errorTxn(hdr, wire.ErrMarshallingError)
		}
		for i := range m.Ops {
			if typ := m.Ops[i].Type; typ == wire.OpGetData || typ == wire.OpGetChildren {
				// Reads belong in a multiRead. ZooKeeper fails a multi
				// of them (it makes no txn for the first) with a
				// MARSHALLINGERROR error txn; one of reads and writes
				// does not decode.
				return t.errorTxn(hdr, wire.ErrMarshallingError)
			}
		}
		return t.prepMulti(req, hdr, m)
	}
	typ, rec, err := t.prepOp(req, req.Op, req.Body)
	if err != nil {
		return t.errorTxn(hdr, err.(wire.ErrCode))
	}
	hdr.Type = typ
	return Txn{Header: hdr, Record: rec, Digest: t.txnDigest(), HasDigest: true}, nil
}

func (t *Tree) txnDigest() wire.TxnDigest {
	return wire.TxnDigest{Version: DigestVersion, TreeDigest: int64(t.prepDigest())}
}

func (t *Tree) errorTxn(hdr wire.TxnHeader, code wire.ErrCode) (Txn, error) {
	hdr.Type = wire.OpError
	return Txn{Header: hdr, Record: &wire.ErrorTxn{Err: code}}, code
}

func (t *Tree) prepMulti(req *Request, hdr wire.TxnHeader, m *wire.MultiRequest) (Txn, error) {
	mark := len(t.prep.queue)
	txns := make([]wire.Txn, 0, len(m.Ops))
	var failure error
	for i := range m.Ops {
		op := &m.Ops[i]
		var typ wire.OpCode
		var rec wire.Record
		if failure != nil {
			typ, rec = wire.OpError, &wire.ErrorTxn{Err: wire.ErrRuntimeInconsistency}
		} else {
			if op.Type != wire.OpCreateTTL && op.Flags.TTL() {
				// A create op of a TTL mode under another create op
				// code (only create ops have flags). ZooKeeper makes
				// it a createTTL without a TTL, which its prep cannot
				// read: the whole multi becomes a MARSHALLINGERROR
				// error txn.
				t.rollback(mark)
				return t.errorTxn(hdr, wire.ErrMarshallingError)
			}
			var err error
			typ, rec, err = t.prepMultiOp(req, op)
			if err != nil {
				failure = err
				typ, rec = wire.OpError, &wire.ErrorTxn{Err: err.(wire.ErrCode)}
				t.rollback(mark)
			}
		}
		txns = append(txns, wire.Txn{Type: typ, Data: rec.Append(nil)})
	}
	return Txn{Header: hdr, Record: &wire.MultiTxn{Txns: txns}, Digest: t.txnDigest(), HasDigest: true}, failure
}

// prepMultiOp preps one op of a multi. ZooKeeper rebuilds each create op
// from its flags, so the op code a client sent for a create does not
// matter: a container flag makes createContainer, a TTL flag createTTL,
// anything else a plain create.
func (t *Tree) prepMultiOp(req *Request, op *wire.MultiOp) (wire.OpCode, wire.Record, error) {
	switch op.Type {
	case wire.OpCreate, wire.OpCreate2, wire.OpCreateContainer, wire.OpCreateTTL:
		typ := wire.OpCreate
		ttl := int64(-1)
		switch {
		case op.Flags.Container():
			typ = wire.OpCreateContainer
		case op.Flags.TTL():
			typ, ttl = wire.OpCreateTTL, op.TTL
		}
		return t.prepCreate(req, typ, op.Path, op.Data, op.ACL, op.Flags, ttl)
	case wire.OpDelete:
		return t.prepDelete(req, op.Path, op.Version)
	case wire.OpSetData:
		return t.prepSetData(req, nil, op.Path, op.Data, op.Version)
	case wire.OpCheck:
		return t.prepCheck(req, op.Path, op.Version)
	}
	return 0, nil, wire.ErrBadArguments
}

func (t *Tree) prepOp(req *Request, op wire.OpCode, body wire.Record) (wire.OpCode, wire.Record, error) {
	bad := func() (wire.OpCode, wire.Record, error) { return 0, nil, wire.ErrMarshallingError }
	switch op {
	case wire.OpCreate, wire.OpCreate2, wire.OpCreateContainer:
		r, ok := body.(*wire.CreateRequest)
		if !ok {
			return bad()
		}
		return t.prepCreate(req, op, r.Path, r.Data, r.ACL, r.Flags, -1)
	case wire.OpCreateTTL:
		r, ok := body.(*wire.CreateTTLRequest)
		if !ok {
			return bad()
		}
		return t.prepCreate(req, op, r.Path, r.Data, r.ACL, r.Flags, r.TTL)
	case wire.OpDelete:
		r, ok := body.(*wire.DeleteRequest)
		if !ok {
			return bad()
		}
		return t.prepDelete(req, r.Path, r.Version)
	case wire.OpSetData:
		r, ok := body.(*wire.SetDataRequest)
		if !ok {
			return bad()
		}
		return t.prepSetData(req, req.SetDataTxn, r.Path, r.Data, r.Version)
	case wire.OpSetACL:
		r, ok := body.(*wire.SetACLRequest)
		if !ok {
			return bad()
		}
		return t.prepSetACL(req, r.Path, r.ACL, r.Version)
	case wire.OpCheck:
		r, ok := body.(*wire.CheckVersionRequest)
		if !ok {
			return bad()
		}
		return t.prepCheck(req, r.Path, r.Version)
	case wire.OpDeleteContainer:
		r, ok := body.(*wire.DeleteContainerRequest)
		if !ok {
			return bad()
		}
		return t.prepDeleteContainer(req, r.Path)
	case wire.OpCreateSession:
		r, ok := body.(*wire.CreateSessionTxn)
		if !ok {
			return bad()
		}
		return op, &wire.CreateSessionTxn{TimeOut: r.TimeOut}, nil
	case wire.OpCloseSession:
		return op, t.prepCloseSession(req), nil
	}
	return 0, nil, wire.ErrUnimplemented
}

func (t *Tree) prepCreate(req *Request, typ wire.OpCode, path string, data []byte, acl []wire.ACL, mode wire.CreateMode, ttl int64) (wire.OpCode, wire.Record, error) {
	if !mode.Valid() {
		return 0, nil, wire.ErrBadArguments
	}
	if mode.TTL() && !t.opts.ExtendedTypes {
		return 0, nil, wire.ErrUnimplemented
	}
	if mode.TTL() && !validTTL(ttl) || !mode.TTL() && ttl >= 0 {
		return 0, nil, wire.ErrBadArguments
	}
	if err := req.sessionErr(mode.Ephemeral()); err != nil {
		return 0, nil, err
	}
	slash := strings.LastIndexByte(path, '/')
	if slash < 0 || strings.IndexByte(path, 0) >= 0 {
		return 0, nil, wire.ErrBadArguments
	}
	parentPath, _ := splitPath(path)
	fixed, err := fixupACL(acl, req.Auth, t.opts)
	if err != nil {
		return 0, nil, err
	}
	parent, ok := t.record(parentPath)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if !t.opts.permits(parent.acl, wire.PermCreate, req.Auth) {
		return 0, nil, wire.ErrNoAuth
	}
	if mode.Sequential() {
		path += fmt.Sprintf("%010d", parent.m.Cversion)
	}
	if !ValidatePath(path) {
		return 0, nil, wire.ErrBadArguments
	}
	if _, exists := t.record(path); exists {
		return 0, nil, wire.ErrNodeExists
	}
	if ephemeralKind(parent.m.Owner, t.opts.ExtendedTypes) == kindEphemeral {
		return 0, nil, wire.ErrNoChildrenForEphemerals
	}
	if err := t.checkQuota(path, int64(len(data)), 1); err != nil {
		return 0, nil, err
	}
	newCversion := parent.m.Cversion + 1
	var rec wire.Record
	var owner int64
	switch typ {
	case wire.OpCreateContainer:
		rec = &wire.CreateContainerTxn{Path: path, Data: data, ACL: fixed, ParentCVersion: newCversion}
		owner = containerOwner
	case wire.OpCreateTTL:
		if !mode.TTL() {
			// A createTTL of another mode with a negative TTL passes
			// ZooKeeper's checks, and its txn then fails to apply: the
			// server closes the connection with the txn in its log.
			// Refuse it instead.
			return 0, nil, wire.ErrBadArguments
		}
		rec = &wire.CreateTTLTxn{Path: path, Data: data, ACL: fixed, ParentCVersion: newCversion, TTL: ttl}
		owner = ttlOwner(ttl)
	default:
		rec = &wire.CreateTxn{Path: path, Data: data, ACL: fixed, Ephemeral: mode.Ephemeral(), ParentCVersion: newCversion}
		if mode.Ephemeral() {
			owner = req.Session
		}
	}
	parent.m.NumChildren++
	parent.m.Cversion = newCversion
	parent.m.Pzxid = req.Zxid
	t.addChange(req.Zxid, parentPath, true, parent)
	m := meta{Czxid: req.Zxid, Mzxid: req.Zxid, Pzxid: req.Zxid, Ctime: req.Time, Mtime: req.Time, Owner: owner}
	t.addChange(req.Zxid, path, true, nodeRec{m: m, acl: fixed, data: stringOf(data)})
	return typ, rec, nil
}

// deletable is getParentPathAndValidate: the reserved znodes cannot be
// deleted, and a path without a slash or with a NUL is BADARGUMENTS.
func deletable(path string) (string, error) {
	if strings.IndexByte(path, '/') < 0 || strings.IndexByte(path, 0) >= 0 || isSpecialPath(path) {
		return "", wire.ErrBadArguments
	}
	parent, _ := splitPath(path)
	return parent, nil
}

func (t *Tree) prepDelete(req *Request, path string, version int32) (wire.OpCode, wire.Record, error) {
	if err := req.sessionErr(false); err != nil {
		return 0, nil, err
	}
	parentPath, err := deletable(path)
	if err != nil {
		return 0, nil, err
	}
	parent, ok := t.record(parentPath)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if !t.opts.permits(parent.acl, wire.PermDelete, req.Auth) {
		return 0, nil, wire.ErrNoAuth
	}
	node, ok := t.record(path)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if version != -1 && version != node.m.Version {
		return 0, nil, wire.ErrBadVersion
	}
	if node.m.NumChildren > 0 {
		return 0, nil, wire.ErrNotEmpty
	}
	t.removeChange(req.Zxid, parentPath, parent, path)
	return wire.OpDelete, &wire.DeleteTxn{Path: path}, nil
}

func (t *Tree) removeChange(zxid int64, parentPath string, parent nodeRec, path string) {
	parent.m.NumChildren--
	parent.m.Pzxid = zxid
	t.addChange(zxid, parentPath, true, parent)
	t.addChange(zxid, path, false, nodeRec{})
}

func (t *Tree) prepDeleteContainer(req *Request, path string) (wire.OpCode, wire.Record, error) {
	parentPath, err := deletable(path)
	if err != nil {
		return 0, nil, err
	}
	node, ok := t.record(path)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if node.m.NumChildren > 0 {
		return 0, nil, wire.ErrNotEmpty
	}
	if ephemeralKind(node.m.Owner, t.opts.ExtendedTypes) == kindEphemeral {
		return 0, nil, wire.ErrBadVersion
	}
	parent, ok := t.record(parentPath)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	t.removeChange(req.Zxid, parentPath, parent, path)
	return wire.OpDeleteContainer, &wire.DeleteTxn{Path: path}, nil
}

// prepSetData builds the txn record in rec, or in a new one when rec is nil.
func (t *Tree) prepSetData(req *Request, rec *wire.SetDataTxn, path string, data []byte, version int32) (wire.OpCode, wire.Record, error) {
	if err := req.sessionErr(false); err != nil {
		return 0, nil, err
	}
	if !ValidatePath(path) {
		return 0, nil, wire.ErrBadArguments
	}
	node, ok := t.record(path)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if !t.opts.permits(node.acl, wire.PermWrite, req.Auth) {
		return 0, nil, wire.ErrNoAuth
	}
	if err := t.checkQuota(path, int64(len(data)-len(node.data)), 0); err != nil {
		return 0, nil, err
	}
	if version != -1 && version != node.m.Version {
		return 0, nil, wire.ErrBadVersion
	}
	node.m.Version++
	node.m.Mtime = req.Time
	node.m.Mzxid = req.Zxid
	node.data = stringOf(data) // the request's own copy, kept until applied
	t.addChange(req.Zxid, path, true, node)
	if rec == nil {
		rec = new(wire.SetDataTxn)
	}
	*rec = wire.SetDataTxn{Path: path, Data: data, Version: node.m.Version}
	return wire.OpSetData, rec, nil
}

func (t *Tree) prepSetACL(req *Request, path string, acl []wire.ACL, version int32) (wire.OpCode, wire.Record, error) {
	if err := req.sessionErr(false); err != nil {
		return 0, nil, err
	}
	if !ValidatePath(path) {
		return 0, nil, wire.ErrBadArguments
	}
	fixed, err := fixupACL(acl, req.Auth, t.opts)
	if err != nil {
		return 0, nil, err
	}
	node, ok := t.record(path)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if !t.opts.permits(node.acl, wire.PermAdmin, req.Auth) {
		return 0, nil, wire.ErrNoAuth
	}
	if version != -1 && version != node.m.Aversion {
		return 0, nil, wire.ErrBadVersion
	}
	node.m.Aversion++
	node.acl = fixed
	t.addChange(req.Zxid, path, true, node)
	return wire.OpSetACL, &wire.SetACLTxn{Path: path, ACL: fixed, Version: node.m.Aversion}, nil
}

func (t *Tree) prepCheck(req *Request, path string, version int32) (wire.OpCode, wire.Record, error) {
	if err := req.sessionErr(false); err != nil {
		return 0, nil, err
	}
	if !ValidatePath(path) {
		return 0, nil, wire.ErrBadArguments
	}
	node, ok := t.record(path)
	if !ok {
		return 0, nil, wire.ErrNoNode
	}
	if !t.opts.permits(node.acl, wire.PermRead, req.Auth) {
		return 0, nil, wire.ErrNoAuth
	}
	if version != -1 && version != node.m.Version {
		return 0, nil, wire.ErrBadVersion
	}
	return wire.OpCheck, &wire.CheckVersionTxn{Path: path, Version: node.m.Version + 1}, nil
}

// prepCloseSession lists the session's ephemerals as of the last prepped
// txn (committed ones, plus pending creates, minus pending deletes), sorted,
// and queues their deletion.
func (t *Tree) prepCloseSession(req *Request) *wire.CloseSessionTxn {
	set := make(map[string]bool)
	for _, p := range t.sessionEphemerals(req.Session) {
		set[p] = true
	}
	for _, c := range t.prep.queue[t.prep.head:] {
		switch {
		case !c.exists:
			delete(set, c.path)
		case c.node.m.Owner == req.Session:
			set[c.path] = true
		}
	}
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		parentPath, _ := splitPath(p)
		if parent, ok := t.record(parentPath); ok {
			t.removeChange(req.Zxid, parentPath, parent, p)
		}
	}
	return &wire.CloseSessionTxn{Paths2Delete: paths}
}
