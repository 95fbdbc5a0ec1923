package engine

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"zkd/internal/fdinfo"
	"zkd/wal/vfs"
)

// A server run with ZKD_FAULTS=disk writes its log as it would without:
// with direct I/O where the file system offers it. A power cut then still
// puts back what a direct write since the file's last fsync overwrote,
// and keeps what the fsync made durable.
func TestFaultFSPassesDirectIOThroughAndAPowerCutUndoesIt(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_RDWR|os.O_CREATE|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Skipf("the temp dir's file system offers no direct I/O, so there is nothing to check: %v", err)
	}
	probe.Close()

	ff := newFaultFS(vfs.OS, false, 0, slog.New(slog.DiscardHandler))
	name := filepath.Join(dir, "log.1")
	file, err := ff.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if err := file.Allocate(64 << 10); err != nil {
		t.Fatal(err)
	}
	df, ok := file.(vfs.DirectFile)
	if !ok {
		t.Fatal("a file of the disk-fault file system offers no direct I/O")
	}
	if err := df.SetDirect(true); err != nil {
		t.Fatalf("SetDirect(true): %v", err)
	}
	if !openDirect(t, name) {
		t.Fatal("no descriptor of the file is open with O_DIRECT")
	}

	const block = vfs.DirectAlign
	write := func(c byte, blocks int, off int64) {
		t.Helper()
		p := vfs.AlignedBuffer(blocks * block)
		for i := range p {
			p[i] = c
		}
		if _, err := file.WriteAt(p, off); err != nil {
			t.Fatalf("direct write of %d bytes at %d: %v", len(p), off, err)
		}
	}
	write('a', 2, 0) // durable below
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	// Rewrites the second synced block, as a log batch rewrites the
	// partial block it continues, and fills two blocks of zeros.
	write('b', 3, block)

	ff.mu.Lock()
	lost := ff.undoUnsynced()
	ff.mu.Unlock()
	if lost != 3*block {
		t.Errorf("the power cut rewrote %d bytes, want %d", lost, 3*block)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte{'a'}, 2*block), make([]byte, 64<<10-2*block)...)
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("after the power cut the file differs from its fsynced state at byte %d (%d bytes, want %d)", i, len(got), len(want))
	}
}

// openDirect says whether this process has path open with O_DIRECT.
func openDirect(t *testing.T, path string) bool {
	t.Helper()
	flags, err := fdinfo.Flags(func(p string) bool { return p == path })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flags {
		if f&syscall.O_DIRECT != 0 {
			return true
		}
	}
	return false
}
