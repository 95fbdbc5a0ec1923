package wal_test

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"zkd/wal"
	"zkd/wal/vfs"
)

// fill writes n random txns in small batches to a store in dir whose
// log rolls every few kilobytes, so the history spans several files.
func fill(t *testing.T, dir string, n int) (all []int64, fingerprints map[int64]uint64) {
	t.Helper()
	s, err := openStore(wal.Options{Dir: dir, Logger: quiet, PreAllocSize: 4096, TxnLogSizeLimit: 8 << 10,
		SnapCount: 1 << 30, Rand: rand.New(rand.NewSource(1))})
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, s, 7)
	fingerprints = map[int64]uint64{}
	for len(w.all) < n {
		if err := w.batch(1 + w.r.Intn(5)); err != nil {
			t.Fatal(err)
		}
		fingerprints[w.acked] = fingerprint(w.tree.Published())
		if len(w.all) > n/2 && len(w.all) < n/2+6 {
			if _, err := s.Snapshot(treeOf(s).Published()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, txn := range w.all {
		all = append(all, txn.Header.Zxid)
	}
	return all, fingerprints
}

// history writes 300 txns over several log files (see fill) and returns
// the directory, the txns' zxids and the log files, in zxid order.
func history(t *testing.T) (dir string, all []int64, logs []string) {
	t.Helper()
	dir = t.TempDir()
	all, _ = fill(t, dir, 300)
	logs, _ = filepath.Glob(filepath.Join(dir, "version-2", "log.*"))
	if len(logs) < 3 {
		t.Fatalf("%d log files; the test wants several", len(logs))
	}
	slices.Sort(logs) // same-length hex names sort by zxid
	return dir, all, logs
}

func TestReadTxnsGivesTheHistoryAfterAZxid(t *testing.T) {
	dir, all, _ := history(t)
	for _, c := range []struct{ after, upTo int64 }{
		{0, all[len(all)-1]}, {all[10], all[len(all)-1]}, {all[100], all[200]}, {all[299], all[299]}, {all[150], all[150]},
	} {
		var got []int64
		err := wal.ReadTxns(vfs.OS, dir, c.after, c.upTo, func(txn *wal.Txn, entry []byte) error {
			if len(entry) == 0 {
				t.Fatalf("txn %#x with no entry bytes", txn.Header.Zxid)
			}
			got = append(got, txn.Header.Zxid)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for _, z := range all {
			if z > c.after && z <= c.upTo {
				want = append(want, z)
			}
		}
		if len(got) != len(want) || (len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1])) {
			t.Fatalf("after %#x up to %#x: got %d txns, want %d", c.after, c.upTo, len(got), len(want))
		}
	}
	stop := errors.New("enough")
	if err := wal.ReadTxns(vfs.OS, dir, 0, all[len(all)-1], func(*wal.Txn, []byte) error { return stop }); err != stop {
		t.Fatalf("the callback's error came back as %v", err)
	}
}

// A history with txns missing between two of an epoch (here a whole log
// file gone) is never sent as a DIFF: ReadTxns reads up to the hole and
// then fails, naming the file after it: a leader that finds its log so
// syncs the follower by SNAP instead of sending a history with a hole
// (ZOOKEEPER-2846, ZOOKEEPER-4925).
func TestReadTxnsRefusesAHoleInTheHistory(t *testing.T) {
	dir, all, logs := history(t)
	if err := os.Remove(logs[1]); err != nil {
		t.Fatal(err)
	}
	var got []int64
	err := wal.ReadTxns(vfs.OS, dir, 0, all[len(all)-1], func(txn *wal.Txn, _ []byte) error {
		got = append(got, txn.Header.Zxid)
		return nil
	})
	var ce *wal.CorruptError
	if !errors.As(err, &ce) || ce.File != logs[2] || !strings.Contains(err.Error(), "the txns between are missing") {
		t.Fatalf("reading across the hole: got %v, want a CorruptError naming %s", err, logs[2])
	}
	// Every txn before the hole came, in order, and none after it.
	for i, z := range got {
		if z != all[i] {
			t.Fatalf("txn %d read is %#x, want %#x", i, z, all[i])
		}
	}
	if len(got) == 0 || len(got) >= len(all) {
		t.Fatalf("read %d txns of %d before the hole", len(got), len(all))
	}
	// Before the hole the history still reads.
	if err := wal.ReadTxns(vfs.OS, dir, 0, got[len(got)-1], func(*wal.Txn, []byte) error { return nil }); err != nil {
		t.Fatalf("reading up to the hole: %v", err)
	}
}

// TRUNC: the txns after the cut are gone from what the next start loads
// (even where a snapshot after the cut exists), the tree is the one the
// history had at the cut, and nothing cut is deleted.
func TestTruncateLogCutsTheHistory(t *testing.T) {
	for _, cut := range []int{40, 152, 280} {
		dir := t.TempDir()
		all, fingerprints := fill(t, dir, 300)
		// Cut at a batch boundary, where the history's tree is known.
		z := all[cut]
		for fingerprints[z] == 0 {
			cut++
			z = all[cut]
		}
		if err := wal.TruncateLog(vfs.OS, dir, dir, z); err != nil {
			t.Fatal(err)
		}
		s, err := openStore(wal.Options{Dir: dir, Logger: quiet})
		if err != nil {
			t.Fatalf("cut at %#x: %v", z, err)
		}
		got := treeOf(s).Zxid()
		fp := fingerprint(treeOf(s).Published())
		s.Close()
		if got != z || fp != fingerprints[z] {
			t.Fatalf("cut at %#x: the store reopens at %#x (tree matches the history's: %v)", z, got, fp == fingerprints[z])
		}
		names, _ := os.ReadDir(filepath.Join(dir, "version-2"))
		aside := 0
		for _, n := range names {
			if strings.HasPrefix(n.Name(), "truncated.") {
				aside++
			}
		}
		if aside == 0 {
			t.Fatalf("cut at %#x: nothing was set aside", z)
		}
		// The history after the cut is what ReadTxns no longer sees.
		var last int64
		if err := wal.ReadTxns(vfs.OS, dir, 0, 1<<62, func(txn *wal.Txn, _ []byte) error {
			last = txn.Header.Zxid
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if last != z {
			t.Fatalf("cut at %#x: the logs still reach %#x", z, last)
		}
	}
}

// After installing a leader's snapshot at z (SNAP), the learner's own
// log up to z is set aside: a leader never reads it back as its history
// (ReadTxns sees nothing), the store reopens at z from the snapshot
// alone, and the files are kept under truncated. names.
func TestSetAsideLogsAfterAnInstalledSnapshot(t *testing.T) {
	dir := t.TempDir()
	all, fingerprints := fill(t, dir, 300)
	cut := 200
	for fingerprints[all[cut]] == 0 {
		cut++
	}
	z := all[cut]
	if err := wal.TruncateLog(vfs.OS, dir, dir, z); err != nil {
		t.Fatal(err)
	}
	s, err := openStore(wal.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	v := treeOf(s).Published()
	s.Close()
	// The snapshot as a learner writes the leader's tree at z.
	if _, err := wal.WriteSnapshotFile(vfs.OS, filepath.Join(dir, "version-2"), v, ""); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "version-2", "log.*"))
	if err := wal.SetAsideLogs(vfs.OS, dir, z); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "version-2", "log.*")); len(left) != 0 {
		t.Fatalf("logs left: %v", left)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "version-2", "truncated.log.*")); len(aside) < len(logs) {
		t.Fatalf("%d of %d logs were kept aside", len(aside), len(logs))
	}
	n := 0
	if err := wal.ReadTxns(vfs.OS, dir, 0, 1<<62, func(*wal.Txn, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("ReadTxns still gives %d txns (%v)", n, err)
	}
	s, err = openStore(wal.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := treeOf(s).Zxid(); got != z || fingerprint(treeOf(s).Published()) != fingerprints[z] {
		t.Fatalf("reopened at %#x, want the snapshot's %#x", got, z)
	}
}

// A txn appended as encoded (AppendEncoded, as a follower logs a
// PROPOSAL's data) is logged exactly as Append logs it: another log fed
// the entries ReadTxns gives reads back the same entries.
func TestAppendEncodedLogsWhatAppendLogs(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	fill(t, src, 40)
	var want [][]byte
	var zxids []int64
	if err := wal.ReadTxns(vfs.OS, src, 0, 1<<62, func(txn *wal.Txn, entry []byte) error {
		want = append(want, append([]byte(nil), entry...))
		zxids = append(zxids, txn.Header.Zxid)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := openStore(wal.Options{Dir: dst, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range want {
		if err := s.AppendEncoded(zxids[i], e, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	i := 0
	if err := wal.ReadTxns(vfs.OS, dst, 0, 1<<62, func(txn *wal.Txn, entry []byte) error {
		if i >= len(want) || txn.Header.Zxid != zxids[i] || string(entry) != string(want[i]) {
			t.Fatalf("entry %d differs", i)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("read back %d of %d txns", i, len(want))
	}
}
