package wal_test

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"zkd/wal"
	"zkd/wire"
	"zkd/ztree"
)

// benchDir is where the benchmarks write: a real directory on the disk
// under test (ZKD_BENCH_DIR, else the system temp dir).
func benchDir(b *testing.B) string {
	root := os.Getenv("ZKD_BENCH_DIR")
	dir, err := os.MkdirTemp(root, "zkd-wal-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkFsync is the disk's plain cost of making one small write
// durable: a 1 KB write into a preallocated file and fdatasync, the floor
// under any commit that is not batched.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, 64<<20); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1024)
	b.SetBytes(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, int64(i%60000)*1024); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend appends setData txns of a given data size to a real log
// with real fsync, keeping `outstanding` txns in flight (each released by
// its durable callback), and reports txns/s and fsyncs/s: group commit
// at work.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 10 << 10, 100 << 10, 1 << 20} {
		for _, outstanding := range []int{1, 8, 64, 512, 1024} {
			b.Run(fmt.Sprintf("size=%s/outstanding=%d", sizeName(size), outstanding), func(b *testing.B) {
				benchAppend(b, size, outstanding)
			})
		}
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func benchAppend(b *testing.B, size, outstanding int) {
	var syncs atomic.Int64
	s, err := openStore(wal.Options{Dir: benchDir(b), Logger: quiet, Rand: rand.New(rand.NewSource(1)),
		SnapCount: 1 << 30, OnSync: func(int64) { syncs.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	slots := make(chan struct{}, outstanding)
	release := func(err error) {
		if err != nil {
			panic(err)
		}
		<-slots
	}
	txn := &wal.Txn{
		Header: wire.TxnHeader{ClientID: 0x1000000000001, Type: wire.OpSetData},
		Digest: &wire.TxnDigest{Version: 2},
	}
	set := &wire.SetDataTxn{Path: "/bench/node", Data: data}
	txn.Record = set
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	zxid := treeOf(s).Zxid()
	for i := 0; i < b.N; i++ {
		slots <- struct{}{}
		zxid++
		txn.Header.Zxid, txn.Header.Cxid, set.Version = zxid, int32(i), int32(i)
		if err := s.Append(txn, release); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < outstanding; i++ {
		slots <- struct{}{} // wait for the last txns to be durable
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "txns/s")
	b.ReportMetric(float64(syncs.Load())/elapsed.Seconds(), "fsyncs/s")
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSnapshotMillion writes a snapshot of 1,000,000 znodes of 100
// bytes (1000 parents × 1000 children) to the real disk and recovers from
// it: the figures behind "start to serving".
func BenchmarkSnapshotMillion(b *testing.B) {
	dir := benchDir(b)
	l := ztree.NewLoader(ztree.Options{})
	st := wire.StatPersisted{Czxid: 1, Mzxid: 1, Pzxid: 1, Ctime: 1_700_000_000_000, Mtime: 1_700_000_000_000}
	data := make([]byte, 100)
	l.AddNode("/", nil, ztree.OpenACL, st)
	for i := 0; i < 1000; i++ {
		parent := fmt.Sprintf("/p%04d", i)
		l.AddNode(parent, nil, ztree.OpenACL, st)
		for j := 0; j < 1000; j++ {
			l.AddNode(fmt.Sprintf("%s/c%04d", parent, j), data, ztree.OpenACL, st)
		}
	}
	tree, err := l.Finish(1)
	if err != nil {
		b.Fatal(err)
	}
	for _, method := range []string{"", "zstd"} {
		b.Run("method="+method, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d := filepath.Join(dir, fmt.Sprintf("%s-%d", method, i))
				os.MkdirAll(filepath.Join(d, "version-2"), 0o755)
				// Write through a store opened on the prepared tree's dir.
				start := time.Now()
				name, err := wal.WriteSnapshotFile(nil, filepath.Join(d, "version-2"), tree.Published(), method)
				if err != nil {
					b.Fatal(err)
				}
				wrote := time.Since(start)
				st, _ := os.Stat(filepath.Join(d, "version-2", name))
				start = time.Now()
				s, err := openStore(wal.Options{Dir: d, Logger: quiet, Compression: method})
				if err != nil {
					b.Fatal(err)
				}
				loaded := time.Since(start)
				if n := treeOf(s).Published().NodeCount(); n < 1_000_000 {
					b.Fatalf("recovered %d znodes", n)
				}
				s.Close()
				b.ReportMetric(wrote.Seconds(), "write-s")
				b.ReportMetric(loaded.Seconds(), "recover-s")
				b.ReportMetric(float64(st.Size())/(1<<20), "file-MB")
			}
		})
	}
}

// BenchmarkEncodeTxn is a leader's encoding of a setData of 1 KB for its
// log and its PROPOSALs: EncodeTxn, and AppendTxn into a nil buffer.
func BenchmarkEncodeTxn(b *testing.B) {
	txn := &wal.Txn{Header: wire.TxnHeader{ClientID: 1, Cxid: 2, Zxid: 3, Time: 4, Type: wire.OpSetData},
		Record: &wire.SetDataTxn{Path: "/bench/node-000123", Data: make([]byte, 1024), Version: 3},
		Digest: &wire.TxnDigest{Version: 2, TreeDigest: 5}}
	var out []byte
	b.Run("EncodeTxn", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out = wal.EncodeTxn(txn)
		}
	})
	b.Run("AppendTxn-nil", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out = wal.AppendTxn(nil, txn)
		}
	})
	if len(out) == 0 {
		b.Fatal("nothing encoded")
	}
}
