package engine

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"zkd/wal/vfs"
	"zkd/wire"
)

// A session that expires while one of its writes waits for a slow fsync
// still gets its replies in request order: a write sent after the expiry
// is not answered (SESSIONEXPIRED) ahead of the write before it.
func TestExpiryKeepsRepliesInOrder(t *testing.T) {
	fs := vfs.NewMem()
	var slow atomic.Bool
	fs.Inject(func(op, name string) error {
		if op == "sync" && strings.Contains(name, "log.") && slow.Load() {
			time.Sleep(1500 * time.Millisecond)
		}
		return nil
	})
	cfg := DefaultConfig()
	cfg.DataDir = "/data"
	cfg.ClientPortAddress = "127.0.0.1"
	cfg.ClientPort = 0
	cfg.TickTime = 200 // sessions of 400 ms are allowed
	// The in-memory file system copies a preallocated segment whole on
	// every sync; a small one keeps the fast syncs fast.
	cfg.PreAllocSizeKB = 64
	s, err := New(cfg, Options{FS: fs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	send := func(xid int32, op wire.OpCode, body wire.Record) {
		frame, start := wire.BeginFrame(nil)
		frame = (&wire.RequestHeader{Xid: xid, Type: op}).Append(frame)
		if body != nil {
			frame = body.Append(frame)
		}
		if _, err := nc.Write(wire.EndFrame(frame, start)); err != nil {
			t.Fatal(err)
		}
	}
	// frame reads one frame, nil at the end of the stream.
	readFrame := func() []byte {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hdr [4]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			return nil
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(nc, body); err != nil {
			return nil
		}
		return body
	}
	// next reads one reply: its xid and error code, or ok false at the end.
	next := func() (xid int32, code wire.ErrCode, ok bool) {
		body := readFrame()
		if len(body) < 16 {
			return 0, 0, false
		}
		return int32(binary.BigEndian.Uint32(body)), wire.ErrCode(int32(binary.BigEndian.Uint32(body[12:]))), true
	}
	frame, start := wire.BeginFrame(nil)
	frame = (&wire.ConnectRequest{TimeOut: 400, Passwd: make([]byte, 16)}).Append(frame)
	if _, err := nc.Write(wire.EndFrame(frame, start)); err != nil {
		t.Fatal(err)
	}
	if readFrame() == nil {
		t.Fatal("no handshake reply")
	}
	send(1, wire.OpCreate, &wire.CreateRequest{Path: "/e", ACL: openACL})
	if xid, code, ok := next(); !ok || xid != 1 || code != wire.ErrOK {
		t.Fatalf("create: xid %d code %v", xid, code)
	}

	slow.Store(true)
	send(2, wire.OpSetData, &wire.SetDataRequest{Path: "/e", Data: []byte("x"), Version: -1})
	time.Sleep(1000 * time.Millisecond) // silent: the session expires meanwhile
	send(3, wire.OpSetData, &wire.SetDataRequest{Path: "/e", Data: []byte("y"), Version: -1})

	var got []int32
	for {
		xid, _, ok := next()
		if !ok {
			break
		}
		if xid != wire.XidNotification {
			got = append(got, xid)
		}
	}
	if len(got) == 0 || got[0] != 2 || len(got) > 1 && got[1] != 3 || len(got) > 2 {
		t.Fatalf("replies by xid %v: want the setData sent first (2) answered first", got)
	}
}
