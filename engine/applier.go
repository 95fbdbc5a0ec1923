package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"zkd/wal"
	"zkd/wire"
	"zkd/ztree"
)

// The write path. One goroutine, the applier, owns the tree. Connections
// hand it write requests; it preps each against the tree plus everything
// prepped before (assigning the next zxid) and appends the txn to the log,
// which fsyncs whole batches (group commit) and calls back in zxid order.
// When the callback says a run of txns is durable, the applier applies
// them, publishes one new tree version for the run, puts each txn's watch
// events and then its reply in the mailboxes of the loops that own the
// connections concerned, moves the read view forward, and wakes those
// loops; a loop sends an item only once the view it reads holds the
// item's txn. So:
//
//   - a write is acknowledged only after its txn is fsynced (rule 2);
//   - txns are applied in zxid order, one total order (rule 3);
//   - a client's watch event precedes any reply computed from the version
//     that fired it, on every connection (rule 4).
//
// Prepping and logging go on while the previous batch is being fsynced,
// so under load each fsync carries every txn that arrived meanwhile.
//
// A read that must wait for its session's writes comes through here too,
// in its place among them, and goes back to its loop with the version
// that holds everything before it and nothing after: a run of durable
// txns is cut into pieces, each published on its own, wherever a write
// follows a read of the same connection.

// writeReq is one write on its way through the applier.
type writeReq struct {
	c     *conn // the connection to reply on; nil for txns the server makes
	sess  int64
	xid   int32
	op    wire.OpCode
	body  wire.Record
	auth  []wire.Id
	start time.Time

	// from is the learner that forwarded the request; nil for the
	// server's own clients and its own txns. A forwarded sync (op
	// OpSync) is answered after the commit of the newest txn proposed
	// when it is prepped, so after every write that learner forwarded
	// before it.
	from *learner

	// connect is the handshake reply a createSession txn answers with.
	connect *wire.ConnectResponse
	// refuse, when set, makes the txn an ErrorTxn with this code without
	// asking the tree: ZooKeeper logs one for requests it refuses
	// outright, such as a client's deleteContainer.
	refuse wire.ErrCode

	txn ztree.Txn
	wal wal.Txn // what the log is handed; it encodes it at once
	// leaderDigest is, on a learner, the tree digest the leader logged
	// with the txn; checkDigest is set when it logged one this server
	// computes the same way.
	leaderDigest uint64
	checkDigest  bool

	// A setData, the commonest write, is decoded in place: raw keeps the
	// request body and set points into it. Both are reused when the
	// writeReq goes back to reqPool after its reply.
	raw []byte
	set wire.SetDataRequest
	// setTxn is where Prep builds a setData's txn record; the log encodes
	// it at Append and apply reads it, both before the reply.
	setTxn wire.SetDataTxn

	// read marks a read waiting for the requests before it; raw holds
	// the whole request, header included.
	read bool
	// sync marks, on a follower, a client's sync: a read that waits for
	// the leader's SYNC answer (and so for every commit before it).
	sync bool
	// after are, on a follower, the reads of the same connection that
	// wait for this forwarded request: answered from the version that
	// holds it.
	after []*writeReq
	// closes is the connection a closeSession (an expiry's) closes once
	// the replies posted before it are sent.
	closes *conn
	// revalidated marks, on a follower, the leader's answer about the
	// session a client resumes on c (1 open, -1 not), read set too: it
	// waits its turn behind the commits that came before it, so that
	// the session table holds the session the leader speaks of.
	revalidated int8
}

var reqPool = sync.Pool{New: func() any { return new(writeReq) }}

// newWriteReq returns a cleared writeReq, reused when one is free.
func newWriteReq() *writeReq { return reqPool.Get().(*writeReq) }

// release clears r and makes it reusable. Nothing may hold r, or point
// into r.raw, once its reply is queued.
func release(r *writeReq) {
	raw := r.raw[:0]
	if cap(raw) > 64<<10 {
		raw = nil
	}
	clear(r.after)
	*r = writeReq{raw: raw, after: r.after[:0]}
	reqPool.Put(r)
}

type applier struct {
	s *Server

	mu       sync.Mutex
	incoming []*writeReq
	spare    []*writeReq
	wake     chan struct{}
	ops      chan func() // role changes, run on the applier's goroutine

	// durable is the newest zxid that may be applied: standalone, the
	// newest the log has made durable; leading, the newest a quorum has
	// acknowledged (see leader.ack).
	durable  atomic.Int64
	pending  []*writeReq // logged, not applied, and waiting reads; in zxid order
	nextZxid int64
	mark     uint64 // numbers the pieces commit cuts, for conn.applierMark
	// failedPending is set once the writes in the log when it stopped
	// for a full disk have been given up.
	failedPending bool
	// logStopped is set once an append to the log has failed: standalone
	// on a full disk the server goes on read-only (refuse); otherwise it
	// is stopping, and what comes after is dropped.
	logStopped bool
	results    []ztree.Result // reused by commit
	warm       []string       // reused by warmUp
	warmSum    uint64         // keeps warmUp's loads
	loops      []*loop        // posted to in the piece being delivered

	// prepOpened and prepClosed are the sessions whose createSession or
	// closeSession txn is prepped and not yet applied; prepOpened says
	// too where each was created (session.owner). With the session
	// table, which changes as txns apply, they say which sessions are
	// open as of the txns prepped so far (sessionErr).
	prepOpened map[int64]*learner
	prepClosed map[int64]struct{}
	// closedConns are the connections of the sessions closed by the
	// piece being delivered, which still get the watch events of their
	// session's last txn (its ephemerals' deletes), before its reply.
	closedConns map[int64]*conn

	// In an ensemble. lead is set while this server leads and takes
	// writes; follow while it follows one that does (see follower.go).
	lead   *leader
	follow *followState
}

func newApplier(s *Server) *applier {
	a := &applier{s: s, wake: make(chan struct{}, 1), ops: make(chan func()), nextZxid: s.tree.Load().Zxid() + 1,
		prepOpened: map[int64]*learner{}, prepClosed: map[int64]struct{}{}, closedConns: map[int64]*conn{}}
	a.durable.Store(s.tree.Load().Zxid())
	return a
}

// submit hands a write, or a read that must wait, to the applier.
func (a *applier) submit(r *writeReq) {
	if r.start.IsZero() {
		r.start = time.Now()
	}
	a.s.stats.outstanding.Add(1)
	a.mu.Lock()
	a.incoming = append(a.incoming, r)
	a.mu.Unlock()
	a.signal()
}

// submitAll hands a connection's batch of requests to the applier at once.
func (a *applier) submitAll(rs []*writeReq) {
	now := time.Now()
	for _, r := range rs {
		if r.start.IsZero() {
			r.start = now
		}
	}
	a.s.stats.outstanding.Add(int64(len(rs)))
	a.mu.Lock()
	a.incoming = append(a.incoming, rs...)
	a.mu.Unlock()
	a.signal()
}

// synced is the log's OnSync: every txn up to zxid is on disk. A leader
// counts that as its own acknowledgement; a follower sends the
// acknowledgements waiting for the disk.
func (a *applier) synced(zxid int64) {
	if p := a.s.peer; p != nil {
		p.synced(zxid)
		return
	}
	a.durable.Store(zxid)
	a.signal()
}

// do runs f on the applier's goroutine and waits for it; false when the
// server stopped first.
func (a *applier) do(f func()) bool {
	done := make(chan struct{})
	select {
	case a.ops <- func() { f(); close(done) }:
	case <-a.s.stopping:
		return false
	}
	select {
	case <-done:
		return true
	case <-a.s.stopping:
		return false
	}
}

func (a *applier) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *applier) run() {
	for {
		select {
		case <-a.s.stopping:
			return
		case f := <-a.ops:
			f()
			continue
		case <-a.wake:
		}
		a.mu.Lock()
		in := a.incoming
		a.incoming, a.spare = a.spare[:0], nil
		a.mu.Unlock()
		if a.s.readOnly.Load() != nil && !a.failedPending {
			a.failPending()
		}
		if a.lead != nil || a.follow == nil {
			a.warmUp(in, false)
		}
		for i, r := range in {
			a.prep(r)
			in[i] = nil
		}
		a.mu.Lock()
		if a.spare == nil {
			a.spare = in[:0]
		}
		a.mu.Unlock()
		a.commit()
	}
}

// prep turns a request into a logged txn.
func (a *applier) prep(r *writeReq) {
	if r.from != nil && r.op == wire.OpSync {
		// A learner's sync, in its place among its forwarded writes:
		// those before it are proposed by now, so the SYNC goes out after
		// their COMMITs. A ZooKeeper follower matches SYNCs and COMMITs
		// against one queue of its forwarded requests, in the order it
		// sent them; a SYNC that overtook a COMMIT would stay at the head
		// of that queue and leave every later local write unanswered.
		a.s.stats.outstanding.Add(-1)
		if a.lead != nil {
			a.lead.answerSync(r.from)
		}
		release(r)
		return
	}
	if a.follow != nil {
		a.forward(r)
		return
	}
	if a.logStopped && a.s.readOnly.Load() == nil {
		// The log failed and the server is stopping: nothing more is
		// logged or proposed. (A standalone server on a full disk goes
		// on read-only instead, below.)
		a.giveUp(r)
		return
	}
	if a.s.peer != nil && a.lead == nil && a.s.readOnly.Load() != nil {
		// Read-only mode, as ZooKeeper's: reads are answered, writes
		// refused with NOTREADONLY.
		if r.read {
			a.pending = append(a.pending, r)
		} else {
			a.refuse(r)
		}
		return
	}
	if a.s.peer != nil && (a.lead == nil || a.lead.steppedDown()) {
		// An ensemble member between roles logs nothing of its own: a
		// request that slipped in (a learner's, as its leader stepped
		// down) goes, with its connection. A leader that has stepped
		// down proposes nothing more: its election vote is already out.
		a.giveUp(r)
		return
	}
	if r.read {
		a.pending = append(a.pending, r)
		return
	}
	s := a.s
	if s.readOnly.Load() != nil {
		a.refuse(r)
		return
	}
	zxid := a.nextZxid
	now := s.now().UnixMilli()
	if r.refuse != wire.ErrOK {
		r.txn = ztree.Txn{Header: wire.TxnHeader{ClientID: r.sess, Cxid: r.xid, Zxid: zxid, Time: now,
			Type: wire.OpError}, Record: &wire.ErrorTxn{Err: r.refuse}}
	} else {
		r.txn, _ = s.tree.Load().Prep(&ztree.Request{Session: r.sess, Cxid: r.xid, Zxid: zxid,
			Time: now, Op: r.op, Body: r.body, Auth: r.auth, SetDataTxn: &r.setTxn,
			SessionErr: a.sessionErr(r)})
	}
	r.wal = wal.Txn{Header: r.txn.Header, Record: r.txn.Record}
	if r.txn.Header.Type == wire.OpCloseSession && !s.cfg.CloseSessionTxn {
		// Logged and proposed without the ephemerals, which every server
		// then finds in its own tree, so that ZooKeeper learners set the
		// same way read it.
		r.wal.Record = nil
	}
	if r.txn.HasDigest {
		r.wal.Digest = &r.txn.Digest
	}
	var err error
	if a.lead != nil {
		// Out to the learners before the log can report it durable,
		// and into the log as encoded for them.
		entry, perr := a.lead.propose(&r.wal, r.start)
		if perr != nil {
			// Not logged either: a txn its learners never had.
			s.log.Error("cannot propose", "zxid", fmt.Sprintf("%#x", zxid), "err", perr)
			a.lead.stepDown(perr)
			a.giveUp(r)
			return
		}
		err = s.store.Load().AppendEncoded(zxid, entry, nil)
	} else {
		err = s.store.Load().Append(&r.wal, nil)
	}
	// The log reports each durable batch through synced.
	if err != nil {
		a.logStopped = true
		if errors.Is(err, wal.ErrDiskFull) {
			s.diskFull(err) // standalone, read-only from here; in an ensemble, stopping
			if a.lead == nil {
				a.refuse(r)
				return
			}
		} else {
			s.fail(fmt.Errorf("cannot log txn 0x%x: %w", zxid, err))
		}
		// Proposed, r may yet commit by its learners' ACKs: its client
		// is not told it failed, its connection is closed.
		a.giveUp(r)
		return
	}
	switch r.txn.Header.Type {
	case wire.OpCreateSession:
		if se := s.sessions.get(r.sess); se != nil {
			se.owner.Store(ownerOf(r)) // a client of this server's, tracked since its handshake
		} else {
			a.prepOpened[r.sess] = ownerOf(r)
		}
	case wire.OpCloseSession:
		a.prepClosed[r.sess] = struct{}{}
	}
	a.nextZxid++
	a.pending = append(a.pending, r)
}

// sessionErr says whether r's session is open as of the txns prepped
// before it, as ZooKeeper's leader checks each write's session when it
// preps it: a write prepped after its session's closeSession, from a
// learner that has not heard of the close yet or from a connection racing
// the expiry, fails instead of leaving an ephemeral that nothing would
// ever delete. The container reaper's writes, of no session, are not
// checked, nor are sessions' own creates and closes.
func (a *applier) sessionErr(r *writeReq) wire.ErrCode {
	switch r.op {
	case wire.OpDeleteContainer, wire.OpCreateSession, wire.OpCloseSession:
		return wire.ErrOK
	}
	if _, ok := a.prepClosed[r.sess]; ok {
		return wire.ErrSessionExpired
	}
	from := ownerOf(r)
	if owner, ok := a.prepOpened[r.sess]; ok {
		if owner != from {
			return wire.ErrSessionMoved
		}
		return wire.ErrOK
	}
	// Not se.closing: a client's own close marks it when the close is
	// read, and the writes the client sent before it, queued here ahead
	// of the close, must go through.
	se := a.s.sessions.get(r.sess)
	if se == nil {
		return wire.ErrUnknownSession
	}
	// A session is where its last request or resume came from: a write
	// the server it left forwards late, behind the client's requests on
	// the server it moved to, must not be made after them.
	if owner := se.owner.Load(); owner != from && (owner != nil || !se.owner.CompareAndSwap(nil, from)) {
		return wire.ErrSessionMoved
	}
	return wire.ErrOK
}

// giveUp drops a request prep will not take (its connection closed, its
// outcome unknown to its client), and takes it off the outstanding count.
func (a *applier) giveUp(r *writeReq) {
	a.s.stats.outstanding.Add(-1)
	a.drop(r)
}

// ownerOf is where r came from, as session.owner says it.
func ownerOf(r *writeReq) *learner {
	if r.from != nil {
		return r.from
	}
	return localOwner
}

// refuse answers a write while the log cannot take txns (its disk is
// full), as a read-only ZooKeeper server does: NOTREADONLY, with nothing
// logged. A new session is granted without a txn, as a local session:
// it can read, it owns no ephemeral, and a restart forgets it. Closing a
// session needs no txn either.
func (a *applier) refuse(r *writeReq) {
	s := a.s
	s.stats.outstanding.Add(-1)
	defer release(r)
	zxid := s.view.Load().Zxid()
	switch {
	case r.op == wire.OpCloseSession && r.c == nil:
		// An expiry: the session goes from memory now; its ephemerals
		// go when a restart with room logs its expiry.
		if se := s.sessions.remove(r.sess); se != nil {
			s.tree.Load().RemoveSession(r.sess)
			if c := se.conn.Load(); c != nil {
				c.closeAfterFlush()
			}
		}
	case r.c == nil:
		// The container reaper's deletes wait for a restart.
	case r.op == wire.OpCreateSession:
		r.c.post(item{kind: itemConnect, connect: r.connect, zxid: zxid})
	case r.op == wire.OpCloseSession:
		if se := s.sessions.remove(r.sess); se != nil {
			s.tree.Load().RemoveSession(r.sess)
		}
		r.c.post(item{kind: itemReply, op: r.op, xid: r.xid, zxid: zxid, closing: true})
	default:
		r.c.post(item{kind: itemReply, op: r.op, xid: r.xid, zxid: zxid, code: wire.ErrNotReadOnly})
	}
}

// failPending gives up the writes that were in the log when it stopped for
// a full disk: none is durable, yet part of the batch may have reached
// the disk, so their outcome is unknown and their connections are closed,
// as a crash would close them; the clients reconnect, resume their
// sessions and read what is there. The reads waiting behind them go too.
func (a *applier) failPending() {
	a.failedPending = true
	clear(a.prepOpened)
	clear(a.prepClosed)
	for i, r := range a.pending {
		a.s.stats.outstanding.Add(-1)
		if r.c != nil {
			r.c.close("")
		}
		a.pending[i] = nil
		release(r)
	}
	a.pending = a.pending[:0]
}

// commit applies every pending txn the log has made durable, and answers
// the reads among them, piece by piece: a piece ends before a write whose
// connection has a read earlier in the piece, so that read is answered
// from a version without that write.
func (a *applier) commit() {
	d := a.durable.Load()
	if a.follow != nil {
		d = a.gather()
	}
	i := 0
	for i < len(a.pending) {
		a.mark++
		start, writes := i, 0
		for ; i < len(a.pending); i++ {
			r := a.pending[i]
			if r.read {
				r.c.applierMark = a.mark
				continue
			}
			if r.txn.Header.Zxid > d || (r.c != nil && r.c.applierMark == a.mark) {
				break
			}
			writes++
		}
		if i == start {
			break
		}
		a.deliver(a.pending[start:i], writes)
	}
	if i == len(a.pending) {
		a.pending = a.pending[:0] // keep the array for the next batch
	} else {
		a.pending = a.pending[i:]
	}
}

// deliver applies the writes of one piece of pending, publishes them,
// delivers their events and replies, then answers the piece's reads.
func (a *applier) deliver(done []*writeReq, writes int) {
	s := a.s
	results := slices.Grow(a.results[:0], writes)[:writes]
	var events []ztree.Event
	if writes > 0 {
		// From the leader's making each txn to its applying here, by
		// wall clocks (ZooKeeper's propagation_latency): one clock read
		// and one summary update per piece.
		var prop ztree.NamespaceStat
		now := s.now().UnixMilli()
		a.warmUp(done, true)
		w := 0
		for _, r := range done {
			if r.read {
				continue
			}
			res := &results[w]
			*res = s.tree.Load().ApplyPrepped(&r.txn)
			w++
			if ms := now - r.txn.Header.Time; ms >= 0 {
				prop.Add(ms)
				s.stats.propagationLat.res.add(ms, 1)
			}
			if r.checkDigest {
				if got := s.tree.Load().Digest(); got != r.leaderDigest {
					s.digestMismatch(r.txn.Header.Zxid, got, r.leaderDigest)
				}
			}
			switch r.op {
			case wire.OpCreateSession:
				owner := a.prepOpened[r.sess]
				delete(a.prepOpened, r.sess)
				// In an ensemble a session may come from another
				// server: every server tracks it from its txn on.
				if s.peer != nil && s.sessions.get(r.sess) == nil {
					if ct, ok := r.txn.Record.(*wire.CreateSessionTxn); ok {
						s.sessions.add(r.sess, ct.TimeOut, s.mono()).owner.Store(owner)
					}
				}
			case wire.OpCloseSession:
				if s.audit != nil {
					s.audit.ephemerals(r.txn.Header.ClientID, res)
				}
				delete(a.prepClosed, r.sess)
				if se := s.sessions.remove(r.sess); se != nil {
					s.tree.Load().RemoveSession(r.sess)
					if c := se.conn.Load(); c != nil {
						a.closedConns[r.sess] = c
						if c != r.c {
							// Closed after the replies before
							// it, in the order posted below.
							r.closes = c
						}
					}
				}
			}
		}
		events = s.tree.Load().Publish()
		s.stats.propagationLat.merge(prop)
	}
	// Post, per connection and in zxid order, each txn's watch events
	// and then its reply, as ZooKeeper sends them, all before the view
	// moves: a loop loads the view before it drains its mailbox, so no
	// reply it computes from a version goes out ahead of that version's
	// events (rule 4). The loops carry out only what their view holds,
	// and are woken once the view has moved.
	a.mark++
	e, w := 0, 0
	for i, r := range done {
		if r.read {
			continue
		}
		z := r.txn.Header.Zxid
		for ; e < len(events) && events[e].Zxid <= z; e++ {
			a.postEvent(&events[e])
		}
		a.reply(r, &results[w])
		if r.closes != nil {
			a.post(r.closes, item{kind: itemClosing})
		}
		w++
		done[i] = nil
		release(r)
	}
	for ; e < len(events); e++ {
		a.postEvent(&events[e])
	}
	clear(a.closedConns)
	// The reads come last, answered on their loops from the version
	// this piece makes: the one after the writes before them and before
	// the ones after. A loop holds them back until its view is that
	// version (see drain), and the pin keeps that version's records.
	v := s.view.Load()
	if writes > 0 {
		v = s.tree.Load().Published()
	}
	for i, r := range done {
		if r == nil {
			continue
		}
		s.stats.outstanding.Add(-1)
		if r.revalidated != 0 {
			a.post(r.c, item{kind: itemRevalidated, valid: r.revalidated > 0})
			done[i] = nil
			release(r)
			continue
		}
		a.post(r.c, item{kind: itemRead, r: r, v: v})
		r.c.lp.outgoingReads++
		done[i] = nil
	}
	// Into the mailboxes, one lock per loop, before the view moves.
	for _, lp := range a.loops {
		lp.postBatch(lp.outgoing, lp.outgoingReads)
		clear(lp.outgoing)
		lp.outgoing, lp.outgoingReads = lp.outgoing[:0], 0
	}
	if writes > 0 {
		s.view.Store(v)
		s.tree.Load().Visible(v)
	}
	for i, lp := range a.loops {
		lp.wake()
		a.loops[i] = nil
	}
	a.loops = a.loops[:0]
	clear(results)
	a.results = results[:0]
}

// warmUp has the tree load, all at once, the znodes that rs (requests
// about to be prepped, or prepped txns about to be applied) look up one
// by one next (ztree.Tree.Warm, ztree.AppendWarmPaths).
func (a *applier) warmUp(rs []*writeReq, prepped bool) {
	if len(rs) < 2 {
		return
	}
	paths := a.warm[:0]
	for _, r := range rs {
		if r.read {
			continue
		}
		rec := r.body
		if prepped {
			rec = r.txn.Record
		}
		paths = ztree.AppendWarmPaths(paths, rec)
	}
	a.warmSum += a.s.tree.Load().Warm(paths)
	clear(paths)
	a.warm = paths[:0]
}

// postEvent posts a watch event to its session's connection.
func (a *applier) postEvent(ev *ztree.Event) {
	var c *conn
	if se := a.s.sessions.get(ev.Session); se != nil {
		c = se.conn.Load()
	} else {
		// A session closing gets its ephemerals' events, as in
		// ZooKeeper, where they go out before the close's reply.
		c = a.closedConns[ev.Session]
	}
	if c == nil {
		return
	}
	a.post(c, item{kind: itemEvent, evType: ev.Type, path: ev.Path, zxid: ev.Zxid})
}

// post queues an item of the piece being delivered, for its loop's
// mailbox before the view moves and a wake after.
func (a *applier) post(c *conn, it item) {
	it.c = c
	lp := c.lp
	lp.outgoing = append(lp.outgoing, it)
	if lp.applierMark != a.mark {
		lp.applierMark = a.mark
		a.loops = append(a.loops, lp)
	}
}

// reply posts the answer to the request whose txn was just applied.
func (a *applier) reply(r *writeReq, res *ztree.Result) {
	s := a.s
	s.stats.outstanding.Add(-1)
	if r.c == nil {
		return
	}
	if s.audit != nil {
		s.audit.request(r, res)
	}
	ms := time.Since(r.start).Milliseconds()
	s.stats.lat.add(ms)
	s.stats.updateLat.add(ms)
	r.c.lat.add(ms)
	zxid := r.txn.Header.Zxid
	switch r.op {
	case wire.OpCreateSession:
		a.post(r.c, item{kind: itemConnect, connect: r.connect, zxid: zxid})
	case wire.OpCloseSession:
		a.post(r.c, item{kind: itemReply, op: r.op, xid: r.xid, zxid: zxid, closing: true})
	default:
		a.post(r.c, item{kind: itemReply, op: r.op, xid: r.xid, zxid: zxid, res: *res, hasRes: true})
	}
}
