package wal_test

import (
	"bytes"
	"errors"
	"testing"

	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/ztree"
)

// seedDir writes a small data dir and returns its files.
func seedDir(t testing.TB) (snap, log []byte) {
	fs := vfs.NewMem()
	s := open(t, wal.Options{FS: fs, PreAllocSize: 4096})
	w := newWriter(t, s, 99)
	for i := 0; i < 8; i++ {
		if err := w.batch(3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Snapshot(treeOf(s).Published()); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	snap, _ = vfs.ReadFile(fs, "/data/version-2/snapshot.18")
	log, _ = vfs.ReadFile(fs, "/data/version-2/log.1")
	return snap, log
}

// FuzzRecovery feeds damaged snapshot and log files to Open: it must never
// panic, and what it does not refuse must be a consistent tree.
func FuzzRecovery(f *testing.F) {
	snap, log := seedDir(f)
	f.Add(snap, log)
	f.Add(snap[:len(snap)/2], log)
	f.Add(snap, log[:len(log)-7])
	flip := append([]byte(nil), log...)
	flip[40] ^= 0xff
	f.Add(snap, flip)
	f.Add([]byte{}, []byte("ZKLG"))
	f.Fuzz(func(t *testing.T, snap, log []byte) {
		fs := vfs.NewMem()
		fs.MkdirAll("/data/version-2")
		for name, b := range map[string][]byte{"snapshot.5": snap, "log.1": log} {
			f, _ := fs.Create("/data/version-2/" + name)
			f.WriteAt(b, 0)
			f.Close()
		}
		// Small preallocations: the default 64 MB of zeros per log, in
		// memory, would hold each run up for seconds.
		s, err := openStore(wal.Options{FS: fs, Dir: "/data", Logger: quiet, PreAllocSize: 4096})
		if err != nil {
			var ce *wal.CorruptError
			if errors.As(err, &ce) && (ce.File == "" || !bytes.Contains([]byte(err.Error()), []byte("offset"))) {
				t.Fatalf("corrupt error without its place: %v", err)
			}
			return
		}
		defer s.Close()
		v := treeOf(s).Published()
		n := 0
		v.Walk(func(node ztree.Node) bool { n++; return true })
		if n != v.NodeCount() {
			t.Fatalf("walk saw %d znodes, the tree counts %d", n, v.NodeCount())
		}
	})
}
