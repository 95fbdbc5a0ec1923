package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"zkd/internal/sasl"
	"zkd/wire"
	"zkd/ztree"
)

// conn is one client connection. It lives on one event loop (loop.go):
// every field without an atomic type is touched only there, so it needs
// no lock.
//
// Per-session FIFO (rule 1): a write goes to the applier in arrival order.
// A read that arrives while a request of the session is in the applier
// goes there too, behind it; the applier posts it back to the loop with
// the version after the writes before it and before the ones after it,
// and the loop answers it from that version. So replies leave in request
// order, a read sees every earlier write of its session and no later one,
// and the writes behind a waiting read are logged meanwhile instead of
// waiting for it. Only an addauth waits in deferred (with everything
// after it) until the applier holds nothing of the session: the writes
// after it must carry its identity.
type conn struct {
	s      *Server
	lp     *loop
	gc     gnet.Conn
	ip     string
	remote string // the client's address, for logs and four-letter words

	created     time.Time
	createdMono int64 // ms on the server's clock

	handshaken bool
	// While the leader is asked about the session the client resumes,
	// the ConnectRequest waits in connectRaw (not nil), and what the
	// client sends after it in deferred; leaderSays is the answer (1
	// open, -1 not).
	connectRaw []byte
	leaderSays int8
	sess       *session
	auth       []wire.Id
	sasl       *sasl.Digest // the connection's SASL exchange, once begun
	out        []byte       // this pass's output, written at its end
	inflight   int          // requests handed to the applier and not answered yet
	reads      int64        // reads answered since the last flush moved the counters
	waited     []int64      // the latencies (ms) of the reads among them that waited for a write
	unsent     int64        // replies and events in out, for the sent counters
	// needZxid is the newest txn the connection has been shown, by a
	// write's reply or a watch event: its reads wait for a view that
	// holds it, so no reply shows older data than an event before it.
	needZxid int64
	deferred [][]byte // requests waiting for inflight writes, in order
	nudged   bool     // an itemNudge is posted (see nudge)
	closing  bool     // close once the output is sent
	// lingerUntil, on the server's clock, is the earliest a closing
	// connection goes: a client told its SASL exchange failed gets the
	// time to read that, its further bytes read and dropped, rather than
	// a reset that may cost it the reply.
	lingerUntil int64
	closed      bool // gone: nothing more is read, written or answered
	answering   bool // a four-letter word's answer is being made off the loop
	// stalled: input waits in gnet's buffer, because the output is over
	// the cap or the server has globalOutstandingLimit requests queued.
	stalled  bool
	resuming bool // a later pass will read on (resume)
	dirty    bool // in lp.dirty
	// The output gnet could not send yet, and when it last shrank (ms on
	// the server's clock): a client that reads nothing for a session
	// timeout is closed.
	lastOutbound int
	progressAt   int64
	// resp are the response sizes since the last flush.
	resp struct{ n, last, min, max, replyBytes int }
	// nsReads counts the connection's reads per namespace until a flush
	// merges them into the server's (nsDirty: some are waiting).
	nsReads map[string]*ztree.NamespaceStat
	nsDirty bool

	// applierMark is the applier's own: it marks the connection as having
	// a read in the run of requests the applier is committing.
	applierMark uint64

	// for the four-letter words, read off the loop
	sid            atomic.Int64
	queued         atomic.Int32 // inflight plus deferred
	received, sent atomic.Int64
	lastOp         atomic.Int32
	lastXid        atomic.Int32
	lastZxid       atomic.Int64
	lastResponse   atomic.Int64 // ms on the monotonic clock, as ZooKeeper's lresp
	lastActive     atomic.Int64 // ms on the monotonic clock: the last bytes read
	timeout        atomic.Int32
	lat            latencies

	// arrived is when the loop began taking the bytes it is consuming
	// (OnTraffic), and zero otherwise: the start of each write they hold.
	arrived time.Time
}

// resetStats starts the connection's figures for cons afresh, as crst
// does.
func (c *conn) resetStats() {
	c.received.Store(0)
	c.sent.Store(0)
	c.lastOp.Store(-100) // NA
	c.lastXid.Store(-1)
	c.lastZxid.Store(-1)
	c.lastResponse.Store(0)
	c.lat.reset()
}

func newConn(s *Server, ip, remote string) *conn {
	c := &conn{s: s, ip: ip, remote: remote, created: time.Now(), createdMono: s.mono()}
	c.auth = []wire.Id{{Scheme: "ip", ID: ip}}
	c.lastOp.Store(-100)
	c.lat.min.Store(-1)
	c.lastActive.Store(c.createdMono)
	c.progressAt = c.createdMono
	return c
}

// post hands the connection's loop something to do for it; any goroutine
// may call it.
func (c *conn) post(it item) {
	it.c = c
	c.lp.post(it)
}

// close drops the connection from any goroutine, saying why in the log
// when why is not empty.
func (c *conn) close(why string) { c.post(item{kind: itemClose, why: why}) }

// closeAfterFlush closes the connection, from any goroutine, once what
// is queued for it is sent.
func (c *conn) closeAfterFlush() { c.post(item{kind: itemClosing}) }

// closeNow forgets the connection on its loop. The session stays, to
// expire or be resumed on another connection; the watches this
// connection carried go.
func (c *conn) closeNow() {
	if c.closed {
		return
	}
	c.closed = true
	// Uncounted as it closes: a client that has seen the close (a
	// four-letter word's EOF) and asks again for the connections must
	// not find this one.
	c.s.removeConn(c)
	if c.stalled {
		c.stalled = false
		c.s.stalled.Add(-1)
	}
	delete(c.lp.watch, c)
	c.deferred = nil
	if se := c.sess; se != nil && se.conn.CompareAndSwap(c, nil) {
		c.s.tree.Load().RemoveSession(se.id)
	}
}

// drop closes the connection now, from its loop: gnet closes the socket
// after the pass, and nothing more is read, written or answered.
func (c *conn) drop() {
	c.gc.Close()
	c.closeNow()
}

// setClosing marks the connection to close once its output is sent.
func (c *conn) setClosing() {
	c.closing = true
	c.markDirty()
}

func (c *conn) setInflight(n int) {
	c.inflight = n
	c.queued.Store(int32(n + len(c.deferred)))
}

// markDirty puts the connection on its loop's list for the pass's end.
func (c *conn) markDirty() {
	if !c.dirty {
		c.dirty = true
		c.lp.dirty = append(c.lp.dirty, c)
	}
}

// buf readies the output buffer for appending.
func (c *conn) buf() {
	if c.out == nil {
		c.out = c.lp.buffer()
	}
	c.markDirty()
}

// pendingOutput is what the connection has waiting to be sent.
func (c *conn) pendingOutput() int { return len(c.out) + c.gc.OutboundBuffered() }

// consume handles the complete frames gnet holds for the connection.
func (c *conn) consume() {
	if c.closed {
		return
	}
	s := c.s
	in, _ := c.gc.Peek(-1)
	if len(in) == 0 {
		c.unstall()
		return
	}
	used, err := c.input(in)
	if used > 0 {
		c.gc.Discard(used) // never 0: that would drop everything
	}
	if err != nil {
		s.log.Warn("closing connection", "client", c.remote, "reason", err.Error())
		c.setClosing()
		if c.gc.InboundBuffered() > 0 {
			c.gc.Discard(c.gc.InboundBuffered())
		}
		return
	}
	if c.stalled {
		// A client that keeps sending while it reads nothing would
		// fill memory with requests it will never read the answers to.
		if limit := max(s.cfg.OutputLimit(), s.cfg.MaxBuffer+wire.FrameHeaderSize); c.gc.InboundBuffered() > limit &&
			c.pendingOutput() > s.cfg.OutputLimit() {
			s.log.Warn("closing a connection whose client sends requests without reading the replies",
				"client", c.remote, "unread requests", c.gc.InboundBuffered(), "unsent replies", c.pendingOutput())
			c.drop()
		}
	}
}

// A connection's share of one pass: past this much output or this many
// requests, its remaining input is handled in a later pass.
const (
	passOutput = 64 << 10
	passFrames = 1024
)

// resume has the loop come back to the connection's input after the
// events already waiting on it.
func (c *conn) resume() {
	if !c.resuming {
		c.resuming = true
		c.gc.Wake(nil)
	}
}

func (c *conn) stall() {
	if !c.stalled {
		c.stalled = true
		c.s.stalled.Add(1)
		c.lp.watch[c] = struct{}{}
	}
}

func (c *conn) unstall() {
	if c.stalled {
		c.stalled = false
		c.s.stalled.Add(-1)
	}
}

// throttled reports whether the server holds globalOutstandingLimit
// requests: as ZooKeeper then stops reading from connections, the loop
// stops taking requests until the applier catches up; nothing is dropped.
func (s *Server) throttled() bool {
	limit := int64(s.cfg.GlobalOutstandingLimit)
	return limit > 0 && s.stats.outstanding.Load() > limit
}

// input handles every complete frame at the start of b and returns how
// many bytes it used. It stops early, stalling the connection, while the
// output waiting to be sent is over the limit or the server is
// throttled: the rest is handled when that passes.
func (c *conn) input(b []byte) (used int, err error) {
	s := c.s
	if c.answering || c.closing {
		return len(b), nil // nothing more is read
	}
	if !c.handshaken && len(b) >= 4 {
		if cmd := string(b[:4]); isFourLetterWord(cmd) {
			c.answering = true
			rest := bytes.Clone(b[4:])
			c.received.Add(1)
			s.stats.received.Add(1)
			s.stats.bytesReceived.Add(4) // the word, as ZooKeeper counts it
			// Off the loop: some words read the disk (dirs) or walk
			// every session and watch. The answer goes out on a copy of
			// the socket's descriptor: a client that shuts down its side
			// once it has sent the word (ZooKeeper's FourLetterWordMain,
			// which zkServer.sh status runs; nc -N) makes the loop close
			// the connection at that end of input, before the answer
			// could go through it, and ZooKeeper, which stops reading
			// after the word, answers it all the same.
			fd, err := c.gc.Dup()
			go func() {
				answer := c.fourLetterWord(cmd, rest)
				if err != nil {
					c.post(item{kind: itemAnswer, answer: answer})
					return
				}
				f := os.NewFile(uintptr(fd), "four-letter word answer")
				f.SetWriteDeadline(time.Now().Add(time.Duration(c.writeTimeout()) * time.Millisecond))
				f.Write([]byte(answer))
				f.Close()
				c.post(item{kind: itemClose})
			}()
			return len(b), nil
		}
	}
	max, limit := s.cfg.MaxBuffer, s.cfg.OutputLimit()
	// Counters and the session's deadline move once per batch of frames,
	// not once per request: they are shared with every other connection.
	var frames int64
	touch := false
	defer func() {
		c.received.Add(frames)
		s.stats.received.Add(frames)
		s.stats.bytesReceived.Add(int64(used))
		if touch && c.sess != nil {
			// The time the loop took when these bytes arrived: no
			// second clock read per batch.
			s.sessions.touch(c.sess, c.lastActive.Load())
		}
	}()
	off := 0
	startOut := len(c.out)
	for {
		if c.closing {
			return len(b), nil
		}
		if c.pendingOutput() > limit {
			c.stall()
			return off, nil
		}
		if len(c.out)-startOut > passOutput || frames >= passFrames {
			// Enough for one pass: the rest waits behind the loop's other
			// connections, so one pipelining client does not hold up
			// everyone else's replies.
			c.resume()
			return off, nil
		}
		if s.throttled() {
			if !c.stalled {
				s.log.Debug("throttling reads: globalOutstandingLimit reached", "limit", s.cfg.GlobalOutstandingLimit)
			}
			c.stall()
			return off, nil
		}
		payload, n, err := wire.SplitFrame(b[off:], max)
		if err != nil {
			return off, fmt.Errorf("frame length %w (jute.maxbuffer is %d)", err, max)
		}
		if n == 0 {
			c.unstall()
			return off, nil
		}
		off += n
		frames++
		if !c.handshaken {
			if err := c.handshake(payload); err != nil {
				return off, err
			}
			continue
		}
		if len(payload) < wire.RequestHeaderSize {
			// ZooKeeper closes a connection whose frame cannot hold a
			// request header; a zero-length frame among them.
			return off, fmt.Errorf("a %d-byte frame cannot hold a request header", len(payload))
		}
		touch = true
		if len(c.deferred) > 0 || c.connectRaw != nil || (c.mustWait() && barrier(payload)) {
			c.deferred = append(c.deferred, bytes.Clone(payload))
			c.queued.Add(1)
			c.nudge()
			continue
		}
		c.dispatch(payload)
	}
}

// dispatch runs a request now, or hands a read that must wait to the
// applier, which sends it back in its place among the session's writes.
// A write to a session that is closing is answered at once
// (SESSIONEXPIRED), so while anything of the session is in the applier
// it waits there too, to be answered in its turn.
func (c *conn) dispatch(p []byte) {
	op := opOf(p)
	if op == wire.OpSync && c.s.peer != nil {
		// In an ensemble a sync waits for every write committed before
		// it: on the leader, those it prepped before; on a follower,
		// those the leader committed before it answered.
		r := newWriteReq()
		r.c, r.read, r.sync = c, true, role(c.s.peer.role.Load()) != roleLeading
		r.raw = append(r.raw[:0], p...)
		c.setInflight(c.inflight + 1)
		c.submit(r)
		return
	}
	if c.mustWait() && (!isWrite(op) || op != wire.OpCloseSession && c.sess.closing.Load()) {
		r := newWriteReq()
		r.c, r.read = c, true
		r.raw = append(r.raw[:0], p...)
		c.setInflight(c.inflight + 1)
		c.submit(r)
		return
	}
	c.request(p)
}

// submit queues a request for the applier; the loop passes its queue on
// at the end of the pass, so a pass wakes the applier once.
func (c *conn) submit(r *writeReq) { c.lp.queued = append(c.lp.queued, r) }

// drain runs deferred requests that may run now.
func (c *conn) drain() {
	n := 0
	for n < len(c.deferred) && !c.closing && !c.closed {
		p := c.deferred[n]
		if c.mustWait() && barrier(p) {
			c.nudge()
			break
		}
		c.deferred[n] = nil
		n++
		c.dispatch(p)
	}
	if n > 0 {
		c.deferred = c.deferred[n:]
		if len(c.deferred) == 0 {
			c.deferred = nil
		}
		c.queued.Store(int32(c.inflight + len(c.deferred)))
	}
}

// barrier reports whether a request waits, with every request after it,
// until nothing of its session is in the applier. An auth changes what
// later requests may do. The requests that set, remove or look up
// watches act on the watches as they are at the newest version, which
// must hold the session's writes before them and none after: handed to
// the applier as reads that wait, they would run after the writes behind
// them had been applied, and an addWatch would miss those writes' events,
// a removeWatches let them fire, and a read's one-shot watch fire ahead
// of the replies before the write that fired it.
func barrier(p []byte) bool {
	switch opOf(p) {
	case wire.OpAuth, wire.OpAddWatch, wire.OpRemoveWatches, wire.OpCheckWatches, wire.OpSetWatches, wire.OpSetWatches2:
		return true
	case wire.OpGetData, wire.OpExists, wire.OpGetChildren, wire.OpGetChildren2:
		return watchFlag(p)
	}
	return false
}

// watchFlag is the watch flag of a getData, exists or getChildren
// request: the byte after the path.
func watchFlag(p []byte) bool {
	const at = wire.RequestHeaderSize + 4
	if len(p) < at {
		return false
	}
	n := int(int32(binary.BigEndian.Uint32(p[wire.RequestHeaderSize:])))
	return n >= 0 && at+n < len(p) && p[at+n] != 0
}

// nudge makes sure deferred requests run once they may: when nothing of
// the session is in the applier, they wait only for the pass's view to
// show the session's last write (or the version an addWatch registered
// against), and no reply will come to run them; an item that the loop
// carries out once its view holds that version does.
func (c *conn) nudge() {
	if c.inflight > 0 || c.nudged || c.connectRaw != nil {
		return
	}
	c.nudged = true
	c.lp.post(item{c: c, kind: itemNudge, zxid: c.needZxid})
}

// mustWait reports whether a read must wait: a request of the session is
// in the applier, or the pass's view does not show the session's last
// write yet.
func (c *conn) mustWait() bool {
	return c.inflight > 0 || c.lp.v.Zxid() < c.needZxid
}

func opOf(p []byte) wire.OpCode {
	if len(p) < 8 {
		return wire.OpError
	}
	return wire.OpCode(int32(p[4])<<24 | int32(p[5])<<16 | int32(p[6])<<8 | int32(p[7]))
}

// passTotals are the figures of a loop's pass, moved into the server's
// counters once per pass: every loop moving them per connection would
// pass their cache lines from core to core many times a pass.
type passTotals struct {
	reads                             int64   // reads answered at once
	waited                            []int64 // the latencies (ms) of reads that waited for a write
	replyBytes                        int64
	respN, respLast, respMin, respMax int
	sent                              int64
}

// count moves the pass's figures into the connection's own counters and
// adds them to t.
func (c *conn) count(t *passTotals, now int64) {
	if c.reads > 0 { // every read has a reply in out, so its count moves here
		c.lat.reads(c.reads)
		t.reads += c.reads
		c.reads = 0
	}
	if len(c.waited) > 0 {
		c.lat.addAll(c.waited)
		t.waited = append(t.waited, c.waited...)
		c.waited = c.waited[:0]
	}
	t.replyBytes += int64(c.resp.replyBytes)
	c.resp.replyBytes = 0
	if r := &c.resp; r.n > 0 {
		if t.respN == 0 || r.min < t.respMin {
			t.respMin = r.min
		}
		t.respMax = max(t.respMax, r.max)
		t.respLast = r.last
		t.respN += r.n
		r.n, r.max = 0, 0
	}
	if c.nsDirty {
		c.s.mergeReads(c.nsReads)
		c.nsDirty = false
	}
	if sent := c.unsent; sent > 0 {
		c.unsent = 0
		c.sent.Add(sent)
		t.sent += sent
		c.lastResponse.Store(now) // ZooKeeper's lresp is on its elapsed-time clock
	}
}

// add moves a pass's figures into the server's counters.
func (st *stats) add(t *passTotals) {
	if t.reads > 0 {
		st.lat.reads(t.reads)
		st.readLat.reads(t.reads)
	}
	if len(t.waited) > 0 {
		st.lat.addAll(t.waited)
		st.readLat.addAll(t.waited)
	}
	if t.replyBytes > 0 {
		st.responseBytes.Add(t.replyBytes)
	}
	if t.respN > 0 {
		st.responseSizes(t.respLast, t.respMin, t.respMax)
	}
	if t.sent > 0 {
		st.sent.Add(t.sent)
	}
	*t = passTotals{waited: t.waited[:0]}
}

// flush writes the pass's output in one write; its counters have moved
// (count).
func (c *conn) flush() {
	if len(c.out) > 0 {
		// gnet writes what the socket takes and keeps the rest; a write
		// error closes the connection (OnClose).
		c.gc.Write(c.out)
		c.out = c.out[:0]
		if c.closed {
			return
		}
	}
	ob := c.gc.OutboundBuffered()
	switch {
	case c.closing && !c.answering && ob == 0 && c.s.mono() >= c.lingerUntil:
		c.drop()
	case ob > 0 || c.closing:
		// Housekeeping watches the output drain (and the client that
		// does not read it).
		c.lp.watch[c] = struct{}{}
	}
}

// writeTimeout is how long, in ms, the client may leave its output
// unread: the session timeout, or before the handshake the sessionless
// one.
func (c *conn) writeTimeout() int64 {
	ms := int64(c.timeout.Load())
	if ms <= 0 {
		ms = int64(c.s.cfg.SessionlessCnxnTimeout)
	}
	return ms
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
	if p := s.peer; p != nil && !p.takesClients() && !p.roServing.Load() {
		if p.serving.Load() {
			return errLeaderTakesNoClients
		}
		return errNotServing
	}
	if c.leaderSays == 0 {
		// The first look at the request: a learner looks again at a
		// resume once the leader has answered for the session.
		ok, deficit := s.throttle.admit(s.mono(), req.SessionID != 0)
		if !ok {
			s.stats.connRejected.Add(1)
			return errConnThrottled
		}
		s.stats.tokenDeficit.add(int64(deficit))
		s.stats.connRequests.Add(1)
	}
	if p := s.peer; p != nil && !p.takesClients() && !req.ReadOnly {
		// ZooKeeper's read-only server takes only the clients that said
		// they accept one.
		return errNotReadOnlyClient
	}
	if z := c.lp.v.Zxid(); req.LastZxidSeen > z {
		return fmt.Errorf("refusing session request: the client has seen zxid 0x%x, our last zxid is 0x%x; the client must try another server",
			req.LastZxidSeen, z)
	}
	c.handshaken = true
	timeout := s.negotiate(req.TimeOut)
	c.timeout.Store(timeout)
	resp := &wire.ConnectResponse{TimeOut: timeout, HasReadOnly: req.HasReadOnly}
	if s.peer != nil && s.peer.roServing.Load() {
		resp.ReadOnly = true
	}
	now := c.lastActive.Load() // the session table's clock, read as the bytes came
	if req.SessionID == 0 {
		id := s.newSessionID()
		pw := sessionPassword(id)
		resp.SessionID, resp.Passwd = id, pw[:]
		se := s.sessions.add(id, timeout, now)
		se.conn.Store(c)
		c.sess = se
		c.sid.Store(id)
		c.setInflight(c.inflight + 1)
		// From the pool: a burst of connections would otherwise leave a
		// writeReq each for the pool to hold until collections empty it.
		r := newWriteReq()
		r.c, r.sess, r.op = c, id, wire.OpCreateSession
		r.body, r.connect = &wire.CreateSessionTxn{TimeOut: timeout}, resp
		c.submit(r)
		return nil
	}
	if c.leaderSays == 0 {
		// Once per resume: a learner's handshake runs again with the
		// leader's answer.
		s.stats.resumes.Add(1)
		if fo := s.peer.learnerLink(); fo != nil {
			// A learner asks the leader first; the handshake goes on
			// with its answer (itemRevalidated).
			c.connectRaw = bytes.Clone(p)
			c.setInflight(c.inflight + 1)
			if fo.revalidate(req.SessionID, timeout, c) {
				return nil
			}
			c.connectRaw = nil
			c.setInflight(c.inflight - 1)
			return errNotServing
		}
	}
	se := s.sessions.get(req.SessionID)
	pw := sessionPassword(req.SessionID)
	if se == nil || se.closing.Load() || c.leaderSays < 0 || !bytes.Equal(req.Passwd, pw[:]) {
		s.log.Info("refusing to resume a session: expired, closed or wrong password",
			"session", fmt.Sprintf("0x%x", req.SessionID), "client", c.remote)
		resp.TimeOut, resp.SessionID, resp.Passwd = 0, 0, make([]byte, 16)
		c.appendConnect(resp)
		c.setClosing()
		return nil
	}
	se.timeout.Store(timeout)
	s.sessions.touch(se, now)
	// On a leader, its client is here now (sessionErr); elsewhere no
	// one reads it, and a new role clears it.
	se.owner.Store(localOwner)
	if old := se.conn.Swap(c); old != nil && old != c {
		old.closeAfterFlush()
	}
	// The watches of the previous connection go; the client sends the
	// ones it still wants with setWatches.
	s.tree.Load().RemoveSession(se.id)
	c.sess = se
	c.sid.Store(se.id)
	s.tree.Load().SetAuth(se.id, c.auth) // this connection's identities, as ZooKeeper keeps them
	resp.SessionID, resp.Passwd = se.id, pw[:]
	c.appendConnect(resp)
	return nil
}

func (c *conn) appendConnect(resp *wire.ConnectResponse) {
	c.buf()
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = resp.Append(c.out)
	c.out = wire.EndFrame(c.out, start)
	c.unsent++
}

// appendReply adds one reply frame and counts it as the connection's last
// for cons. An error reply has no body.
func (c *conn) appendReply(xid int32, zxid int64, code wire.ErrCode, body wire.Record) {
	if code != wire.ErrOK {
		body = nil
	}
	c.appendReplyWithBody(xid, zxid, code, body)
}

// appendReplyWithBody is appendReply with the body even for an error.
func (c *conn) appendReplyWithBody(xid int32, zxid int64, code wire.ErrCode, body wire.Record) {
	before := len(c.out)
	c.appendFrameWithBody(xid, zxid, code, body)
	c.resp.replyBytes += len(c.out) - before - wire.FrameHeaderSize
	if xid >= 0 {
		// A ping's or another special xid is not the client's last
		// real request: ZooKeeper keeps the one before.
		c.lastXid.Store(xid)
	}
	c.lastZxid.Store(zxid)
}

// appendReplyFrame adds one reply frame without counting it for cons, as
// ZooKeeper does not count its answers to auth and sasl.
func (c *conn) appendReplyFrame(xid int32, zxid int64, code wire.ErrCode, body wire.Record) {
	if code != wire.ErrOK {
		body = nil
	}
	c.appendFrameWithBody(xid, zxid, code, body)
}

// appendFrameWithBody adds a reply frame with the body even for an error,
// as ZooKeeper sends a failed sasl's (null) token.
func (c *conn) appendFrameWithBody(xid int32, zxid int64, code wire.ErrCode, body wire.Record) {
	c.buf()
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = wire.AppendReplyHeader(c.out, xid, zxid, code)
	if body != nil {
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
// getData, exists and getChildren.
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
// prefix), for mntr's client response size figures; flush passes them
// on once per pass.
func (c *conn) countResponse(n int) {
	if c.resp.n == 0 || n < c.resp.min {
		c.resp.min = n
	}
	c.resp.max = max(c.resp.max, n)
	c.resp.last = n
	c.resp.n++
}

// outputHardLimit is how many times the output limit a connection may
// hold before it is closed rather than waited for: watch events are not
// held back like replies (the loop stops computing those), so a client
// that reads nothing while its watches keep firing is closed past it.
const outputHardLimit = 4

// appendEvent adds a watch notification for the change of txn zxid.
//
// The connection's reads that follow wait for a view holding zxid: the
// applier posts a txn's events before it moves the readers' view on, so
// a read answered from the old view after the event would show the data
// the event says is gone (a CuratorCache then keeps a deleted znode).
func (c *conn) appendEvent(t wire.EventType, path string, zxid int64) {
	c.needZxid = max(c.needZxid, zxid)
	c.buf()
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = wire.AppendReplyHeader(c.out, wire.XidNotification, -1, wire.ErrOK)
	ev := wire.WatcherEvent{Type: t, State: wire.StateSyncConnected, Path: path}
	c.out = ev.Append(c.out)
	c.out = wire.EndFrame(c.out, start)
	c.unsent++
	c.countResponse(len(c.out) - start - wire.FrameHeaderSize)
}
