package wal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/wire"
)

func open(t testing.TB, opts wal.Options) *wal.Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = "/data"
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.PreAllocSize == 0 {
		// The default 64 MB of zeros costs seconds in memory under the
		// race detector; the tests that are about preallocation set it.
		opts.PreAllocSize = 64 << 10
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewSource(1))
	}
	s, err := openStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeStore(t testing.TB, s *wal.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func files(t testing.TB, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(path.Join(dir, "version-2"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestReopenGivesTheSameTree(t *testing.T) {
	for _, c := range []struct {
		name string
		opts wal.Options
	}{
		{"one dir", wal.Options{}},
		{"separate log dir", wal.Options{LogDir: "/txnlog"}},
		{"small prealloc", wal.Options{PreAllocSize: 4096}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := c.opts
			opts.FS = fs
			s := open(t, opts)
			if got := files(t, fs, "/data"); len(got) != 1 || got[0] != "snapshot.0" {
				t.Fatalf("fresh data dir holds %v, want snapshot.0 as ZooKeeper writes", got)
			}
			w := newWriter(t, s, 1)
			for i := 0; i < 60; i++ {
				if err := w.batch(1 + i%9); err != nil {
					t.Fatal(err)
				}
			}
			want := dump(w.tree.Published())
			closeStore(t, s)
			if opts.LogDir != "" {
				logs := files(t, fs, opts.LogDir)
				if len(logs) != 1 || !strings.HasPrefix(logs[0], "log.") {
					t.Fatalf("log dir holds %v", logs)
				}
			}
			s2 := open(t, opts)
			defer closeStore(t, s2)
			if got := dump(treeOf(s2).Published()); got != want {
				t.Fatalf("reopened tree differs:\n got %.2000s\nwant %.2000s", got, want)
			}
			rec := s2.Recovery()
			if rec.Snapshot != "snapshot.0" || rec.Replayed != int(w.zxid) || rec.Zxid != w.zxid || rec.Truncated != "" {
				t.Fatalf("recovery %+v, want snapshot.0 and %d txns replayed", rec, w.zxid)
			}
			// The new store goes on where the old one stopped.
			w2 := newWriter(t, s2, 2)
			if err := w2.batch(5); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSnapshotsInEveryCompression(t *testing.T) {
	for _, method := range []string{"", "gz", "snappy", "zstd"} {
		t.Run("method="+method, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := wal.Options{FS: fs, Compression: method}
			s := open(t, opts)
			w := newWriter(t, s, 3)
			for i := 0; i < 40; i++ {
				if err := w.batch(7); err != nil {
					t.Fatal(err)
				}
			}
			name, err := s.Snapshot(treeOf(s).Published())
			if err != nil {
				t.Fatal(err)
			}
			wantSuffix := map[string]string{"": "", "gz": ".gz", "snappy": ".snappy", "zstd": ".zst"}[method]
			if name != "snapshot.118"+wantSuffix {
				t.Fatalf("snapshot named %q", name)
			}
			for i := 0; i < 5; i++ {
				if err := w.batch(3); err != nil {
					t.Fatal(err)
				}
			}
			want := dump(w.tree.Published())
			closeStore(t, s)
			s2 := open(t, opts)
			defer closeStore(t, s2)
			if got := dump(treeOf(s2).Published()); got != want {
				t.Fatalf("reopened tree differs:\n got %.2000s\nwant %.2000s", got, want)
			}
			if rec := s2.Recovery(); rec.Snapshot != name || rec.Replayed != 15 {
				t.Fatalf("recovery %+v: want %s and the 15 txns after it", rec, name)
			}
		})
	}
}

func TestRollsAndSnapshotsBySnapCount(t *testing.T) {
	fs := vfs.NewMem()
	skips := &countingHandler{match: "too busy to snapshot"}
	opts := wal.Options{FS: fs, SnapCount: 100, PreAllocSize: 64 << 10, Logger: slog.New(skips)}
	s := open(t, opts)
	w := newWriter(t, s, 4)
	for i := 0; i < 200; i++ {
		if err := w.batch(5); err != nil {
			t.Fatal(err)
		}
	}
	want := dump(w.tree.Published())
	closeStore(t, s)
	var logs, snaps int
	newest := ""
	for _, f := range files(t, fs, "/data") {
		switch {
		case strings.HasPrefix(f, "log."):
			logs++
		case strings.HasPrefix(f, "snapshot."):
			snaps++
			if newest == "" || snapZxid(t, f) > snapZxid(t, newest) {
				newest = f
			}
		}
	}
	// 1000 txns with a roll every 50 to 100 txns (batches of 5 may
	// overshoot by 4): between 10 and 21 log files. Every roll after the
	// first file asks for a snapshot; one asked for while the previous is
	// still being written is skipped with a warning, as ZooKeeper does.
	skipped := int(skips.n.Load())
	if logs < 10 || logs > 21 || snaps+skipped < logs {
		t.Fatalf("%d log files, %d snapshots, %d skipped: %v", logs, snaps, skipped, files(t, fs, "/data"))
	}
	if snaps < 2 {
		t.Fatalf("only %d snapshots written: %v", snaps, files(t, fs, "/data"))
	}
	s2 := open(t, opts)
	defer closeStore(t, s2)
	if got := dump(treeOf(s2).Published()); got != want {
		t.Fatal("reopened tree differs")
	}
	if rec := s2.Recovery(); rec.Snapshot != newest {
		t.Fatalf("recovery loaded %q, not the newest snapshot %q (%+v)", rec.Snapshot, newest, rec)
	}
}

// countingHandler is a slog handler that counts records whose message
// contains match.
type countingHandler struct {
	match string
	n     atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// snapZxid is the zxid in a snapshot file's name (snapshot.<hex>[.ext]).
func snapZxid(t testing.TB, name string) int64 {
	t.Helper()
	hex, _, _ := strings.Cut(strings.TrimPrefix(name, "snapshot."), ".")
	z, err := strconv.ParseInt(hex, 16, 64)
	if err != nil {
		t.Fatalf("snapshot name %q: %v", name, err)
	}
	return z
}

func TestTxnLogSizeLimitRollsFiles(t *testing.T) {
	fs := vfs.NewMem()
	opts := wal.Options{FS: fs, TxnLogSizeLimit: 20 << 10}
	s := open(t, opts)
	w := newWriter(t, s, 5)
	for i := 0; i < 100; i++ {
		if err := w.batch(4); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	n := 0
	for _, f := range files(t, fs, "/data") {
		if strings.HasPrefix(f, "log.") {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("only %d log files with a 20 KB limit: %s", n, fs.Files())
	}
}

func TestAppendRefusesZxidsOutOfOrder(t *testing.T) {
	s := open(t, wal.Options{FS: vfs.NewMem()})
	defer closeStore(t, s)
	w := newWriter(t, s, 6)
	if err := w.batch(3); err != nil {
		t.Fatal(err)
	}
	txn := &wal.Txn{}
	txn.Header.Zxid = 2
	if err := s.Append(txn, nil); err == nil || !strings.Contains(err.Error(), "zxids must rise") {
		t.Fatalf("append of an old zxid: %v", err)
	}
}

func TestWriteAndSyncErrorsStopTheLog(t *testing.T) {
	for _, op := range []string{"write", "sync", "allocate"} {
		t.Run(op, func(t *testing.T) {
			fs := vfs.NewMem()
			var fatal []error
			opts := wal.Options{FS: fs, PreAllocSize: 4096, OnFatal: func(err error) { fatal = append(fatal, err) }}
			s := open(t, opts)
			w := newWriter(t, s, 7)
			for i := 0; i < 20; i++ {
				if err := w.batch(3); err != nil {
					t.Fatal(err)
				}
			}
			acked := w.acked
			boom := errors.New("injected " + op + " error")
			fs.Inject(func(o, name string) error {
				if o == op && strings.Contains(name, "log.") {
					return boom
				}
				return nil
			})
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				err = w.batch(20) // allocate fails only when the file must grow
			}
			if !errors.Is(err, wal.ErrStopped) || !strings.Contains(err.Error(), boom.Error()) {
				t.Fatalf("batch after the fault: %v", err)
			}
			if w.acked != acked && op != "allocate" {
				t.Fatalf("txns up to %#x acknowledged after the fault (last good %#x)", w.acked, acked)
			}
			if err := w.batch(1); !errors.Is(err, wal.ErrStopped) {
				t.Fatalf("append after the log stopped: %v", err)
			}
			if err := s.Close(); !errors.Is(err, wal.ErrStopped) {
				t.Fatalf("close after a fault: %v", err)
			}
			if len(fatal) != 1 { // read after Close: the log's goroutine is done
				t.Fatalf("OnFatal called %d times", len(fatal))
			}
			// Nothing acknowledged is lost.
			fs.Inject(nil)
			s2 := open(t, wal.Options{FS: fs.Crash(nil)})
			defer closeStore(t, s2)
			if got := treeOf(s2).Zxid(); got < w.acked {
				t.Fatalf("recovered up to %#x, but %#x was acknowledged", got, w.acked)
			}
		})
	}
}

func TestForceSyncNoWritesButNeverSyncs(t *testing.T) {
	fs := vfs.NewMem()
	var syncs, writes int
	fs.Inject(func(op, name string) error {
		if strings.Contains(name, "log.") {
			switch op {
			case "sync":
				syncs++
			case "write":
				writes++
			}
		}
		return nil
	})
	s := open(t, wal.Options{FS: fs, NoSync: true})
	w := newWriter(t, s, 8)
	for i := 0; i < 20; i++ {
		if err := w.batch(3); err != nil {
			t.Fatal(err)
		}
	}
	want := dump(w.tree.Published())
	closeStore(t, s)
	if syncs != 0 || writes == 0 {
		t.Fatalf("forceSync=no: %d fsyncs and %d writes of the log", syncs, writes)
	}
	// Written all the same: a clean restart (not a power cut) has it all.
	s2 := open(t, wal.Options{FS: fs})
	defer closeStore(t, s2)
	if dump(treeOf(s2).Published()) != want {
		t.Fatal("a clean restart after forceSync=no lost txns")
	}
}

func TestLogGrowsInPreallocatedSteps(t *testing.T) {
	fs := vfs.NewMem()
	const step = 4 << 10
	var sizes []int64
	s := open(t, wal.Options{FS: fs, PreAllocSize: step, OnSync: func(int64) {
		f, err := fs.Open("/data/version-2/log.1")
		if err != nil {
			return
		}
		n, _ := f.Size()
		f.Close()
		sizes = append(sizes, n)
	}})
	w := newWriter(t, s, 9)
	for i := 0; i < 60; i++ {
		if err := w.batch(5); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	grew := 0
	for i, n := range sizes {
		if n%step != 0 {
			t.Fatalf("log file is %d bytes, not a multiple of the %d-byte step", n, step)
		}
		if i > 0 && n > sizes[i-1] {
			grew++
		}
	}
	if grew < 2 {
		t.Fatalf("the log grew %d times over %d commits: %v", grew, len(sizes), sizes)
	}
	// A finished log file loses its zeros.
	f, _ := fs.Open("/data/version-2/log.1")
	n, _ := f.Size()
	raw, _ := vfs.ReadFile(fs, "/data/version-2/log.1")
	if n%step == 0 || raw[n-1] != 'B' {
		t.Fatalf("closed log file is %d bytes, ending in %q", n, raw[n-1])
	}
}

func TestSnapshotBySnapSizeLimit(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs, SnapSizeLimit: 64 << 10, PreAllocSize: 64 << 10})
	w := newWriter(t, s, 10)
	for i := 0; i < 100; i++ {
		if err := w.batch(5); err != nil {
			t.Fatal(err)
		}
		waitSnapshots(s)
	}
	closeStore(t, s)
	if n := count(t, fs, "/data", "snapshot."); n < 3 {
		t.Fatalf("%d snapshots with a 64 KB snapSizeLimit: %s", n, fs.Files())
	}
}

func TestGroupCommitBatchesUnderLoadAndNotWhenIdle(t *testing.T) {
	fs := vfs.NewMem()
	var mu sync.Mutex
	syncs := 0
	fs.Inject(func(op, name string) error {
		if op == "sync" && strings.Contains(name, "log.") {
			time.Sleep(5 * time.Millisecond) // a slow disk
			mu.Lock()
			syncs++
			mu.Unlock()
		}
		return nil
	})
	s := open(t, wal.Options{FS: fs})
	defer closeStore(t, s)
	zxid := treeOf(s).Zxid()
	var order []int64
	done := make(chan struct{}, 1000)
	appendOne := func() {
		zxid++
		z := zxid
		txn := &wal.Txn{Header: wire.TxnHeader{Zxid: z, Type: wire.OpCreateSession}, Record: &wire.CreateSessionTxn{TimeOut: 30000}}
		if err := s.Append(txn, func(err error) {
			if err != nil {
				t.Error(err)
			}
			order = append(order, z) // the log's goroutine only
			done <- struct{}{}
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 300; i++ {
		appendOne()
	}
	for i := 0; i < 300; i++ {
		<-done
	}
	mu.Lock()
	loaded := syncs
	mu.Unlock()
	if loaded > 30 {
		t.Fatalf("300 txns appended at once took %d fsyncs: no batching", loaded)
	}
	// Idle: each lone txn gets its own fsync at once.
	for i := 0; i < 3; i++ {
		appendOne()
		<-done
	}
	mu.Lock()
	if syncs != loaded+3 {
		t.Fatalf("3 lone txns took %d fsyncs", syncs-loaded)
	}
	mu.Unlock()
	for i := 1; i < len(order); i++ {
		if order[i] != order[i-1]+1 {
			t.Fatalf("callbacks out of zxid order: %d after %d", order[i], order[i-1])
		}
	}
	if s.Durable() != zxid {
		t.Fatalf("Durable() = %d, want %d", s.Durable(), zxid)
	}
}

// The Store does not own the tree: Open hands over the tree it recovered,
// the log never changes it, and Snapshot writes whatever version the
// caller passes — but never one that holds a txn the log has not made
// durable, and never after Close.
func TestSnapshotIsOfTheCallersVersion(t *testing.T) {
	fs := vfs.NewMem()
	s, tree, err := wal.Open(wal.Options{FS: fs, Dir: "/data", Logger: quiet, PreAllocSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, s: s, tree: tree, r: rand.New(rand.NewSource(7))}
	if err := w.batch(20); err != nil {
		t.Fatal(err)
	}
	durable := tree.Published()
	// A version past the durable log: a txn applied without being logged.
	txn, _ := tree.Prep(w.request())
	tree.Apply(&txn.Header, txn.Record)
	tree.Publish()
	if _, err := s.Snapshot(tree.Published()); err == nil || !strings.Contains(err.Error(), "past the durable log") {
		t.Fatalf("snapshot of a version past the durable log: %v, want a refusal", err)
	}
	name, err := s.Snapshot(durable)
	if err != nil {
		t.Fatal(err)
	}
	if name != fmt.Sprintf("snapshot.%x", durable.Zxid()) {
		t.Fatalf("snapshot %s, want snapshot.%x", name, durable.Zxid())
	}
	want := dump(durable)
	closeStore(t, s)
	if _, err := s.Snapshot(durable); !errors.Is(err, wal.ErrStopped) {
		t.Fatalf("snapshot after Close: %v, want ErrStopped", err)
	}
	s2, tree2, err := wal.Open(wal.Options{FS: fs, Dir: "/data", Logger: quiet, PreAllocSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if r := s2.Recovery(); r.Snapshot != name || r.Replayed != 0 {
		t.Fatalf("recovery %+v, want %s and nothing replayed", r, name)
	}
	if got := dump(tree2.Published()); got != want {
		t.Fatalf("recovered\n%s\nwant\n%s", got, want)
	}
}

// Lag shows a disk that stalls: while an fsync of the log does not
// return, the oldest txn waiting for it gets older, and once the disk
// goes on and every txn is durable the lag is gone.
func TestLagShowsAStalledDisk(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs})
	defer closeStore(t, s)
	zxid := treeOf(s).Zxid()
	appendOne := func() {
		t.Helper()
		zxid++
		txn := &wal.Txn{Header: wire.TxnHeader{Zxid: zxid, Type: wire.OpCreateSession}, Record: &wire.CreateSessionTxn{TimeOut: 30000}}
		if err := s.Append(txn, nil); err != nil {
			t.Fatal(err)
		}
	}
	appendOne()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if lag := s.Lag(time.Now()); lag != 0 {
		t.Fatalf("every txn durable, yet a lag of %v", lag)
	}
	entered, release := stallLogSyncs(fs)
	start := time.Now()
	appendOne()
	<-entered // the writer is in the fsync
	appendOne()
	appendOne() // queued behind it
	if last, durable := s.Last(), s.Durable(); last != zxid || durable != zxid-3 {
		t.Fatalf("three txns appended behind a stalled fsync: Last %#x, Durable %#x; want %#x and %#x", last, durable, zxid, zxid-3)
	}
	if lag := s.Lag(start.Add(2 * time.Second)); lag < time.Second {
		t.Fatalf("a txn has waited a second for a stalled fsync, but the lag is %v", lag)
	}
	release() // and every fsync after it goes through
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if lag := s.Lag(time.Now()); lag != 0 {
		t.Fatalf("the disk went on and every txn is durable, yet a lag of %v", lag)
	}
}

// stallLogSyncs makes every fsync of a log file on fs wait until release;
// entered gets a value when the first begins.
func stallLogSyncs(fs *vfs.Mem) (entered <-chan struct{}, release func()) {
	stalled := make(chan struct{})
	in := make(chan struct{}, 1)
	fs.Inject(func(op, name string) error {
		if op == "sync" && strings.Contains(name, "log.") {
			select {
			case in <- struct{}{}:
			default:
			}
			<-stalled
		}
		return nil
	})
	return in, func() { close(stalled) }
}

// Full shows a log whose queue is full behind a stalled disk: an Append
// waits for room, and Full says how long, until the disk goes on; an
// AppendEncodedWithin gives up when its wait is over.
func TestFullShowsAnAppendWaitingForRoom(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs, MaxPending: 4 << 20})
	defer closeStore(t, s)
	zxid := treeOf(s).Zxid()
	entered, release := stallLogSyncs(fs)
	big := bytes.Repeat([]byte("x"), 1<<20)
	appendOne := func() error {
		zxid++
		txn := &wal.Txn{Header: wire.TxnHeader{Zxid: zxid, Type: wire.OpSetData}, Record: &wire.SetDataTxn{Path: "/a", Data: big, Version: 1}}
		return s.Append(txn, nil)
	}
	if err := appendOne(); err != nil {
		t.Fatal(err)
	}
	<-entered // the writer is in the fsync; the rest queue up
	if full := s.Full(time.Now()); full != 0 {
		t.Fatalf("nothing waits for room, yet Full is %v", full)
	}
	// 4 MB fit; the 6th megabyte waits.
	waited := make(chan error, 1)
	go func() {
		for i := 0; i < 6; i++ {
			if err := appendOne(); err != nil {
				waited <- err
				return
			}
		}
		waited <- nil
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.Full(time.Now()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("6 MB appended behind a stalled fsync, yet no Append waits for room")
		}
		time.Sleep(time.Millisecond)
	}
	if full := s.Full(time.Now().Add(2 * time.Second)); full < time.Second {
		t.Fatalf("an Append has waited a second for room, but Full is %v", full)
	}
	select {
	case err := <-waited:
		t.Fatalf("the appends returned (%v) while the disk stalls with 6 MB queued", err)
	default:
	}
	// One that waits at most 100 ms for room gives up, appending nothing.
	last := s.Last()
	late := &wal.Txn{Header: wire.TxnHeader{Zxid: last + 1000, Type: wire.OpSetData}, Record: &wire.SetDataTxn{Path: "/a", Data: []byte("late"), Version: 1}}
	began := time.Now()
	if err := s.AppendEncodedWithin(late.Header.Zxid, wal.AppendTxn(nil, late), nil, 100*time.Millisecond); !errors.Is(err, wal.ErrFull) {
		t.Fatalf("an append that may wait 100 ms for room in a full log: %v, want ErrFull", err)
	}
	if took := time.Since(began); took < 100*time.Millisecond || took > 5*time.Second {
		t.Fatalf("an append that may wait 100 ms for room gave up after %v", took)
	}
	if s.Last() != last {
		t.Fatalf("an append that gave up moved the log's last zxid from %#x to %#x", last, s.Last())
	}
	release()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if full := s.Full(time.Now()); full != 0 {
		t.Fatalf("the disk went on and the appends returned, yet Full is %v", full)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

// zookeeper.datadir.autocreate=false: a missing version-2 directory (an
// unmounted disk, say) stops Open with the directory named, instead of
// becoming a new, empty one. zookeeper.db.autocreate=false: a data
// directory with neither snapshot nor log is untrusted, and no snapshot
// is written for it, unless an initialize file in the log's directory
// says to trust it once; one with data is trusted.
func TestAutocreateSwitches(t *testing.T) {
	fs := vfs.NewMem()
	opts := wal.Options{FS: fs, Dir: "/data", Logger: quiet, PreAllocSize: 64 << 10}
	o := opts
	o.NoDirCreate = true
	if _, _, err := wal.Open(o); err == nil || !strings.Contains(err.Error(), "/data/version-2 is missing, and zookeeper.datadir.autocreate=false") {
		t.Fatalf("Open with no /data/version-2: %v", err)
	}
	if _, err := fs.List("/data/version-2"); err == nil {
		t.Fatal("Open made /data/version-2 anyway")
	}
	if err := fs.MkdirAll("/data/version-2"); err != nil {
		t.Fatal(err)
	}
	o.NoEmptyTrust = true
	for round := 0; round < 2; round++ {
		s, _, err := wal.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		names, _ := fs.List("/data/version-2")
		if !s.Recovery().Untrusted || len(names) != 0 {
			t.Fatalf("round %d: an empty directory: untrusted %v, files %v", round, s.Recovery().Untrusted, names)
		}
		closeStore(t, s)
	}
	f, err := fs.Create("/data/initialize")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, tree, err := wal.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List("/data/version-2")
	if s.Recovery().Untrusted || !slices.Contains(names, "snapshot.0") {
		t.Fatalf("with an initialize file: untrusted %v, files %v", s.Recovery().Untrusted, names)
	}
	if top, _ := fs.List("/data"); slices.Contains(top, "initialize") {
		t.Fatal("the initialize file is still there")
	}
	w := &writer{t: t, s: s, tree: tree, r: rand.New(rand.NewSource(3))}
	if err := w.batch(5); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	if s, _, err = wal.Open(o); err != nil || s.Recovery().Untrusted {
		t.Fatalf("a directory with data: %v, untrusted %v", err, s != nil && s.Recovery().Untrusted)
	}
	closeStore(t, s)
}
