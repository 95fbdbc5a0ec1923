package vfs

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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

// directDir is a temp dir on a file system that takes O_DIRECT.
func directDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_RDWR|os.O_CREATE|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Skipf("the temp dir's file system offers no direct I/O, so there is nothing to check: %v", err)
	}
	f.Close()
	return dir
}

// writeInPieces writes data through w in pieces of random sizes, some
// bigger than the writer's chunk, and returns the pieces' count.
func writeInPieces(t *testing.T, w *Writer, data []byte, r *rand.Rand) int {
	t.Helper()
	n := 0
	for p := data; len(p) > 0; n++ {
		c := 1 + r.Intn(9000)
		if r.Intn(20) == 0 {
			c = writerChunk + r.Intn(writerChunk)
		}
		c = min(c, len(p))
		if got, err := w.Write(p[:c]); err != nil || got != c {
			t.Fatalf("Write of %d bytes gave %d, %v", c, got, err)
		}
		p = p[c:]
		if w.Off != int64(len(data)-len(p)) {
			t.Fatalf("Off is %d after %d bytes", w.Off, len(data)-len(p))
		}
	}
	return n
}

func TestDirectWriterBypassesThePageCacheAndKeepsEveryByte(t *testing.T) {
	dir := directDir(t)
	r := rand.New(rand.NewSource(1))
	for _, size := range []int{0, 100, writerChunk, 2*writerChunk + 4095, 3*writerChunk + 777} {
		name := filepath.Join(dir, "snap")
		os.Remove(name)
		f, err := OS.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w := NewDirectWriter(f)
		if openFlags(t, f)&syscall.O_DIRECT == 0 {
			t.Fatal("a direct writer's file is not open with O_DIRECT")
		}
		data := make([]byte, size)
		r.Read(data)
		writeInPieces(t, w, data, r)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if openFlags(t, f)&syscall.O_DIRECT != 0 {
			t.Fatal("O_DIRECT still on after Flush")
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes written, file holds %d, equal: %v", size, len(got), bytes.Equal(got[:min(len(got), size)], data[:min(len(got), size)]))
		}
	}
}

// refusingFile takes direct I/O but fails every direct write with EINVAL,
// as a device whose blocks are bigger than DirectAlign does.
type refusingFile struct {
	File
	direct  bool
	refused int
}

func (f *refusingFile) SetDirect(on bool) error { f.direct = on; return nil }

func (f *refusingFile) WriteAt(p []byte, off int64) (int, error) {
	if f.direct {
		f.refused++
		return 0, &os.PathError{Op: "write", Path: "snap", Err: syscall.EINVAL}
	}
	return f.File.WriteAt(p, off)
}

func TestDirectWriterGoesOnBufferedWhenTheDeviceRefuses(t *testing.T) {
	mem := NewMem()
	mf, err := mem.Create("/snap")
	if err != nil {
		t.Fatal(err)
	}
	f := &refusingFile{File: mf}
	data := make([]byte, 3*writerChunk+12345)
	rand.New(rand.NewSource(2)).Read(data)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := NewDirectWriter(f)
		writeInPieces(t, w, data, rand.New(rand.NewSource(3)))
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the writer did not finish after its direct write was refused")
	}
	if f.refused != 1 || f.direct {
		t.Fatalf("%d direct writes refused, direct still on: %v; want one, then buffered", f.refused, f.direct)
	}
	got, err := ReadFile(mem, "/snap")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes written, file holds %d", len(data), len(got))
	}
}

func TestWriterOnAFileWithoutDirectIO(t *testing.T) {
	mem := NewMem()
	f, err := mem.Create("/snap")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, writerChunk+1)
	rand.New(rand.NewSource(4)).Read(data)
	w := NewDirectWriter(f)
	writeInPieces(t, w, data, rand.New(rand.NewSource(5)))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadFile(mem, "/snap"); !bytes.Equal(got, data) {
		t.Fatalf("%d bytes written, file holds %d", len(data), len(got))
	}
}
