// Package vfs is the file system the wal writes through: the real one
// (OS), and an in-memory one (Mem) that remembers what was fsynced, so a
// test can crash it — keep only what a real disk would have kept, tear the
// last write at any byte — and make writes or fsyncs fail.
package vfs

import (
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
	// OpenRead opens a file for reading only: a file the server may read
	// but not write (another owner, mode 0644) must still load.
	OpenRead(name string) (File, error)
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

func (osFS) OpenRead(name string) (File, error) {
	f, err := os.Open(name)
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
		// A symbolic link is listed too: an operator may have linked a
		// log or snapshot in, and passing over it would drop its txns
		// without a word. Opening it tells whether it leads anywhere.
		if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
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

func (o osFile) StartWriteback(off, n int64) error {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	_, _, errno := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, o.f.Fd(), uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "sync_file_range", Path: o.f.Name(), Err: errno}
	}
	return nil
}

// Allocate grows the file to size. Where the file system has room to
// spare, the blocks are reserved (fallocate), so that commits inside them
// change no metadata; otherwise — a small or nearly full disk — the file
// is extended sparsely, as ZooKeeper's preallocation does, and blocks are
// taken as txns are written. Preallocating never fails for lack of space:
// only writing real data can.
func (o osFile) Allocate(size int64) error {
	cur, err := o.Size()
	if err != nil || size <= cur {
		return err
	}
	fd := int(o.f.Fd())
	err = syscall.ENOSPC
	var st syscall.Statfs_t
	if syscall.Fstatfs(fd, &st) == nil && int64(st.Bavail)*st.Bsize >= reserveFactor*(size-cur) {
		err = syscall.Fallocate(fd, 0, cur, size-cur)
	}
	switch err {
	case nil:
		return nil
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.EINVAL:
		// A fallocate cut short may have extended the file part way;
		// the sparse extension covers that too.
		if err := o.f.Truncate(size); err != nil {
			return &os.PathError{Op: "ftruncate", Path: o.f.Name(), Err: err}
		}
		return nil
	}
	return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
}

// reserveFactor is how many times a preallocation's size must be free on
// the file system for its blocks to be reserved: below that, reserving
// would take the room snapshots and the next log file need.
const reserveFactor = 8

func (o osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenRead(name)
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

// Writer appends to a File, for io.Writer users.
type Writer struct {
	F   File
	Off int64

	wb      Writebacker // set by NewWritebackWriter
	started int64       // writeback asked for up to here
}

// Writebacker is a File whose dirty pages can be sent to the device ahead
// of Sync.
type Writebacker interface {
	// StartWriteback starts writing the range's dirty pages to the
	// device and returns without waiting for them (sync_file_range with
	// SYNC_FILE_RANGE_WRITE). It makes nothing durable.
	StartWriteback(off, n int64) error
}

// writebackStep is how much a writeback Writer lets pile up.
const writebackStep = 1 << 20

// NewWritebackWriter returns a Writer for a big file written once, a
// snapshot: every megabyte it writes goes to the device at once, instead
// of piling up as dirty pages that the final fsync sends in one burst in
// front of the txn log's own commits on the same disk. The pages stay in
// the page cache, where a restart finds them.
func NewWritebackWriter(f File) *Writer {
	w := &Writer{F: f}
	w.wb, _ = f.(Writebacker)
	return w
}

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.F.WriteAt(p, w.Off)
	w.Off += int64(n)
	if w.wb != nil && w.Off-w.started >= writebackStep {
		if w.wb.StartWriteback(w.started, w.Off-w.started) != nil {
			w.wb = nil // the final Sync writes it all anyway
		}
		w.started = w.Off
	}
	return n, err
}
