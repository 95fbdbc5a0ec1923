package ztree

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tidwall/btree"

	"zkd/wire"
)

// WatchKind is a set of watch kinds one session holds on one path.
//
// ZooKeeper 3.8 keeps watches in two registries, one for data watches and
// one for child watches, and a session has at most one watch on a path in
// each, of one mode: one-shot, persistent or persistent recursive. addWatch
// puts a watch in both; a one-shot watch set later on the same path
// replaces the persistent one in its registry, and addWatch replaces a
// one-shot one in both; removeWatches of Data or Children removes a watch
// of any mode from that registry only. So the kinds below are per
// registry, and a session holds at most one of each registry's on a path.
type WatchKind uint8

// Watch kinds. Data and Child watches fire once; the others stay until
// removed.
const (
	WatchData            WatchKind = 1 << iota // getData, exists (also on a missing node)
	WatchChild                                 // getChildren, getChildren2
	watchPersistentData                        // addWatch PERSISTENT, in the data registry: the path's data events
	watchPersistentChild                       // and in the child registry: its child events
	watchRecursiveData                         // addWatch PERSISTENT_RECURSIVE, data registry: data events of the path and below
	watchRecursiveChild                        // and child registry: deletes of the path and below
)

// addWatch's two modes, in both registries.
const (
	WatchPersistent = watchPersistentData | watchPersistentChild
	WatchRecursive  = watchRecursiveData | watchRecursiveChild
)

// Event is a watch notification for one session.
type Event struct {
	Session int64
	Type    wire.EventType
	Path    string
	Zxid    int64 // the txn that caused it, or the version the check ran against
}

type trigKind uint8

const (
	trigCreated trigKind = iota
	trigDeleted
	trigDataChanged
	trigChildren
	trigSessionGone // a closed session's watches go, after its ephemerals' events
)

// trigger is a change a txn made that watches may be waiting for.
type trigger struct {
	kind    trigKind
	path    string
	acl     uint32 // ACL of the changed znode, for recursive watches below it
	zxid    int64
	session int64 // trigSessionGone
}

// watchTable is the registry of watches, indexed both ways so that a
// path's watchers and a session's watches are found without a scan: two
// B-trees of small values rather than a map per path and per session,
// which cost most of an idle session's memory when every session watched
// a path of its own. Its mutex is taken by readers registering a watch and
// by Publish; the published View only changes under it, which is what
// makes registration race-free: a watch registered against an older View
// is checked against the current one, and every change after that is
// matched by the next Publish.
type watchTable struct {
	mu          sync.Mutex
	byPath      *btree.BTreeG[pathWatch]    // ordered by path, then session
	bySession   *btree.BTreeG[sessionWatch] // ordered by session, then path
	recursiveIn [2]int                      // recursive registrations in the data and the child registry, to skip the ancestor walk
	skipACL     bool                        // events go to every watcher (Options.SkipACL)
	auth        map[int64][]wire.Id         // identities, for the READ check on recursive events
	ipAuth      map[string][]wire.Id        // the identity list of a session known only by its address, shared
	scratch     []int64
	above       []int64     // sessions with recursive watches above a changed path
	aboveKinds  []WatchKind // and the recursive kinds each has there
	kinds       []WatchKind // the kinds of the sessions a change finds on its path
	// spent are the one-shot watches recent publishes used up, by
	// session, with the View each publish made (see Watch), until no
	// reader can register a watch against an older View; spentN counts
	// them, spentSwept after the last sweep for those.
	spent              map[int64][]spentWatch
	spentN, spentSwept int
	gone               []sessionWatch
	// fanout are ZooKeeper's watch fan-out summaries, by trigKind
	// (node_created_watch_count, node_deleted_, node_changed_,
	// node_children_).
	fanout [trigSessionGone]NamespaceStat

	// The order data watches were registered in, for listing them as
	// ZooKeeper's hash maps do (they keep insertion order within a
	// bucket): a path's first data watch of any session, a session's
	// first data watch, and each (session, path) data watch (in
	// bySession).
	seq      uint64
	pathData map[string]pathOrder
	sessData map[int64]uint64
}

// spentWatch records that a publish used up a session's one-shot watches
// on path: their kinds, and the sequence number of the View it published.
type spentWatch struct {
	path  string
	kinds WatchKind
	seq   uint64
}

// sessionKinds sorts sessions and their kinds together, by session.
type sessionKinds struct {
	sessions []int64
	kinds    []WatchKind
}

func (a sessionKinds) Len() int           { return len(a.sessions) }
func (a sessionKinds) Less(i, j int) bool { return a.sessions[i] < a.sessions[j] }
func (a sessionKinds) Swap(i, j int) {
	a.sessions[i], a.sessions[j] = a.sessions[j], a.sessions[i]
	a.kinds[i], a.kinds[j] = a.kinds[j], a.kinds[i]
}

// pathWatch and sessionWatch are one session's watch kinds on one path,
// as the two indexes hold them.
type pathWatch struct {
	path    string
	session int64
	kind    WatchKind
}

type sessionWatch struct {
	session int64
	path    string
	kind    WatchKind
	seq     uint64 // when its data watch was registered; 0 with none
}

// pathOrder is when a path got its first data watch, and how many
// sessions hold one on it now.
type pathOrder struct {
	seq   uint64
	count int
}

func newWatchTable(skipACL bool) *watchTable {
	return &watchTable{
		skipACL: skipACL,
		byPath: newBTree(func(a, b pathWatch) bool {
			if a.path != b.path {
				return a.path < b.path
			}
			return a.session < b.session
		}),
		bySession: newBTree(func(a, b sessionWatch) bool {
			if a.session != b.session {
				return a.session < b.session
			}
			return a.path < b.path
		}),
		auth:     make(map[int64][]wire.Id),
		ipAuth:   make(map[string][]wire.Id),
		pathData: make(map[string]pathOrder),
		sessData: make(map[int64]uint64),
	}
}

// kindOf returns session's watch kinds on path.
func (w *watchTable) kindOf(session int64, path string) WatchKind {
	e, _ := w.byPath.Get(pathWatch{path: path, session: session})
	return e.kind
}

// watchers calls f with each session watching path, in session order,
// until f returns false.
func (w *watchTable) watchers(path string, f func(session int64, k WatchKind) bool) {
	w.byPath.Ascend(pathWatch{path: path, session: math.MinInt64}, func(e pathWatch) bool {
		return e.path == path && f(e.session, e.kind)
	})
}

// watchesOf calls f with each of session's watches, in path order, until f
// returns false.
func (w *watchTable) watchesOf(session int64, f func(e sessionWatch) bool) {
	w.bySession.Ascend(sessionWatch{session: session}, func(e sessionWatch) bool {
		return e.session == session && f(e)
	})
}

// set changes session's watch kinds on path from old to nw, keeping the
// counts and the registration order. The table keeps path for a new
// entry, so the caller must own it then; an entry that stays keeps the
// path it was made with (a removeWatches' path may be a view of the
// request's buffer, which the next request overwrites).
func (w *watchTable) set(session int64, path string, old, nw WatchKind) {
	if old == nw {
		return
	}
	for i, k := range [...]WatchKind{watchRecursiveData, watchRecursiveChild} {
		if old&k == 0 && nw&k != 0 {
			w.recursiveIn[i]++
		} else if old&k != 0 && nw&k == 0 {
			w.recursiveIn[i]--
		}
	}
	prev, found := w.bySession.Get(sessionWatch{session: session, path: path})
	if found {
		path = prev.path
	}
	seq := prev.seq
	switch had, has := old&dataKinds != 0, nw&dataKinds != 0; {
	case has && !had:
		w.seq++
		seq = w.seq
		p := w.pathData[path]
		if p.count == 0 {
			p.seq = seq
		}
		p.count++
		w.pathData[path] = p
		if _, ok := w.sessData[session]; !ok {
			w.sessData[session] = seq
		}
	case had && !has:
		seq = 0
		if p := w.pathData[path]; p.count > 1 {
			p.count--
			w.pathData[path] = p
		} else {
			delete(w.pathData, path)
		}
		// ZooKeeper keeps a connection's entry, empty, until the
		// connection goes: wchs counts it and wchc lists it.
	}
	if nw == 0 {
		w.byPath.Delete(pathWatch{path: path, session: session})
		w.bySession.Delete(sessionWatch{session: session, path: path})
		return
	}
	w.byPath.Set(pathWatch{path: path, session: session, kind: nw})
	w.bySession.Set(sessionWatch{session: session, path: path, kind: nw, seq: seq})
}

// DataWatchOrder returns, for the data watches now registered, when each
// path got its first, when each session got its first, and when each of a
// session's paths got its: numbers that rise in registration order.
func (t *Tree) DataWatchOrder() (paths map[string]uint64, sessions map[int64]uint64, sessionPaths map[int64]map[string]uint64) {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	paths = make(map[string]uint64, len(w.pathData))
	for p, o := range w.pathData {
		paths[p] = o.seq
	}
	sessions = make(map[int64]uint64, len(w.sessData))
	sessionPaths = make(map[int64]map[string]uint64, len(w.sessData))
	for s, seq := range w.sessData {
		sessions[s] = seq
		sessionPaths[s] = map[string]uint64{}
	}
	w.bySession.Scan(func(e sessionWatch) bool {
		if e.seq != 0 {
			sessionPaths[e.session][e.path] = e.seq
		}
		return true
	})
	return paths, sessions, sessionPaths
}

// anyRecursive reports whether any session holds a recursive watch.
func (w *watchTable) anyRecursive() bool { return w.recursiveIn[0]+w.recursiveIn[1] > 0 }

// add registers kinds k of session's watches on path: in each registry k
// has a kind in, it replaces the one the session had there.
func (w *watchTable) add(session int64, path string, k WatchKind) {
	old := w.kindOf(session, path)
	nw := old
	if k&dataKinds != 0 {
		nw = nw&^dataKinds | k&dataKinds
	}
	if k&childKinds != 0 {
		nw = nw&^childKinds | k&childKinds
	}
	w.set(session, path, old, nw)
}

// clear removes kinds k of session's watches on path and reports whether
// any was there.
func (w *watchTable) clear(session int64, path string, k WatchKind) bool {
	old := w.kindOf(session, path)
	if old&k == 0 {
		return false
	}
	w.set(session, path, old, old&^k)
	return true
}

func (w *watchTable) removeSession(session int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropSession(session)
}

func (w *watchTable) dropSession(session int64) {
	gone := w.gone[:0]
	w.watchesOf(session, func(e sessionWatch) bool {
		gone = append(gone, e)
		return true
	})
	for _, e := range gone {
		w.set(session, e.path, e.kind, 0)
	}
	clear(gone)
	w.gone = gone[:0]
	delete(w.auth, session)
	delete(w.sessData, session)
}

// publish swaps in the new View and matches the triggers against the
// watches, under the registry's lock.
func (w *watchTable) publish(pub *atomic.Pointer[View], v *View, trigs []trigger, oldest uint64) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	pub.Store(v)
	w.pruneSpent(oldest)
	var out []Event
	for i := range trigs {
		out = w.fire(out, &trigs[i], v)
	}
	return out
}

// spend records that the publish of View seq used up session's one-shot
// watches of the given kinds on path.
func (w *watchTable) spend(session int64, path string, kinds WatchKind, seq uint64) {
	if w.spent == nil {
		w.spent = make(map[int64][]spentWatch)
	}
	l := w.spent[session]
	for i := range l {
		if l[i].path == path {
			if l[i].seq != seq {
				l[i].seq, l[i].kinds = seq, 0
			}
			l[i].kinds |= kinds
			return
		}
	}
	w.spent[session] = append(l, spentWatch{path: path, kinds: kinds, seq: seq})
	w.spentN++
}

// spentSince reports whether a publish after View seq used up session's
// one-shot watch of kind on path.
func (w *watchTable) spentSince(session int64, path string, kind WatchKind, seq uint64) bool {
	for _, sw := range w.spent[session] {
		if sw.path == path {
			return sw.seq > seq && sw.kinds&kind != 0
		}
	}
	return false
}

// sweepDue reports whether the record of used-up watches has doubled
// since the last sweep.
func (w *watchTable) sweepDue() bool { return w.spentN >= max(1024, 2*w.spentSwept) }

// pruneSpent forgets the one-shot watches used up by publishes of Views
// up to oldest: no reader registers a watch against a View older than
// that (see Watch). It sweeps the record only once it has doubled since
// the last sweep, which keeps the cost per watch used up constant.
func (w *watchTable) pruneSpent(oldest uint64) {
	if !w.sweepDue() {
		return
	}
	for s, l := range w.spent {
		kept := l[:0]
		for _, sw := range l {
			if sw.seq > oldest {
				kept = append(kept, sw)
			}
		}
		clear(l[len(kept):])
		w.spentN -= len(l) - len(kept)
		if len(kept) == 0 {
			delete(w.spent, s)
		} else {
			w.spent[s] = kept
		}
	}
	w.spentSwept = w.spentN
}

// fire appends the events one trigger causes, in session order, one per
// session, and drops the one-shot watches it used up.
func (w *watchTable) fire(out []Event, tr *trigger, v *View) []Event {
	acls := v.acls
	if tr.kind == trigSessionGone {
		w.dropSession(tr.session)
		return out
	}
	// A create and a setData go to the data registry, a child list's
	// change to the child registry, a delete to both. Each fires the
	// path's watches of its registry (a child event not the recursive
	// ones) and the recursive watches above the path (not for a child
	// event).
	var typ wire.EventType
	var oneShot, persistent, recursive WatchKind
	switch tr.kind {
	case trigCreated:
		typ, oneShot, persistent, recursive = wire.EventNodeCreated, WatchData, watchPersistentData|watchRecursiveData, watchRecursiveData
	case trigDataChanged:
		typ, oneShot, persistent, recursive = wire.EventNodeDataChanged, WatchData, watchPersistentData|watchRecursiveData, watchRecursiveData
	case trigDeleted:
		typ, oneShot, persistent, recursive = wire.EventNodeDeleted, WatchData|WatchChild, WatchPersistent|WatchRecursive, WatchRecursive
	case trigChildren:
		typ, oneShot, persistent = wire.EventNodeChildrenChanged, WatchChild, watchPersistentChild
	}
	hit := w.scratch[:0]
	// ZooKeeper's fan-out figures count, per change, the sessions each
	// of its two watch registries finds, before any READ check: its
	// data registry (data, persistent and recursive watches) and its
	// child registry (child and persistent watches; recursive ones too
	// for a delete), recursive watches above the path in both.
	var dataKinds, childKinds WatchKind
	switch tr.kind {
	case trigCreated, trigDataChanged:
		dataKinds = WatchData | watchPersistentData | watchRecursiveData
	case trigDeleted:
		dataKinds, childKinds = WatchData|watchPersistentData|watchRecursiveData, WatchChild|watchPersistentChild|watchRecursiveChild
	case trigChildren:
		childKinds = WatchChild | watchPersistentChild
	}
	dataN, childN := 0, 0
	kinds := w.kinds[:0] // of the sessions in hit, which come in session order
	w.watchers(tr.path, func(s int64, k WatchKind) bool {
		if k&(oneShot|persistent) != 0 {
			hit = append(hit, s)
			kinds = append(kinds, k)
		}
		if k&dataKinds != 0 {
			dataN++
		}
		if k&childKinds != 0 {
			childN++
		}
		return true
	})
	var owned string // tr.path copied, once a spent watch needs it
	for j, s := range hit {
		if spent := kinds[j] & oneShot; spent != 0 {
			w.clear(s, tr.path, oneShot)
			if owned == "" {
				owned = strings.Clone(tr.path)
			}
			w.spend(s, owned, spent, v.seq)
		}
	}
	// Recursive watches above the path see its data events (and its
	// delete), but only sessions that may read the znode get them.
	above := w.above[:0]
	aboveKinds := w.aboveKinds[:0]
	if w.anyRecursive() && recursive != 0 && tr.path != rootPath {
		for p := tr.path; p != rootPath; {
			p, _ = splitPath(p)
			w.watchers(p, func(s int64, k WatchKind) bool {
				if k&recursive != 0 {
					above = append(above, s)
					aboveKinds = append(aboveKinds, k&recursive)
				}
				return true
			})
		}
	}
	if len(above) > 0 {
		// Each session once in each registry: one on the path itself is
		// counted already.
		sort.Sort(sessionKinds{above, aboveKinds})
		extraData, extraChild := 0, 0
		for i := 0; i < len(above); {
			s, k := above[i], WatchKind(0)
			for ; i < len(above) && above[i] == s; i++ {
				k |= aboveKinds[i]
			}
			var here WatchKind
			if j, found := slices.BinarySearch(hit, s); found {
				here = kinds[j]
			}
			if k&watchRecursiveData != 0 && here&dataKinds == 0 {
				extraData++
			}
			if k&watchRecursiveChild != 0 && here&childKinds == 0 {
				extraChild++
			}
		}
		dataN += extraData
		if childKinds != 0 {
			childN += extraChild
		}
	}
	if dataKinds != 0 && dataN > 0 {
		w.fanout[tr.kind].Add(int64(dataN))
	}
	if childKinds != 0 && childN > 0 {
		w.fanout[tr.kind].Add(int64(childN))
	}
	// A watch used up by a change its session may not read is gone all
	// the same, but no event goes out: ZooKeeper (since the fix of
	// CVE-2024-23944) delivers an event only to a session with READ on
	// the znode it names (a child event: on the parent).
	acl := acls[tr.acl]
	n := 0
	for _, s := range hit {
		if w.skipACL || checkACL(acl, wire.PermRead, w.auth[s]) {
			hit[n] = s
			n++
		}
	}
	hit = hit[:n]
	for _, s := range above {
		if w.skipACL || checkACL(acl, wire.PermRead, w.auth[s]) {
			hit = append(hit, s)
		}
	}
	w.above, w.aboveKinds, w.kinds = above[:0], aboveKinds[:0], kinds[:0]
	sort.Slice(hit, func(i, j int) bool { return hit[i] < hit[j] })
	// The trigger's path may share the memory of the znode's record, which
	// a later setData of another znode may reuse once this version is
	// replaced; the events are sent after that may have happened (by the
	// connections' loops), so they get a copy of their own.
	path := tr.path
	if len(hit) > 0 {
		path = strings.Clone(path)
	}
	for i, s := range hit {
		if i > 0 && hit[i-1] == s {
			continue
		}
		out = append(out, Event{Session: s, Type: typ, Path: path, Zxid: tr.zxid})
	}
	w.scratch = hit[:0]
	return out
}

// maxSharedAuth bounds the addresses whose identity list SetAuth shares.
const maxSharedAuth = 4096

// SetAuth records a session's identities for the READ check made when a
// recursive watch fires below its path. Call it when the session is
// created and after every successful auth.
func (t *Tree) SetAuth(session int64, ids []wire.Id) {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(ids) == 1 && ids[0].Scheme == "ip" {
		// Most sessions are known only by their address, and many share
		// one: they share the list too (it is never written).
		if shared, ok := w.ipAuth[ids[0].ID]; ok {
			w.auth[session] = shared
			return
		}
		shared := []wire.Id{ids[0]}
		if len(w.ipAuth) < maxSharedAuth {
			w.ipAuth[ids[0].ID] = shared
		}
		w.auth[session] = shared
		return
	}
	w.auth[session] = append([]wire.Id(nil), ids...)
}

// Watch registers a one-shot watch (WatchData or WatchChild) that a read
// of path on View v asked for. If path changed between v and the newest
// published version, the watch is not kept and the event is returned at
// once (ok is true); deliver it after the read's reply.
func (t *Tree) Watch(v *View, session int64, path string, kind WatchKind) (ev Event, ok bool) {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := t.pub.Load()
	if cur.zxid > v.zxid {
		// A watch of this kind the session set before, used up by a
		// change after v, already told it: in ZooKeeper's order this
		// one is the same watch, set before that change and used up by
		// it.
		if w.spentSince(session, path, kind, v.seq) {
			return Event{}, false
		}
		if typ, changed := changedSince(v, cur, path, kind); changed {
			// A persistent watch of the session that saw the change
			// told it already: in ZooKeeper's order the change fired
			// both watches at once, one event, and used this one up.
			// This one replaced a persistent watch on path itself in
			// its registry (see WatchKind), which the change then used
			// up too.
			if k := w.kindOf(session, path); w.toldOf(session, path, typ, k) {
				if mine := k & kind.registry() &^ kind; mine != 0 {
					w.set(session, path, k, k&^mine)
				}
				return Event{}, false
			}
			// The same READ check as fire makes, on the znode as it is
			// (as it was, when it is gone).
			it, ok := cur.lookup(path)
			acls := cur.acls
			if !ok {
				it, ok = v.lookup(path)
				acls = v.acls
			}
			if ok && !t.opts.permits(acls[it.meta().ACL], wire.PermRead, w.auth[session]) {
				return Event{}, false
			}
			return Event{Session: session, Type: typ, Path: path, Zxid: cur.zxid}, true
		}
	}
	w.add(session, path, kind)
	return Event{}, false
}

// toldOf reports whether session's persistent watches (k: its kinds on
// path) fire for a change of type typ to path.
func (w *watchTable) toldOf(session int64, path string, typ wire.EventType, k WatchKind) bool {
	var here, above WatchKind
	switch typ {
	case wire.EventNodeCreated, wire.EventNodeDataChanged:
		here, above = watchPersistentData|watchRecursiveData, watchRecursiveData
	case wire.EventNodeDeleted:
		here, above = WatchPersistent|WatchRecursive, WatchRecursive
	case wire.EventNodeChildrenChanged:
		here = watchPersistentChild
	}
	if k&here != 0 {
		return true
	}
	if above == 0 || !w.anyRecursive() {
		return false
	}
	for p := path; p != rootPath && p != ""; {
		p, _ = splitPath(p)
		if w.kindOf(session, p)&above != 0 {
			return true
		}
	}
	return false
}

// registry is the kinds of the registry a one-shot kind is kept in.
func (k WatchKind) registry() WatchKind {
	if k&WatchChild != 0 {
		return childKinds
	}
	return dataKinds
}

// changedSince reports what a watch of this kind set on old would have
// seen by cur.
func changedSince(old, cur *View, path string, kind WatchKind) (wire.EventType, bool) {
	rel := old.zxid
	was, existed := old.lookup(path)
	now, exists := cur.lookup(path)
	switch {
	case existed && !exists:
		return wire.EventNodeDeleted, true
	case !existed && exists:
		return wire.EventNodeCreated, true
	case !exists:
		return 0, false
	}
	m := now.meta()
	if m.Czxid != was.meta().Czxid {
		return wire.EventNodeDeleted, true // deleted and created again
	}
	if kind == WatchData && m.Mzxid > rel {
		return wire.EventNodeDataChanged, true
	}
	if kind == WatchChild && m.Pzxid > rel {
		return wire.EventNodeChildrenChanged, true
	}
	return 0, false
}

// AddWatch is addWatch: a persistent (WatchPersistent) or persistent
// recursive (WatchRecursive) watch on path, which need not exist. The watch
// sees every change after the newest published version, whose zxid it
// returns; that version may be newer than the one the caller answers
// from, so the caller must not let the session read anything older than
// it afterwards (the engine makes the session's next reads wait for it).
// Otherwise a change published between the two would show neither in an
// event nor in the session's reads: a CuratorCache would stay short of the
// tree for good.
func (t *Tree) AddWatch(session int64, path string, kind WatchKind) (zxid int64) {
	w := t.watches
	w.mu.Lock()
	w.add(session, path, kind)
	zxid = t.pub.Load().zxid
	w.mu.Unlock()
	return zxid
}

// SetWatches re-registers a reconnecting session's watches (setWatches,
// setWatches2) against the newest published version, whose zxid it
// returns: a watch whose condition already changed after relZxid fires
// at once instead, as ZooKeeper's DataTree.setWatches decides. Persistent
// watches fire nothing for what changed before: the session's reads must
// show at least that version.
func (t *Tree) SetWatches(session, relZxid int64, data, exist, child, persistent, recursive []string) ([]Event, int64) {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := t.pub.Load()
	var out []Event
	ev := func(typ wire.EventType, p string) {
		out = append(out, Event{Session: session, Type: typ, Path: p, Zxid: cur.zxid})
	}
	// A data or child watch on a znode that is gone fires NodeDeleted; one
	// on a znode changed after relZxid fires the change.
	rewatch := func(paths []string, kind WatchKind, changed wire.EventType, zxid func(meta) int64) {
		for _, p := range paths {
			it, ok := cur.lookup(p)
			switch {
			case !ok:
				ev(wire.EventNodeDeleted, p)
			case zxid(it.meta()) > relZxid:
				ev(changed, p)
			default:
				w.add(session, p, kind)
			}
		}
	}
	rewatch(data, WatchData, wire.EventNodeDataChanged, func(m meta) int64 { return m.Mzxid })
	for _, p := range exist {
		if _, ok := cur.lookup(p); ok {
			ev(wire.EventNodeCreated, p)
		} else {
			w.add(session, p, WatchData)
		}
	}
	rewatch(child, WatchChild, wire.EventNodeChildrenChanged, func(m meta) int64 { return m.Pzxid })
	for _, p := range persistent {
		w.add(session, p, WatchPersistent)
	}
	for _, p := range recursive {
		w.add(session, p, WatchRecursive)
	}
	return out, cur.zxid
}

// registries are the watch registries removeWatches and checkWatches
// look in for a WatcherType: ZooKeeper 3.8 knows Children, Data and Any
// (both, child first), and fails any other number with
// MARSHALLINGERROR.
func registries(wt wire.WatcherType) ([]WatchKind, error) {
	switch wt {
	case wire.WatcherChildren:
		return []WatchKind{childKinds}, nil
	case wire.WatcherData:
		return []WatchKind{dataKinds}, nil
	case wire.WatcherAny:
		return []WatchKind{childKinds, dataKinds}, nil
	}
	return nil, wire.ErrMarshallingError
}

// RemoveWatches is removeWatches: it drops the session's watches on path
// from the registries of the given type, whatever their mode, or returns
// NOWATCHER when there were none.
func (t *Tree) RemoveWatches(session int64, path string, wt wire.WatcherType) error {
	regs, err := registries(wt)
	if err != nil {
		return err
	}
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	var kinds WatchKind
	for _, r := range regs {
		kinds |= r
	}
	if !w.clear(session, path, kinds) {
		return wire.ErrNoWatcher
	}
	return nil
}

// CheckWatches is checkWatches as ZooKeeper 3.8 answers it. Its watch
// registries look only whether anyone watches exactly path, not whether
// the asking session does. They walk from path to its parents, which
// fails on a name without a "/": a path not starting with "/" is
// MARSHALLINGERROR when it has no "/" at all, or when nobody watches it
// and the registry holds a recursive watch (the walk then goes past the
// path itself). "" is never watched. Children and Data ask one registry,
// Any both, the child registry first.
func (t *Tree) CheckWatches(session int64, path string, wt wire.WatcherType) error {
	regs, err := registries(wt)
	if err != nil {
		return err
	}
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	found := false
	for _, kinds := range regs {
		if path == "" {
			continue
		}
		watched := false
		w.watchers(path, func(_ int64, k WatchKind) bool {
			watched = k&kinds != 0
			return !watched
		})
		// The walk goes on to the parents only while the registry
		// holds a recursive watch somewhere.
		recursive := w.recursiveIn[0]
		if kinds == childKinds {
			recursive = w.recursiveIn[1]
		}
		if path[0] != '/' && (!strings.Contains(path, "/") || !watched && recursive > 0) {
			return wire.ErrMarshallingError
		}
		found = found || watched
	}
	if !found {
		return wire.ErrNoWatcher
	}
	return nil
}

// RemoveSession drops every watch of a session whose connection is gone.
func (t *Tree) RemoveSession(session int64) { t.watches.removeSession(session) }

// SessionWatches returns the paths a session watches and the kinds of each.
func (t *Tree) SessionWatches(session int64) map[string]WatchKind {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]WatchKind)
	w.watchesOf(session, func(e sessionWatch) bool {
		out[e.path] = e.kind
		return true
	})
	return out
}

// The kinds of ZooKeeper's data-watch registry (one-shot data watches
// from getData and exists, and addWatch's of either mode) and of its
// child-watch registry (one-shot child watches, and addWatch's).
const (
	dataKinds  = WatchData | watchPersistentData | watchRecursiveData
	childKinds = WatchChild | watchPersistentChild | watchRecursiveChild
)

// IsDataWatch reports whether kinds include one ZooKeeper counts as a data
// watch, the ones wchs, wchc and wchp report.
func IsDataWatch(k WatchKind) bool { return k&dataKinds != 0 }

// WatchCounts returns the number of sessions that have had data watches
// on their connection, of paths with data watches, and of (session, path)
// data watches, as the wchs four-letter word reports them.
func (t *Tree) WatchCounts() (sessions, paths, watches int) {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	// A session that has had a data watch on its connection counts, as
	// ZooKeeper's entry for the connection stays after its watches fire.
	w.bySession.Scan(func(e sessionWatch) bool {
		if e.kind&dataKinds != 0 {
			watches++
		}
		return true
	})
	// pathData holds exactly the paths some session has a data watch on.
	return len(w.sessData), len(w.pathData), watches
}

// WatchFanout are ZooKeeper's watch fan-out summaries: per znode
// created, deleted, changed and per child list changed, the sessions its
// watch registries found for the change (node_created_watch_count,
// node_deleted_watch_count, node_changed_watch_count,
// node_children_watch_count).
func (t *Tree) WatchFanout() (created, deleted, changed, children NamespaceStat) {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fanout[trigCreated], w.fanout[trigDeleted], w.fanout[trigDataChanged], w.fanout[trigChildren]
}

// ResetWatchFanout starts the fan-out summaries again.
func (t *Tree) ResetWatchFanout() {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fanout = [trigSessionGone]NamespaceStat{}
}

// WatchTotal is mntr's zk_watch_count: the data watches and the child
// watches, each (session, path) counted once in each manager it is in.
func (t *Tree) WatchTotal() int {
	w := t.watches
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	w.bySession.Scan(func(e sessionWatch) bool {
		if e.kind&dataKinds != 0 {
			n++
		}
		if e.kind&childKinds != 0 {
			n++
		}
		return true
	})
	return n
}
