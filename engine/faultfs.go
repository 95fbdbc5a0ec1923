package engine

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"zkd/wal/vfs"
)

// faultFS is the file system of a server run with ZKD_FAULTS=disk: the
// real one, plus what a test needs to make the disk fail under a running
// process, which no signal or kill can do.
//
//   - SIGUSR1: from then on every write, fsync, allocation, creation and
//     rename fails with EIO, as a dying disk's do.
//   - SIGUSR2: a power cut. Every byte written since its file's last
//     fsync is put back as it was (a write into a preallocated log
//     becomes zeros again, a file grown since its fsync is cut back to
//     the size it had), and the process exits at once with status 137,
//     as a kill -9 would. Directory entries are not modelled: a file
//     created or renamed stays so.
//   - SIGTTIN: the disk stalls, as an overloaded or failing one may for
//     seconds: every fsync waits until SIGTTOU (writes still go to the
//     page cache, as they do on a real stalled disk).
//
// With lieLog (ZKD_FAULTS=fsync-lies, a planted bug), fsync of a txn log
// file returns success without doing anything or counting the data as
// durable, so a power cut loses txns the server acknowledged. With
// slowLog (ZKD_FAULTS=slow-fsync), fsync of a txn log file waits that
// long before it does its work.
type faultFS struct {
	fs      vfs.FS
	lieLog  bool
	slowLog time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	broken bool
	stall  chan struct{}          // while the disk stalls; closed when it ends
	files  map[string]*faultState // by path
}

// faultState is what a power cut would undo in one file.
type faultState struct {
	synced int64       // the size at the last fsync
	undo   []undoWrite // the old bytes under each write since, oldest first
}

type undoWrite struct {
	off int64
	old []byte
}

var errFaultIO = fmt.Errorf("ZKD_FAULTS=disk: %w", syscall.EIO)

func newFaultFS(fs vfs.FS, lieLog bool, slowLog time.Duration, log *slog.Logger) *faultFS {
	f := &faultFS{fs: fs, lieLog: lieLog, slowLog: slowLog, log: log, files: map[string]*faultState{}}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTTIN, syscall.SIGTTOU)
	go func() {
		for sig := range ch {
			switch sig {
			case syscall.SIGUSR1:
				f.mu.Lock()
				f.broken = true
				f.mu.Unlock()
				log.Warn("ZKD_FAULTS=disk: SIGUSR1, every write and fsync fails from now on")
			case syscall.SIGTTIN:
				f.mu.Lock()
				if f.stall == nil {
					f.stall = make(chan struct{})
				}
				f.mu.Unlock()
				log.Warn("ZKD_FAULTS=disk: SIGTTIN, every fsync waits until SIGTTOU")
			case syscall.SIGTTOU:
				f.mu.Lock()
				if f.stall != nil {
					close(f.stall)
					f.stall = nil
				}
				f.mu.Unlock()
				log.Warn("ZKD_FAULTS=disk: SIGTTOU, the disk stall is over")
			default:
				f.powerCut()
			}
		}
	}()
	return f
}

// powerCut undoes every write not made durable and exits. The lock is
// never released: nothing writes after the cut.
func (f *faultFS) powerCut() {
	f.mu.Lock()
	lost := f.undoUnsynced()
	f.log.Warn("ZKD_FAULTS=disk: SIGUSR2, a power cut: unsynced writes undone, exiting", "files", len(f.files), "bytesRewritten", lost)
	os.Exit(137)
}

// undoUnsynced puts back every file as its last fsync left it and
// returns the bytes it rewrote. f.mu held.
func (f *faultFS) undoUnsynced() (lost int64) {
	for path, st := range f.files {
		file, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			continue // removed since
		}
		for i := len(st.undo) - 1; i >= 0; i-- {
			u := st.undo[i]
			file.WriteAt(u.old, u.off)
			lost += int64(len(u.old))
		}
		if fi, err := file.Stat(); err == nil && fi.Size() > st.synced {
			file.Truncate(st.synced)
		}
		file.Sync()
		file.Close()
	}
	return lost
}

// waitStall waits while the disk stalls.
func (f *faultFS) waitStall() {
	f.mu.Lock()
	ch := f.stall
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (f *faultFS) failing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broken
}

func (f *faultFS) track(name string, file vfs.File, fresh bool) vfs.File {
	f.mu.Lock()
	st := f.files[name]
	if st == nil || fresh {
		size := int64(0)
		if !fresh {
			size, _ = file.Size()
		}
		st = &faultState{synced: size}
		f.files[name] = st
	}
	f.mu.Unlock()
	isLog := strings.HasPrefix(filepath.Base(name), "log.")
	ff := &faultFile{File: file, fs: f, name: name, lie: f.lieLog && isLog}
	if isLog {
		ff.slow = f.slowLog
	}
	return ff
}

func (f *faultFS) Create(name string) (vfs.File, error) {
	if f.failing() {
		return nil, errFaultIO
	}
	file, err := f.fs.Create(name)
	if err != nil {
		return nil, err
	}
	return f.track(name, file, true), nil
}

func (f *faultFS) Open(name string) (vfs.File, error) {
	file, err := f.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return f.track(name, file, false), nil
}

func (f *faultFS) OpenRead(name string) (vfs.File, error) { return f.fs.OpenRead(name) }

func (f *faultFS) Remove(name string) error {
	if f.failing() {
		return errFaultIO
	}
	if err := f.fs.Remove(name); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.files, name)
	f.mu.Unlock()
	return nil
}

func (f *faultFS) Rename(oldname, newname string) error {
	if f.failing() {
		return errFaultIO
	}
	if err := f.fs.Rename(oldname, newname); err != nil {
		return err
	}
	f.mu.Lock()
	if st, ok := f.files[oldname]; ok {
		f.files[newname] = st
		delete(f.files, oldname)
	} else {
		delete(f.files, newname)
	}
	f.mu.Unlock()
	return nil
}

func (f *faultFS) MkdirAll(dir string) error         { return f.fs.MkdirAll(dir) }
func (f *faultFS) List(dir string) ([]string, error) { return f.fs.List(dir) }

func (f *faultFS) SyncDir(dir string) error {
	f.waitStall()
	if f.failing() {
		return errFaultIO
	}
	return f.fs.SyncDir(dir)
}

// faultFile is a file of a faultFS. It passes the real file's direct I/O
// through, so that a server run with disk faults writes its log as one
// without does, and hides its write-back hints. The undo log reads what
// each write overwrites: through the file itself, or, while it is direct
// (whose reads need aligned memory, offsets and lengths), through a
// second handle that reads through the page cache; the kernel keeps the
// two coherent.
type faultFile struct {
	vfs.File
	fs     *faultFS
	name   string
	lie    bool
	slow   time.Duration // added to each fsync
	direct bool          // the file is written with direct I/O (f.mu)
	rd     vfs.File      // the page-cache handle for the undo log's reads (f.mu)
}

func (w *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f := w.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return 0, errFaultIO
	}
	if st := f.files[w.name]; st != nil {
		// Keep what the write covers of the file as it is now; beyond
		// its end the cut back to the synced size undoes it.
		if size, err := w.File.Size(); err == nil && off < size {
			r := io.ReaderAt(w.File)
			if w.direct {
				if w.rd == nil {
					if w.rd, err = f.fs.OpenRead(w.name); err != nil {
						return 0, err
					}
				}
				r = w.rd
			}
			n := min(int64(len(p)), size-off)
			old := make([]byte, n)
			if _, err := r.ReadAt(old, off); err != nil && err != io.EOF {
				return 0, err
			}
			st.undo = append(st.undo, undoWrite{off: off, old: old})
		}
	}
	return w.File.WriteAt(p, off)
}

// SetDirect turns the real file's direct I/O on or off, where it has
// any.
func (w *faultFile) SetDirect(on bool) error {
	df, ok := w.File.(vfs.DirectFile)
	if !ok {
		return fmt.Errorf("ZKD_FAULTS: %s: the file system offers no direct I/O", w.name)
	}
	f := w.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := df.SetDirect(on); err != nil {
		return err
	}
	w.direct = on
	return nil
}

func (w *faultFile) Close() error {
	f := w.fs
	f.mu.Lock()
	if w.rd != nil {
		w.rd.Close()
		w.rd = nil
	}
	f.mu.Unlock()
	return w.File.Close()
}

func (w *faultFile) Sync() error {
	f := w.fs
	f.waitStall()
	if f.failing() {
		return errFaultIO
	}
	if w.lie {
		return nil
	}
	time.Sleep(w.slow)
	// What the fsync makes durable is what was written before it began;
	// a power cut while it runs undoes that too, as a real one may.
	f.mu.Lock()
	st := f.files[w.name]
	var undone int
	var size int64
	if st != nil {
		undone = len(st.undo)
		size, _ = w.File.Size()
	}
	f.mu.Unlock()
	if err := w.File.Sync(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st != nil && f.files[w.name] == st {
		st.undo = append(st.undo[:0], st.undo[undone:]...)
		if size > st.synced {
			st.synced = size
		}
	}
	return nil
}

func (w *faultFile) Allocate(size int64) error {
	if w.fs.failing() {
		return errFaultIO
	}
	return w.File.Allocate(size)
}

func (w *faultFile) Truncate(size int64) error {
	f := w.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return errFaultIO
	}
	if st := f.files[w.name]; st != nil && size < st.synced {
		st.synced = size // a power cut must not grow it back
	}
	return w.File.Truncate(size)
}
