package engine_test

import (
	"testing"

	"zkd/wire"
)

// TestDifferentialOddPaths: reads and watch requests of paths a client
// library would not send. ZooKeeper's tree files its root under "" too,
// and its reads do not check the path, so reading "" reads the root (and
// getAllChildrenNumber counts the root itself); its checkWatches walks
// from the path to its parents and fails on a name without a "/"
// (MARSHALLINGERROR), and never finds a watch on "".
func TestDifferentialOddPaths(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, nil)
	playBoth(t, "odd paths", zkdAddr, refAddr, func(pl *opPlayer) {
		for _, p := range []string{"", "rel", "rel/x", "/a/", "/a/./x", "/a//x"} {
			for _, r := range []struct {
				op   wire.OpCode
				body wire.Record
			}{
				{wire.OpGetData, &wire.GetDataRequest{Path: p, Watch: true}},
				{wire.OpExists, &wire.ExistsRequest{Path: p}},
				{wire.OpExists, &wire.ExistsRequest{Path: p, Watch: true}},
				{wire.OpGetChildren, &wire.GetChildrenRequest{Path: p}},
				{wire.OpGetChildren2, &wire.GetChildren2Request{Path: p, Watch: true}},
				{wire.OpGetACL, &wire.GetACLRequest{Path: p}},
				{wire.OpGetAllChildrenNumber, &wire.PathRequest{Path: p}},
				{wire.OpGetEphemerals, &wire.PathRequest{Path: p}},
				{wire.OpSync, &wire.PathRequest{Path: p}},
				{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: p, Type: wire.WatcherData}},
				{wire.OpAddWatch, &wire.AddWatchRequest{Path: p}},
				{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: p, Type: wire.WatcherAny}},
				{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: p, Type: wire.WatcherChildren}},
				{wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: p, Type: wire.WatcherAny}},
				{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: p, Type: wire.WatcherAny}},
				{wire.OpMultiRead, &wire.MultiRequest{Ops: []wire.MultiOp{{Type: wire.OpGetData, Path: p}, {Type: wire.OpGetChildren, Path: p}}}},
				{wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{{Type: wire.OpCheck, Path: p, Version: -1}}}},
				{wire.OpSetData, &wire.SetDataRequest{Path: p, Version: -1}},
			} {
				pl.do(sessB, r.op, r.body)
			}
		}
		// A change of the root fires no watch set on "".
		pl.do(sessA, wire.OpSetData, &wire.SetDataRequest{Path: "/", Data: []byte("x"), Version: -1})
		pl.do(sessA, wire.OpCreate, &wire.CreateRequest{Path: "/odd", ACL: openACL})
	})
}

// TestDifferentialOddMultis: multis ZooKeeper cannot make a txn of.
// Reads in a multi, alone or among writes, and a create op of a TTL mode
// sent with a create's op code (which 3.8 turns into a createTTL without
// its TTL) fail the whole multi with MARSHALLINGERROR, as an error txn
// that takes a zxid (the creates after each show it). After an op that
// fails, the rest are not prepped, so such an op is only
// RUNTIMEINCONSISTENCY there.
func TestDifferentialOddMultis(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, map[string]string{"extendedTypesEnabled": "true"})
	playBoth(t, "odd multis", zkdAddr, refAddr, func(pl *opPlayer) {
		n := 0
		next := func() {
			n++
			pl.do(sessA, wire.OpCreate2, &wire.CreateRequest{Path: "/odd" + string(rune('a'+n)), ACL: openACL})
		}
		set := wire.MultiOp{Type: wire.OpSetData, Path: "/", Data: []byte("x"), Version: -1}
		bad := wire.MultiOp{Type: wire.OpSetData, Path: "/none", Version: -1}
		get := wire.MultiOp{Type: wire.OpGetData, Path: "/"}
		kids := wire.MultiOp{Type: wire.OpGetChildren, Path: "/"}
		ttlCreate := wire.MultiOp{Type: wire.OpCreate, Path: "/t", ACL: openACL, Flags: wire.ModePersistentWithTTL}
		for _, ops := range [][]wire.MultiOp{
			{get}, {get, kids}, {set, get}, {get, set}, {},
			{ttlCreate}, {set, ttlCreate}, {bad, ttlCreate},
			{{Type: wire.OpCreateTTL, Path: "/t2", ACL: openACL, Flags: wire.ModePersistent, TTL: 5}},
			{{Type: wire.OpCreateContainer, Path: "/t3", ACL: openACL, Flags: wire.ModePersistent}},
		} {
			pl.do(sessA, wire.OpMulti, &wire.MultiRequest{Ops: ops})
			next()
		}
		for _, ops := range [][]wire.MultiOp{{get, kids}, {set}, {get, set}, {}} {
			pl.do(sessA, wire.OpMultiRead, &wire.MultiRequest{Ops: ops})
			next()
		}
	})
}
