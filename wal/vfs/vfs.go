// Package vfs is the file system the wal writes through: the real one
// (OS), and an in-memory one (Mem) that remembers what was fsynced, so a
// test can crash it — keep only what a real disk would have kept, tear the
// last write at any byte — and make writes or fsyncs fail.
package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"unsafe"
)

// FS is what the wal needs of a file system.
type FS interface {
	// Create makes a new, empty file; it fails if name exists.
	Create(name string) (File, error)
	// Open opens a file for reading and writing.
	Open(name string) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// List returns the names of the files in dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir makes the creations, renames and removals in dir durable.
	SyncDir(dir string) error
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	// Allocate extends the file to size bytes of zeros, reserving the
	// blocks so that later writes inside it change no metadata.
	Allocate(size int64) error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// DirectFile is a File that can bypass the page cache. While direct I/O is
// on, WriteAt needs an offset, a length and a buffer address that are
// multiples of DirectAlign; a write then goes from the buffer to the
// device, with no copy into the page cache and no dirty pages for
// fdatasync to find. Sync is still needed: it commits the file system's
// metadata and flushes the device's cache.
type DirectFile interface {
	File
	// SetDirect turns direct I/O on or off; it fails where the file
	// system does not offer it (tmpfs, for one).
	SetDirect(on bool) error
}

// DirectAlign is the alignment direct writes keep: the largest logical
// block size of the disks in use.
const DirectAlign = 4096

// AlignedBuffer returns n bytes whose address is a multiple of DirectAlign.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+DirectAlign)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (DirectAlign - 1))
	return b[skip : skip+n : skip+n]
}

// OS is the real file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }

func (osFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type osFile struct{ f *os.File }

func (o osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o osFile) Close() error                             { return o.f.Close() }

func (o osFile) Sync() error {
	for {
		err := syscall.Fdatasync(int(o.f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
			}
			return nil
		}
	}
}

func (o osFile) SetDirect(on bool) error {
	fd := o.f.Fd()
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	if errno != 0 {
		return &os.PathError{Op: "fcntl", Path: o.f.Name(), Err: errno}
	}
	if on {
		flags |= syscall.O_DIRECT
	} else {
		flags &^= syscall.O_DIRECT
	}
	if _, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, flags); errno != 0 {
		return &os.PathError{Op: "fcntl", Path: o.f.Name(), Err: errno}
	}
	return nil
}

func (o osFile) Allocate(size int64) error {
	cur, err := o.Size()
	if err != nil || size <= cur {
		return err
	}
	// fallocate reserves real blocks; file systems without it get a
	// sparse extension, which is what ZooKeeper itself does.
	err = syscall.Fallocate(int(o.f.Fd()), 0, cur, size-cur)
	if err == syscall.EOPNOTSUPP || err == syscall.ENOSYS || err == syscall.EINVAL {
		err = o.f.Truncate(size)
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
	}
	return nil
}

func (o osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// Reader reads a File from the start, for io.Reader users.
type Reader struct {
	F   File
	Off int64
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.F.ReadAt(p, r.Off)
	r.Off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// Writer appends to a File, for io.Writer users. Off counts the bytes
// taken; call Flush before Sync.
type Writer struct {
	F   File
	Off int64

	// direct: whole aligned chunks go from stage to the device, at
	// written; Flush writes the rest through the page cache.
	direct  bool
	stage   []byte
	n       int
	written int64
}

// writerChunk is the size of a direct Writer's writes.
const writerChunk = 1 << 20

// NewDirectWriter returns a Writer that bypasses the page cache where the
// file system allows it, for a big file written once: a snapshot. Its
// writes then go to the device a chunk at a time as they are made, instead
// of piling up as dirty pages that the final fsync sends in one burst, in
// front of the txn log's own commits on the same disk; and the snapshot
// does not crowd the page cache. The file must be empty.
func NewDirectWriter(f File) *Writer {
	w := &Writer{F: f}
	if df, ok := f.(DirectFile); ok && df.SetDirect(true) == nil {
		w.direct = true
		w.stage = AlignedBuffer(writerChunk)
	}
	return w
}

func (w *Writer) Write(p []byte) (int, error) {
	if !w.direct {
		n, err := w.F.WriteAt(p, w.Off)
		w.Off += int64(n)
		return n, err
	}
	taken := 0
	for len(p) > 0 {
		c := copy(w.stage[w.n:], p)
		p = p[c:]
		w.n += c
		taken += c
		w.Off += int64(c)
		if w.n == len(w.stage) {
			if _, err := w.F.WriteAt(w.stage, w.written); err != nil {
				if !errors.Is(err, syscall.EINVAL) {
					return taken, err
				}
				// The device wants a coarser alignment: go on
				// through the page cache.
				if err := w.Flush(); err != nil {
					return taken, err
				}
				n, err := w.Write(p)
				return taken + n, err
			}
			w.written += int64(w.n)
			w.n = 0
		}
	}
	return taken, nil
}

// Flush writes what a direct Writer holds: the last, partial chunk goes
// through the page cache, so the file ends where its data does.
func (w *Writer) Flush() error {
	if !w.direct {
		return nil
	}
	w.direct = false
	if err := w.F.(DirectFile).SetDirect(false); err != nil {
		return err
	}
	if w.n > 0 {
		if _, err := w.F.WriteAt(w.stage[:w.n], w.written); err != nil {
			return err
		}
		w.written += int64(w.n)
		w.n = 0
	}
	w.stage = nil
	return nil
}
