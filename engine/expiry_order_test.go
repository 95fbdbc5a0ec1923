package engine

import (
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
	release := make(chan struct{})
	fs.Inject(func(op, name string) error {
		if op == "sync" && strings.Contains(name, "log.") && slow.Load() {
			<-release // the fsync takes until the test says
		}
		return nil
	})
	clock := newManualClock()
	cfg := DefaultConfig()
	cfg.DataDir = "/data"
	cfg.TickTime = 200 // sessions of 400 ms are allowed
	// The in-memory file system copies a preallocated segment whole on
	// every sync; a small one keeps the fast syncs fast.
	cfg.PreAllocSizeKB = 64
	s := startServer(t, cfg, Options{FS: fs, Clock: clock.now})
	c := dialRaw(t, s.Addr().String(), 400)
	c.roundTrip(t, wire.OpCreate, &wire.CreateRequest{Path: "/e", ACL: openACL})

	slow.Store(true)
	first := c.send(t, wire.OpSetData, &wire.SetDataRequest{Path: "/e", Data: []byte("x"), Version: -1})
	// Silent past its timeout on the server's clock: the session expires
	// while its write waits for the fsync.
	waitFor(t, "the setData reaches the log", func() bool { return s.stats.outstanding.Load() == 1 })
	clock.advance(time.Second)
	s.expireSessions()
	if ss := s.sessions.all(); len(ss) != 1 || !ss[0].closing.Load() {
		t.Fatal("the silent session is not closing")
	}
	second := c.send(t, wire.OpSetData, &wire.SetDataRequest{Path: "/e", Data: []byte("y"), Version: -1})
	// The second setData has reached the server before the fsync ends.
	// (The handshake, the create and the first setData came before it.)
	waitFor(t, "the second setData arrives", func() bool { return s.stats.received.Load() >= 4 })
	slow.Store(false)
	close(release)

	var got []int32
	for {
		xid, _, ok := c.next()
		if !ok {
			break
		}
		if xid != wire.XidNotification {
			got = append(got, xid)
		}
	}
	if len(got) == 0 || got[0] != first || len(got) > 1 && got[1] != second || len(got) > 2 {
		t.Fatalf("replies by xid %v: want the setData sent first (%d) answered first", got, first)
	}
}
