package wal_test

import (
	"strings"
	"testing"
	"time"

	"zkd/wal"
	"zkd/wal/vfs"
)

func count(t *testing.T, fs vfs.FS, dir, prefix string) int {
	n := 0
	for _, f := range files(t, fs, dir) {
		if strings.HasPrefix(f, prefix) {
			n++
		}
	}
	return n
}

func TestPurgeKeepsWhatRecoveryNeeds(t *testing.T) {
	for _, logDir := range []string{"", "/txnlog"} {
		fs := vfs.NewMem()
		opts := wal.Options{FS: fs, LogDir: logDir, SnapCount: 60, PreAllocSize: 64 << 10}
		s := open(t, opts)
		w := newWriter(t, s, 21)
		for i := 0; i < 150; i++ {
			if err := w.batch(4); err != nil {
				t.Fatal(err)
			}
			waitSnapshots(s)
		}
		want := dump(w.tree.Published())
		closeStore(t, s)
		ld := logDir
		if ld == "" {
			ld = "/data"
		}
		snapsBefore, logsBefore := count(t, fs, "/data", "snapshot."), count(t, fs, ld, "log.")
		if snapsBefore < 8 {
			t.Fatalf("only %d snapshots to purge", snapsBefore)
		}
		if _, err := wal.Purge(fs, "/data", logDir, 2); err == nil {
			t.Fatal("purge keeping 2 snapshots was allowed; ZooKeeper's minimum is 3")
		}
		removed, err := wal.Purge(fs, "/data", logDir, 3)
		if err != nil {
			t.Fatal(err)
		}
		snaps, logs := files(t, fs, "/data"), count(t, fs, ld, "log.")
		if count(t, fs, "/data", "snapshot.") != 3 || logs >= logsBefore || len(removed) != snapsBefore-3+logsBefore-logs {
			t.Fatalf("after purge: %v and %d logs (removed %v)", snaps, logs, removed)
		}
		// Recovery from the oldest kept snapshot still finds every txn.
		var kept []string
		for _, f := range snaps {
			if strings.HasPrefix(f, "snapshot.") {
				kept = append(kept, f)
			}
		}
		crashed := fs.Crash(nil)
		oldest := kept[0]
		for _, k := range kept {
			if len(k) < len(oldest) || len(k) == len(oldest) && k < oldest {
				oldest = k
			}
		}
		for _, k := range kept {
			if k != oldest {
				crashed.Remove("/data/version-2/" + k)
			}
		}
		o := opts
		o.FS = crashed
		s2 := open(t, o)
		if got := dump(treeOf(s2).Published()); got != want {
			t.Fatal("the tree recovered from the oldest kept snapshot differs")
		}
		if s2.Recovery().Snapshot != oldest {
			t.Fatalf("recovered from %s, want %s", s2.Recovery().Snapshot, oldest)
		}
		closeStore(t, s2)
	}
}

func TestAutopurgeRunsOnItsInterval(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs, SnapCount: 40, PreAllocSize: 64 << 10, PurgeInterval: 20 * time.Millisecond})
	defer closeStore(t, s)
	w := newWriter(t, s, 22)
	for i := 0; i < 100; i++ {
		if err := w.batch(4); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for count(t, fs, "/data", "snapshot.") > 3 {
		if time.Now().After(deadline) {
			t.Fatalf("autopurge left %v", files(t, fs, "/data"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
