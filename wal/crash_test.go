package wal_test

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"testing"

	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/ztree"
)

var errPowerCut = errors.New("power cut")

// TestCrashKeepsEveryAcknowledgedTxn cuts the power at a random file
// system operation — every write, fsync, preallocation, file creation,
// rename and directory fsync counts — of a store under load, with log
// rolls and background snapshots going on. The disk keeps what was
// fsynced plus a random prefix of the later writes, the last one torn at a
// random byte. Recovery must give exactly the tree after some txn at or
// after the last acknowledged one: nothing acknowledged lost, nothing torn
// applied. Half the runs then write on and recover again.
//
// make test runs 600 crashes (about 10 s), and 100 more under the race
// detector (ZKD_CRASH_RUNS=100);
// make crash-long runs ZKD_CRASH_RUNS of them (20,000), from seed 1, so
// every seed make test runs is among them.
func TestCrashKeepsEveryAcknowledgedTxn(t *testing.T) {
	runs := 600
	if testing.Short() {
		runs = 300
	}
	if n, err := strconv.Atoi(os.Getenv("ZKD_CRASH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	stats := map[string]int{}
	crash := func(seed int64) {
		r := rand.New(rand.NewSource(seed))
		fs := vfs.NewMem()
		opts := wal.Options{FS: fs, Dir: "/data", PreAllocSize: int64(512 << r.Intn(6)), SnapCount: 20 + r.Intn(60),
			Logger: quiet, Rand: rand.New(rand.NewSource(seed))}
		if r.Intn(3) == 0 {
			opts.LogDir = "/txnlog"
		}
		if r.Intn(2) == 0 {
			// Direct writes rewrite the log's last, partial block on
			// every commit; a torn one must cost nothing acknowledged.
			opts.FS = &directFS{FS: fs}
		}
		s, err := openStore(opts)
		if err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, s, seed)
		cutAt := 1 + r.Intn(500)
		var mu sync.Mutex
		ops := 0
		fs.Inject(func(op, name string) error {
			mu.Lock()
			defer mu.Unlock()
			ops++
			if ops >= cutAt {
				return errPowerCut
			}
			return nil
		})
		for i := 0; i < 80; i++ {
			if err := w.batch(1 + r.Intn(8)); err != nil {
				if !errors.Is(err, errPowerCut) {
					t.Fatalf("seed %d: %v", seed, err)
				}
				break
			}
		}
		s.Close()
		disk := fs.Crash(r)
		where := fmt.Sprintf("seed %d (cut at op %d of %d, %d txns appended, %d acknowledged)", seed, cutAt, ops, len(w.all), w.acked)
		got := recoverAndCheck(t, where, disk, opts, w)
		if got.Truncated != "" {
			stats["torn tail cut"]++
		}
		if len(got.SkippedSnapshots) > 0 {
			stats["unreadable snapshot skipped"]++
		}
		if got.Zxid > w.acked {
			stats["unacknowledged txns survived"]++
		}
		if ops >= cutAt {
			stats["cut during the run"]++
		}
		if seed%2 == 0 {
			// Write on after the crash, then recover again cleanly.
			opts.FS = disk
			s2, err := openStore(opts)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			w2 := newWriter(t, s2, seed+1e6)
			for i := 0; i < 10; i++ {
				if err := w2.batch(1 + r.Intn(5)); err != nil {
					t.Fatalf("%s: writing after recovery: %v", where, err)
				}
			}
			want := fingerprint(w2.tree.Published())
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			opts.FS = disk.Crash(nil)
			s3, err := openStore(opts)
			if err != nil {
				t.Fatalf("%s: second recovery: %v", where, err)
			}
			if fingerprint(treeOf(s3).Published()) != want {
				t.Fatalf("%s: second recovery differs:\n got %.1500s\nwant %.1500s", where, dump(treeOf(s3).Published()), dump(w2.tree.Published()))
			}
			s3.Close()
		}
	}
	for seed := int64(1); seed <= int64(runs); seed++ {
		crash(seed)
	}
	t.Logf("%d crashes: %v", runs, stats)
	// About half the cut points fall within a run: how many file system
	// operations a run makes depends on how group commit batches, which
	// depends on the machine's load (319 of 600 idle, 298 with both cores
	// busy). A third is the floor.
	if stats["cut during the run"] < runs/3 {
		t.Fatalf("the crash points miss the interesting cases: %v", stats)
	}
	// A torn tail, and unacknowledged txns that survive, come in 2 to 7
	// runs of 100 on an idle machine and fewer on a busy one: 100 runs
	// under the race detector saw none of one once. The crash model must
	// still make them, so a run short of them goes on, seed after seed,
	// until it has seen each (ten times the runs at most).
	extra := int64(0)
	for ; (stats["torn tail cut"] == 0 || stats["unacknowledged txns survived"] == 0) && extra < 10*int64(runs); extra++ {
		crash(int64(runs) + 1 + extra)
	}
	if extra > 0 {
		t.Logf("%d more crashes to see a torn tail and unacknowledged txns that survive: %v", extra, stats)
	}
	if stats["torn tail cut"] == 0 || stats["unacknowledged txns survived"] == 0 {
		t.Fatalf("the crash points miss the interesting cases after %d crashes: %v", int64(runs)+extra, stats)
	}
}

// recoverAndCheck opens the crashed disk and checks the recovered tree is
// the tree after txn Z for some Z at or after the last acknowledged one.
func recoverAndCheck(t *testing.T, where string, disk *vfs.Mem, opts wal.Options, w *writer) wal.Recovery {
	t.Helper()
	opts.FS = disk.Crash(nil) // recover from a copy: disk is reused
	s, err := openStore(opts)
	if err != nil {
		t.Fatalf("%s: recovery failed: %v\nfiles: %s", where, err, disk.Files())
	}
	defer s.Close()
	rec := s.Recovery()
	z := rec.Zxid
	base := w.all[0].Header.Zxid - 1
	if z < w.acked || z > base+int64(len(w.all)) {
		t.Fatalf("%s: recovered up to txn %d; acknowledged %d, appended up to %d", where, z, w.acked, base+int64(len(w.all)))
	}
	want := replayed(w.all, ztree.New(ztree.Options{}), int(z-base))
	if fingerprint(treeOf(s).Published()) != fingerprint(want.Published()) {
		got, exp := dump(treeOf(s).Published()), dump(want.Published())
		t.Fatalf("%s: recovered tree is not the tree after txn %d:\n got %.1500s\nwant %.1500s", where, z, got, exp)
	}
	return rec
}
