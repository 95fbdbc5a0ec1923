// Package client is zkbench's ZooKeeper client: lean and pipelined, so that
// on a small machine the load generator is not what limits the server.
//
// A Conn is one session. Send encodes a request straight into the
// connection's output buffer and returns; a writer goroutine sends whatever
// accumulated in one write, and a reader goroutine matches each reply to its
// request by xid — ZooKeeper answers a session's requests in order, so the
// reply must be for the oldest request in flight, and anything else is a
// protocol error that closes the connection — and hands it to the Conn's
// handler with its latency. Nothing is allocated per request once the
// buffers have grown.
package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"zkd/wire"
)

// Reply is a completed request, as the handler sees it. It is reused: the
// handler must copy what it keeps. Body aliases the read buffer and holds
// the reply record's bytes (empty for an error reply).
type Reply struct {
	Op      wire.OpCode
	Xid     int32
	Zxid    int64
	Err     wire.ErrCode
	Latency time.Duration
	Sent    time.Time // when the request was queued
	At      time.Time // when the reply was read
	Tag     uint64    // what the sender passed to Send
	Body    []byte
}

// Handler is called on the connection's reader goroutine for every reply,
// in request order. It may call Send.
type Handler func(c *Conn, r *Reply)

// EventHandler is called on the reader goroutine for every watch event.
type EventHandler func(c *Conn, ev *wire.WatcherEvent, at time.Time)

// Options configure a Conn.
type Options struct {
	SessionTimeout time.Duration // requested; 30 s when zero
	DialTimeout    time.Duration // 10 s when zero
	OnReply        Handler
	OnEvent        EventHandler
	// OnClose is called once when the connection ends, with the reason
	// (nil after Close).
	OnClose func(c *Conn, err error)
}

// pingXid is wire.XidPing as the wire's unsigned bits.
var pingXid = func() uint32 { x := wire.XidPing; return uint32(x) }()

// ErrClosed is returned by Send on a closed connection.
var ErrClosed = errors.New("client: connection closed")

// ErrOutOfOrder means a reply's xid was not the oldest request's: the
// server broke ZooKeeper's ordering, or the stream is garbled.
var ErrOutOfOrder = errors.New("client: reply out of order")

type inflight struct {
	xid   int32
	op    wire.OpCode
	start time.Time
	tag   uint64
}

// Conn is one pipelined session.
type Conn struct {
	nc      net.Conn
	Session wire.ConnectResponse
	Addr    string
	opts    Options

	mu       sync.Mutex
	out      []byte // encoded requests waiting for the writer
	spare    []byte
	xid      int32
	queue    []inflight // requests in flight, oldest first (a ring)
	qhead    int
	qlen     int
	closed   bool
	err      error
	lastSend time.Time

	quiet atomic.Bool // Close has begun: replies go unreported
	// dispatching is set while the reader hands a batch of replies to
	// the handler: what the handler sends then goes out in one write
	// after the batch, not one wake-up of the writer per request.
	dispatching bool
	onEvent     atomic.Pointer[EventHandler]

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	rep  Reply
	ev   wire.WatcherEvent
}

// Dial connects to addr and opens a new session.
func Dial(addr string, opts Options) (*Conn, error) {
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 30 * time.Second
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	nc, err := net.DialTimeout("tcp", addr, opts.DialTimeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &Conn{nc: nc, Addr: addr, opts: opts, wake: make(chan struct{}, 1), done: make(chan struct{})}
	req := wire.ConnectRequest{TimeOut: int32(opts.SessionTimeout / time.Millisecond), Passwd: make([]byte, 16), HasReadOnly: true}
	nc.SetDeadline(time.Now().Add(opts.DialTimeout))
	if _, err := nc.Write(wire.AppendFrame(nil, req.Append(nil))); err != nil {
		nc.Close()
		return nil, err
	}
	var lenb [4]byte
	if _, err := io.ReadFull(nc, lenb[:]); err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: %s: handshake: %w", addr, err)
	}
	n := binary.BigEndian.Uint32(lenb[:])
	if n > 1024 {
		nc.Close()
		return nil, fmt.Errorf("client: %s: handshake reply of %d bytes", addr, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(nc, body); err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: %s: handshake: %w", addr, err)
	}
	if _, err := c.Session.Decode(body, wire.Copy); err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: %s: handshake: %w", addr, err)
	}
	if c.Session.TimeOut <= 0 {
		nc.Close()
		return nil, fmt.Errorf("client: %s refused the session", addr)
	}
	nc.SetDeadline(time.Time{})
	c.onEvent.Store(&opts.OnEvent)
	c.queue = make([]inflight, 64)
	c.lastSend = time.Now()
	c.wg.Add(2)
	go c.writer()
	go c.reader()
	return c, nil
}

// Send queues a request; its reply goes to the handler with tag. body may
// be nil for requests without one.
func (c *Conn) Send(op wire.OpCode, body wire.Record, tag uint64) error {
	return c.SendAt(op, body, tag, time.Now())
}

// SendAt is Send for a caller that has just read the clock: a handler
// answering a reply passes the reply's At, which is no later than now,
// so the latency measured can only come out longer.
func (c *Conn) SendAt(op wire.OpCode, body wire.Record, tag uint64, now time.Time) error {
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return err
	}
	c.xid++
	if c.xid <= 0 {
		c.xid = 1 // never the special xids
	}
	var start int
	c.out, start = wire.BeginFrame(c.out)
	c.out = binary.BigEndian.AppendUint32(c.out, uint32(c.xid))
	c.out = binary.BigEndian.AppendUint32(c.out, uint32(op))
	if body != nil {
		c.out = body.Append(c.out)
	}
	c.out = wire.EndFrame(c.out, start)
	if c.qlen == len(c.queue) {
		c.grow()
	}
	c.queue[(c.qhead+c.qlen)%len(c.queue)] = inflight{xid: c.xid, op: op, start: now, tag: tag}
	c.qlen++
	later := c.dispatching
	c.mu.Unlock()
	if !later {
		c.kick()
	}
	return nil
}

func (c *Conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default: // the writer is already due to run
	}
}

func (c *Conn) grow() {
	q := make([]inflight, 2*len(c.queue))
	for i := 0; i < c.qlen; i++ {
		q[i] = c.queue[(c.qhead+i)%len(c.queue)]
	}
	c.queue, c.qhead = q, 0
}

// SetEventHandler replaces the watch event handler (nil for none).
func (c *Conn) SetEventHandler(h EventHandler) { c.onEvent.Store(&h) }

// Outstanding is the number of requests in flight.
func (c *Conn) Outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.qlen
}

// writer sends what Send queued, in one write per wake-up, and pings when
// the session has been quiet for a third of its timeout.
func (c *Conn) writer() {
	defer c.wg.Done()
	pingEvery := time.Duration(c.Session.TimeOut) * time.Millisecond / 3
	tick := time.NewTicker(pingEvery / 2)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-tick.C:
			c.mu.Lock()
			if time.Since(c.lastSend) >= pingEvery && len(c.out) == 0 {
				var start int
				c.out, start = wire.BeginFrame(c.out)
				c.out = binary.BigEndian.AppendUint32(c.out, pingXid)
				c.out = binary.BigEndian.AppendUint32(c.out, uint32(wire.OpPing))
				c.out = wire.EndFrame(c.out, start)
			}
			c.mu.Unlock()
		}
		c.mu.Lock()
		buf := c.out
		c.out, c.spare = c.spare[:0], nil
		if len(buf) > 0 {
			c.lastSend = time.Now()
		}
		c.mu.Unlock()
		if len(buf) > 0 {
			if _, err := c.nc.Write(buf); err != nil {
				c.fail(err)
				return
			}
		}
		c.mu.Lock()
		c.spare = buf[:0]
		c.mu.Unlock()
	}
}

// reader reads replies and events and dispatches them.
func (c *Conn) reader() {
	defer c.wg.Done()
	fr := wire.NewFrameReader(0)
	buf := make([]byte, 256<<10)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			fr.Write(buf[:n])
			c.mu.Lock()
			c.dispatching = true
			c.mu.Unlock()
			now := time.Now() // one clock read for the replies of one read
			for {
				payload, err := fr.Next()
				if err == nil && payload != nil {
					err = c.dispatch(payload, now)
				}
				if err != nil {
					c.fail(err)
					return
				}
				if payload == nil {
					break
				}
			}
			c.mu.Lock()
			c.dispatching = false
			queued := len(c.out) > 0
			c.mu.Unlock()
			if queued {
				c.kick()
			}
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Conn) dispatch(p []byte, now time.Time) error {
	if len(p) < 16 {
		return fmt.Errorf("client: reply of %d bytes", len(p))
	}
	xid := int32(binary.BigEndian.Uint32(p))
	zxid := int64(binary.BigEndian.Uint64(p[4:]))
	code := wire.ErrCode(int32(binary.BigEndian.Uint32(p[12:])))
	switch xid {
	case wire.XidPing, wire.XidAuth, wire.XidSetWatches:
		return nil
	case wire.XidNotification:
		if _, err := c.ev.Decode(p[16:], wire.Alias); err != nil {
			return err
		}
		if h := c.onEvent.Load(); h != nil && *h != nil {
			(*h)(c, &c.ev, now)
		}
		return nil
	}
	c.mu.Lock()
	if c.qlen == 0 {
		c.mu.Unlock()
		return fmt.Errorf("%w: xid %d with nothing in flight", ErrOutOfOrder, xid)
	}
	f := c.queue[c.qhead]
	if f.xid != xid {
		c.mu.Unlock()
		return fmt.Errorf("%w: xid %d, expected %d", ErrOutOfOrder, xid, f.xid)
	}
	c.qhead = (c.qhead + 1) % len(c.queue)
	c.qlen--
	c.mu.Unlock()
	c.rep = Reply{Op: f.op, Xid: xid, Zxid: zxid, Err: code, Latency: now.Sub(f.start), Sent: f.start, At: now,
		Tag: f.tag, Body: p[16:]}
	if c.opts.OnReply != nil && !c.quiet.Load() {
		c.opts.OnReply(c, &c.rep)
	}
	return nil
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
	if c.opts.OnClose != nil {
		c.opts.OnClose(c, err)
	}
}

// Err is why the connection ended, nil while it is open or after Close.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(c.err, errClosing) {
		return nil
	}
	return c.err
}

var errClosing = errors.New("client: closed by Close")

// Close ends the session (closeSession, waiting up to a second for its
// reply so the server drops the session's ephemerals at once) and the
// connection.
func (c *Conn) Close() error {
	done := make(chan struct{})
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.quiet.Store(true) // replies still in flight are of no interest now
		if c.Send(wire.OpCloseSession, nil, 0) == nil {
			go func() {
				deadline := time.Now().Add(time.Second)
				for time.Now().Before(deadline) && c.Outstanding() > 0 {
					time.Sleep(time.Millisecond)
				}
				close(done)
			}()
			<-done
		}
	}
	c.fail(errClosing)
	c.wg.Wait()
	return nil
}
