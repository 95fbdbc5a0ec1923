package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/wire"
	"zkd/ztree"
)

// written returns a data dir holding log files (rolled by size) and only
// snapshot.0, and the tree it holds.
func written(t *testing.T, seed int64) (*vfs.Mem, string) {
	t.Helper()
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs, TxnLogSizeLimit: 2 << 10, PreAllocSize: 64 << 10})
	w := newWriter(t, s, seed)
	for i := 0; i < 40; i++ {
		if err := w.batch(5); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	return fs, dump(w.tree.Published())
}

func logFiles(t *testing.T, fs *vfs.Mem) []string {
	var out []string
	for _, f := range files(t, fs, "/data") {
		if strings.HasPrefix(f, "log.") {
			out = append(out, "/data/version-2/"+f)
		}
	}
	// Sort by zxid, not by name.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if len(out[j]) < len(out[i]) || len(out[j]) == len(out[i]) && out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	if len(out) < 3 {
		t.Fatalf("want several log files, have %v", out)
	}
	return out
}

// entryOffsets lists where each txn of a log file starts.
func entryOffsets(t *testing.T, fs *vfs.Mem, name string) ([]int, []byte) {
	raw, err := vfs.ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 16; off+12 <= len(raw); {
		n := int(binary.BigEndian.Uint32(raw[off+8:]))
		if n == 0 {
			break
		}
		offs = append(offs, off)
		off += 12 + n + 1
	}
	return offs, raw
}

func patch(t *testing.T, fs *vfs.Mem, name string, off int64, b []byte) {
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedLogsAreRefusedWithFileAndOffset(t *testing.T) {
	t.Run("older file", func(t *testing.T) {
		fs, _ := written(t, 11)
		logs := logFiles(t, fs)
		offs, raw := entryOffsets(t, fs, logs[0])
		off := offs[len(offs)/2]
		patch(t, fs, logs[0], int64(off+20), []byte{raw[off+20] ^ 0x40})
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		var ce *wal.CorruptError
		if !errors.As(err, &ce) || ce.File != logs[0] || ce.Offset != int64(off) {
			t.Fatalf("got %v, want a CorruptError for %s at %d", err, logs[0], off)
		}
		if !strings.Contains(err.Error(), "truncate -s") || !strings.Contains(err.Error(), logs[0]) {
			t.Fatalf("the message does not say what to do: %v", err)
		}
	})
	t.Run("newest file, intact txns after", func(t *testing.T) {
		fs, _ := written(t, 12)
		// Where the size limit last rolled the log depends on how the
		// group commit cut the batches: write more, without the limit, so
		// that the newest file surely holds several txns.
		s := open(t, wal.Options{FS: fs, PreAllocSize: 64 << 10})
		w := newWriter(t, s, 112)
		for i := 0; i < 2; i++ {
			if err := w.batch(5); err != nil {
				t.Fatal(err)
			}
		}
		closeStore(t, s)
		logs := logFiles(t, fs)
		last := logs[len(logs)-1]
		offs, raw := entryOffsets(t, fs, last)
		if len(offs) < 3 {
			t.Fatalf("newest log has %d txns", len(offs))
		}
		off := offs[1]
		patch(t, fs, last, int64(off+14), []byte{raw[off+14] ^ 1})
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		var ce *wal.CorruptError
		if !errors.As(err, &ce) || ce.File != last || ce.Offset != int64(off) {
			t.Fatalf("got %v, want a CorruptError for %s at %d", err, last, off)
		}
	})
	t.Run("a txn whose checksum is right but whose content is not", func(t *testing.T) {
		fs, _ := written(t, 13)
		// Change the time of a setData txn and fix its checksum: only the
		// digest can tell. Which file holds one depends on how the group
		// commit cut the batches, so look in all of them.
		for _, name := range logFiles(t, fs)[1:] {
			offs, raw := entryOffsets(t, fs, name)
			for _, off := range offs {
				if !changeSetDataTime(t, fs, name, off, raw) {
					continue
				}
				_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
				if !errors.Is(err, wal.ErrDigestMismatch) {
					t.Fatalf("got %v, want ErrDigestMismatch", err)
				}
				return
			}
		}
		t.Fatal("no setData txn to change")
	})
	t.Run("no snapshot and the log's start is gone", func(t *testing.T) {
		fs, _ := written(t, 14)
		logs := logFiles(t, fs)
		fs.Remove("/data/version-2/snapshot.0")
		fs.Remove(logs[0])
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), "no snapshot") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a log file in the middle is missing", func(t *testing.T) {
		fs, _ := written(t, 15)
		logs := logFiles(t, fs)
		fs.Remove(logs[1])
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		var ce *wal.CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("got %v", err)
		}
	})
}

// changeSetDataTime changes the time of the txn at off in log file name
// (raw, its bytes) if it is a setData, and fixes its checksum: only the
// digest can tell.
func changeSetDataTime(t *testing.T, fs *vfs.Mem, name string, off int, raw []byte) bool {
	t.Helper()
	n := int(binary.BigEndian.Uint32(raw[off+8:]))
	payload := append([]byte(nil), raw[off+12:off+12+n]...)
	// TxnHeader: clientId 8, cxid 4, zxid 8, time 8, type 4.
	if typ := int32(binary.BigEndian.Uint32(payload[28:])); typ != 5 { // setData: its mtime goes into the digest
		return false
	}
	payload[27] ^= 1
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], uint64(adler32.Checksum(payload)))
	patch(t, fs, name, int64(off), sum[:])
	patch(t, fs, name, int64(off+12), payload)
	return true
}

// TestTornTailIsCutWithALogLine: a txn half written at the end of the
// newest log is cut off, with a warning, and the file ends where the last
// whole txn does. When the torn txn was the file's only one (the log had
// just rolled), nothing in the file was acknowledged and it goes. Which
// of the two this run sees depends on where group commit rolled the log.
func TestTornTailIsCutWithALogLine(t *testing.T) {
	fs, _ := written(t, 16)
	logs := logFiles(t, fs)
	last := logs[len(logs)-1]
	offs, raw := entryOffsets(t, fs, last)
	off := offs[len(offs)-1]
	// Tear the last txn: its second half never reached the disk.
	n := int(binary.BigEndian.Uint32(raw[off+8:]))
	patch(t, fs, last, int64(off+12+n/2), make([]byte, n/2+2))
	// The store writes a snapshot in the background after the cut, and
	// logs it: the buffer is shared with that goroutine.
	logged := &lockedBuffer{}
	s, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: slog.New(slog.NewTextHandler(logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	rec := s.Recovery()
	if !strings.Contains(rec.Truncated, last) || !strings.Contains(logged.String(), "cutting off a torn write") {
		t.Fatalf("recovery %+v; log:\n%s", rec, logged.String())
	}
	f, err := fs.Open(last)
	if len(offs) == 1 {
		if err == nil {
			f.Close()
			t.Fatalf("%s held only the torn txn, and is still there", last)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s is gone, though %d whole txns were in it: %v", last, len(offs)-1, err)
	}
	defer f.Close()
	if size, _ := f.Size(); size != int64(off) {
		t.Fatalf("%s is %d bytes, want it cut at %d", last, size, off)
	}
}

// lockedBuffer is a bytes.Buffer that goroutines may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestUnreadableSnapshotIsPassedOver(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs})
	w := newWriter(t, s, 17)
	for i := 0; i < 30; i++ {
		if err := w.batch(4); err != nil {
			t.Fatal(err)
		}
	}
	name, err := s.Snapshot(treeOf(s).Published())
	if err != nil {
		t.Fatal(err)
	}
	want := dump(w.tree.Published())
	closeStore(t, s)
	// Damage the middle of the new snapshot.
	p := "/data/version-2/" + name
	raw, _ := vfs.ReadFile(fs, p)
	patch(t, fs, p, int64(len(raw)/2), []byte{raw[len(raw)/2] ^ 0x10})
	s2 := open(t, wal.Options{FS: fs})
	defer closeStore(t, s2)
	rec := s2.Recovery()
	if rec.Snapshot != "snapshot.0" || len(rec.SkippedSnapshots) != 1 || rec.SkippedSnapshots[0] != name {
		t.Fatalf("recovery %+v", rec)
	}
	if got := dump(treeOf(s2).Published()); got != want {
		t.Fatal("tree differs after falling back to the older snapshot")
	}
}

// A damaged length in a snapshot must not make recovery allocate what it
// claims: the file is skipped, at the cost of the bytes actually there.
func TestSnapshotWithAHugeLengthIsSkippedCheaply(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs})
	// The log must reach past the damaged snapshot for it to be skipped.
	if err := newWriter(t, s, 18).batch(12); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0x5a4b534e) // ZKSN
	b = binary.BigEndian.AppendUint32(b, 2)
	b = binary.BigEndian.AppendUint64(b, ^uint64(0))
	b = binary.BigEndian.AppendUint32(b, 0)          // no sessions
	b = binary.BigEndian.AppendUint32(b, 0)          // no ACLs
	b = binary.BigEndian.AppendUint32(b, 0x3fffffff) // a 1 GB path
	b = append(b, "/only a few bytes"...)
	f, _ := fs.Create("/data/version-2/snapshot.9")
	f.WriteAt(b, 0)
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s = open(t, wal.Options{FS: fs})
	runtime.ReadMemStats(&after)
	defer closeStore(t, s)
	if rec := s.Recovery(); len(rec.SkippedSnapshots) != 1 || rec.Snapshot != "snapshot.0" {
		t.Fatalf("recovery %+v", rec)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("recovery allocated %d MB for a snapshot of %d bytes", grew>>20, len(b))
	}
}

// A snapshot whose znodes stop forming a tree part-way through (here an
// orphan a few thousand znodes in, while the reader is chunks ahead of
// the loader) is passed over like any unreadable one, and the log
// rebuilds the same tree from the older snapshot.
func TestSnapshotThatIsNotATreeMidwayIsPassedOver(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs})
	tree := treeOf(s)
	zxid := tree.Zxid()
	write := func(reqs ...*ztree.Request) {
		done := make(chan error, len(reqs))
		txns := make([]ztree.Txn, len(reqs))
		for i, req := range reqs {
			zxid++
			req.Zxid, req.Time, req.Session = zxid, 1_700_000_000_000+zxid, 0
			txns[i], _ = tree.Prep(req)
			if err := s.Append(logged(&txns[i]), func(err error) { done <- err }); err != nil {
				t.Fatal(err)
			}
		}
		for i := range txns {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if res := tree.Apply(&txns[i].Header, txns[i].Record); res.Err != wire.ErrOK {
				t.Fatalf("txn %d: %v", i, res.Err)
			}
		}
		tree.Publish()
	}
	write(&ztree.Request{Op: wire.OpCreate, Body: &wire.CreateRequest{Path: "/big", ACL: ztree.OpenACL}})
	for b := 0; b < 60; b++ {
		var reqs []*ztree.Request
		for i := 0; i < 100; i++ {
			path := fmt.Sprintf("/big/k%05d", b*100+i)
			reqs = append(reqs, &ztree.Request{Op: wire.OpCreate, Body: &wire.CreateRequest{Path: path, Data: []byte(path), ACL: ztree.OpenACL}})
		}
		write(reqs...)
	}
	name, err := s.Snapshot(treeOf(s).Published())
	if err != nil {
		t.Fatal(err)
	}
	want := dump(tree.Published())
	closeStore(t, s)
	p := "/data/version-2/" + name
	raw, _ := vfs.ReadFile(fs, p)
	at := bytes.Index(raw, []byte("/big/k04000"))
	if at < 0 {
		t.Fatal("the snapshot does not hold /big/k04000 as written")
	}
	patch(t, fs, p, int64(at), []byte("/bog")) // a parent that does not exist
	s2 := open(t, wal.Options{FS: fs})
	defer closeStore(t, s2)
	rec := s2.Recovery()
	if len(rec.SkippedSnapshots) != 1 || rec.SkippedSnapshots[0] != name || rec.Snapshot == name {
		t.Fatalf("recovery %+v", rec)
	}
	if got := dump(treeOf(s2).Published()); got != want {
		t.Fatal("tree differs after falling back to the older snapshot")
	}
}

// fuzzySnapshot writes txns up to B, then `ahead` more, and takes a
// snapshot; then it writes `tail` more batches and closes. It files the
// snapshot as ZooKeeper can write one while it applies txns: named for B,
// holding the tree after the last of the `ahead` txns, with the zxid
// digest of the txn before that one, whose own digest was not yet logged
// when the trailer was written. With ahead 1 the trailer is B's. edit may
// change the file before it is resealed. It returns the tree the whole
// log gives.
func fuzzySnapshot(t *testing.T, seed int64, ahead, tail int, edit func(raw []byte)) (*vfs.Mem, string) {
	t.Helper()
	return fuzzySnapshotAs(t, seed, ahead, tail, false, edit)
}

// fuzzySnapshotAs is fuzzySnapshot; streamed files the snapshot as a
// learner does that took it from a ZooKeeper leader's SNAP: named for B
// and holding the `ahead` txns after it, with its own tree's digest
// filed under B.
func fuzzySnapshotAs(t *testing.T, seed int64, ahead, tail int, streamed bool, edit func(raw []byte)) (*vfs.Mem, string) {
	t.Helper()
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs})
	w := newWriter(t, s, seed)
	for i := 0; i < 20; i++ {
		if err := w.batch(3); err != nil {
			t.Fatal(err)
		}
	}
	base := w.zxid
	for i := 0; i < ahead-1; i++ {
		if err := w.batch(1); err != nil {
			t.Fatal(err)
		}
	}
	// The last txn must change the tree, or the trailer would match; an
	// error txn before it moves the trailer on.
	trailZxid, trailDigest := w.zxid, w.tree.Published().Digest()
	for {
		if err := w.batch(1); err != nil {
			t.Fatal(err)
		}
		if w.tree.Published().Digest() != trailDigest {
			break
		}
		trailZxid = w.zxid
	}
	if ahead == 1 {
		base = trailZxid
	}
	if streamed {
		trailZxid, trailDigest = base, w.tree.Published().Digest()
	}
	name, err := s.Snapshot(treeOf(s).Published())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < tail; i++ {
		if err := w.batch(3); err != nil {
			t.Fatal(err)
		}
	}
	want := dump(w.tree.Published())
	closeStore(t, s)

	dir := "/data/version-2/"
	raw, err := vfs.ReadFile(fs, dir+name)
	if err != nil {
		t.Fatal(err)
	}
	// The file ends: tree seal (8-byte sum, "/"), zxid 8, digest version
	// 4, digest 8, second seal.
	const seal = 8 + 4 + 1
	trailer := len(raw) - seal - 20
	binary.BigEndian.PutUint64(raw[trailer:], uint64(trailZxid))
	binary.BigEndian.PutUint64(raw[trailer+12:], trailDigest)
	edit(raw)
	binary.BigEndian.PutUint64(raw[trailer-seal:], uint64(adler32.Checksum(raw[:trailer-seal])))
	binary.BigEndian.PutUint64(raw[len(raw)-seal:], uint64(adler32.Checksum(raw[:len(raw)-seal])))
	fs.Remove(dir + name)
	f, err := fs.Create(fmt.Sprintf("%ssnapshot.%x", dir, base))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(raw, 0)
	f.Close()
	return fs, want
}

// damageZnodeData changes one byte of a znode's data in a snapshot's
// bytes: a run of one letter is the test writer's data.
func damageZnodeData(t *testing.T, raw []byte) {
	t.Helper()
	for i := 0; i+8 < len(raw); i++ {
		if r := raw[i]; r >= 'a' && r <= 'z' && bytes.Count(raw[i:i+8], raw[i:i+1]) == 8 {
			raw[i+4] ^= 0x20
			return
		}
	}
	t.Fatal("no znode data to change")
}

// ZooKeeper writes snapshots while it applies txns and logs each txn's
// digest after its changes, so a snapshot named for txn B can hold txn
// B+1 under B's digest: it happened in CI with a data dir ZooKeeper 3.8
// wrote. Recovery replays B+1 and lets the next logged digest decide; a
// tree that no replayed txn accounts for is still refused.
func TestFuzzySnapshotHoldingTheNextTxn(t *testing.T) {
	keep := func([]byte) {}
	// recovers opens the data dir and wants the whole log's tree, from
	// the fuzzy snapshot with at least `after` txns replayed.
	recovers := func(t *testing.T, fs *vfs.Mem, want string, after int) {
		s := open(t, wal.Options{FS: fs})
		defer closeStore(t, s)
		if got := dump(treeOf(s).Published()); got != want {
			t.Fatalf("recovered tree differs:\n%s\nwant\n%s", got, want)
		}
		if rec := s.Recovery(); rec.Snapshot == "snapshot.0" || rec.Replayed < after {
			t.Fatalf("recovery %+v: not from the fuzzy snapshot", rec)
		}
	}
	t.Run("the next txn settles it", func(t *testing.T) {
		fs, want := fuzzySnapshot(t, 31, 1, 4, keep)
		recovers(t, fs, want, 1+4*3)
	})
	t.Run("txns applied while it was written, and part of one more", func(t *testing.T) {
		fs, want := fuzzySnapshot(t, 34, 4, 4, keep)
		recovers(t, fs, want, 4+4*3)
	})
	// A learner that took a snapshot from a ZooKeeper leader's SNAP
	// files it under the zxid the leader named, with its own tree's
	// digest, and logs the txns after it with the leader's digests: the
	// first ones do not match the tree, which already holds them.
	t.Run("streamed by a leader, settled by a later txn", func(t *testing.T) {
		fs, want := fuzzySnapshotAs(t, 35, 4, 4, true, keep)
		recovers(t, fs, want, 4+4*3)
	})
	t.Run("streamed by a leader, a mismatch after the tree settled", func(t *testing.T) {
		fs, _ := fuzzySnapshotAs(t, 36, 4, 4, true, keep)
		// Change the time of the last setData txn of the log and fix its
		// checksum: its digest no longer matches, after earlier ones did.
		var logs []string
		for _, n := range files(t, fs, "/data") {
			if strings.HasPrefix(n, "log.") {
				logs = append(logs, "/data/version-2/"+n)
			}
		}
		if len(logs) != 1 {
			t.Fatalf("log files %v, want one", logs)
		}
		for _, name := range logs {
			offs, raw := entryOffsets(t, fs, name)
			for _, off := range slices.Backward(offs) {
				if changeSetDataTime(t, fs, name, off, raw) {
					_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
					if !errors.Is(err, wal.ErrDigestMismatch) || strings.Contains(err.Error(), "no digest logged after it matches") {
						t.Fatalf("got %v, want ErrDigestMismatch at the changed txn, the tree having settled before it", err)
					}
					return
				}
			}
		}
		t.Fatal("no setData txn to change")
	})
	// Since 2026-12-07 the learner's zxid digest for such a snapshot
	// names txn 0, which ZooKeeper reads as no digest, and holds the
	// tree's own digest, where ZooKeeper's empty one holds 0.
	streamedMark := func(raw []byte) {
		trailer := len(raw) - (8 + 4 + 1) - 20
		copy(raw[trailer:trailer+8], make([]byte, 8))
	}
	zooKeepersEmpty := func(raw []byte) {
		trailer := len(raw) - (8 + 4 + 1) - 20
		copy(raw[trailer:trailer+8], make([]byte, 8))
		copy(raw[trailer+12:trailer+20], make([]byte, 8))
	}
	// cutAfterNext zeroes the log from the second txn after the
	// snapshot on, as a log never written: entries are txns 1, 2, ...
	cutAfterNext := func(t *testing.T, fs *vfs.Mem) int64 {
		var snap int64
		for _, n := range files(t, fs, "/data") {
			if strings.HasPrefix(n, "snapshot.") && n != "snapshot.0" {
				z, err := strconv.ParseInt(strings.TrimPrefix(n, "snapshot."), 16, 64)
				if err != nil {
					t.Fatal(err)
				}
				snap = z
			}
		}
		for _, n := range files(t, fs, "/data") {
			if strings.HasPrefix(n, "log.") {
				name := "/data/version-2/" + n
				offs, raw := entryOffsets(t, fs, name)
				cut := offs[snap+1]
				patch(t, fs, name, int64(cut), make([]byte, len(raw)-cut))
			}
		}
		return snap
	}
	t.Run("streamed by a leader and marked so, settled by a later txn", func(t *testing.T) {
		fs, want := fuzzySnapshotAs(t, 37, 4, 4, true, streamedMark)
		recovers(t, fs, want, 4+4*3)
		s := open(t, wal.Options{FS: fs})
		defer closeStore(t, s)
		if s.Recovery().Unsettled {
			t.Fatal("recovery says the tree is unsettled, after a logged digest matched it")
		}
	})
	// The learner stopped during its sync, after logging again the
	// first of the txns the streamed tree already held: the tree holds
	// changes of txns its log does not have yet. It used to be refused
	// (no logged digest matched), and the server would not start.
	t.Run("streamed by a leader and marked so, the log cut before it settles", func(t *testing.T) {
		fs, _ := fuzzySnapshotAs(t, 38, 4, 0, true, streamedMark)
		snap := cutAfterNext(t, fs)
		s, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		if err != nil {
			t.Fatalf("a streamed tree the log has not settled yet was refused: %v", err)
		}
		defer closeStore(t, s)
		rec := s.Recovery()
		if !rec.Unsettled || rec.Replayed != 1 || treeOf(s).Zxid() != snap+1 {
			t.Fatalf("recovery %+v at %#x: want the snapshot at %#x, one txn replayed, unsettled", rec, treeOf(s).Zxid(), snap)
		}
	})
	// ZooKeeper's empty zxid digest is no mark: its snapshots are its
	// own, and a log that never settles the tree is still refused.
	t.Run("ZooKeeper's empty zxid digest, the log cut before it settles", func(t *testing.T) {
		fs, _ := fuzzySnapshotAs(t, 39, 4, 0, true, zooKeepersEmpty)
		cutAfterNext(t, fs)
		if _, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet}); !errors.Is(err, wal.ErrDigestMismatch) {
			t.Fatalf("got %v, want ErrDigestMismatch", err)
		}
	})
	// The mark carries the tree's digest: a znode changed since it was
	// written (its seals made good again) is refused.
	t.Run("streamed by a leader and marked so, a znode changed since", func(t *testing.T) {
		fs, _ := fuzzySnapshotAs(t, 40, 4, 4, true, func(raw []byte) {
			streamedMark(raw)
			damageZnodeData(t, raw)
		})
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		if !errors.Is(err, wal.ErrDigestMismatch) || !strings.Contains(err.Error(), "does not hold the tree it was written from") {
			t.Fatalf("got %v, want ErrDigestMismatch for the snapshot itself", err)
		}
	})
	t.Run("no txn after it", func(t *testing.T) {
		fs, _ := fuzzySnapshot(t, 32, 1, 0, keep)
		// The log's copy of the next txn never made it.
		for _, n := range files(t, fs, "/data") {
			if strings.HasPrefix(n, "log.") {
				fs.Remove("/data/version-2/" + n)
			}
		}
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		if !errors.Is(err, wal.ErrDigestMismatch) {
			t.Fatalf("got %v, want ErrDigestMismatch", err)
		}
		t.Log(err)
	})
	t.Run("a damaged znode the txns after it cannot explain", func(t *testing.T) {
		fs, _ := fuzzySnapshot(t, 33, 1, 4, func(raw []byte) {
			damageZnodeData(t, raw)
		})
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		if !errors.Is(err, wal.ErrDigestMismatch) {
			t.Fatalf("got %v, want ErrDigestMismatch", err)
		}
		t.Log(err)
	})
}

// ZooKeeper writes a snapshot's ACL table before its znodes, and goes on
// applying txns meanwhile: a znode created, or given a new ACL, in
// between names an ACL the table lacks, which only the txn log after the
// snapshot holds. ZooKeeper's replay puts a create's ACL into its table
// before it finds the znode there, which resolves the name; zkd's gives
// the znode the ACL of that create, or of that setACL, and starts from
// the snapshot rather than pass over it.
func TestFuzzySnapshotNamingAnACLOnlyTheLogHolds(t *testing.T) {
	acl := func(p wire.Perm) []wire.ACL {
		return []wire.ACL{{Perms: p, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	}
	create := func(path string, a []wire.ACL) *ztree.Request {
		return &ztree.Request{Session: 0x100000001, Op: wire.OpCreate,
			Body: &wire.CreateRequest{Path: path, Data: []byte("d"), ACL: a, Flags: wire.ModePersistent}}
	}
	// build writes txns 1..base, then the txns after, and returns the
	// data dir with a snapshot named for base that holds the tree after
	// them all, its ACL table as of base, and that tree.
	build := func(t *testing.T, after []*ztree.Request, logAfter bool) (*vfs.Mem, string, string) {
		fs := vfs.NewMem()
		s := open(t, wal.Options{FS: fs})
		w := newWriter(t, s, 1)
		if err := w.batchOf([]*ztree.Request{
			{Session: 0x100000001, Op: wire.OpCreateSession, Body: &wire.CreateSessionTxn{TimeOut: 30000}},
			create("/a", ztree.OpenACL),
			create("/kept", acl(wire.PermRead)),
		}); err != nil {
			t.Fatal(err)
		}
		base, tableAtBase := w.zxid, len(w.tree.Published().ACLTable())
		if err := w.batchOf(after); err != nil {
			t.Fatal(err)
		}
		v := w.tree.Published()
		want := dump(v)
		closeStore(t, s)

		var raw []byte
		sum := adler32.New()
		put := func(p []byte) { raw = append(raw, p...); sum.Write(p) }
		i32 := func(x int32) { put(binary.BigEndian.AppendUint32(nil, uint32(x))) }
		i64 := func(x int64) { put(binary.BigEndian.AppendUint64(nil, uint64(x))) }
		str := func(x string) { i32(int32(len(x))); put([]byte(x)) }
		seal := func() { i64(int64(sum.Sum32())); str("/") }
		i32(0x5a4b534e) // ZKSN
		i32(2)
		i64(0)
		i32(int32(v.SessionCount()))
		v.Sessions(func(x ztree.Session) bool { i64(x.ID); i32(x.Timeout); return true })
		i32(int32(tableAtBase - 1))
		for i := 1; i < tableAtBase; i++ {
			i64(int64(i))
			i32(int32(len(v.ACLTable()[i])))
			for _, a := range v.ACLTable()[i] {
				put(a.Append(nil))
			}
		}
		v.Walk(func(n ztree.Node) bool {
			p := n.Path
			if p == "/" {
				p = ""
			}
			str(p)
			str(n.Data)
			key := int64(n.ACLIndex)
			if key == 0 {
				key = -1
			}
			i64(key)
			put(n.Persisted.Append(nil))
			return true
		})
		str("/")
		seal()
		i64(v.Zxid())
		i32(ztree.DigestVersion)
		i64(int64(v.Digest()))
		seal()
		name := fmt.Sprintf("snapshot.%x", base)
		f, err := fs.Create("/data/version-2/" + name)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(raw, 0)
		f.Close()
		if !logAfter {
			// The txns after base never reached this log.
			for _, n := range files(t, fs, "/data") {
				if strings.HasPrefix(n, "log.") {
					fs.Remove("/data/version-2/" + n)
				}
			}
		}
		return fs, name, want
	}

	t.Run("a create and a setACL after it", func(t *testing.T) {
		fs, name, want := build(t, []*ztree.Request{
			create("/late", acl(wire.PermRead|wire.PermWrite)),
			{Session: 0x100000001, Op: wire.OpSetACL, Body: &wire.SetACLRequest{Path: "/a", ACL: acl(wire.PermAll), Version: -1}},
			{Session: 0x100000001, Op: wire.OpMulti, Body: &wire.MultiRequest{Ops: []wire.MultiOp{
				{Type: wire.OpCreate, Path: "/in-multi", Data: []byte("m"), ACL: acl(wire.PermRead | wire.PermCreate)},
			}}},
		}, true)
		s := open(t, wal.Options{FS: fs})
		defer closeStore(t, s)
		if rec := s.Recovery(); rec.Snapshot != name || len(rec.SkippedSnapshots) > 0 {
			t.Fatalf("recovery %+v: not from the fuzzy snapshot %s", rec, name)
		}
		tree := treeOf(s)
		if got := dump(tree.Published()); got != want {
			t.Fatalf("recovered tree differs:\n%s\nwant\n%s", got, want)
		}
		if got := tree.ACLsAwaited(); len(got) > 0 {
			t.Fatalf("still awaiting ACLs: %v", got)
		}
	})
	t.Run("no txn after it holds the ACL", func(t *testing.T) {
		fs, name, _ := build(t, []*ztree.Request{create("/late", acl(wire.PermRead|wire.PermWrite))}, false)
		_, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), `znode "/late" names an ACL`) || !strings.Contains(err.Error(), name) {
			t.Fatalf("got %v, want an error naming %s and /late", err, name)
		}
		t.Log(err)
	})
}

// readsFS records the largest single read from each file.
type readsFS struct {
	vfs.FS
	mu      sync.Mutex
	largest map[string]int
}

func (r *readsFS) Open(name string) (vfs.File, error) {
	f, err := r.FS.Open(name)
	return r.wrap(f, name, err)
}

func (r *readsFS) OpenRead(name string) (vfs.File, error) {
	f, err := r.FS.OpenRead(name)
	return r.wrap(f, name, err)
}

func (r *readsFS) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &readsFile{File: f, fs: r, name: name}, nil
}

type readsFile struct {
	vfs.File
	fs   *readsFS
	name string
}

func (f *readsFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.largest[path.Base(f.name)] = max(f.fs.largest[path.Base(f.name)], len(p))
	f.fs.mu.Unlock()
	return f.File.ReadAt(p, off)
}

// A restart replays the log after the snapshot through a window of about
// a megabyte instead of holding the whole file: the txns that straddle
// the window's edges, and one larger than the window, come back intact.
func TestReplayReadsTheLogThroughAWindow(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs})
	w := newWriter(t, s, 41)
	for i := 0; i < 600; i++ {
		if err := w.batch(20); err != nil {
			t.Fatal(err)
		}
		for i == 100 && len(w.open) == 0 {
			if err := w.batch(1); err != nil {
				t.Fatal(err)
			}
		}
		if i == 100 {
			huge := make([]byte, 1_200_000)
			w.r.Read(huge)
			err := w.batchOf([]*ztree.Request{{Session: w.open[0], Op: wire.OpCreate,
				Body: &wire.CreateRequest{Path: "/huge", Data: huge, ACL: ztree.OpenACL}}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	want := dump(w.tree.Published())
	closeStore(t, s)
	logs := files(t, fs, "/data")
	var size int64
	for _, n := range logs {
		if strings.HasPrefix(n, "log.") {
			f, _ := fs.Open("/data/version-2/" + n)
			sz, _ := f.Size()
			f.Close()
			size += sz
		}
	}
	rfs := &readsFS{FS: fs, largest: map[string]int{}}
	s2 := open(t, wal.Options{FS: rfs})
	defer closeStore(t, s2)
	if got := dump(treeOf(s2).Published()); got != want {
		t.Fatal("the replayed tree differs")
	}
	if n, ok := treeOf(s2).Published().Get("/huge"); !ok || len(n.Data) != 1_200_000 {
		t.Fatal("the txn larger than the window did not come back")
	}
	if rec := s2.Recovery(); rec.Snapshot != "snapshot.0" || rec.Replayed < 12000 || size < 4<<20 {
		t.Fatalf("recovery %+v of %d MB of logs: want several MB replayed from snapshot.0", rec, size>>20)
	}
	// A window, or the one txn larger than it.
	for name, n := range rfs.largest {
		if strings.HasPrefix(name, "log.") && n > 1_250_000 {
			t.Errorf("%s was read %d bytes at a time (the logs hold %d MB)", name, n, size>>20)
		}
	}
	t.Logf("largest reads %v; logs %d MB", rfs.largest, size>>20)
}
