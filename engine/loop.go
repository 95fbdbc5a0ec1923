package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"zkd/wire"
	"zkd/ztree"
)

// The connection layer: gnet event loops, each owning its connections.
//
// Everything a connection holds (its session, identities, the requests
// it has in the applier, the output of the current pass) is touched only
// on its loop's goroutine, so a connection has no lock. Other goroutines
// reach a connection through its loop's mailbox: the applier posts
// replies, watch events and the reads that waited behind a write; a
// four-letter word's answer, computed off the loop, comes the same way;
// so do closes asked for elsewhere. A post wakes the loop once, however
// many follow before it drains.
//
// A loop works in passes: a gnet callback (traffic on a connection, a
// drained mailbox, housekeeping) is one pass. A pass enters the loop's
// read slot, loads the read view, then drains the mailbox: every watch
// event of a txn in that view was posted before the view was stored, so
// it is in the mailbox and goes out ahead of any reply computed from the
// view (rule 4). The pass then handles its input, answering reads from
// the view into each connection's output, hands the writes it decoded to
// the applier in one batch, and ends with one write per connection.

// loop is one gnet event loop's share of the server.
type loop struct {
	s  *Server
	el gnet.EventLoop

	// The loop's own: touched only on its goroutine.
	slot      *ztree.ReadSlot // entered for the length of a pass
	v         *ztree.View     // the view the pass reads
	depth     int             // passes nest when gnet calls back inside one
	queued    []*writeReq     // for the applier, handed over at the pass's end
	dirty     []*conn         // connections with output or a close to see to
	totals    passTotals      // the pass's figures, moved at its end
	watch     map[*conn]struct{}
	scratch   readScratch
	free      [][]byte // output buffers for the next pass
	freeBytes int      // their capacity in all

	// The mailbox, shared with the goroutines that post to it.
	mu        sync.Mutex
	box       []item
	spare     []item
	scheduled bool
	// pin holds the versions the reads in the mailbox are answered from
	// while pinned of them wait (see postBatch).
	pin    *ztree.ReadSlot
	pinned int

	// The applier's own: applierMark marks the loop as posted to in the
	// piece the applier is delivering, and outgoing holds what it posts.
	applierMark   uint64
	outgoing      []item
	outgoingReads int

	drainTask gnet.RunnableFunc
	houseTask gnet.RunnableFunc
	housing   atomic.Bool // a housekeeping pass is queued
}

// itemKind says what a mailbox item asks of its connection.
type itemKind uint8

const (
	itemReply       itemKind = iota // the reply to a write
	itemConnect                     // the handshake reply of a new session
	itemEvent                       // a watch event
	itemRead                        // a read that waited for its session's writes
	itemClose                       // close now
	itemClosing                     // close once what is queued is sent
	itemAnswer                      // a four-letter word's answer; close after it
	itemRevalidated                 // the leader's answer about a resumed session
	itemNudge                       // run the connection's deferred requests once the view holds zxid
)

// item is one thing posted to a loop for one of its connections.
type item struct {
	c    *conn
	kind itemKind
	op   wire.OpCode
	xid  int32
	zxid int64
	code wire.ErrCode
	// res is a write's outcome (itemReply with code OK): the loop
	// encodes the reply from it.
	res     ztree.Result
	hasRes  bool
	closing bool // after the reply, close the connection
	connect *wire.ConnectResponse
	evType  wire.EventType
	path    string
	r       *writeReq   // itemRead
	v       *ztree.View // itemRead: the version that answers it
	answer  string      // itemAnswer
	valid   bool        // itemRevalidated: the session is open
	why     string      // itemClose: the log line, if any
}

func newLoop(s *Server, el gnet.EventLoop) *loop {
	lp := &loop{s: s, el: el, slot: s.readers.NewSlot(), watch: map[*conn]struct{}{}}
	lp.pin = s.readers.NewSlot()
	lp.drainTask = func(context.Context) error {
		lp.begin()
		lp.end()
		return nil
	}
	lp.houseTask = func(context.Context) error {
		lp.housing.Store(false)
		lp.begin()
		lp.housekeep()
		lp.end()
		return nil
	}
	return lp
}

// post queues an item for the loop and wakes it, unless a wake is
// already on its way.
func (lp *loop) post(it item) {
	lp.mu.Lock()
	lp.box = append(lp.box, it)
	wake := !lp.scheduled
	lp.scheduled = true
	lp.mu.Unlock()
	if wake {
		lp.wake()
	}
}

// postBatch queues items, reads of them among them, without waking the
// loop: the applier posts a piece's events, replies and waited reads
// this way and wakes the loops once the view holds the piece (see
// drain). The pin is entered, if it is not already, at the epoch before
// the piece's version is visible, which holds that version's records
// and more.
func (lp *loop) postBatch(items []item, reads int) {
	lp.mu.Lock()
	if reads > 0 {
		if lp.pinned == 0 {
			lp.pin.Enter()
		}
		lp.pinned += reads
	}
	lp.box = append(lp.box, items...)
	lp.mu.Unlock()
}

// wake asks the loop for a pass that drains its mailbox.
func (lp *loop) wake() {
	if err := lp.el.Execute(context.Background(), lp.drainTask); err != nil {
		// The engine is shutting down: its connections are closing
		// and nobody waits for what was posted.
		lp.s.log.Debug("event loop gone", "err", err)
	}
}

// begin starts a pass: the read slot, the view, and the mailbox.
func (lp *loop) begin() {
	if lp.depth++; lp.depth > 1 {
		return
	}
	lp.slot.Enter()
	lp.v = lp.s.view.Load()
	lp.drain()
}

// end finishes a pass: the writes go to the applier, the output to the
// sockets, and the slot is left.
func (lp *loop) end() {
	if lp.depth--; lp.depth > 0 {
		return
	}
	lp.handOver()
	lp.flush()
	lp.v = nil
	lp.slot.Leave()
}

// drain handles what the mailbox holds, in the order it was posted, up
// to the first item of a txn the pass's view does not hold yet: a reply
// goes out only once every reader can see its txn, and the events and
// replies the pass sends never run ahead of the reads it answers from
// its view. The applier wakes the loop again once the view holds them;
// should this pass have loaded its view just before, it wakes itself.
func (lp *loop) drain() {
	lp.mu.Lock()
	items := lp.box
	lp.scheduled = false
	if len(items) == 0 {
		lp.mu.Unlock()
		return
	}
	lp.box, lp.spare = lp.spare[:0], nil
	lp.mu.Unlock()
	limit := lp.v.Zxid()
	k, served := 0, 0
	for ; k < len(items); k++ {
		it := &items[k]
		if it.holds() > limit {
			break
		}
		if it.kind == itemRead {
			served++
		}
		lp.handle(it)
	}
	lp.handOver()
	left := len(items) - k
	if left > 0 {
		// What waits goes back ahead of what was posted meanwhile, in
		// the array just taken: no allocation on this frequent path.
		copy(items, items[k:])
		clear(items[left:])
		items = items[:left]
	} else {
		clear(items)
		items = items[:0]
	}
	lp.mu.Lock()
	if left > 0 {
		posted := lp.box
		lp.box = append(items, posted...)
		clear(posted)
		if lp.spare == nil {
			lp.spare = posted[:0]
		}
	} else if lp.spare == nil {
		lp.spare = items
	}
	if served > 0 {
		if lp.pinned -= served; lp.pinned == 0 {
			lp.pin.Leave()
		}
	}
	lp.mu.Unlock()
	if left > 0 {
		lp.wake()
	}
}

// holds is the newest txn a view must hold before the item may be
// carried out.
func (it *item) holds() int64 {
	switch it.kind {
	case itemReply, itemConnect, itemEvent, itemNudge:
		return it.zxid
	case itemRead:
		return it.v.Zxid()
	}
	return 0
}

// handle carries out one mailbox item on its connection.
func (lp *loop) handle(it *item) {
	c := it.c
	if c.closed {
		if it.r != nil {
			release(it.r)
		}
		return
	}
	switch it.kind {
	case itemReply:
		c.setInflight(c.inflight - 1)
		c.needZxid = max(c.needZxid, it.zxid)
		code, body := it.code, wire.Record(nil)
		if it.hasRes {
			if it.res.SessionMoved() {
				// No answer: the connection goes, and the client,
				// which is on another server by now as far as the
				// leader knows, finds its session there, as
				// ZooKeeper tears such a connection down.
				c.s.log.Info("closing a connection whose session moved to another server",
					"session", fmt.Sprintf("0x%x", c.sid.Load()), "client", c.remote)
				c.setClosing()
				return
			}
			code, body = it.res.Reply(it.op)
		}
		c.appendReply(it.xid, it.zxid, code, body)
		if it.closing {
			c.s.log.Info("session closed", "session", fmt.Sprintf("0x%x", c.sid.Load()), "client", c.remote)
			c.setClosing()
		}
		c.drain()
	case itemConnect:
		c.setInflight(c.inflight - 1)
		c.needZxid = max(c.needZxid, it.zxid)
		c.appendConnect(it.connect)
		c.s.log.Info("session established", "session", fmt.Sprintf("0x%x", it.connect.SessionID),
			"timeout", it.connect.TimeOut, "client", c.remote)
		c.lastOp.Store(int32(wire.OpCreateSession))
		c.lastXid.Store(0)
		c.lastZxid.Store(it.zxid)
		// Its identities (the client's address) decide which watch
		// events it may see.
		c.s.tree.Load().SetAuth(c.sid.Load(), c.auth)
		c.drain()
	case itemEvent:
		c.appendEvent(it.evType, it.path, it.zxid)
		if limit := outputHardLimit * c.s.cfg.OutputLimit(); c.pendingOutput() > limit {
			c.s.log.Warn("closing a connection whose client does not read its watch events",
				"client", c.remote, "limit", limit)
			c.drop()
		}
	case itemRead:
		c.setInflight(c.inflight - 1)
		if !c.closing {
			v := lp.v
			lp.v = it.v
			reads := c.reads
			c.request(it.r.raw)
			lp.v = v
			if c.reads > reads {
				// Its latency is its wait, as ZooKeeper counts a
				// read from its arrival.
				c.reads--
				c.waited = append(c.waited, time.Since(it.r.start).Milliseconds())
			}
		}
		release(it.r)
		c.drain()
	case itemClose:
		if it.why != "" {
			c.s.log.Warn(it.why, "client", c.remote)
		}
		c.drop()
	case itemClosing:
		c.setClosing()
	case itemRevalidated:
		c.setInflight(c.inflight - 1)
		raw := c.connectRaw
		c.connectRaw = nil
		c.leaderSays = -1
		if it.valid {
			c.leaderSays = 1
		}
		if err := c.handshake(raw); err != nil {
			c.s.log.Info("closing a connection whose session could not be resumed", "client", c.remote, "err", err)
			c.drop()
			return
		}
		c.drain()
	case itemNudge:
		c.nudged = false
		c.drain()
	case itemAnswer:
		c.buf()
		c.out = append(c.out, it.answer...)
		c.answering = false
		c.setClosing()
	}
}

// handOver passes the writes the pass decoded to the applier at once.
func (lp *loop) handOver() {
	if len(lp.queued) == 0 {
		return
	}
	lp.s.writes.submitAll(lp.queued)
	clear(lp.queued)
	lp.queued = lp.queued[:0]
}

// flush writes each dirty connection's output in one write and closes
// the connections that are done.
func (lp *loop) flush() {
	// The counters move first, so that a client finds its reply counted
	// once it has it.
	if len(lp.dirty) > 0 {
		now := lp.s.mono()
		for _, c := range lp.dirty {
			if !c.closed {
				c.count(&lp.totals, now)
			}
		}
		lp.s.stats.add(&lp.totals)
	}
	for i, c := range lp.dirty {
		lp.dirty[i] = nil
		c.dirty = false
		if !c.closed {
			c.flush()
		}
		if c.out != nil {
			// A pass that answered many connections (a batch of
			// handshakes, a watch firing everywhere) leaves a few
			// buffers for the next, not one per connection.
			if n := cap(c.out); n <= 1<<20 && len(lp.free) < maxFreeBuffers && lp.freeBytes+n <= maxFreeBytes {
				lp.free = append(lp.free, c.out[:0])
				lp.freeBytes += n
			}
			c.out = nil
		}
	}
	lp.dirty = lp.dirty[:0]
}

// A loop keeps at most maxFreeBuffers output buffers between passes, of
// maxFreeBytes in all: enough for a pipelining client's share of a pass
// (passOutput) without growing a buffer every pass.
const (
	maxFreeBuffers = 64
	maxFreeBytes   = 4 << 20
)

// buffer hands out an output buffer for a connection's pass.
func (lp *loop) buffer() []byte {
	if n := len(lp.free); n > 0 {
		b := lp.free[n-1]
		lp.free = lp.free[:n-1]
		lp.freeBytes -= cap(b)
		return b
	}
	return make([]byte, 0, 4<<10)
}

// housekeep runs on the loop every housekeeping interval, and every
// stalledInterval while a connection's input is held: it closes the
// connections past their handshake or write deadline, closes the ones
// done with their output, and resumes the input held back.
func (lp *loop) housekeep() {
	s := lp.s
	now := s.mono()
	for c := range lp.watch {
		if c.closed {
			delete(lp.watch, c)
			continue
		}
		if !c.handshaken && !c.answering && !c.closing && now >= c.createdMono+int64(s.cfg.SessionlessCnxnTimeout) {
			s.log.Info("closing a connection that did not complete its handshake in time",
				"client", c.remote, "nio.sessionlessCnxnTimeout", s.cfg.SessionlessCnxnTimeout)
			s.stats.sessionlessExpired.Add(1)
			c.drop()
			continue
		}
		ob := c.gc.OutboundBuffered()
		if ob == 0 || ob < c.lastOutbound {
			c.progressAt = now
		}
		c.lastOutbound = ob
		if ob > 0 {
			if timeout := c.writeTimeout(); now-c.progressAt >= timeout {
				// A client that reads nothing for a session timeout
				// would have lost its session anyway: its connection
				// goes, and with it the output piling up for it.
				s.log.Warn("closing a connection whose client has not read its replies for a session timeout",
					"client", c.remote, "timeout", time.Duration(timeout)*time.Millisecond, "unsent", ob)
				c.drop()
				continue
			}
		}
		if c.stalled {
			c.consume()
		}
		if c.closing && !c.answering && ob == 0 && len(c.out) == 0 && now >= c.lingerUntil {
			c.drop()
			continue
		}
		if c.handshaken && ob == 0 && !c.stalled && !c.closing {
			delete(lp.watch, c)
		}
	}
}

// The gnet side: the server is the event handler of a gnet client whose
// loops take the connections the accept loop enrolls.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*conn)
	c.gc = gc
	c.lp = h.s.loopOf(gc.EventLoop())
	if !h.s.addConn(c) {
		return nil, gnet.Close
	}
	c.lp.watch[c] = struct{}{} // for its handshake deadline
	return nil, gnet.None
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	c.resuming = false
	c.lastActive.Store(h.s.mono())
	lp := c.lp
	lp.begin()
	c.arrived = time.Now()
	c.consume()
	c.arrived = time.Time{}
	lp.end()
	return gnet.None
}

func (h *handler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil || c.lp == nil {
		return gnet.None
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed) {
		h.s.log.Debug("connection failed", "client", c.remote, "err", err)
	}
	c.closeNow()
	return gnet.None
}

// loopOf returns the loop record of a gnet event loop, made on its first
// connection.
func (s *Server) loopOf(el gnet.EventLoop) *loop {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	for _, lp := range s.loops {
		if lp.el == el {
			return lp
		}
	}
	lp := newLoop(s, el)
	s.loops = append(s.loops, lp)
	return lp
}

func (s *Server) loopList() []*loop {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	return append([]*loop(nil), s.loops...)
}

// Housekeeping intervals: how often each loop looks at its connections'
// deadlines, and how often while some connection's input is held.
const (
	houseInterval   = 50 * time.Millisecond
	stalledInterval = time.Millisecond
)

// houseLoop asks each loop for a housekeeping pass on its interval.
func (s *Server) houseLoop() {
	t := time.NewTimer(houseInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		for _, lp := range s.loopList() {
			if lp.housing.CompareAndSwap(false, true) {
				if err := lp.el.Execute(context.Background(), lp.houseTask); err != nil {
					lp.housing.Store(false)
				}
			}
		}
		if s.stalled.Load() > 0 {
			t.Reset(stalledInterval)
		} else {
			t.Reset(houseInterval)
		}
	}
}

// startLoops starts the event loops.
func (s *Server) startLoops() error {
	n := s.opts.EventLoops
	if n <= 0 {
		n = runtime.NumCPU() // the CPUs this process may run on
	}
	cli, err := newGnetClient(&handler{s: s}, n, s.log)
	if err != nil {
		return err
	}
	if err := cli.Start(); err != nil {
		return fmt.Errorf("cannot start the event loops: %w", err)
	}
	s.gnet = cli
	return nil
}

// gnetMu serialises making and stopping gnet clients: gnet keeps one
// logger for the process and sets it then.
var gnetMu sync.Mutex

func newGnetClient(h gnet.EventHandler, loops int, log *slog.Logger) (*gnet.Client, error) {
	gnetMu.Lock()
	defer gnetMu.Unlock()
	return gnet.NewClient(h, gnet.WithNumEventLoop(loops), gnet.WithLogger(gnetLogger{log}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithReadBufferCap(64<<10))
}

func stopGnetClient(cli *gnet.Client) error {
	gnetMu.Lock()
	defer gnetMu.Unlock()
	return cli.Stop()
}

// gnetLogger passes gnet's own log lines on: its debug and info lines
// as debug, the rest as they are, but for one warning that says nothing
// is wrong.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }

// Warnf passes a warning on, except gnet's "stale connection" one, which
// is debug here: epoll reported an event for a connection closed earlier
// in the same round of events (a client that went while the loop closed
// it, or the other way round), and gnet drops the event. It came a few
// times a minute in runs whose clients hop between servers, and asked
// operators to worry about nothing.
func (g gnetLogger) Warnf(f string, a ...any) {
	if strings.Contains(f, "of a stale connection") {
		g.l.Debug("gnet: " + fmt.Sprintf(f, a...))
		return
	}
	g.l.Warn("gnet: " + fmt.Sprintf(f, a...))
}
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
