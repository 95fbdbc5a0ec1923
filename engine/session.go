package engine

import (
	"sync"
	"sync/atomic"

	"zkd/ztree"
)

// superSecret is mixed into a session id to seed its password, as
// ZooKeeperServer.superSecret is; with java.util.Random's generator this
// gives every session the password ZooKeeper would give it, so a client
// that reconnects after a migration keeps its session.
const superSecret = 0xB3415C00

// sessionPassword is ZooKeeperServer.generatePasswd: 16 bytes from
// java.util.Random seeded with id ^ superSecret.
func sessionPassword(id int64) [16]byte {
	const mult, mask = 0x5DEECE66D, (1 << 48) - 1
	seed := (id ^ superSecret ^ mult) & mask
	var p [16]byte
	for i := 0; i < len(p); {
		seed = (seed*mult + 0xB) & mask
		r := int32(seed >> 16) // next(32)
		for n := 0; n < 4 && i < len(p); n++ {
			p[i] = byte(r)
			r >>= 8
			i++
		}
	}
	return p
}

// session is an open session as the engine tracks it. Its lifetime is
// decided by txns: it exists from its createSession txn to its
// closeSession txn.
type session struct {
	id      int64
	timeout atomic.Int32 // negotiated, ms
	// deadline is when the session expires unless touched, in ms since
	// the epoch, rounded up to a tick boundary (ZooKeeper's ExpiryQueue).
	deadline atomic.Int64
	conn     atomic.Pointer[conn] // the connection it is on; nil between connections
	closing  atomic.Bool          // a closeSession txn is on its way
	// owner is, on a leader, the server its client is on: the learner
	// whose connection forwards its requests, or localOwner for this
	// server's own clients; nil until a request or a resume says. A
	// write from anywhere else fails with SESSIONMOVED (sessionErr).
	owner atomic.Pointer[learner]
}

// localOwner owns, on a leader, the sessions of the leader's own clients.
var localOwner = new(learner)

// movedAway reports whether, as the leader knows, s's client is on one of
// its learners now. Only a leader stores a learner in owner, and a new
// role clears it, so elsewhere this is false.
func (s *session) movedAway() bool {
	o := s.owner.Load()
	return o != nil && o != localOwner
}

// sessionTable holds the open sessions and expires them in tickTime
// buckets. touch only stores a new deadline; the expiry pass moves a
// session found in an old bucket to the bucket of its current deadline,
// so the hot path takes no lock.
type sessionTable struct {
	tick int64 // ms

	mu      sync.Mutex
	byID    map[int64]*session
	buckets map[int64][]*session // deadline → sessions that may expire then
	next    int64                // the next bucket to check
	// used are the deadlines any session has had and that have not
	// passed: ZooKeeper's dump lists each such bucket, emptied or not.
	used map[int64]struct{}
}

func newSessionTable(tickMs int64, now int64) *sessionTable {
	return &sessionTable{tick: tickMs, byID: map[int64]*session{}, buckets: map[int64][]*session{},
		next: roundUp(now, tickMs), used: map[int64]struct{}{}}
}

func roundUp(t, tick int64) int64 { return (t/tick + 1) * tick }

// add tracks a session, expiring timeout ms from now.
func (t *sessionTable) add(id int64, timeout int32, now int64) *session {
	s := &session{id: id}
	s.timeout.Store(timeout)
	d := roundUp(now+int64(timeout), t.tick)
	s.deadline.Store(d)
	t.mu.Lock()
	t.byID[id] = s
	t.buckets[d] = append(t.buckets[d], s)
	t.used[d] = struct{}{}
	t.mu.Unlock()
	return s
}

func (t *sessionTable) get(id int64) *session {
	t.mu.Lock()
	s := t.byID[id]
	t.mu.Unlock()
	return s
}

func (t *sessionTable) remove(id int64) *session {
	t.mu.Lock()
	s := t.byID[id]
	delete(t.byID, id)
	t.mu.Unlock()
	return s
}

func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

func (t *sessionTable) all() []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*session, 0, len(t.byID))
	for _, s := range t.byID {
		out = append(out, s)
	}
	return out
}

// touch pushes a session's deadline to now + its timeout. It never moves
// a deadline earlier.
func (t *sessionTable) touch(s *session, now int64) {
	d := roundUp(now+int64(s.timeout.Load()), t.tick)
	for {
		old := s.deadline.Load()
		if d <= old {
			return
		}
		if s.deadline.CompareAndSwap(old, d) {
			// Once a tick at most per session: the bucket it moved to,
			// for dump.
			t.mu.Lock()
			t.used[d] = struct{}{}
			t.mu.Unlock()
			return
		}
	}
}

// touchFor touches a session for a learner's client, with the timeout
// that client's connection negotiated there: as ZooKeeper's leader does,
// the session expires that long after its last touch, whatever timeout
// it was created with. A timeout of 0 or less is not a timeout, and the
// session keeps its own.
func (t *sessionTable) touchFor(s *session, timeout int32, now int64) {
	if timeout > 0 {
		s.timeout.Store(timeout)
	}
	t.touch(s, now)
}

// bucketTimes lists the deadlines of the buckets ZooKeeper's dump would
// list: every deadline a session has had that is still ahead.
func (t *sessionTable) bucketTimes(now int64) []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int64, 0, len(t.used))
	for d := range t.used {
		if d > now {
			out = append(out, d)
		}
	}
	return out
}

// expired returns the sessions whose deadline has passed by now, each once.
func (t *sessionTable) expired(now int64) []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*session
	for ; t.next <= now; t.next += t.tick {
		b := t.buckets[t.next]
		delete(t.buckets, t.next)
		delete(t.used, t.next)
		for _, s := range b {
			if t.byID[s.id] != s || s.closing.Load() {
				continue
			}
			if d := s.deadline.Load(); d > now {
				t.buckets[d] = append(t.buckets[d], s)
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// reset makes the table hold exactly the sessions of list, each expiring
// its timeout from now; a session it held already keeps its record, but
// not a closing mark.
func (t *sessionTable) reset(list []ztree.Session, now int64) {
	t.mu.Lock()
	old := t.byID
	t.byID = make(map[int64]*session, len(list))
	t.buckets = map[int64][]*session{}
	t.used = map[int64]struct{}{}
	t.next = roundUp(now, t.tick)
	for _, se := range list {
		s := old[se.ID]
		if s == nil {
			s = &session{id: se.ID}
			s.timeout.Store(se.Timeout)
		}
		// A session in the list is open: a closeSession this server
		// handed on before (to a leader that is gone) did not commit,
		// and the session must expire like any other, or its ephemerals
		// would outlive it.
		s.closing.Store(false)
		// A new leader learns again where each client is, as
		// ZooKeeper's starts a new session tracker.
		s.owner.Store(nil)
		d := roundUp(now+int64(s.timeout.Load()), t.tick)
		s.deadline.Store(d)
		t.byID[se.ID] = s
		t.buckets[d] = append(t.buckets[d], s)
		t.used[d] = struct{}{}
	}
	t.mu.Unlock()
}
