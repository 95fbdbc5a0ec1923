package wal_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"zkd/internal/fdinfo"
	"zkd/wal"
	"zkd/wal/vfs"
)

// directFS hands out files that take direct I/O under the kernel's rules:
// while it is on, a write's offset, length and buffer address must be
// multiples of vfs.DirectAlign. With refuse set, every direct write fails
// with EINVAL, as on a device with bigger blocks.
type directFS struct {
	vfs.FS
	refuse bool

	mu               sync.Mutex
	direct, buffered int // writes that went each way
	misaligned       []string
	// The log's staging buffer is where a new log file's header, its
	// first write, is written from; inPlace counts the later direct
	// writes to log files from any other buffer: batches written where
	// they were queued.
	stage   uintptr
	inPlace int
}

func (d *directFS) Create(name string) (vfs.File, error) {
	f, err := d.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &directFile{File: f, fs: d, name: name}, nil
}

type directFile struct {
	vfs.File
	fs    *directFS
	name  string
	on    bool
	wrote bool
}

func (f *directFile) SetDirect(on bool) error { f.on = on; return nil }

func (f *directFile) WriteAt(p []byte, off int64) (int, error) {
	d := f.fs
	d.mu.Lock()
	defer d.mu.Unlock()
	if !f.on {
		d.buffered++
		return f.File.WriteAt(p, off)
	}
	if d.refuse {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	const a = vfs.DirectAlign
	if off%a != 0 || len(p)%a != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(p)))%a != 0 {
		d.misaligned = append(d.misaligned, fmt.Sprintf("%s: %d bytes at %d", f.name, len(p), off))
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	d.direct++
	if strings.Contains(f.name, "log.") {
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
		if !f.wrote {
			d.stage = addr
		} else if addr != d.stage {
			d.inPlace++
		}
		f.wrote = true
	}
	return f.File.WriteAt(p, off)
}

// TestDirectWritesStayAlignedAndLoseNothing runs the random writer, with
// log rolls and snapshots, on files that take direct I/O: every direct
// write must be aligned, and the data dir must recover to the same tree.
// Where the device refuses direct writes, the log and snapshots go on
// through the page cache.
func TestDirectWritesStayAlignedAndLoseNothing(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse=%v", refuse), func(t *testing.T) {
			mem := vfs.NewMem()
			fs := &directFS{FS: mem, refuse: refuse}
			opts := wal.Options{FS: fs, PreAllocSize: 16 << 10, TxnLogSizeLimit: 40 << 10, SnapCount: 60}
			s := open(t, opts)
			w := newWriter(t, s, 11)
			for i := 0; i < 150; i++ {
				if err := w.batch(1 + i%9); err != nil {
					t.Fatal(err)
				}
				waitSnapshots(s)
			}
			want := dump(w.tree.Published())
			closeStore(t, s)
			fs.mu.Lock()
			defer fs.mu.Unlock()
			if len(fs.misaligned) > 0 {
				t.Fatalf("%d misaligned direct writes, first %s", len(fs.misaligned), fs.misaligned[0])
			}
			if !refuse && fs.direct < 150 {
				t.Fatalf("only %d direct writes for 150 commits (%d buffered)", fs.direct, fs.buffered)
			}
			t.Logf("%d direct writes, %d of them batches written where they were queued", fs.direct, fs.inPlace)
			if !refuse && fs.inPlace < 100 {
				t.Fatalf("%d of 150 commits written where they were queued; the rest were copied to the stage first", fs.inPlace)
			}
			if refuse && fs.direct > 0 {
				t.Fatalf("%d direct writes went through a device that refuses them", fs.direct)
			}
			logs, snaps := 0, 0
			for _, f := range files(t, mem, "/data") {
				logs += strings.Count(f, "log.")
				snaps += strings.Count(f, "snapshot.")
			}
			if logs < 3 || snaps < 3 {
				t.Fatalf("%d log files and %d snapshots: the test should roll both", logs, snaps)
			}
			s2 := open(t, wal.Options{FS: mem})
			defer closeStore(t, s2)
			if got := dump(treeOf(s2).Published()); got != want {
				t.Fatalf("recovered tree differs:\n got %.2000s\nwant %.2000s", got, want)
			}
		})
	}
}

// logFlags finds the open log file under dir among this process's file
// descriptors and returns its status flags.
func logFlags(t *testing.T, dir string) int {
	t.Helper()
	prefix := filepath.Join(dir, "version-2", "log.")
	flags, err := fdinfo.Flags(func(path string) bool { return strings.HasPrefix(path, prefix) })
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) == 0 {
		t.Fatalf("no open log file under %s", dir)
	}
	return flags[0]
}

// TestLogOnARealDiskBypassesThePageCache opens the log on the temp dir's
// real file system: it is written with O_DIRECT unless BufferedLog or
// forceSync=no asks for the page cache, and recovers either way.
func TestLogOnARealDiskBypassesThePageCache(t *testing.T) {
	probe, err := os.OpenFile(filepath.Join(t.TempDir(), "probe"), os.O_RDWR|os.O_CREATE|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Skipf("the temp dir's file system offers no direct I/O, so there is nothing to check: %v", err)
	}
	probe.Close()
	for _, c := range []struct {
		name   string
		opts   wal.Options
		direct bool
	}{
		{"default", wal.Options{}, true},
		{"BufferedLog", wal.Options{BufferedLog: true}, false},
		{"NoSync", wal.Options{NoSync: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.Dir = t.TempDir()
			opts.PreAllocSize = 64 << 10
			opts.SnapCount = 400
			s := open(t, opts)
			w := newWriter(t, s, 12)
			for i := 0; i < 200; i++ {
				if err := w.batch(1 + i%7); err != nil {
					t.Fatal(err)
				}
				if i%50 == 49 {
					if got := logFlags(t, opts.Dir)&syscall.O_DIRECT != 0; got != c.direct {
						t.Fatalf("log file open with O_DIRECT: %v, want %v", got, c.direct)
					}
				}
			}
			want := dump(w.tree.Published())
			closeStore(t, s)
			s2 := open(t, wal.Options{Dir: opts.Dir})
			defer closeStore(t, s2)
			if got := dump(treeOf(s2).Published()); got != want {
				t.Fatalf("recovered tree differs:\n got %.2000s\nwant %.2000s", got, want)
			}
			if rec := s2.Recovery(); rec.Zxid != w.zxid || rec.Truncated != "" {
				t.Fatalf("recovery %+v, want zxid %d and nothing cut", rec, w.zxid)
			}
		})
	}
}
