package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zkd/wire"
	"zkd/ztree"
)

// conn is one client connection. Its reader goroutine decodes frames and
// serves reads straight from the published view into the output buffer;
// its writer goroutine flushes that buffer with one write per wake-up,
// carrying every reply and event queued since the last one.
//
// Per-session FIFO (rule 1): a write goes to the applier in arrival order.
// A read that arrives while a request of the session is in the applier
// goes there too, behind it, and the applier answers it from the version
// after the writes before it and before the ones after it; so replies
// leave in request order, a read sees every earlier write of its session
// and no later one, and the writes behind a waiting read are logged
// meanwhile instead of waiting for it. Only an addauth waits in deferred
// (with everything after it) until the applier holds nothing of the
// session: the writes after it must carry its identity.
type conn struct {
	s       *Server
	nc      net.Conn
	ip      string
	created time.Time

	wake    chan struct{}
	closed  chan struct{}
	closeMu sync.Once
	// drained is signalled after every write to the socket, for a reader
	// waiting for the output to fall below the limit.
	drained chan struct{}

	mu         sync.Mutex
	handshaken bool
	sess       *session
	sid        int64
	auth       []wire.Id
	out        []byte
	spare      []byte
	inflight   int   // requests handed to the applier and not replied yet
	reads      int64 // reads answered since the last flush moved the counters
	unsent     int64 // replies and events in out, for the sent counters
	// needZxid is the newest txn the connection has been shown, by a
	// write's reply or a watch event: its reads wait for a view that
	// holds it, so no reply shows older data than an event before it.
	needZxid int64
	deferred [][]byte // requests waiting for inflight writes, in order
	closing  bool     // close once the output is flushed
	flushing bool     // a goroutine is writing the output it took
	// resp are the response sizes since the last flush.
	resp struct{ n, last, min, max int }
	// nsReads counts the connection's reads per namespace until a flush
	// merges them into the server's (nsDirty: some are waiting).
	nsReads map[string]*ztree.NamespaceStat
	nsDirty bool
	writing int // the bytes the flush in progress is writing
	scratch readScratch
	// slot is where the connection's goroutines announce that they read
	// through a View (see ztree.Readers); viewing is set while one of
	// them is inside it.
	slot    *ztree.ReadSlot
	viewing bool
	loops   atomic.Int32 // of the reader and writer, those not yet ended
	queued  []*writeReq  // for the applier, handed over at the end of a batch

	// applierMark is the applier's own: it marks the connection as having
	// a read in the run of requests the applier is committing.
	applierMark uint64

	// for cons
	received, sent atomic.Int64
	lastOp         atomic.Int32
	lastXid        atomic.Int32
	lastZxid       atomic.Int64
	lastResponse   atomic.Int64 // ms on the monotonic clock, as ZooKeeper's lresp
	lastActive     atomic.Int64 // ms on the monotonic clock: the last bytes read
	timeout        atomic.Int32
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	c := &conn{s: s, nc: nc, ip: ip, created: time.Now(), wake: make(chan struct{}, 1),
		closed: make(chan struct{}), drained: make(chan struct{}, 1), slot: s.readers.NewSlot()}
	c.auth = []wire.Id{{Scheme: "ip", ID: ip}}
	c.lastOp.Store(-100)
	c.lastActive.Store(monotonicMillis())
	c.loops.Store(2)
	return c
}

// loopDone is called as the reader or the writer ends. The slot goes with
// the second: then no goroutine of the connection reads through a View
// (the applier may still answer a read of it, but needs no slot).
func (c *conn) loopDone() {
	if c.loops.Add(-1) == 0 {
		c.slot.Close()
	}
}

// kick wakes the writer.
func (c *conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close drops the connection now. The session stays, to expire or be
// resumed on another connection; the watches this connection carried go.
func (c *conn) close() {
	c.closeMu.Do(func() {
		// Uncounted before the socket closes: a client that has seen
		// the close (a four-letter word's EOF) and asks again for the
		// connections must not find this one.
		c.s.removeConn(c)
		c.nc.Close()
		close(c.closed)
		c.mu.Lock()
		se := c.sess
		c.mu.Unlock()
		if se != nil && se.conn.CompareAndSwap(c, nil) {
			c.s.tree.RemoveSession(se.id)
		}
	})
}

// closeAfterFlush closes the connection once everything queued is written.
func (c *conn) closeAfterFlush() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.kick()
}

// readLoop reads and handles the connection's requests. It stops reading
// while the connection's unsent output is over the limit (a client that
// does not read its replies gets no more of them computed), and closes a
// connection that has not completed its handshake in time.
func (c *conn) readLoop() {
	defer c.close()
	if !c.s.addConn(c) {
		return
	}
	max := c.s.cfg.MaxBuffer
	limit := c.s.cfg.OutputLimit()
	handshakeBy := c.created.Add(time.Duration(c.s.cfg.SessionlessCnxnTimeout) * time.Millisecond)
	c.nc.SetReadDeadline(handshakeBy)
	buf := make([]byte, 0, 16<<10)
	stalled := false // frames wait in buf for the output to drain
	for {
		c.s.throttle(c)
		if !c.waitOutput(limit) {
			return
		}
		var n int
		var err error
		if !stalled {
			if len(buf) == cap(buf) {
				nb := make([]byte, len(buf), 2*cap(buf))
				copy(nb, buf)
				buf = nb
			}
			n, err = c.nc.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if n > 0 {
				c.lastActive.Store(monotonicMillis())
			}
		}
		if n > 0 || stalled {
			used, more, perr := c.input(buf, max, limit)
			stalled = more
			if perr != nil {
				c.s.log.Warn("closing connection", "client", c.nc.RemoteAddr().String(), "reason", perr.Error())
				c.closeAfterFlush()
				return
			}
			if c.handshaken && !handshakeBy.IsZero() {
				c.nc.SetReadDeadline(time.Time{})
				handshakeBy = time.Time{}
			}
			// The reader writes the replies to what it just read itself:
			// no wake-up of the writer for the commonest case.
			c.mu.Lock()
			if len(c.out) > 0 && !c.flushing {
				if done, err := c.flushLocked(); err != nil || done {
					return
				}
			} else {
				closing := c.closing
				c.mu.Unlock()
				if closing {
					c.kick() // the writer closes once the output is out
				}
			}
			rest := copy(buf, buf[used:])
			buf = buf[:rest]
			if cap(buf) > 1<<20 && rest < 16<<10 {
				buf = append(make([]byte, 0, 16<<10), buf...)
			}
		}
		if err != nil {
			var ne net.Error
			switch {
			case !c.handshaken && errors.As(err, &ne) && ne.Timeout():
				c.s.log.Info("closing a connection that did not complete its handshake in time",
					"client", c.nc.RemoteAddr().String(), "nio.sessionlessCnxnTimeout", c.s.cfg.SessionlessCnxnTimeout)
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
				c.s.log.Debug("connection read failed", "client", c.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
	}
}

// waitOutput holds the reader while more than limit bytes wait to be sent,
// and reports false when the connection closed meanwhile. The writer's
// deadline (flushLocked) closes a connection whose client stops reading
// for a session timeout, which ends the wait too.
func (c *conn) waitOutput(limit int) bool {
	for {
		c.mu.Lock()
		over := len(c.out)+c.writing > limit
		idle := over && !c.flushing
		c.mu.Unlock()
		if !over {
			return true
		}
		if idle {
			c.kick()
		}
		select {
		case <-c.drained:
		case <-c.closed:
			return false
		}
	}
}

// throttle holds a reader while globalOutstandingLimit writes are queued,
// as ZooKeeper stops reading from connections then; nothing is dropped.
func (s *Server) throttle(c *conn) {
	limit := int64(s.cfg.GlobalOutstandingLimit)
	if limit <= 0 {
		return
	}
	warned := false
	for s.stats.outstanding.Load() > limit {
		if !warned {
			s.log.Debug("throttling reads: globalOutstandingLimit reached", "limit", limit)
			warned = true
		}
		select {
		case <-c.closed:
			return
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// input handles every complete frame at the start of b and returns how
// many bytes it used. It stops early, with more set, once the output
// waiting to be sent is over limit: the rest is handled when it drains.
func (c *conn) input(b []byte, max, limit int) (used int, more bool, err error) {
	off := 0
	// handshaken is written only by this goroutine.
	if !c.handshaken && len(b) >= 4 {
		if cmd := string(b[:4]); isFourLetterWord(cmd) {
			// No word reads znode records (only a View's counters and
			// its index of ephemerals), so none needs a read slot.
			out := c.fourLetterWord(cmd, b[4:])
			c.mu.Lock()
			c.out = append(c.out, out...)
			c.closing = true
			c.mu.Unlock()
			return len(b), false, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// One slot entry covers every read of the batch.
	c.enterView()
	// Counters and the session's deadline move once per batch of frames,
	// not once per request: they are shared with every other connection.
	var frames int64
	touch := false
	defer func() {
		c.leaveView()
		c.handOver()
		c.received.Add(frames)
		c.s.stats.received.Add(frames)
		if touch && c.sess != nil {
			// The time the reader took when these bytes arrived: no
			// second clock read per batch.
			c.s.sessions.touch(c.sess, c.lastActive.Load())
		}
	}()
	for {
		if len(c.out)+c.writing > limit && !c.closing {
			return off, true, nil
		}
		payload, n, err := wire.SplitFrame(b[off:], max)
		if err != nil {
			return off, false, fmt.Errorf("frame length %w (jute.maxbuffer is %d)", err, max)
		}
		if n == 0 {
			return off, false, nil
		}
		off += n
		frames++
		if c.closing {
			continue
		}
		if !c.handshaken {
			if err := c.handshake(payload); err != nil {
				return off, false, err
			}
			continue
		}
		if len(payload) < wire.RequestHeaderSize {
			// ZooKeeper closes a connection whose frame cannot hold a
			// request header; a zero-length frame among them.
			return off, false, fmt.Errorf("a %d-byte frame cannot hold a request header", len(payload))
		}
		touch = true
		if len(c.deferred) > 0 || (opOf(payload) == wire.OpAuth && c.mustWait()) {
			c.deferred = append(c.deferred, bytes.Clone(payload))
			continue
		}
		c.dispatch(payload)
	}
}

// enterView and leaveView bracket reads through a View by the
// connection's goroutines. Called with c.mu held, which keeps the slot to
// one goroutine at a time.
func (c *conn) enterView() {
	c.slot.Enter()
	c.viewing = true
}

func (c *conn) leaveView() {
	c.viewing = false
	c.slot.Leave()
}

// dispatch runs a request now, or hands a read that must wait to the
// applier, which answers it in its place among the session's writes. A
// write to a session that is closing is answered at once (SESSIONEXPIRED),
// so while anything of the session is in the applier it waits there too,
// to be answered in its turn. Called with c.mu held.
func (c *conn) dispatch(p []byte) {
	op := opOf(p)
	if c.mustWait() && (!isWrite(op) || op != wire.OpCloseSession && c.sess.closing.Load()) {
		r := newWriteReq()
		r.c, r.read = c, true
		r.raw = append(r.raw[:0], p...)
		c.inflight++
		c.submit(r)
		return
	}
	c.request(p)
}

// submit queues a request for the applier; handOver passes the queue on
// in one go, so a batch of frames wakes the applier once. Both are called
// with c.mu held, which keeps the session's requests in order.
func (c *conn) submit(r *writeReq) { c.queued = append(c.queued, r) }

func (c *conn) handOver() {
	if len(c.queued) == 0 {
		return
	}
	c.s.writes.submitAll(c.queued)
	clear(c.queued)
	c.queued = c.queued[:0]
}

// drain runs deferred requests that may run now. Called with c.mu held.
func (c *conn) drain() {
	n := 0
	for n < len(c.deferred) && !c.closing {
		p := c.deferred[n]
		if opOf(p) == wire.OpAuth && c.mustWait() {
			break
		}
		c.deferred[n] = nil
		n++
		c.dispatch(p)
	}
	c.handOver()
	if n > 0 {
		c.deferred = c.deferred[n:]
		if len(c.deferred) == 0 {
			c.deferred = nil
		}
	}
}

// mustWait reports whether a read must wait: a request of the session is
// in the applier, or the view does not show the session's last write yet.
// Called with c.mu held.
func (c *conn) mustWait() bool {
	return c.inflight > 0 || c.s.view.Load().Zxid() < c.needZxid
}

func opOf(p []byte) wire.OpCode {
	if len(p) < 8 {
		return wire.OpError
	}
	return wire.OpCode(int32(p[4])<<24 | int32(p[5])<<16 | int32(p[6])<<8 | int32(p[7]))
}

func (c *conn) writeLoop() {
	defer c.close()
	for {
		select {
		case <-c.wake:
		case <-c.closed:
			return
		}
		c.mu.Lock()
		c.drain()
		if c.flushing {
			// The reader is writing; it kicks again if more is queued.
			c.mu.Unlock()
			continue
		}
		if done, err := c.flushLocked(); err != nil || done {
			return
		}
	}
}

// flushLocked writes everything queued in one write. It is called with
// c.mu held and releases it. Only one goroutine writes at a time (the
// flushing flag); whatever is queued meanwhile goes out on the writer's
// next pass. done reports that the connection is closing and everything
// has been written.
func (c *conn) flushLocked() (done bool, err error) {
	out := c.out
	c.out = c.spare[:0]
	c.spare = nil
	if c.reads > 0 { // every read has a reply in out, so its count moves here
		c.s.stats.reads(c.reads)
		c.reads = 0
	}
	if c.resp.n > 0 {
		c.s.stats.responseSizes(c.resp.last, c.resp.min, c.resp.max)
		c.resp.n, c.resp.max = 0, 0
	}
	if c.nsDirty {
		c.s.mergeReads(c.nsReads)
		c.nsDirty = false
	}
	if sent := c.unsent; sent > 0 {
		c.unsent = 0
		c.sent.Add(sent)
		c.s.stats.sent.Add(sent)
		c.lastResponse.Store(monotonicMillis()) // ZooKeeper's lresp is on its elapsed-time clock
	}
	c.flushing = true
	c.writing = len(out)
	timeout := c.writeTimeout()
	c.mu.Unlock()
	if len(out) > 0 {
		// A client that reads nothing for a session timeout would have
		// lost its session anyway: its connection goes, and with it
		// the output piling up for it.
		c.nc.SetWriteDeadline(time.Now().Add(timeout))
		if _, err = c.nc.Write(out); err != nil {
			c.logWriteFailure(err, timeout, len(out))
		}
	}
	select {
	case c.drained <- struct{}{}:
	default:
	}
	c.mu.Lock()
	c.flushing = false
	c.writing = 0
	if cap(out) <= 1<<20 {
		c.spare = out[:0]
	}
	more := len(c.out) > 0
	// Read closing only now: a close asked for during the write woke a
	// writer that found this flush running and left it to us.
	closing := c.closing
	c.mu.Unlock()
	if err != nil {
		return false, err
	}
	if more {
		c.kick()
	}
	return closing && !more, nil
}

// logWriteFailure says why a write failed when it is the client's doing:
// it read nothing for a whole session timeout. (Out of flushLocked, whose
// hot path must not allocate: the error target escapes.)
func (c *conn) logWriteFailure(err error, timeout time.Duration, unsent int) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.s.log.Warn("closing a connection whose client has not read its replies for a session timeout",
			"client", c.nc.RemoteAddr().String(), "timeout", timeout, "unsent", unsent)
	}
}

// writeTimeout is how long one write may wait for the client to read:
// the session timeout, or before the handshake the sessionless one.
// Called with c.mu held.
func (c *conn) writeTimeout() time.Duration {
	ms := int(c.timeout.Load())
	if ms <= 0 {
		ms = c.s.cfg.SessionlessCnxnTimeout
	}
	return time.Duration(ms) * time.Millisecond
}

// handshake answers a ConnectRequest: a new session goes through a
// createSession txn and is answered once that is durable; a resumed one
// with the right password is answered at once; anything else gets the
// expired-session answer and the connection closes.
func (c *conn) handshake(p []byte) error {
	var req wire.ConnectRequest
	if _, err := req.Decode(p, wire.Copy); err != nil {
		return fmt.Errorf("bad connect request: %w", err)
	}
	s := c.s
	if z := s.view.Load().Zxid(); req.LastZxidSeen > z {
		return fmt.Errorf("refusing session request: the client has seen zxid 0x%x, our last zxid is 0x%x; the client must try another server",
			req.LastZxidSeen, z)
	}
	c.handshaken = true
	timeout := s.negotiate(req.TimeOut)
	c.timeout.Store(timeout)
	resp := &wire.ConnectResponse{TimeOut: timeout, HasReadOnly: req.HasReadOnly}
	now := monotonicMillis() // the session table's clock
	if req.SessionID == 0 {
		id := s.newSessionID()
		pw := sessionPassword(id)
		resp.SessionID, resp.Passwd = id, pw[:]
		se := s.sessions.add(id, timeout, now)
		se.conn.Store(c)
		c.sess, c.sid = se, id
		c.inflight++
		c.submit(&writeReq{c: c, sess: id, op: wire.OpCreateSession,
			body: &wire.CreateSessionTxn{TimeOut: timeout}, connect: resp})
		return nil
	}
	se := s.sessions.get(req.SessionID)
	pw := sessionPassword(req.SessionID)
	if se == nil || se.closing.Load() || !bytes.Equal(req.Passwd, pw[:]) {
		s.log.Info("refusing to resume a session: expired, closed or wrong password",
			"session", fmt.Sprintf("0x%x", req.SessionID), "client", c.nc.RemoteAddr().String())
		resp.TimeOut, resp.SessionID, resp.Passwd = 0, 0, make([]byte, 16)
		c.appendConnect(resp)
		c.closing = true
		return nil
	}
	se.timeout.Store(timeout)
	s.sessions.touch(se, now)
	if old := se.conn.Swap(c); old != nil && old != c {
		old.closeAfterFlush()
	}
	// The watches of the previous connection go; the client sends the
	// ones it still wants with setWatches.
	s.tree.RemoveSession(se.id)
	c.sess, c.sid = se, se.id
	s.tree.SetAuth(se.id, c.auth) // this connection's identities, as ZooKeeper keeps them
	resp.SessionID, resp.Passwd = se.id, pw[:]
	c.appendConnect(resp)
	return nil
}

func (c *conn) appendConnect(resp *wire.ConnectResponse) {
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = resp.Append(c.out)
	c.out = wire.EndFrame(c.out, start)
	c.unsent++
}

// sessionCreated queues the handshake reply once the createSession txn
// is durable and applied. The caller kicks the writer.
func (c *conn) sessionCreated(resp *wire.ConnectResponse, zxid int64) {
	c.mu.Lock()
	c.inflight--
	c.needZxid = max(c.needZxid, zxid)
	c.appendConnect(resp)
	c.lastOp.Store(int32(wire.OpCreateSession))
	c.lastXid.Store(0)
	c.lastZxid.Store(zxid)
	// Its identities (the client's address) decide which watch events
	// it may see.
	c.s.tree.SetAuth(c.sid, c.auth)
	c.mu.Unlock()
}

// writeDone queues the reply to a write. The caller kicks the writer.
func (c *conn) writeDone(xid int32, zxid int64, code wire.ErrCode, body wire.Record, closeAfter bool) {
	c.mu.Lock()
	c.inflight--
	c.needZxid = max(c.needZxid, zxid)
	c.appendReply(xid, zxid, code, body)
	if closeAfter {
		c.closing = true
	}
	c.mu.Unlock()
}

// appendReply adds one reply frame and counts it as the connection's last
// for cons. Called with c.mu held.
func (c *conn) appendReply(xid int32, zxid int64, code wire.ErrCode, body wire.Record) {
	c.appendReplyFrame(xid, zxid, code, body)
	if xid >= 0 {
		// A ping's or another special xid is not the client's last
		// real request: ZooKeeper keeps the one before.
		c.lastXid.Store(xid)
	}
	c.lastZxid.Store(zxid)
}

// appendReplyFrame adds one reply frame without counting it for cons, as
// ZooKeeper does not count its answers to auth and sasl. Called with
// c.mu held.
func (c *conn) appendReplyFrame(xid int32, zxid int64, code wire.ErrCode, body wire.Record) {
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = wire.AppendReplyHeader(c.out, xid, zxid, code)
	if code == wire.ErrOK && body != nil {
		c.out = body.Append(c.out)
	}
	c.out = wire.EndFrame(c.out, start)
	c.unsent++
	c.countResponse(len(c.out) - start - wire.FrameHeaderSize)
}

// statBytes is what ZooKeeper adds to every read it counts per
// namespace: a Stat's size.
const statBytes = 68

// countRead counts a successful read of path that returned bytes of data
// or child names, for mntr's per-namespace figures, as ZooKeeper counts
// getData, exists and getChildren. Called with c.mu held.
func (c *conn) countRead(path string, bytes int) {
	ns := ztree.TopNamespace(path)
	if ns == "" {
		return
	}
	st := c.nsReads[ns]
	if st == nil {
		if c.nsReads == nil {
			c.nsReads = map[string]*ztree.NamespaceStat{}
		}
		st = &ztree.NamespaceStat{}
		c.nsReads[strings.Clone(ns)] = st // path is the request's buffer
	}
	st.Add(int64(len(path) + bytes + statBytes))
	c.nsDirty = true
}

// countResponse notes the size of a reply or event (without its length
// prefix), for mntr's client response size figures; flushLocked passes
// them on once per flush. Called with c.mu held.
func (c *conn) countResponse(n int) {
	if c.resp.n == 0 || n < c.resp.min {
		c.resp.min = n
	}
	c.resp.max = max(c.resp.max, n)
	c.resp.last = n
	c.resp.n++
}

// queueEvent adds a watch notification. The caller kicks the writer.
// Events are not held back like replies (the reader stops computing
// those), so a client that reads nothing while its watches keep firing
// is closed once its output passes outputHardLimit times the limit.
func (c *conn) queueEvent(t wire.EventType, path string, zxid int64) {
	c.mu.Lock()
	c.appendEvent(t, path, zxid)
	over := len(c.out)+c.writing > outputHardLimit*c.s.cfg.OutputLimit()
	c.mu.Unlock()
	if over {
		c.s.log.Warn("closing a connection whose client does not read its watch events",
			"client", c.nc.RemoteAddr().String(), "limit", outputHardLimit*c.s.cfg.OutputLimit())
		go c.close()
	}
}

// outputHardLimit is how many times the output limit a connection may
// hold before it is closed rather than waited for.
const outputHardLimit = 4

// appendEvent adds a watch notification for the change of txn zxid.
// Called with c.mu held.
//
// The connection's reads that follow wait for a view holding zxid: the
// applier queues a txn's events before it moves the readers' view on, so
// a read answered from the old view after the event would show the data
// the event says is gone (a CuratorCache then keeps a deleted znode).
func (c *conn) appendEvent(t wire.EventType, path string, zxid int64) {
	c.needZxid = max(c.needZxid, zxid)
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = wire.AppendReplyHeader(c.out, wire.XidNotification, -1, wire.ErrOK)
	ev := wire.WatcherEvent{Type: t, State: wire.StateSyncConnected, Path: path}
	c.out = ev.Append(c.out)
	c.out = wire.EndFrame(c.out, start)
	c.unsent++
	c.countResponse(len(c.out) - start - wire.FrameHeaderSize)
}
