package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"zkd/wal"
	"zkd/wal/vfs"
)

// snapshotted returns a data directory holding snapshot.0, a newer
// snapshot (its name returned) and the log of every txn, and the tree it
// holds.
func snapshotted(t *testing.T, fsys vfs.FS, dir string, seed int64) (newest, want string) {
	t.Helper()
	s := open(t, wal.Options{FS: fsys, Dir: dir, PreAllocSize: 64 << 10})
	w := newWriter(t, s, seed)
	for i := 0; i < 20; i++ {
		if err := w.batch(4); err != nil {
			t.Fatal(err)
		}
	}
	name, err := s.Snapshot(treeOf(s).Published())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := w.batch(4); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	return name, dump(w.tree.Published())
}

// An error from the file system while reading the newest snapshot is not
// damage: recovery stops, naming the file and the OS error, instead of
// starting from an older tree.
func TestSnapshotThatCannotBeReadStopsRecovery(t *testing.T) {
	for _, c := range []struct {
		name string
		op   string
		err  error
	}{
		{"open refused", "openread", syscall.EACCES},
		{"read fails", "read", syscall.EIO},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := vfs.NewMem()
			newest, _ := snapshotted(t, mem, "/data", 21)
			file := "/data/version-2/" + newest
			mem.Inject(func(op, name string) error {
				if op == c.op && name == file {
					return &fs.PathError{Op: op, Path: name, Err: c.err}
				}
				return nil
			})
			_, err := openStore(wal.Options{FS: mem, Dir: "/data", Logger: quiet})
			var ioe *wal.SnapshotIOError
			if !errors.As(err, &ioe) || ioe.File != file || !errors.Is(err, c.err) {
				t.Fatalf("got %v, want a SnapshotIOError for %s carrying %v", err, file, c.err)
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), c.err.Error()) {
				t.Fatalf("the message names neither the file nor the OS error: %v", err)
			}
		})
	}
}

// loadedWhole checks that recovery loaded snapshot newest, skipped none,
// and gave the tree want.
func loadedWhole(t *testing.T, s *wal.Store, newest, want string) {
	t.Helper()
	if rec := s.Recovery(); rec.Snapshot != newest || len(rec.SkippedSnapshots) != 0 {
		t.Fatalf("recovery %+v, want %s loaded and nothing skipped", rec, newest)
	}
	if got := dump(treeOf(s).Published()); got != want {
		t.Fatal("the tree differs")
	}
}

// A snapshot the server may read but not write (another owner, mode 0644)
// loads: reading never asks for write access.
func TestSnapshotReadableButNotWritableLoads(t *testing.T) {
	t.Run("vfs", func(t *testing.T) {
		mem := vfs.NewMem()
		newest, want := snapshotted(t, mem, "/data", 22)
		mem.Inject(func(op, name string) error {
			if op == "open" && strings.Contains(name, "snapshot.") {
				return &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
			}
			return nil
		})
		s := open(t, wal.Options{FS: mem})
		defer closeStore(t, s)
		loadedWhole(t, s, newest, want)
	})
	t.Run("real disk, immutable file", func(t *testing.T) {
		// chattr +i makes open for writing fail even for root, as a file
		// of another owner does for anyone else.
		dir := t.TempDir()
		newest, want := snapshotted(t, vfs.OS, dir, 23)
		file := filepath.Join(dir, "version-2", newest)
		if out, err := exec.Command("chattr", "+i", file).CombinedOutput(); err != nil {
			t.Skipf("this file system cannot make a file immutable (chattr: %v %s); the vfs case above covers the rule", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", file).Run() })
		if f, err := os.OpenFile(file, os.O_RDWR, 0); err == nil {
			f.Close()
			t.Fatal("an immutable file opened for writing: the test proves nothing here")
		}
		s := open(t, wal.Options{Dir: dir})
		defer closeStore(t, s)
		loadedWhole(t, s, newest, want)
	})
}

// A damaged snapshot is passed over only when the logs rebuild what it
// held; otherwise recovery stops and names it.
func TestDamagedSnapshotWithoutTheLogsStopsRecovery(t *testing.T) {
	mem := vfs.NewMem()
	newest, _ := snapshotted(t, mem, "/data", 24)
	file := "/data/version-2/" + newest
	raw, err := vfs.ReadFile(mem, file)
	if err != nil {
		t.Fatal(err)
	}
	patch(t, mem, file, int64(len(raw)/2), []byte{raw[len(raw)/2] ^ 0x10})
	// The log that held the txns up to it is gone (purged, say).
	for _, f := range files(t, mem, "/data") {
		if strings.HasPrefix(f, "log.") {
			if err := mem.Remove("/data/version-2/" + f); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err = openStore(wal.Options{FS: mem, Dir: "/data", Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "would lose") {
		t.Fatalf("got %v, want recovery to refuse, naming %s", err, file)
	}
}

// newestLog writes a data directory whose newest log holds many txns and
// returns it with the file's name and the offsets of its txns.
func newestLog(t *testing.T, seed int64) (*vfs.Mem, string, []int, []byte) {
	t.Helper()
	mem := vfs.NewMem()
	s := open(t, wal.Options{FS: mem, PreAllocSize: 1 << 20})
	w := newWriter(t, s, seed)
	for i := 0; i < 60; i++ {
		if err := w.batch(5); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	var last string
	for _, f := range files(t, mem, "/data") {
		if strings.HasPrefix(f, "log.") {
			last = "/data/version-2/" + f
		}
	}
	offs, raw := entryOffsets(t, mem, last)
	if len(offs) < 200 {
		t.Fatalf("the newest log holds %d txns", len(offs))
	}
	return mem, last, offs, raw
}

// A damaged length in the middle of the newest log is not a torn tail:
// recovery refuses with the file and offset and cuts nothing.
func TestDamagedLengthInTheNewestLogIsRefused(t *testing.T) {
	for _, length := range []uint32{0xdeadbeef, 0, 256, 0x00100000, 13} {
		t.Run(fmt.Sprintf("%#x", length), func(t *testing.T) {
			mem, last, offs, raw := newestLog(t, int64(length%1000))
			off := offs[len(offs)*3/4]
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], length)
			patch(t, mem, last, int64(off+8), b[:])
			_, err := openStore(wal.Options{FS: mem, Dir: "/data", Logger: quiet})
			var ce *wal.CorruptError
			if !errors.As(err, &ce) || ce.File != last || ce.Offset != int64(off) {
				t.Fatalf("length %#x: got %v, want a CorruptError for %s at %d", length, err, last, off)
			}
			after, _ := vfs.ReadFile(mem, last)
			if len(after) != len(raw) {
				t.Fatalf("the log was cut from %d to %d bytes", len(raw), len(after))
			}
		})
	}
}

// A torn tail is cut, and the bytes cut are kept beside the log first.
func TestTornTailIsKeptBeforeItIsCut(t *testing.T) {
	// Inside the checksum (its first four bytes are always zero), the
	// length, the payload.
	for _, tear := range []int{6, 10, 40} {
		mem, last, offs, raw := newestLog(t, int64(tear))
		off := offs[len(offs)-1]
		n := int(binary.BigEndian.Uint32(raw[off+8:]))
		// The last txn reached the disk only up to byte tear.
		patch(t, mem, last, int64(off+tear), make([]byte, 12+n+1-tear))
		s := open(t, wal.Options{FS: mem})
		rec := s.Recovery()
		closeStore(t, s)
		if !strings.Contains(rec.Truncated, last) || rec.TornTail == "" {
			t.Fatalf("tear at %d: recovery %+v", tear, rec)
		}
		kept, err := vfs.ReadFile(mem, rec.TornTail)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimRight(raw[off:off+tear], "\x00"); !bytes.Equal(kept, want) {
			t.Fatalf("tear at %d: kept %x, want %x", tear, kept, want)
		}
		if !strings.HasPrefix(filepath.Base(rec.TornTail), "torn.") {
			t.Fatalf("kept as %s, a name a log reader might take for a log", rec.TornTail)
		}
		if got, _ := vfs.ReadFile(mem, last); len(got) != off {
			t.Fatalf("tear at %d: the log is %d bytes, want it cut at %d", tear, len(got), off)
		}
		// The kept file is no log: the next start is clean.
		s = open(t, wal.Options{FS: mem})
		if rec := s.Recovery(); rec.Truncated != "" {
			t.Fatalf("second start cut again: %+v", rec)
		}
		closeStore(t, s)
	}
}

// Purge counts a snapshot it cannot read neither as kept nor as damaged:
// it stops, so the logs that snapshot needs stay.
func TestPurgeStopsOnASnapshotItCannotRead(t *testing.T) {
	mem := vfs.NewMem()
	s := open(t, wal.Options{FS: mem, SnapCount: 60, PreAllocSize: 64 << 10})
	w := newWriter(t, s, 25)
	for i := 0; i < 150; i++ {
		if err := w.batch(4); err != nil {
			t.Fatal(err)
		}
		waitSnapshots(s)
	}
	closeStore(t, s)
	before := mem.Files()
	var newest string
	var top uint64
	for _, f := range files(t, mem, "/data") {
		if hex, ok := strings.CutPrefix(f, "snapshot."); ok {
			if z, _ := strconv.ParseUint(hex, 16, 64); z >= top {
				newest, top = f, z
			}
		}
	}
	mem.Inject(func(op, name string) error {
		if op == "openread" && filepath.Base(name) == newest {
			return &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		}
		return nil
	})
	removed, err := wal.Purge(mem, "/data", "", 3)
	if !errors.Is(err, syscall.EACCES) || len(removed) != 0 {
		t.Fatalf("purge gave %v, removed %v; want EACCES and nothing removed", err, removed)
	}
	if after := mem.Files(); after != before {
		t.Fatalf("files changed:\n%s\n%s", before, after)
	}
}

// Running out of space while writing the log stops it as a full disk
// (the server may go on serving reads); the same error from an fsync is
// a failed fsync, which must stop the server.
func TestNoSpaceStopsTheLogAsDiskFullOnlyOutsideFsync(t *testing.T) {
	for _, op := range []string{"write", "allocate", "create", "sync"} {
		mem := vfs.NewMem()
		s := open(t, wal.Options{FS: mem, PreAllocSize: 64 << 10, TxnLogSizeLimit: 1 << 10})
		w := newWriter(t, s, 26)
		if err := w.batch(3); err != nil {
			t.Fatal(err)
		}
		mem.Inject(func(o, name string) error {
			if o == op && strings.Contains(name, "log.") {
				return &fs.PathError{Op: o, Path: name, Err: syscall.ENOSPC}
			}
			return nil
		})
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			err = w.batch(3)
		}
		if !errors.Is(err, wal.ErrStopped) {
			t.Fatalf("%s: got %v, want the log stopped", op, err)
		}
		if full := errors.Is(err, wal.ErrDiskFull); full != (op != "sync") {
			t.Fatalf("%s: ENOSPC gave %v; ErrDiskFull is %v, want %v", op, err, full, op != "sync")
		}
		mem.Inject(nil)
		s.Close()
	}
}
