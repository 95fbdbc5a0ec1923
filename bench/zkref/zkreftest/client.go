// Package zkreftest holds what tests share to drive the reference server:
// starting it (or skipping loudly when it is not installed and not
// required) and a minimal synchronous client built on package wire.
package zkreftest

import (
	"net"
	"os"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/wire"
)

// Start starts the reference server for the test and stops it at cleanup.
// Without ZooKeeper installed the test is skipped with a SKIPPED message,
// or fails when ZKD_REQUIRE_REFERENCE is set (make test sets it).
func Start(t testing.TB, opts zkref.Options) *zkref.Server {
	t.Helper()
	if err := zkref.Available(); err != nil {
		if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
			t.Fatalf("reference server required (ZKD_REQUIRE_REFERENCE is set): %v", err)
		}
		t.Skipf("SKIPPED: %v (make test installs it)", err)
	}
	s, err := zkref.Start(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Client is a minimal synchronous ZooKeeper client built on package wire.
type Client struct {
	T       testing.TB
	Conn    net.Conn
	frames  *wire.FrameReader
	Xid     int32                // the last xid Call used
	Session wire.ConnectResponse // the handshake's answer
	Events  []wire.WatcherEvent  // notifications, in arrival order
	Trace   []string             // "event <path>" and "reply <op>", in arrival order
}

func Dial(t testing.TB, addr string, req wire.ConnectRequest) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &Client{T: t, Conn: conn, frames: wire.NewFrameReader(0)}
	c.Write(req.Append(nil))
	if _, err := c.Session.Decode(c.Read(), wire.Copy); err != nil {
		t.Fatalf("connect response: %v", err)
	}
	return c
}

func (c *Client) Write(payload []byte) {
	c.T.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Conn.Write(wire.AppendFrame(nil, payload)); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// read returns the next frame's payload; io.EOF ends the test unless
// readErr is used instead.
func (c *Client) Read() []byte {
	c.T.Helper()
	p, err := c.ReadErr()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return p
}

func (c *Client) ReadErr() ([]byte, error) {
	buf := make([]byte, 64<<10)
	for {
		p, err := c.frames.Next()
		if err != nil || p != nil {
			return append([]byte(nil), p...), err
		}
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Conn.Read(buf)
		if err != nil {
			return nil, err
		}
		c.frames.Write(buf[:n])
	}
}

// callXid sends a request with the given xid and returns its reply, keeping
// any notification that arrives first.
func (c *Client) CallXid(xid int32, op wire.OpCode, body wire.Record) (wire.ReplyHeader, wire.Record) {
	c.T.Helper()
	p := (&wire.RequestHeader{Xid: xid, Type: op}).Append(nil)
	if body != nil {
		p = body.Append(p)
	}
	c.Write(p)
	for {
		payload := c.Read()
		h, rec, n, err := wire.DecodeReply(payload, op)
		if err != nil || n != len(payload) {
			c.T.Fatalf("%v reply: used %d of %d bytes, err %v", op, n, len(payload), err)
		}
		if h.Xid == wire.XidNotification {
			ev := *rec.(*wire.WatcherEvent)
			c.Events = append(c.Events, ev)
			c.Trace = append(c.Trace, "event "+ev.Path)
			continue
		}
		if h.Xid != xid {
			c.T.Fatalf("%v: reply for xid %d, want %d", op, h.Xid, xid)
		}
		c.Trace = append(c.Trace, "reply "+op.String())
		return h, rec
	}
}

func (c *Client) Call(op wire.OpCode, body wire.Record) (wire.ReplyHeader, wire.Record) {
	c.T.Helper()
	c.Xid++
	return c.CallXid(c.Xid, op, body)
}

// ok calls and fails the test on an error reply.
func (c *Client) OK(op wire.OpCode, body wire.Record) wire.Record {
	c.T.Helper()
	h, rec := c.Call(op, body)
	if h.Err != wire.ErrOK {
		c.T.Fatalf("%v %+v: %v", op, body, h.Err)
	}
	return rec
}

func (c *Client) Fails(op wire.OpCode, body wire.Record, want wire.ErrCode) {
	c.T.Helper()
	if h, rec := c.Call(op, body); h.Err != want || rec != nil {
		c.T.Fatalf("%v %+v: err %v body %v, want %v and no body", op, body, h.Err, rec, want)
	}
}

// NewSession is a handshake for a new 30 s session.
func NewSession() wire.ConnectRequest {
	return wire.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16), HasReadOnly: true}
}
