package engine_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// playBoth runs script on a fresh pair of sessions on each server and
// compares what they saw.
func playBoth(t *testing.T, what string, zkdAddr, refAddr string, script func(pl *opPlayer)) {
	t.Helper()
	play := func(addr string) string {
		pl := newOpPlayer(t, addr)
		script(pl)
		return pl.close()
	}
	compareLines(t, what, play(refAddr), play(zkdAddr))
}

const (
	sessA = 0
	sessB = 1
)

// TestDifferentialWatchModes: how ZooKeeper 3.8 keeps a session's watches
// of different modes on one path. It has a data-watch and a child-watch
// registry, each holding one watch per session and path: addWatch puts
// one in both, a one-shot watch set after it replaces it in its registry
// (and addWatch replaces a one-shot one), removeWatches of Data or
// Children removes a watch of any mode from that registry only, and
// checkWatches answers whether anyone, not only the asking session,
// watches the path. Only Children, Data and Any are WatcherTypes there.
// A multiRead sets no watch.
func TestDifferentialWatchModes(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, nil)
	create := func(pl *opPlayer, p string) {
		pl.do(sessA, wire.OpCreate, &wire.CreateRequest{Path: p, ACL: openACL})
	}
	set := func(pl *opPlayer, p string) {
		pl.do(sessA, wire.OpSetData, &wire.SetDataRequest{Path: p, Data: []byte("v"), Version: -1})
	}
	playBoth(t, "a one-shot child watch after a persistent one", zkdAddr, refAddr, func(pl *opPlayer) {
		create(pl, "/p")
		pl.do(sessB, wire.OpAddWatch, &wire.AddWatchRequest{Path: "/p", Mode: wire.AddWatchPersistent})
		pl.do(sessB, wire.OpGetChildren, &wire.GetChildrenRequest{Path: "/p", Watch: true})
		create(pl, "/p/1") // the one-shot child watch fires and goes
		create(pl, "/p/2") // nothing: the persistent one left the child registry
		set(pl, "/p")      // the data registry still has it
		pl.do(sessB, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/p", Type: wire.WatcherChildren})
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/p", Type: wire.WatcherAny})
	})
	playBoth(t, "addWatch after a one-shot data watch", zkdAddr, refAddr, func(pl *opPlayer) {
		create(pl, "/q")
		pl.do(sessB, wire.OpGetData, &wire.GetDataRequest{Path: "/q", Watch: true})
		pl.do(sessB, wire.OpAddWatch, &wire.AddWatchRequest{Path: "/q", Mode: wire.AddWatchPersistentRecursive})
		set(pl, "/q")
		set(pl, "/q")
		create(pl, "/q/c")
		pl.do(sessB, wire.OpGetChildren, &wire.GetChildrenRequest{Path: "/q", Watch: true})
		create(pl, "/q/d")
		create(pl, "/q/d/e")
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/q", Type: wire.WatcherData})
		create(pl, "/q/d/f")
		pl.do(sessA, wire.OpDelete, &wire.DeleteRequest{Path: "/q/d/f", Version: -1})
	})
	playBoth(t, "removeWatches of one registry", zkdAddr, refAddr, func(pl *opPlayer) {
		create(pl, "/r")
		pl.do(sessB, wire.OpAddWatch, &wire.AddWatchRequest{Path: "/r", Mode: wire.AddWatchPersistent})
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/r", Type: wire.WatcherChildren})
		create(pl, "/r/k") // no child event
		set(pl, "/r")      // a data event
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/r", Type: wire.WatcherChildren})
		// Anyone's watch will do for checkWatches, A's own or not.
		pl.do(sessA, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/r", Type: wire.WatcherData})
		pl.do(sessA, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/r", Type: wire.WatcherChildren})
		pl.do(sessA, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/r", Type: wire.WatcherAny})
		pl.do(sessA, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/r", Type: wire.WatcherAny})
		for _, typ := range []wire.WatcherType{0, wire.WatcherPersistent, wire.WatcherPersistentRecursive, 6} {
			pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/r", Type: typ})
			pl.do(sessB, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/r", Type: typ})
		}
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/r", Type: wire.WatcherData})
		set(pl, "/r")
	})
	playBoth(t, "removeWatches of a recursive watch's child registry", zkdAddr, refAddr, func(pl *opPlayer) {
		create(pl, "/s")
		create(pl, "/s/x")
		pl.do(sessB, wire.OpAddWatch, &wire.AddWatchRequest{Path: "/s", Mode: wire.AddWatchPersistentRecursive})
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/s", Type: wire.WatcherChildren})
		pl.do(sessB, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/s", Type: wire.WatcherChildren})
		create(pl, "/s/y")
		set(pl, "/s/x")
		pl.do(sessA, wire.OpDelete, &wire.DeleteRequest{Path: "/s/x", Version: -1})
		pl.do(sessB, wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/s", Type: wire.WatcherData})
		set(pl, "/s/y")
	})
	// A pipelined request that sets, removes or checks a watch acts
	// where it stands among the session's writes, and an event goes out
	// just before the reply of the write that fired it.
	playBoth(t, "pipelined watch requests", zkdAddr, refAddr, func(pl *opPlayer) {
		create(pl, "/w")
		create(pl, "/w/c")
		bad := request{wire.OpCreate, &wire.CreateRequest{Path: "/none/x", ACL: openACL}} // a write that fails
		setW := request{wire.OpSetData, &wire.SetDataRequest{Path: "/w", Data: []byte("x"), Version: -1}}
		pl.burst(sessB, []request{bad, {wire.OpGetData, &wire.GetDataRequest{Path: "/w/c", Watch: true}}, bad,
			{wire.OpDelete, &wire.DeleteRequest{Path: "/w/c", Version: -1}}})
		pl.burst(sessB, []request{bad, {wire.OpAddWatch, &wire.AddWatchRequest{Path: "/w", Mode: wire.AddWatchPersistent}}, setW, setW})
		pl.burst(sessB, []request{setW, {wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/w", Type: wire.WatcherData}},
			{wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/w", Type: wire.WatcherAny}}, setW,
			{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/w", Type: wire.WatcherAny}}})
		pl.burst(sessB, []request{setW, {wire.OpExists, &wire.ExistsRequest{Path: "/w/n", Watch: true}},
			{wire.OpCreate, &wire.CreateRequest{Path: "/w/n", ACL: openACL}}, setW,
			{wire.OpGetChildren, &wire.GetChildrenRequest{Path: "/w", Watch: true}},
			{wire.OpDelete, &wire.DeleteRequest{Path: "/w/n", Version: -1}}})
	})
	playBoth(t, "multiRead sets no watch", zkdAddr, refAddr, func(pl *opPlayer) {
		create(pl, "/m")
		pl.do(sessB, wire.OpMultiRead, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpGetData, Path: "/m", Watch: true}, {Type: wire.OpGetChildren, Path: "/m", Watch: true}}})
		pl.do(sessB, wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/m", Type: wire.WatcherAny})
		set(pl, "/m")
		create(pl, "/m/c")
	})
}

// TestWatchRequestsBehindAnAddWatchAreAnswered: an addWatch registers
// against the newest version, which may be newer than the one its
// connection's pass reads from, and the session's requests after it wait
// until they see it. A request that sets or looks up a watch waits in the
// connection then, with nothing of its session in the applier to bring
// it back; it must still be answered. Here a client pipelines addWatch
// and a watched getData while other sessions keep writing.
func TestWatchRequestsBehindAnAddWatchAreAnswered(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	c := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/p", ACL: openACL})
	var paths []string
	for i := 0; i < 4; i++ {
		path := fmt.Sprintf("/w%d", i)
		c.OK(wire.OpCreate, &wire.CreateRequest{Path: path, ACL: openACL})
		paths = append(paths, path)
	}
	defer keepSettingData(t, srv.Addr, paths...)()
	for round := 0; round < 300; round++ {
		reqs := []request{
			{wire.OpAddWatch, &wire.AddWatchRequest{Path: "/p", Mode: wire.AddWatchPersistent}},
			{wire.OpGetData, &wire.GetDataRequest{Path: "/p", Watch: true}},
			{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/p", Type: wire.WatcherData}},
		}
		xids := make([]int32, len(reqs))
		for i, r := range reqs {
			xids[i] = randomOpSend(c, r.op, r.body)
		}
		for i, r := range reqs {
			line, _, _, open := randomOpReply(t, c, r.op, r.body, xids[i])
			if !open || !strings.Contains(line, "OK (0)") {
				t.Fatalf("round %d: %s", round, line)
			}
		}
	}
}

// keepSettingData has one client per path set its data over and over,
// each waiting for its reply, until the function it returns is called.
func keepSettingData(t *testing.T, addr string, paths ...string) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, path := range paths {
		w := zkreftest.Dial(t, addr, zkreftest.NewSession())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				// Not w.OK: a failure here must not end the test from
				// this goroutine; the test's own client notices.
				p := (&wire.RequestHeader{Xid: 1, Type: wire.OpSetData}).Append(nil)
				p = (&wire.SetDataRequest{Path: path, Version: -1}).Append(p)
				w.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := w.Conn.Write(wire.AppendFrame(nil, p)); err != nil {
					return
				}
				if _, err := w.ReadErr(); err != nil {
					return
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}
