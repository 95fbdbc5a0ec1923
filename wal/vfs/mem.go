package vfs

import (
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"path"
	"sort"
	"strings"
	"sync"
)

// Mem is an in-memory file system that models what survives a power cut:
// a file's data only as of its last Sync, a file's name only as of the last
// SyncDir of its directory. Crash returns the state after such a cut. It is
// safe for concurrent use.
type Mem struct {
	mu      sync.Mutex
	files   map[string]*memFile // the names as the running program sees them
	durable map[string]*memFile // the names as a crash would leave them
	dirs    map[string]bool
	fault   func(op, name string) error
}

type memFile struct {
	data   []byte  // current contents
	synced []byte  // contents as of the last Sync
	writes []write // writes since the last Sync, in order
}

type write struct {
	off  int64
	data []byte // nil for a size change
	size int64  // the new size, for a size change
}

// NewMem returns an empty file system.
func NewMem() *Mem {
	return &Mem{files: map[string]*memFile{}, durable: map[string]*memFile{}, dirs: map[string]bool{"/": true, ".": true}}
}

// Inject makes every Open, OpenRead, Read, Write, Sync, Allocate, Create,
// Rename and SyncDir call fault first (op is "open" for a read-write open,
// "openread", "read", "write", "sync", "allocate", "create", "rename" or
// "syncdir"); a non-nil error fails the operation, which then changes
// nothing. Pass nil to stop.
func (m *Mem) Inject(fault func(op, name string) error) {
	m.mu.Lock()
	m.fault = fault
	m.mu.Unlock()
}

func (m *Mem) check(op, name string) error {
	if m.fault != nil {
		return m.fault(op, name)
	}
	return nil
}

// Crash returns the file system as a disk could hold it after a power cut
// now: every durable name with its synced data, plus, for each file, a
// prefix of the writes made since its last Sync, the last of them torn at
// a random byte. r picks the prefix and the tear; nil keeps no unsynced
// write at all.
func (m *Mem) Crash(r *rand.Rand) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	for d := range m.dirs {
		c.dirs[d] = true
	}
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	sort.Strings(names) // r must see the files in a fixed order
	for _, name := range names {
		f := m.durable[name]
		data := append([]byte(nil), f.synced...)
		if r != nil && len(f.writes) > 0 {
			keep := r.Intn(len(f.writes) + 1)
			for i, w := range f.writes[:keep] {
				if w.data == nil {
					data = resize(data, w.size)
					continue
				}
				b := w.data
				if i == keep-1 {
					b = b[:r.Intn(len(b)+1)] // torn
				}
				data = writeAt(data, b, w.off)
			}
		}
		nf := &memFile{data: data, synced: append([]byte(nil), data...)}
		c.files[name] = nf
		c.durable[name] = nf
	}
	return c
}

func resize(b []byte, size int64) []byte {
	if int64(len(b)) >= size {
		return b[:size]
	}
	return append(b, make([]byte, size-int64(len(b)))...)
}

func writeAt(b, p []byte, off int64) []byte {
	if end := off + int64(len(p)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[off:], p)
	return b
}

func notExist(op, name string) error { return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist} }

func (m *Mem) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	if !m.dirs[path.Dir(name)] {
		return nil, notExist("create", name)
	}
	if _, ok := m.files[name]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	if err := m.check("create", name); err != nil {
		return nil, err
	}
	f := &memFile{}
	m.files[name] = f
	return &memHandle{m: m, f: f, name: name}, nil
}

func (m *Mem) Open(name string) (File, error) { return m.open("open", name) }

func (m *Mem) OpenRead(name string) (File, error) { return m.open("openread", name) }

func (m *Mem) open(op, name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	f, ok := m.files[name]
	if !ok {
		return nil, notExist("open", name)
	}
	if err := m.check(op, name); err != nil {
		return nil, err
	}
	return &memHandle{m: m, f: f, name: name}, nil
}

func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	if _, ok := m.files[name]; !ok {
		return notExist("remove", name)
	}
	delete(m.files, name)
	return nil
}

func (m *Mem) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldname, newname = path.Clean(oldname), path.Clean(newname)
	f, ok := m.files[oldname]
	if !ok {
		return notExist("rename", oldname)
	}
	if err := m.check("rename", newname); err != nil {
		return err
	}
	delete(m.files, oldname)
	m.files[newname] = f
	return nil
}

func (m *Mem) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := path.Clean(dir); !m.dirs[d]; d = path.Dir(d) {
		m.dirs[d] = true
	}
	return nil
}

func (m *Mem) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = path.Clean(dir)
	if !m.dirs[dir] {
		return nil, notExist("list", dir)
	}
	var names []string
	for name := range m.files {
		if path.Dir(name) == dir {
			names = append(names, path.Base(name))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (m *Mem) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = path.Clean(dir)
	if err := m.check("syncdir", dir); err != nil {
		return err
	}
	for name := range m.durable {
		if path.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, f := range m.files {
		if path.Dir(name) == dir {
			m.durable[name] = f
		}
	}
	return nil
}

// Files returns the names of every file, for tests' messages.
func (m *Mem) Files() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name, f := range m.files {
		names = append(names, name+"("+itoa(len(f.data))+")")
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// ErrClosed is returned for operations on a closed File.
var ErrClosed = errors.New("vfs: file already closed")

type memHandle struct {
	m      *Mem
	f      *memFile
	name   string
	closed bool
}

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.closed {
		return 0, ErrClosed
	}
	if err := h.m.check("read", h.name); err != nil {
		return 0, err
	}
	if off >= int64(len(h.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.closed {
		return 0, ErrClosed
	}
	if err := h.m.check("write", h.name); err != nil {
		return 0, err
	}
	h.f.data = writeAt(h.f.data, p, off)
	h.f.writes = append(h.f.writes, write{off: off, data: append([]byte(nil), p...)})
	return len(p), nil
}

func (h *memHandle) Sync() error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if err := h.m.check("sync", h.name); err != nil {
		return err
	}
	// Replay the writes onto the synced copy: copying the whole file
	// would make every Sync of a preallocated log cost megabytes.
	for _, w := range h.f.writes {
		if w.data == nil {
			h.f.synced = resize(h.f.synced, w.size)
		} else {
			h.f.synced = writeAt(h.f.synced, w.data, w.off)
		}
	}
	h.f.writes = nil
	return nil
}

func (h *memHandle) Allocate(size int64) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if err := h.m.check("allocate", h.name); err != nil {
		return err
	}
	if size > int64(len(h.f.data)) {
		h.resize(size)
	}
	return nil
}

func (h *memHandle) Truncate(size int64) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.resize(size)
	return nil
}

func (h *memHandle) resize(size int64) {
	h.f.data = resize(h.f.data, size)
	h.f.writes = append(h.f.writes, write{size: size})
}

func (h *memHandle) Size() (int64, error) {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return int64(len(h.f.data)), nil
}

func (h *memHandle) Close() error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.closed = true
	return nil
}
