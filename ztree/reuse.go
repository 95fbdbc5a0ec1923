package ztree

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Record reuse. A setData gives its znode a new record, and the old one
// stays readable through every View published before it, by whichever
// goroutine loaded one of those. Left to the collector, that is an
// allocation of the data's size for every setData. With TrackReaders on,
// setData makes records whose memory is rounded up to a size class and
// marked as the pool's; the tree keeps such a record once it is replaced
// and hands it to a later setData of the same class, but only once no
// reader can still be looking at it: a grace period, counted in published
// versions.
//
// Every goroutine but the applier that reads records through a View (the
// connections, the snapshot writer, the container reaper) does so between
// Enter and Leave on a ReadSlot. Enter stores the epoch: the sequence
// number of the newest View the readers can load (Visible sets it), so
// whatever View the reader loads afterwards is that one or newer. A record
// replaced while the tree was at sequence s is in no View from s+1 on;
// once every slot is idle or entered at s+1 or later, nobody holds it.
// Only records of persistent znodes are kept: an ephemeral's, container's
// or TTL node's path is also kept by an index, as a string sharing the
// record's memory. A View's counters and its indexes (the ephemerals the
// four-letter words list) are not records and need no slot.
//
// A znode whose slot holds a cell (cell.go) keeps its replaced records on
// the cell's chain instead; the same grace period prunes the chain, and
// the records it cuts go to the free lists.
//
// Strings that views hand out (GetData's data, AppendChildren's names,
// Node's Path and Data) share record memory; a reader must be done with
// them (copied them into its reply) before it leaves its slot.

// Readers is the registry of read slots and the epoch they enter at.
type Readers struct {
	epoch atomic.Uint64
	mu    sync.Mutex
	slots []*ReadSlot
	count atomic.Int32 // len(slots), read without the lock
}

// ReadSlot is one reader's announcement that it may hold a View. A slot is
// used by one goroutine at a time.
type ReadSlot struct {
	at atomic.Uint64 // 0 when idle, else 1 + the epoch it entered at
	r  *Readers
	i  int // index in r.slots
	// The slots are written on every read batch by different cores;
	// keep each on a cache line of its own.
	_ [40]byte
}

// NewSlot registers an idle slot. Close it when its reader is gone.
func (r *Readers) NewSlot() *ReadSlot {
	s := &ReadSlot{r: r}
	r.mu.Lock()
	s.i = len(r.slots)
	r.slots = append(r.slots, s)
	r.count.Store(int32(len(r.slots)))
	r.mu.Unlock()
	return s
}

// Close unregisters the slot; it must be idle.
func (s *ReadSlot) Close() {
	r := s.r
	r.mu.Lock()
	last := len(r.slots) - 1
	r.slots[s.i] = r.slots[last]
	r.slots[s.i].i = s.i
	r.slots[last] = nil
	r.slots = r.slots[:last]
	r.count.Store(int32(len(r.slots)))
	r.mu.Unlock()
}

// Enter announces that the caller is about to load a View and read
// through it. It must come before the load.
func (s *ReadSlot) Enter() { s.at.Store(s.r.epoch.Load() + 1) }

// Leave announces that the caller holds nothing it read through a View.
func (s *ReadSlot) Leave() { s.at.Store(0) }

// oldest is the smallest epoch a busy slot entered at, or the current
// epoch when none is busy.
func (r *Readers) oldest() uint64 {
	low := r.epoch.Load()
	r.mu.Lock()
	for _, s := range r.slots {
		if at := s.at.Load(); at != 0 && at-1 < low {
			low = at - 1
		}
	}
	r.mu.Unlock()
	return low
}

// retiredRec is a replaced record waiting out its grace period: it is in
// no View with a sequence number of seq or more.
//
// A cell's entry (c set) says that c got a version shown from View seq on:
// once no reader is older, the versions behind it can go.
type retiredRec struct {
	p   unsafe.Pointer
	c   *cell
	n   int // its capacity, a size class
	seq uint64
}

// recordPool is the tree's side of record reuse.
type recordPool struct {
	readers *Readers
	seq     uint64 // sequence number of the last Publish
	retired []retiredRec
	head    int // retired[:head] have been moved to free
	free    map[int][]unsafe.Pointer
	bytes   int // in free and retired
	// chainBytes is the length of the records on cells' chains behind
	// their heads; versions are pruned ones waiting for reuse.
	chainBytes int
	versions   []*version
}

const (
	// maxPooledRecord bounds the records made for reuse: bigger ones are
	// rare and would pin memory.
	maxPooledRecord = 64 << 10
	// maxPooledBytes bounds what waits in the pool, so a burst of writes
	// or a reader that stays in its slot (a snapshot being written) does
	// not pin memory; records past it are left to the collector.
	maxPooledBytes = 8 << 20
)

// TrackReaders turns record reuse on and returns the registry every
// reader of this tree's Views must enter through. Call it before the
// tree is shared, and call Visible whenever a newer View becomes
// loadable.
func (t *Tree) TrackReaders() *Readers {
	if t.pool.readers == nil {
		t.pool.readers = &Readers{}
		t.pool.free = make(map[int][]unsafe.Pointer)
		t.pool.readers.epoch.Store(t.pool.seq)
		t.cache = new(cellCache)
	}
	return t.pool.readers
}

// NewReaders is a registry of readers for AdoptReaders, made before the
// tree it will serve exists.
func NewReaders() *Readers { return &Readers{} }

// AdoptReaders is TrackReaders with a registry made beforehand (NewReaders),
// or one of a tree this one replaces (a
// follower's tree rebuilt from a leader's snapshot): its readers keep the
// slots they hold, and its versions are numbered after every epoch those
// slots have seen, so no record of this tree is reused while a slot that
// entered before the switch might still read it. Call it before the tree
// is shared, then Publish and Visible.
func (t *Tree) AdoptReaders(r *Readers) {
	t.TrackReaders()
	t.pool.readers = r
	if e := r.epoch.Load(); t.pool.seq < e {
		t.pool.seq = e
	}
}

// Readers is the registry TrackReaders returned, or nil when record
// reuse is off.
func (t *Tree) Readers() *Readers { return t.pool.readers }

// Visible tells the tree that readers now load v (or newer) when they
// load a View, and hands the records no reader can hold any more to later
// setData txns. Call it from the applier's goroutine after storing v
// wherever readers load it from.
func (t *Tree) Visible(v *View) {
	p := &t.pool
	if p.readers == nil {
		return
	}
	p.readers.epoch.Store(v.seq)
	if len(p.retired) == p.head {
		return
	}
	// Scanning the slots costs one load per connection: do it only when
	// it can free a batch worth having.
	if len(p.retired)-p.head < max(16, int(p.readers.count.Load())/4) {
		return
	}
	safe := p.readers.oldest()
	i := p.head
	for ; i < len(p.retired) && p.retired[i].seq <= safe; i++ {
		r := p.retired[i]
		if r.c != nil {
			p.prune(r.c, safe)
		} else {
			p.free[r.n] = append(p.free[r.n], r.p)
		}
		p.retired[i] = retiredRec{}
	}
	p.head = i
	if p.head == len(p.retired) {
		p.retired, p.head = p.retired[:0], 0
	} else if p.head > len(p.retired)/2 {
		k := copy(p.retired, p.retired[p.head:])
		clear(p.retired[k:])
		p.retired, p.head = p.retired[:k], 0
	}
}

// recordClass is the capacity a pooled record of n bytes gets: records
// of nearly the same length (a znode's varints grow with its versions,
// and its neighbours' paths differ by a digit) share a free list.
func recordClass(n int) int {
	switch {
	case n <= 256:
		return (n + 15) &^ 15
	case n <= 2048:
		return (n + 63) &^ 63
	case n <= 8192:
		return (n + 255) &^ 255
	}
	return (n + 1023) &^ 1023
}

// retire keeps a persistent znode's replaced record for reuse, if its
// memory is the pool's (its capacity is then its length's class; other
// records have exactly their length).
func (p *recordPool) retire(old item) {
	if p.readers == nil {
		return
	}
	pooled, size := old.pooledSize()
	n := recordClass(size)
	if !pooled || p.bytes+n > maxPooledBytes {
		return
	}
	p.bytes += n
	p.retired = append(p.retired, retiredRec{p: old.p, n: n, seq: p.seq + 1})
}

// take returns a free record of capacity n (a class), or nil.
func (p *recordPool) take(n int) []byte {
	if p.readers == nil {
		return nil
	}
	l := p.free[n]
	if len(l) == 0 {
		return nil
	}
	r := l[len(l)-1]
	l[len(l)-1] = nil
	p.free[n] = l[:len(l)-1]
	p.bytes -= n
	return unsafe.Slice((*byte)(r), n)[:0]
}
