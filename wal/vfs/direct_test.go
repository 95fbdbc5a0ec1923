package vfs

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// openFlags are the file's status flags as the kernel holds them.
func openFlags(t *testing.T, f File) int {
	t.Helper()
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.(osFile).f.Fd(), syscall.F_GETFL, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	return int(flags)
}

func TestSetDirectTurnsODirectOnAndOff(t *testing.T) {
	f, err := OS.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.(DirectFile).SetDirect(true); err != nil {
		t.Skipf("the temp dir's file system offers no direct I/O, so there is nothing to check: %v", err)
	}
	if openFlags(t, f)&syscall.O_DIRECT == 0 {
		t.Fatal("SetDirect(true) left O_DIRECT off")
	}
	// A direct write takes an aligned buffer, offset and length.
	b := AlignedBuffer(2 * DirectAlign)
	rand.New(rand.NewSource(1)).Read(b)
	if _, err := f.WriteAt(b, DirectAlign); err != nil {
		t.Fatal(err)
	}
	if err := f.(DirectFile).SetDirect(false); err != nil {
		t.Fatal(err)
	}
	if openFlags(t, f)&syscall.O_DIRECT != 0 {
		t.Fatal("SetDirect(false) left O_DIRECT on")
	}
	if _, err := f.WriteAt([]byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3*DirectAlign)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, DirectAlign), b...)
	want[1] = 'x'
	if !bytes.Equal(got, want) {
		t.Fatal("the file does not hold what the direct and buffered writes wrote")
	}
}

// rangeFile records the ranges a Writer asks to write back.
type rangeFile struct {
	File
	ranges [][2]int64
}

func (f *rangeFile) StartWriteback(off, n int64) error {
	f.ranges = append(f.ranges, [2]int64{off, n})
	return nil
}

func TestWritebackWriterSendsEachMegabyteAhead(t *testing.T) {
	mem := NewMem()
	mf, err := mem.Create("/snap")
	if err != nil {
		t.Fatal(err)
	}
	f := &rangeFile{File: mf}
	r := rand.New(rand.NewSource(2))
	data := make([]byte, 3*writebackStep+12345)
	r.Read(data)
	w := NewWritebackWriter(f)
	for p := data; len(p) > 0; {
		c := min(1+r.Intn(70000), len(p))
		if n, err := w.Write(p[:c]); n != c || err != nil {
			t.Fatalf("Write of %d bytes gave %d, %v", c, n, err)
		}
		p = p[c:]
	}
	if w.Off != int64(len(data)) {
		t.Fatalf("Off %d after %d bytes", w.Off, len(data))
	}
	var next int64
	for _, rg := range f.ranges {
		if rg[0] != next || rg[1] < writebackStep || rg[1] > writebackStep+70000 {
			t.Fatalf("writeback ranges %v: each should follow the last and hold a megabyte or a little more", f.ranges)
		}
		next += rg[1]
	}
	if len(f.ranges) < 2 || int64(len(data))-next >= writebackStep {
		t.Fatalf("writeback asked for up to %d of %d bytes, leaving a megabyte or more for the final fsync: %v", next, len(data), f.ranges)
	}
	if got, _ := ReadFile(mem, "/snap"); !bytes.Equal(got, data) {
		t.Fatalf("%d bytes written, file holds %d", len(data), len(got))
	}
}

func TestStartWritebackOnARealFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "snap")
	f, err := OS.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 3*writebackStep)
	rand.New(rand.NewSource(3)).Read(data)
	w := NewWritebackWriter(f)
	if w.wb == nil {
		t.Fatal("a file on the real file system offers no writeback")
	}
	for p := data; len(p) > 0; p = p[65536:] {
		if _, err := w.Write(p[:65536]); err != nil {
			t.Fatal(err)
		}
	}
	if w.wb == nil || w.started != int64(len(data)) {
		t.Fatalf("writeback asked for up to %d of %d bytes (still on: %v)", w.started, len(data), w.wb != nil)
	}
	if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes (%v), want the %d written", len(got), err, len(data))
	}
}
