package ztree

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tidwall/btree"

	"zkd/wire"
)

// shardCount is the number of B-trees the namespace is split over. A
// publish copies only the shards a batch changed.
const shardCount = 64

// Options are the settings that change tree semantics.
type Options struct {
	// ExtendedTypes enables TTL nodes (zookeeper.extendedTypesEnabled).
	ExtendedTypes bool
	// EnforceQuota makes a hard quota limit refuse creates and setData
	// with QUOTAEXCEEDED (zookeeper.enforceQuota).
	EnforceQuota bool
	// SASLACLs admits ACL entries of the sasl scheme, as ZooKeeper does
	// once an authProvider.N names its SASLAuthenticationProvider.
	SASLACLs bool
	// X509ACLs admits ACL entries of the x509 scheme, as ZooKeeper does
	// once an authProvider.N names its X509AuthenticationProvider.
	X509ACLs bool
	// SkipACL lets every session do everything to every znode, whatever
	// its ACL, as ZooKeeper does with zookeeper.skipACL=yes: reads, writes,
	// getACL (unredacted) and watch events alike.
	SkipACL bool
}

type shards [shardCount]*btree.BTreeG[item]

// owned is a session's ephemeral znode in the ephemerals index.
type owned struct {
	session int64
	path    string
}

func lessOwned(a, b owned) bool {
	if a.session != b.session {
		return a.session < b.session
	}
	return a.path < b.path
}

func lessString(a, b string) bool { return a < b }

// Session is an open session as the txn log and snapshots record it: its id
// and negotiated timeout. The tree keeps them, changed by createSession and
// closeSession txns, so that a View holds the sessions that go with its
// znodes and a snapshot written from it is consistent. Whether a session is
// still alive is the engine's business.
type Session struct {
	ID      int64
	Timeout int32 // milliseconds
}

func lessSession(a, b Session) bool { return a.ID < b.ID }

// state is everything a version of the tree is made of. The applier owns
// one mutable state; Publish freezes copies of it into Views.
type state struct {
	shards     shards
	ephemerals *btree.BTreeG[owned]   // (session, path) of every ephemeral
	containers *btree.BTreeG[string]  // container znodes
	ttls       *btree.BTreeG[string]  // TTL znodes
	sessions   *btree.BTreeG[Session] // open sessions and their timeouts
	acls       [][]wire.ACL           // the ACL table as of this version
	zxid       int64                  // last applied txn
	digest     uint64                 // sum of node digests
	count      int                    // znodes, the root included
	dataSize   int64                  // bytes of paths and data, as ZooKeeper's approximateDataSize
	extended   bool
}

func newBTree[T any](less func(a, b T) bool) *btree.BTreeG[T] {
	return btree.NewBTreeGOptions(less, btree.Options{NoLocks: true})
}

// Tree is the namespace as the single applier sees it. Prep, Apply, Publish
// and the loading methods must be called from one goroutine (or under one
// lock); Views, watch registration and Published are safe from any
// goroutine.
type Tree struct {
	st    state
	dirty [shardCount]bool
	// dirtyIndex is set when the ephemerals, containers, TTL or sessions
	// indexes changed since the last publish.
	dirtyIndex bool

	acl    *aclTable
	quotas map[string]struct{} // paths that have a quota limit node
	opts   Options

	pub     atomic.Pointer[View]
	watches *watchTable
	pending []trigger // watch triggers applied but not yet published

	prep prepState
	pool recordPool
	// knownDigest is set while ApplyPrepped applies a txn whose digest
	// Prep computed: the changed znodes are not hashed again.
	knownDigest bool
	// digests are the digests logged for the hash four-letter word.
	digests digestLog
	// nsWrites counts writes per namespace for mntr.
	nsWrites namespaceStats
	// hint is where the last get went, in shard hintShard, so that the
	// applier's get-then-put of one znode searches the B-tree once. A
	// lookup does not start from it: lookups are mostly unrelated, and a
	// wrong guess costs more than it saves.
	hint      btree.PathHint
	hintShard int
	// cache finds cells without searching (nil until TrackReaders).
	cache *cellCache
	// aclAwaited are the znodes of a fuzzy snapshot whose ACL only the
	// txns after it hold (Loader.AddNodeAwaitingACL).
	aclAwaited map[string]struct{}
}

// New returns a tree holding what a fresh ZooKeeper server holds: the root,
// /zookeeper, /zookeeper/quota and /zookeeper/config (readable by anyone,
// writable by nobody but super). The returned tree is already published.
func New(opts Options) *Tree {
	t := newTree(opts)
	t.addSystemNodes()
	t.st.digest = t.digestAll()
	t.Publish()
	return t
}

// newTree returns a tree with no znodes at all.
func newTree(opts Options) *Tree {
	t := &Tree{
		acl:     newACLTable(),
		quotas:  make(map[string]struct{}),
		opts:    opts,
		watches: newWatchTable(opts.SkipACL),
	}
	for i := range t.st.shards {
		t.st.shards[i] = newBTree(lessItem)
	}
	t.st.ephemerals = newBTree(lessOwned)
	t.st.containers = newBTree(lessString)
	t.st.ttls = newBTree(lessString)
	t.st.sessions = newBTree(lessSession)
	t.st.extended = opts.ExtendedTypes
	return t
}

// addSystemNodes adds whichever of the root, /zookeeper, /zookeeper/quota
// and /zookeeper/config is missing, as a fresh ZooKeeper server has them.
func (t *Tree) addSystemNodes() {
	add := func(path string, m meta) {
		if _, ok := t.get(path); ok {
			return
		}
		if path != rootPath {
			parentPath, _ := splitPath(path)
			parent, _ := t.get(parentPath)
			pm := parent.meta()
			pm.NumChildren++
			t.put(makeItem(parent, &pm, parent.data()))
		}
		t.put(makeItem(keyOf(path), &m, Empty)) // empty, as ZooKeeper makes them
		t.st.count++
		t.st.dataSize += int64(len(path))
	}
	add(rootPath, meta{})
	add(procPath, meta{})
	add(quotaPath, meta{})
	// ZooKeeper installs the config ACL with setACL(…, version -1), which
	// leaves aversion at -1.
	add(configPath, meta{ACL: t.acl.intern(ReadACL), Aversion: -1})
}

// get looks path up in the applier's tree.
func (t *Tree) get(path string) (item, bool) {
	if len(path) == 0 || path[0] != '/' {
		return item{}, false
	}
	k := keyOf(path)
	if it, ok := t.cached(k); ok {
		return it.as(newest), true
	}
	i := k.shard()
	t.hint, t.hintShard = btree.PathHint{}, i
	it, ok := t.st.shards[i].GetHint(k, &t.hint)
	if ok && it.isCell() {
		t.cacheItem(it)
	}
	return it.as(newest), ok
}

// lookup finds path's znode as v has it: in the cell cache when it holds
// a version v may see, else in v's B-tree.
func (v *View) lookup(path string) (item, bool) {
	if len(path) == 0 || path[0] != '/' {
		return item{}, false
	}
	k := keyOf(path)
	if v.cache != nil {
		if rec := v.cache.head(k, v.seq); rec != nil {
			return item{p: rec, klen: k.klen, ph: k.ph, pfx: k.pfx}, true
		}
		if c, _ := v.cache.find(k); c != nil {
			if rec := c.at(v.seq); rec != nil {
				return item{p: rec, klen: k.klen, ph: k.ph, pfx: k.pfx}, true
			}
		}
	}
	it, ok := v.shards[k.shard()].Get(k)
	return it.as(v.seq), ok
}

// put stores it, replacing any item with the same path.
func (t *Tree) put(it item) {
	i := it.shard()
	if i == t.hintShard {
		t.st.shards[i].SetHint(it, &t.hint)
	} else {
		t.st.shards[i].Set(it)
	}
	t.cacheItem(it)
	t.dirty[i] = true
}

func (t *Tree) remove(path string) {
	k := keyOf(path)
	t.cacheItem(k) // forget it
	i := k.shard()
	if i == t.hintShard {
		t.st.shards[i].DeleteHint(k, &t.hint)
	} else {
		t.st.shards[i].Delete(k)
	}
	t.dirty[i] = true
}

// digestAll computes the tree digest from scratch.
//
// The shards are hashed in parallel: after loading a snapshot of a million
// znodes this is a tenth of a restart, and the sum does not depend on the
// order. Nothing changes the tree meanwhile.
func (t *Tree) digestAll() uint64 {
	workers := min(runtime.GOMAXPROCS(0), 4)
	var next atomic.Int32
	sums := make([]uint64, workers)
	var wg sync.WaitGroup
	for w := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < shardCount; i = int(next.Add(1)) - 1 {
				t.st.shards[i].Scan(func(it item) bool {
					sums[w] += itemDigest(it.as(newest))
					return true
				})
			}
		}()
	}
	wg.Wait()
	var d uint64
	for _, s := range sums {
		d += s
	}
	return d
}

// Zxid is the zxid of the last applied txn.
func (t *Tree) Zxid() int64 { return t.st.zxid }

// Digest is the digest of the applier's tree.
func (t *Tree) Digest() uint64 { return t.st.digest }

// Published returns the newest published version.
func (t *Tree) Published() *View { return t.pub.Load() }

// spentWindow is how many Views a tree without read slots remembers the
// watches each used up for (see Watch).
const spentWindow = 64

// Publish makes everything applied so far visible to readers as one new
// View, and matches the watch triggers of those txns against the registered
// watches. It returns the events to deliver, in zxid order, each once per
// watcher. Deliver them before any reply that was computed from the new
// View (rule 4, watch before data).
func (t *Tree) Publish() []Event {
	prev := t.pub.Load()
	t.pool.seq++
	v := &View{state: t.st, opts: t.opts, seq: t.pool.seq, cache: t.cache}
	for i := range v.shards {
		if t.dirty[i] || prev == nil {
			v.shards[i] = t.st.shards[i].Copy()
			t.dirty[i] = false
		} else {
			v.shards[i] = prev.shards[i]
		}
	}
	if t.dirtyIndex || prev == nil {
		v.ephemerals = t.st.ephemerals.Copy()
		v.containers = t.st.containers.Copy()
		v.ttls = t.st.ttls.Copy()
		v.sessions = t.st.sessions.Copy()
		t.dirtyIndex = false
	} else {
		v.ephemerals, v.containers, v.ttls, v.sessions = prev.ephemerals, prev.containers, prev.ttls, prev.sessions
	}
	v.acls = t.acl.lists
	trigs := t.pending
	// No reader registers a watch against a View older than the oldest
	// a read slot may hold; without slots, keep a generous window.
	// (The record changes only on this goroutine, so its size may be
	// read here without the registry's lock.)
	oldest := uint64(0)
	if t.watches.sweepDue() {
		if r := t.pool.readers; r != nil {
			oldest = r.oldest()
		} else if v.seq > spentWindow {
			oldest = v.seq - spentWindow
		}
	}
	events := t.watches.publish(&t.pub, v, trigs, oldest)
	// The triggers are spent; their slice carries the next batch's.
	clear(trigs)
	t.pending = trigs[:0]
	return events
}

// SetConfig sets /zookeeper/config's data outside any txn, as every member
// of a ZooKeeper ensemble does with its own copy of the ensemble's
// configuration when it starts and after it loads a snapshot: version -1,
// mzxid the configuration's version, mtime the wall clock's now (ms). The
// node is left out of the digest, so the tree's digest does not change.
// Call it only while nothing is prepped and not applied.
func (t *Tree) SetConfig(data []byte, version, now int64) {
	t.setData(configPath, data, -1, version, now)
}
