package ztree

import (
	"sync/atomic"
	"unsafe"

	"github.com/tidwall/btree"
)

// Cells. A change to a znode that replaces its item in the B-tree costs
// more than the new record: the first write to a leaf after a publish
// copies the leaf (and the inner nodes above it), because the published
// View shares it. With record reuse on, a znode changed once is likely to
// change again (a counter, a configuration, a parent gaining children), so
// its B-tree slot then points to a cell instead: the znode's versions,
// newest first, each stamped with the sequence number of the first View
// that shows it. Later changes push a version onto the cell and leave the
// B-tree alone, so the shard stays clean and a publish copies nothing for
// them. Only a record a setData replaced goes back to the pool (see push).
//
// A reader of a View with sequence number s takes the newest version
// stamped s or less; the applier takes the newest. Versions that no reader
// can take any more are cut off the chain after the same grace period as
// replaced records (reuse.go): once every busy slot entered at the
// sequence of a later version, and the records the cut frees go to the
// pool. A reader that holds its slot for long (a snapshot of a big tree)
// holds every version pushed meanwhile; past maxChainBytes of them the
// tree puts plain items in the B-tree again, as without cells, until
// pruning catches up.

// cellBit, set in an item's klen, says that the item's p is a *cell, not a
// record. Only items in the B-trees carry it: lookups return the version a
// reader may see as a plain item (see item.as).
const cellBit = 1 << 31

// newest is the sequence number the applier reads at: every version.
const newest = ^uint64(0)

// maxChainBytes bounds the records held in chains behind their heads.
const maxChainBytes = 32 << 20

// cell is a changing znode's slot. The newest version (the head) is kept
// in the cell itself, so that a reader of a current View finds its record
// with one load more than a plain item costs; older versions hang off
// older, newest first. The head's path is the znode's path (every record
// starts with it), which is where a B-tree search reads it.
type cell struct {
	seq   atomic.Uint64        // the head's stamp: the first View that shows it
	rec   atomic.Pointer[byte] // the head's record
	older atomic.Pointer[version]
	// The head's size and class (see version), and its node digest when
	// Prep worked it out (digestOK): for the applier only.
	size, class int32
	klen        uint32 // the path's length
	digestOK    bool
	digest      uint64
}

// version is one of a cell's older records. Its fields do not change
// while it is on a chain, except next, which the applier cuts only where
// no reader walks.
type version struct {
	rec   unsafe.Pointer // the record
	next  *version       // the version before it
	seq   uint64         // the first View that shows it
	size  int32          // the record's length
	class int32          // its capacity if the pool may reuse it, else 0
}

func (it item) isCell() bool { return it.klen&cellBit != 0 }

// as returns the item as a reader of the View with sequence number seq
// sees it: a plain item is itself; a cell gives its newest version stamped
// seq or less.
func (it item) as(seq uint64) item {
	if it.klen&cellBit == 0 {
		return it
	}
	return item{p: (*cell)(it.p).at(seq), klen: it.klen &^ cellBit, ph: it.ph, pfx: it.pfx}
}

// at is the record of the newest version stamped seq or less, or nil
// when every version is newer (the cell is not in that View).
//
// The applier changes the head by first putting it on older, then storing
// the new stamp, then the new record. A head stamped seq or less was
// published, so a push meanwhile changes the stamp to one no reader has:
// a stamp read before and after the record that is the same and not past
// seq means the record goes with it; otherwise the version is on older.
func (c *cell) at(seq uint64) unsafe.Pointer {
	if s := c.seq.Load(); s <= seq {
		r := c.rec.Load()
		if c.seq.Load() == s {
			return unsafe.Pointer(r)
		}
	}
	v := c.older.Load()
	for v != nil && v.seq > seq {
		v = v.next
	}
	if v == nil {
		return nil
	}
	return v.rec
}

// change puts nw, the new record of the znode whose current record is
// old, into the applier's tree: a new version on the znode's cell when it
// has one, a new cell when record reuse is on, a plain item otherwise.
// reusable says whether old's and nw's memory may go back to the pool once
// replaced (only a persistent znode's may: the indexes keep other znodes'
// paths as strings sharing their first record).
//
// digest is nw's node digest when known (digestOK), kept with the head for
// the next write's digestBefore.
func (t *Tree) change(old, nw item, reusable bool, digest uint64, digestOK bool) {
	p := &t.pool
	if p.readers == nil {
		t.put(nw)
		return
	}
	cur, ok := t.cached(nw)
	if !ok {
		i := nw.shard()
		if i != t.hintShard {
			t.hint, t.hintShard = btree.PathHint{}, i
		}
		cur, _ = t.st.shards[i].GetHint(nw, &t.hint)
	}
	if p.chainBytes >= maxChainBytes {
		// Too much waits behind busy slots: make no version the
		// chains would hold as well. A cell's znode gets a plain item
		// again; the cell lives on in the Views that have it.
		t.put(nw)
		if reusable && !cur.isCell() {
			p.retire(old)
		}
		return
	}
	size, class := recordSize(nw, reusable)
	if cur.isCell() {
		c := (*cell)(cur.p)
		p.push(c, nw, size, class, reusable)
		c.digest, c.digestOK = digest, digestOK
		if i := nw.cacheSlot(); t.cache[i].cell.Load() == c {
			t.cache.mirror(i, c) // the new head
		} else if t.cache[i^1].cell.Load() == c {
			t.cache.mirror(i^1, c)
		}
		return
	}
	// The first change: no View has the cell yet, so its head is its
	// only version, and old goes the way of any replaced record.
	c := &cell{size: size, class: class, klen: nw.klen, digest: digest, digestOK: digestOK}
	c.seq.Store(p.seq + 1)
	c.rec.Store((*byte)(nw.p))
	t.put(item{p: unsafe.Pointer(c), klen: nw.klen | cellBit, ph: nw.ph, pfx: nw.pfx})
	if reusable {
		p.retire(old)
	}
}

// recordSize is a record's length, and its capacity if the pool may reuse
// it (else 0).
func recordSize(nw item, reusable bool) (size, class int32) {
	pooled, n := nw.pooledSize()
	if pooled && reusable {
		return int32(n), int32(recordClass(n))
	}
	return int32(n), 0
}

// push makes nw the head of c, shown from the next View on. The old head
// goes back to the pool after its grace only if nw is a setData's
// (reusable): a prepped txn that changed the znode without setting its
// data (a child's create, a setACL) carries the data it read from the old
// head, and so does every txn prepped after it on the znode until one
// sets data. Such txns have lower zxids than the setData that replaces
// the head, so they are applied, and forget the record, before it is
// replaced (the rule replaced records followed before cells).
func (p *recordPool) push(c *cell, nw item, size, class int32, reusable bool) {
	var v *version
	if n := len(p.versions); n > 0 {
		v = p.versions[n-1]
		p.versions[n-1] = nil
		p.versions = p.versions[:n-1]
	} else {
		v = new(version)
	}
	v.rec, v.seq, v.size, v.class = unsafe.Pointer(c.rec.Load()), c.seq.Load(), c.size, c.class
	if !reusable {
		v.class = 0
	}
	v.next = c.older.Load()
	c.older.Store(v)
	seq := p.seq + 1
	c.seq.Store(seq)
	c.rec.Store((*byte)(nw.p))
	c.size, c.class = size, class
	p.chainBytes += int(v.size)
	p.retired = append(p.retired, retiredRec{c: c, seq: seq})
}

// maxFreeVersions bounds the pruned versions kept for reuse.
const maxFreeVersions = 1 << 14

// prune drops c's versions that no reader can take: every busy slot
// entered at safe or later, so no reader walks past the newest version
// stamped safe or less.
func (p *recordPool) prune(c *cell, safe uint64) {
	var d *version
	if c.seq.Load() <= safe {
		d = c.older.Load()
		c.older.Store(nil)
	} else if v := c.older.Load(); v != nil {
		for v.seq > safe && v.next != nil {
			v = v.next
		}
		d, v.next = v.next, nil
	}
	for d != nil {
		next := d.next
		p.chainBytes -= int(d.size)
		if n := int(d.class); n != 0 && p.bytes+n <= maxPooledBytes {
			p.free[n] = append(p.free[n], d.rec)
			p.bytes += n
		}
		*d = version{}
		if len(p.versions) < maxFreeVersions {
			p.versions = append(p.versions, d)
		}
		d = next
	}
}

// cacheBits sizes the cell cache: 32,768 slots, 1 MB.
const cacheBits = 15

// cellCache finds cells without a B-tree search. A write to a znode looks
// it up in Prep, again in Apply, and once more to change it; a read looks
// it up once, and a B-tree search misses the processor's cache a dozen
// times. A hash of the key's parent hash, name prefix and length picks
// two slots, the path's own and its neighbour in the same cache line;
// the path's cell goes to its own slot, or to the neighbour when that is
// free and its own is not, and a lookup checks both. (With one slot a
// path, the cells of a tenth of 10,000 znodes were not in the cache;
// with two, 4 %: TestCellCacheHoldsMostCells.) A lookup checks the whole
// path against the cell's head record.
//
// The applier stores cells (when it finds or makes one) and clears them
// (when their znode is deleted or gets a plain item again); readers load
// them. A cell in the cache is the applier's, which may be newer than a
// reader's View: a reader uses it only if it has a version stamped at or
// before its View, which makes it the cell its View holds at that path
// (every version is stamped with the first View that shows it, and a cell
// leaves the cache before the View without its znode is published).
// Otherwise the reader searches its View's B-tree.
//
// Each slot also mirrors its cell's head (stamp, record, path length), so
// that a reader of a current View gets the record without loading the
// cell. A slot is 32 bytes, two to a cache line: the applier's lookup
// brings in the mirror it then updates.
type cellCache [1 << cacheBits]cacheSlot

// cacheSlot holds a cell and a copy of its head. verLen holds a count of
// the applier's changes to the copy (high half; odd while one is under
// way) and the path's length (low half); a reader takes the copy only if
// verLen was the same, and even, before and after it read the rest. A
// reader would need to stall for 2^31 changes of one slot to be fooled.
type cacheSlot struct {
	cell   atomic.Pointer[cell]
	verLen atomic.Uint64
	stamp  atomic.Uint64
	rec    atomic.Pointer[byte]
}

// hold makes slot i hold c (nil: nothing) and mirror its head.
func (cc *cellCache) hold(i int, c *cell) {
	cc[i].cell.Store(c)
	cc.mirror(i, c)
}

// mirror copies c's head (nothing for nil) into slot i.
func (cc *cellCache) mirror(i int, c *cell) {
	m := &cc[i]
	ver := m.verLen.Load()>>32 + 1
	m.verLen.Store(ver << 32) // odd: changing
	var klen uint32
	if c == nil {
		m.rec.Store(nil)
		m.stamp.Store(0)
	} else {
		m.stamp.Store(c.seq.Load())
		m.rec.Store(c.rec.Load())
		klen = c.klen
	}
	m.verLen.Store((ver+1)<<32 | uint64(klen))
}

// head returns the record of k's path's newest version if the slot
// mirrors one stamped seq or less, or nil. The mirror is at least as new
// as the View the caller loaded before, so a head stamped at or before
// that View is the version it shows.
func (cc *cellCache) head(k item, seq uint64) unsafe.Pointer {
	i := k.cacheSlot()
	if r := cc.headAt(i, k, seq); r != nil {
		return r
	}
	return cc.headAt(i^1, k, seq)
}

// headAt is head for the copy in slot i.
func (cc *cellCache) headAt(i int, k item, seq uint64) unsafe.Pointer {
	m := &cc[i]
	w := m.verLen.Load()
	if w&(1<<32) != 0 || uint32(w) != k.klen {
		return nil
	}
	stamp, r := m.stamp.Load(), m.rec.Load()
	if m.verLen.Load() != w || r == nil || stamp > seq {
		return nil
	}
	if unsafe.String(r, int(k.klen)) != k.path() {
		return nil
	}
	return unsafe.Pointer(r)
}

func (it item) cacheSlot() int {
	h := uint64(it.ph)<<32 ^ uint64(it.klen&^cellBit) ^ it.pfx
	return int((h * 0x9e3779b97f4a7c15) >> (64 - cacheBits))
}

// find returns the cell of k's path and its slot, if the cache has it
// (else nil, -1). The caller is the applier or a reader in its slot, so
// the head record it reads the path from stays whole (see prune).
func (cc *cellCache) find(k item) (*cell, int) {
	i := k.cacheSlot()
	for _, j := range [2]int{i, i ^ 1} {
		c := cc[j].cell.Load()
		if c != nil && c.klen == k.klen&^cellBit && unsafe.String(c.rec.Load(), int(c.klen)) == k.path() {
			return c, j
		}
	}
	return nil, -1
}

// cached returns the cell item of k's path in the applier's tree, if the
// cache has it.
func (t *Tree) cached(k item) (item, bool) {
	if t.cache == nil {
		return item{}, false
	}
	if c, _ := t.cache.find(k); c != nil {
		return item{p: unsafe.Pointer(c), klen: k.klen | cellBit, ph: k.ph, pfx: k.pfx}, true
	}
	return item{}, false
}

// cacheItem notes what the applier's tree now holds at it's path: a cell
// is remembered, and anything else makes the cache forget that path.
func (t *Tree) cacheItem(it item) {
	if t.cache == nil {
		return
	}
	_, j := t.cache.find(it) // the path's cell, or an older one of it
	if it.isCell() {
		if j < 0 {
			j = it.cacheSlot()
			if t.cache[j].cell.Load() != nil && t.cache[j^1].cell.Load() == nil {
				j ^= 1
			}
		}
		t.cache.hold(j, (*cell)(it.p))
	} else if j >= 0 {
		t.cache.hold(j, nil)
	}
}

// cellDigest is the node digest of it, a head record the applier got from
// its tree, if its cell kept one.
func (t *Tree) cellDigest(it item) (uint64, bool) {
	if t.cache == nil {
		return 0, false
	}
	c, _ := t.cache.find(it)
	if c == nil || !c.digestOK || unsafe.Pointer(c.rec.Load()) != it.p {
		return 0, false
	}
	return c.digest, true
}

// preppedDigest is the node digest Prep worked out for path after txn
// zxid, the one being applied, if that txn made exactly one change and it
// is to path: then nothing else in the txn changes path, and the record
// the txn makes is the one Prep hashed.
func (t *Tree) preppedDigest(zxid int64, path string) (uint64, bool) {
	q, h := t.prep.queue, t.prep.head
	if h < len(q) && q[h].zxid == zxid && q[h].path == path && q[h].exists && (h+1 == len(q) || q[h+1].zxid != zxid) {
		return q[h].node.digest, true
	}
	return 0, false
}
