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
	fs.Inject(func(op, name string) error {
		if op == "sync" && strings.Contains(name, "log.") && slow.Load() {
			time.Sleep(1500 * time.Millisecond)
		}
		return nil
	})
	cfg := DefaultConfig()
	cfg.DataDir = "/data"
	cfg.TickTime = 200 // sessions of 400 ms are allowed
	// The in-memory file system copies a preallocated segment whole on
	// every sync; a small one keeps the fast syncs fast.
	cfg.PreAllocSizeKB = 64
	s := startServer(t, cfg, Options{FS: fs})
	c := dialRaw(t, s.Addr().String(), 400)
	c.roundTrip(t, wire.OpCreate, &wire.CreateRequest{Path: "/e", ACL: openACL})

	slow.Store(true)
	first := c.send(t, wire.OpSetData, &wire.SetDataRequest{Path: "/e", Data: []byte("x"), Version: -1})
	time.Sleep(1000 * time.Millisecond) // silent: the session expires meanwhile
	second := c.send(t, wire.OpSetData, &wire.SetDataRequest{Path: "/e", Data: []byte("y"), Version: -1})

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
