package ztree_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"zkd/wire"
	"zkd/ztree"
)

// load builds a tree of n znodes under /app: n/1000 parents /app/bNNNNN with
// 1000 children /app/bNNNNN/nNNNNNNN each, dataSize bytes of data apiece,
// applied as txns the way a log replay would.
func load(n, dataSize int) *ztree.Tree {
	tree, apply := creator()
	data := make([]byte, dataSize)
	apply("/app", nil)
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			apply(fmt.Sprintf("/app/b%05d", i/1000), nil)
		}
		apply(fmt.Sprintf("/app/b%05d/n%07d", i/1000, i), data)
	}
	tree.Publish()
	return tree
}

// creator returns a new tree and a function that applies a create txn to
// it, with the next zxid, as a log replay would.
func creator() (*ztree.Tree, func(path string, data []byte)) {
	tree := ztree.New(ztree.Options{})
	zxid := int64(0)
	return tree, func(path string, data []byte) {
		zxid++
		tree.Apply(&wire.TxnHeader{Zxid: zxid, Time: 1, Type: wire.OpCreate},
			&wire.CreateTxn{Path: path, Data: data, ACL: ztree.OpenACL, ParentCVersion: -1})
	}
}

var (
	bigOnce sync.Once
	bigTree *ztree.Tree
)

func big() *ztree.Tree {
	bigOnce.Do(func() { bigTree = load(1_000_000, 100) })
	return bigTree
}

func BenchmarkRead(b *testing.B) {
	v := big().Published()
	paths := make([]string, 1024)
	for i := range paths {
		paths[i] = fmt.Sprintf("/app/b%05d/n%07d", (i*977)%1000, ((i*977)%1000)*1000+i%1000)
	}
	parents := make([]string, 1024)
	for i := range parents {
		parents[i] = fmt.Sprintf("/app/b%05d", i%1000)
	}
	b.Run("op=getData/nodes=1M", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := v.GetData(paths[i&1023], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=exists/nodes=1M", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := v.Exists(paths[i&1023]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=getChildren/children=1000/nodes=1M", func(b *testing.B) {
		b.ReportAllocs()
		kids := make([]string, 0, 1000)
		for i := 0; i < b.N; i++ {
			var err error
			if kids, _, err = v.AppendChildren(kids[:0], parents[i&1023], nil); err != nil || len(kids) != 1000 {
				b.Fatal(err, len(kids))
			}
		}
	})
}

// BenchmarkFlatRead reads one directory of 10,000 znodes of 1 KB, as
// zkbench's saturate workload lays them out.
func BenchmarkFlatRead(b *testing.B) {
	tree, apply := creator()
	apply("/zkbench", nil)
	paths := make([]string, 10000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/zkbench/n%07d", i)
		apply(paths[i], make([]byte, 1024))
	}
	tree.Publish()
	v := tree.Published()
	b.Run("op=getData/children=10000", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := v.GetData(paths[(i*7919)%len(paths)], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkApply(b *testing.B) {
	data := make([]byte, 1024)
	for _, op := range []string{"create", "setData", "delete"} {
		b.Run("op="+op+"/data=1KB", func(b *testing.B) {
			h := newHarness(&testing.T{}, ztree.Options{})
			h.create(1, "/b", wire.ModePersistent)
			if op != "create" {
				for i := 0; i < b.N; i++ {
					h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/b/n%d", i), Data: data, ACL: ztree.OpenACL})
				}
			}
			paths := make([]string, b.N)
			for i := range paths {
				paths[i] = fmt.Sprintf("/b/n%d", i)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var body wire.Record
				var code wire.OpCode
				switch op {
				case "create":
					code, body = wire.OpCreate, &wire.CreateRequest{Path: paths[i], Data: data, ACL: ztree.OpenACL}
				case "setData":
					code, body = wire.OpSetData, &wire.SetDataRequest{Path: paths[i], Data: data, Version: -1}
				case "delete":
					code, body = wire.OpDelete, &wire.DeleteRequest{Path: paths[i], Version: -1}
				}
				h.zxid++
				txn, _ := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: 1, Op: code, Body: body})
				if res := h.tree.ApplyPrepped(&txn); res.Err != wire.ErrOK {
					b.Fatal(res.Err)
				}
				if i%64 == 63 {
					h.tree.Publish()
				}
			}
		})
	}
}

func BenchmarkMulti(b *testing.B) {
	h := newHarness(&testing.T{}, ztree.Options{})
	h.create(1, "/m", wire.ModePersistent)
	for i := 0; i < 10; i++ {
		h.create(1, fmt.Sprintf("/m/k%d", i), wire.ModePersistent)
	}
	ops := make([]wire.MultiOp, 10)
	for i := range ops {
		ops[i] = wire.MultiOp{Type: wire.OpSetData, Path: fmt.Sprintf("/m/k%d", i), Data: []byte("v"), Version: -1}
	}
	b.Run("ops=10", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			h.zxid++
			txn, _ := h.tree.Prep(&ztree.Request{Session: 1, Zxid: h.zxid, Time: 1, Op: wire.OpMulti, Body: &wire.MultiRequest{Ops: ops}})
			if res := h.tree.Apply(&txn.Header, txn.Record); res.Err != wire.ErrOK {
				b.Fatal(res.Err)
			}
			h.tree.Publish()
		}
	})
}

func BenchmarkWatchFanout(b *testing.B) {
	for _, n := range []int{10_000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			h := newHarness(&testing.T{}, ztree.Options{})
			h.create(1, "/w", wire.ModePersistent)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				v := h.tree.Published()
				for s := 0; s < n; s++ {
					h.tree.Watch(v, int64(s+10), "/w", ztree.WatchData)
				}
				_, evs := h.do(1, wire.OpSetData, &wire.SetDataRequest{Path: "/w", Version: -1})
				if len(evs) != n {
					b.Fatalf("%d events", len(evs))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/watcher")
		})
	}
}

// BenchmarkMemory loads 1,000,000 znodes of 100 bytes (paths like
// /app/b00123/n0123456) and reports the live heap after GC, and the bytes
// each znode costs beyond its path and data.
func BenchmarkMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tree := load(1_000_000, 100)
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc - before.HeapAlloc)
		pathAndData := float64(1_000_000 * (len("/app/b00123/n0123456") + 100))
		b.ReportMetric(heap/(1<<20), "MB-heap")
		b.ReportMetric((heap-pathAndData)/1e6, "B/znode-overhead")
		runtime.KeepAlive(tree)
	}
}

// BenchmarkWatchMemory registers one data watch for each of 10,000
// sessions, each on a path of its own (the idle-session pattern: a
// client's exists watch on its own ephemeral), and reports the live heap
// each watch costs.
func BenchmarkWatchMemory(b *testing.B) {
	const n = 10_000
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/sessions/s%06d", i)
	}
	for i := 0; i < b.N; i++ {
		h := newHarness(&testing.T{}, ztree.Options{})
		v := h.tree.Published()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for s := 0; s < n; s++ {
			h.tree.Watch(v, int64(s+10), paths[s], ztree.WatchData)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/watch")
		runtime.KeepAlive(h)
	}
}

// BenchmarkFollowerSetData is a follower's work for a setData of 1 KB to
// one of many znodes, each changed before (so each is a cell), in an
// order that leaves the processor's caches cold: Apply of a txn this
// tree did not prep, hashing included, and a Publish per 64 txns.
func BenchmarkFollowerSetData(b *testing.B) {
	for _, znodes := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("znodes=%d", znodes), func(b *testing.B) { followerSetData(b, znodes, false) })
	}
}

// BenchmarkFollowerSetDataWarmed is BenchmarkFollowerSetData with the
// txns applied 64 at a time, each batch's znodes warmed first, as the
// engine's applier does (Tree.Warm).
func BenchmarkFollowerSetDataWarmed(b *testing.B) {
	for _, znodes := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("znodes=%d", znodes), func(b *testing.B) { followerSetData(b, znodes, true) })
	}
}

func followerSetData(b *testing.B, znodes int, warm bool) {
	h := newHarness(&testing.T{}, ztree.Options{})
	h.tree.TrackReaders()
	data := make([]byte, 1024)
	paths := make([]string, znodes)
	for i := range paths {
		paths[i] = fmt.Sprintf("/n%07d", i)
		h.ok(1, wire.OpCreate, &wire.CreateRequest{Path: paths[i], Data: data, ACL: ztree.OpenACL})
	}
	hdr := wire.TxnHeader{Type: wire.OpSetData, Time: 1}
	txn := &wire.SetDataTxn{Data: data}
	pathOf := func(i int) string { return paths[(i*7919)%znodes] }
	apply := func(i int) {
		hdr.Zxid = h.zxid + 1
		h.zxid++
		txn.Path = pathOf(i)
		txn.Version++
		h.tree.Apply(&hdr, txn)
		if i%64 == 63 {
			h.tree.Publish()
			h.tree.Visible(h.tree.Published())
		}
	}
	for i := range znodes {
		apply(i) // every znode a cell
	}
	batch := make([]string, 64)
	var sum uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if warm && i%64 == 0 {
			for j := range batch {
				batch[j] = pathOf(i + j)
			}
			sum += h.tree.Warm(batch)
		}
		apply(i)
	}
	b.StopTimer()
	if sum == 1 {
		b.Log(sum) // keeps sum
	}
}
