// Package zkreftest holds what tests share to drive the reference server:
// starting it (or skipping loudly when it is not installed and not
// required) and a minimal synchronous client built on package wire.
package zkreftest

import (
	"encoding/binary"
	"hash/adler32"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	Need(t)
	s, err := zkref.Start(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Need skips the test, with a SKIPPED message, when the reference server
// is not installed, or fails it when ZKD_REQUIRE_REFERENCE is set (make
// test sets it).
func Need(t testing.TB) {
	t.Helper()
	if err := zkref.Available(); err != nil {
		if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
			t.Fatalf("reference server required (ZKD_REQUIRE_REFERENCE is set): %v", err)
		}
		t.Skipf("SKIPPED: %v (make test installs it)", err)
	}
}

// DifferingLine is the first line (counted from 1) where a and b differ,
// and that line of each; differ is false when they are equal.
func DifferingLine(a, b string) (n int, la, lb string, differ bool) {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if x != y {
			return i + 1, x, y, true
		}
	}
	return 0, "", "", false
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

// LoggedTxn is one entry of a ZooKeeper txn log.
type LoggedTxn struct {
	Header wire.TxnHeader
	Record wire.Record
	Digest *wire.TxnDigest // nil when the entry has none
	Entry  []byte          // the entry's bytes: header, record, digest
}

// ReadTxnLog reads the txn log files of a stopped or running server's data
// directory (dir/version-2/log.*) in zxid order, checking each entry's
// Adler-32 checksum and end-of-record byte, and stopping at the
// preallocated zeros.
func ReadTxnLog(t testing.TB, dir string) []LoggedTxn {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "version-2", "log.*"))
	sort.Slice(files, func(i, j int) bool { return logZxid(files[i]) < logZxid(files[j]) })
	var out []LoggedTxn
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fh wire.FileHeader
		n, err := fh.Decode(raw, wire.Copy)
		if err != nil || fh.Magic != 0x5a4b4c47 || fh.Version != 2 {
			t.Fatalf("%s: file header %+v: %v", f, fh, err)
		}
		for off := n; off+12 <= len(raw); {
			sum := binary.BigEndian.Uint64(raw[off:])
			size := int(int32(binary.BigEndian.Uint32(raw[off+8:])))
			if size == 0 {
				break
			}
			if size < 0 || off+12+size >= len(raw) {
				t.Fatalf("%s: entry at %d runs past the file", f, off)
			}
			entry := raw[off+12 : off+12+size]
			if uint64(adler32.Checksum(entry)) != sum || raw[off+12+size] != 'B' {
				t.Fatalf("%s: txn at %d: bad checksum or end-of-record byte", f, off)
			}
			off += 12 + size + 1
			lt := LoggedTxn{Entry: entry}
			hn, err := lt.Header.Decode(entry, wire.Copy)
			if err != nil {
				t.Fatal(err)
			}
			rec, ok := wire.TxnRecord(lt.Header.Type)
			if !ok {
				t.Fatalf("txn type %v has no record", lt.Header.Type)
			}
			rn := 0
			if rec != nil {
				if rn, err = rec.Decode(entry[hn:], wire.Copy); err != nil {
					t.Fatalf("%v txn: %v", lt.Header.Type, err)
				}
			}
			lt.Record = rec
			var dg wire.TxnDigest
			if dn, err := dg.Decode(entry[hn+rn:], wire.Copy); err == nil && hn+rn+dn == len(entry) {
				lt.Digest = &dg
			}
			out = append(out, lt)
		}
	}
	return out
}

func logZxid(name string) uint64 {
	_, hex, _ := strings.Cut(filepath.Base(name), ".")
	z, _ := strconv.ParseUint(hex, 16, 64)
	return z
}
