package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"zkd/wal/vfs"
	"zkd/ztree"
)

// Options configure a Store. The zero value of each field is ZooKeeper's
// default.
type Options struct {
	Dir    string // dataDir: snapshots (and the log when LogDir is empty)
	LogDir string // dataLogDir: the txn log, ideally on its own disk
	FS     vfs.FS // vfs.OS when nil

	// NoDirCreate (zookeeper.datadir.autocreate=false) makes Open fail
	// when the version-2 directory of Dir or LogDir is missing, instead
	// of creating it: a disk that is not mounted is not taken for a new,
	// empty one.
	NoDirCreate bool
	// NoEmptyTrust (zookeeper.db.autocreate=false) makes Open leave a
	// data directory with neither snapshot nor log untrusted, unless an
	// "initialize" file in LogDir (removed then) says to trust it: no
	// snapshot is written, and Recovery.Untrusted is set, so that an
	// ensemble member does not vote as if its empty tree were the
	// ensemble's state.
	NoEmptyTrust bool
	// NoSync is forceSync=no: the log is written but never fsynced, so a
	// power cut loses acknowledged writes. Unsafe; for tests and benchmarks.
	NoSync bool
	// BufferedLog writes the log through the page cache even where the
	// file system offers direct I/O. For comparisons; NoSync implies it.
	BufferedLog bool
	// MaxPending is how many bytes of txns may wait for the disk before
	// Append waits for room (64 MB when 0).
	MaxPending int
	// PreAllocSize is the step in which log files grow (preAllocSize,
	// default 64 MB). Growing a file in big steps keeps fdatasync from
	// having to write file-size metadata on every commit.
	PreAllocSize int64
	// SnapCount is snapCount (default 100,000): a snapshot is taken and a
	// new log started after between SnapCount/2 and SnapCount txns, the
	// point picked at random so the servers of an ensemble do not all
	// snapshot at once.
	SnapCount int
	// SnapSizeLimit is snapSizeLimitInKb in bytes (default 4 GB): the
	// same, counted in logged bytes; negative disables it.
	SnapSizeLimit int64
	// TxnLogSizeLimit is txnLogSizeLimitInKb in bytes: a log file bigger
	// than this is closed and a new one started. 0 means no limit.
	TxnLogSizeLimit int64
	// Compression is snapshot.compression.method: "", "gz", "snappy" or
	// "zstd" (zkd only).
	Compression string
	// PurgeInterval is autopurge.purgeInterval: how often old snapshots
	// and log files are removed; 0 (ZooKeeper's default) never.
	PurgeInterval time.Duration
	// PurgeRetain is autopurge.snapRetainCount: the snapshots a purge
	// keeps (default and minimum 3).
	PurgeRetain int
	// Tree are the tree options of the recovered tree.
	Tree ztree.Options
	// Installed, when set, is the tree of the newest snapshot, which the
	// caller has just written (a follower installing its leader's SNAP):
	// recovery starts from it instead of reading the file back.
	Installed *ztree.Tree
	// Logger gets the log's notices; slog.Default() when nil.
	Logger *slog.Logger
	// Rand picks the roll points; seeded from the clock when nil.
	Rand *rand.Rand
	// OnSync, when set, is called from the log's goroutine after each
	// batch is durable, with the batch's last zxid, after the batch's
	// done callbacks.
	OnSync func(zxid int64)
	// OnFsync, when set, is told how long each fsync of the log took
	// (mntr's fsynctime), with the file's name and size.
	OnFsync func(took time.Duration, file string, size int64)
	// OnSnapshotDue, when set, is called from the log's goroutine when
	// the log reaches a snapshot point (SnapCount txns or SnapSizeLimit
	// bytes, randomized as ZooKeeper does) and has rolled to a new file.
	// The caller, who owns the tree, then writes a snapshot of it with
	// Snapshot, off this goroutine. Without it no snapshot is written
	// on its own.
	OnSnapshotDue func()
	// OnFatal, when set, is called once, from the log's goroutine, when a
	// write or fsync fails. The log stops; every pending and later Append
	// fails. The server must stop: an fsync error is never retried.
	OnFatal func(error)
}

const (
	defaultPreAlloc  = 64 << 20
	defaultSnapCount = 100_000
	defaultSnapSize  = 4 << 30
	// defaultMaxPending bounds the bytes queued for the next batch;
	// Append waits beyond it, which throttles the applier instead of
	// growing memory without bound behind a slow disk.
	defaultMaxPending = 64 << 20
	// directChunk is the largest direct write: bigger batches go out in
	// several, so the staging buffer stays this size.
	directChunk = 1 << 20
)

// ErrStopped is returned by Append after the log stopped: it was closed,
// or a write or fsync failed (the error says which).
var ErrStopped = errors.New("wal: the log has stopped")

// ErrDiskFull marks a stop caused by the file system running out of space
// (or quota) while creating, growing or writing a log file — never by an
// fsync. Nothing acknowledged was lost: the txns of the failed batch were
// not made durable and never will be. The tree as of the last durable
// txn can still be served for reading; no txn can be logged until the
// server restarts with room.
var ErrDiskFull = errors.New("wal: the disk is full")

// syncError is a failed fsync: never taken for a full disk, since the
// data it was to make durable may already be gone.
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// Store is a data directory: the txn log being appended to and the
// snapshots. It reads and writes txns and snapshots; it does not own the
// tree: Open hands the tree it recovered to the caller, and snapshots are
// written from the versions the caller passes to Snapshot. See the package
// documentation for the commit rules.
type Store struct {
	opts    Options
	fs      vfs.FS
	log     *slog.Logger
	snapDir string      // <Dir>/version-2
	logDir  string      // <LogDir>/version-2
	tree    *ztree.Tree // the tree being recovered; nil once Open returns

	// The queue between Append and the writer. mu guards it.
	mu      sync.Mutex
	cond    *sync.Cond // signalled when the queue fills or drains
	queue   batch
	spare   batch // the writer's previous batch, reused
	last    int64 // zxid of the last appended txn
	stopErr error // why the log stopped
	closing bool

	durable atomic.Int64 // zxid of the last durable txn
	// writing is when the oldest txn of the batch being written was
	// queued (unix ns); 0 while the writer holds no batch.
	writing atomic.Int64
	// full is when an Append began waiting for room in the queue (unix
	// ns), 0 while none waits; waiters counts them. mu guards waiters.
	full    atomic.Int64
	waiters int
	wg      sync.WaitGroup

	// Writer-owned.
	cur       *segment
	stage     []byte // direct writes go out from here; see writeDirect
	noDirect  bool   // the device refused a direct write: later files skip it
	sinceSnap int    // txns logged since the last snapshot point
	bytesSnap int64  // bytes logged since the last snapshot point
	rollAt    int    // txn count of the next snapshot point
	rollSize  int64  // byte count of the next snapshot point
	rng       *rand.Rand

	stopPurge chan struct{}

	snapMu   sync.Mutex // one snapshot at a time
	recovery Recovery
}

// batch is the txns queued for one write and fsync.
type batch struct {
	// buf[lead:] holds the txns. buf[:lead] is room for the partial
	// block of the log file they will follow, which the writer fills in
	// before it writes the batch straight from buf (see prepareQueue).
	buf   []byte
	lead  int
	first int64 // zxid of the first txn
	last  int64
	n     int
	since int64 // when the first txn was queued, unix ns
	done  []func(error)
}

func (b *batch) reset() {
	b.buf, b.lead = b.buf[:0], 0
	b.first, b.last, b.n, b.since = 0, 0, 0, 0
	clear(b.done)
	b.done = b.done[:0]
}

// segment is the log file being appended to.
type segment struct {
	f     vfs.File
	name  string
	off   int64 // where the next entry goes
	alloc int64 // the file's size, zeros after off
	// direct is set while the file is written with direct I/O; then
	// Store.stage begins with the bytes of the file's last, partial
	// block, from its start up to off.
	direct bool
}

// Append queues txn for the log and returns at once; the log's goroutine
// writes it with the txns queued alongside and fsyncs once for them all.
// Txns must be appended in zxid order. done, if not nil, is called from the
// log's goroutine once the txn is durable (nil) or the log has failed (the
// error); the done callbacks run in zxid order, and a txn is durable only
// when every txn before it is. Append blocks only while more than
// Options.MaxPending bytes (64 MB by default) wait for the disk.
func (s *Store) Append(txn *Txn, done func(error)) error {
	return s.append(txn.Header.Zxid, txn, nil, done, 0)
}

// AppendEncoded is Append for a txn already encoded as AppendTxn encodes
// it (a PROPOSAL's data), whose zxid is zxid.
func (s *Store) AppendEncoded(zxid int64, entry []byte, done func(error)) error {
	return s.append(zxid, nil, entry, done, 0)
}

// AppendEncodedWithin is AppendEncoded that waits at most wait for room
// in the log: ErrFull, and nothing appended, when none came by then.
func (s *Store) AppendEncodedWithin(zxid int64, entry []byte, done func(error), wait time.Duration) error {
	return s.append(zxid, nil, entry, done, wait)
}

// ErrFull is AppendEncodedWithin's error for a log that stayed full
// (Options.MaxPending waiting for the disk) for as long as it was to wait.
var ErrFull = errors.New("wal: the log is full, waiting for the disk")

// append queues txn, or when txn is nil the encoded txn entry, waiting
// for room at most wait (forever when 0).
func (s *Store) append(z int64, txn *Txn, entry []byte, done func(error), wait time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue.buf) > s.opts.MaxPending && s.stopErr == nil && !s.closing {
		if s.waiters++; s.waiters == 1 {
			s.full.Store(time.Now().UnixNano())
		}
		var expired bool
		if wait > 0 {
			t := time.AfterFunc(wait, func() {
				s.mu.Lock()
				expired = true
				s.cond.Broadcast()
				s.mu.Unlock()
			})
			defer t.Stop()
		}
		for len(s.queue.buf) > s.opts.MaxPending && s.stopErr == nil && !s.closing && !expired {
			s.cond.Wait()
		}
		if s.waiters--; s.waiters == 0 {
			s.full.Store(0)
		}
		if len(s.queue.buf) > s.opts.MaxPending && s.stopErr == nil && !s.closing {
			return ErrFull
		}
	}
	if s.stopErr != nil {
		return s.stopErr
	}
	if s.closing {
		return ErrStopped
	}
	if z <= s.last {
		return fmt.Errorf("wal: txn %#x appended after %#x: zxids must rise", z, s.last)
	}
	s.last = z
	q := &s.queue
	if q.n == 0 {
		q.first = z
		q.since = time.Now().UnixNano()
	}
	q.last = z
	q.n++
	if txn != nil {
		q.buf = appendEntry(q.buf, txn)
	} else {
		q.buf = appendEncodedEntry(q.buf, entry)
	}
	if done != nil {
		q.done = append(q.done, done)
	}
	if q.n == 1 {
		s.cond.Broadcast()
	}
	return nil
}

// Stopped is why the log takes no more txns: a write failed, or recovery
// found the disk too full to go on (then Open still returned the
// recovered tree, to serve reads from). nil while the log is running.
func (s *Store) Stopped() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopErr
}

// Flush waits until every txn appended so far is durable, or the log has
// stopped (its error).
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.durable.Load() < s.last && s.stopErr == nil {
		s.cond.Wait()
	}
	return s.stopErr
}

// Durable is the zxid of the last txn known to be on disk.
func (s *Store) Durable() int64 { return s.durable.Load() }

// Last is the zxid of the last txn appended: what the log holds once
// Flush returns, unless it stops first.
func (s *Store) Last() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Lag is how long the oldest txn not yet durable has waited for the disk
// at now: 0 when every txn appended is durable. A disk that stalls (an
// fsync that does not return) shows here while nothing fails.
func (s *Store) Lag(now time.Time) time.Duration {
	since := s.writing.Load()
	if since == 0 {
		s.mu.Lock()
		since = s.queue.since
		s.mu.Unlock()
	}
	if since == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, since)), 0)
}

// Full is how long an Append has waited at now for room in the log,
// whose queue holds Options.MaxPending at most: 0 while none waits. Behind a disk
// that stalls, the queue fills and Append then waits as long as the disk
// does.
func (s *Store) Full(now time.Time) time.Duration {
	since := s.full.Load()
	if since == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, since)), 0)
}

// writer is the log's goroutine: it takes whatever is queued as one
// batch, writes it, fsyncs, and releases the batch's callers. While it
// writes, new txns queue up for the next batch, so batches grow with the
// load and a lone txn is written at once.
func (s *Store) writer() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for s.queue.n == 0 && !s.closing {
			s.cond.Wait()
		}
		if s.queue.n == 0 {
			s.mu.Unlock()
			s.closeSegment()
			return
		}
		b := s.queue
		s.queue, s.spare = s.spare, batch{}
		s.queue.reset()
		s.prepareQueue(&b)
		s.writing.Store(b.since)
		s.cond.Broadcast() // Appends waiting on a full queue may go on
		s.mu.Unlock()

		err := s.write(&b)
		if err != nil {
			s.stop(err, &b)
			return
		}
		s.durable.Store(b.last)
		s.writing.Store(0)
		for _, d := range b.done {
			d(nil)
		}
		if s.opts.OnSync != nil {
			s.opts.OnSync(b.last)
		}
		s.afterBatch(&b)
		s.mu.Lock()
		s.spare = b
		s.spare.reset()
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// stop fails the batch in hand and everything queued, for good.
func (s *Store) stop(err error, b *batch) {
	var se *syncError
	if isNoSpace(err) && !errors.As(err, &se) {
		err = fmt.Errorf("%w: %w: %w", ErrStopped, ErrDiskFull, err)
	} else {
		err = fmt.Errorf("%w: %w", ErrStopped, err)
	}
	s.log.Error("txn log write failed; the log is stopped and no further write will be acknowledged", "err", err)
	for _, d := range b.done {
		d(err)
	}
	s.mu.Lock()
	s.stopErr = err
	q := s.queue
	s.queue = batch{}
	s.cond.Broadcast()
	s.mu.Unlock()
	for _, d := range q.done {
		d(err)
	}
	if s.opts.OnFatal != nil {
		s.opts.OnFatal(err)
	}
	if s.cur != nil {
		s.cur.f.Close()
		s.cur = nil
	}
}

// write appends a batch to the current log file, starting one if needed,
// and makes it durable.
func (s *Store) write(b *batch) error {
	if s.cur == nil {
		if err := s.openSegment(b.first); err != nil {
			return err
		}
	}
	seg := s.cur
	end := seg.off + int64(len(b.buf)-b.lead)
	if grow := s.paddedSize(end); grow > seg.alloc {
		if err := seg.f.Allocate(grow); err != nil {
			return fmt.Errorf("preallocating %s: %w", seg.name, err)
		}
		seg.alloc = grow
	}
	if done, err := s.writeInPlace(seg, b); err != nil {
		return err
	} else if !done {
		if err := s.writeSeg(seg, b.buf[b.lead:]); err != nil {
			return err
		}
	}
	if !s.opts.NoSync {
		start := time.Now()
		if err := seg.f.Sync(); err != nil {
			return &syncError{fmt.Errorf("fsync of %s: %w", seg.name, err)}
		}
		if s.opts.OnFsync != nil {
			s.opts.OnFsync(time.Since(start), seg.name, seg.alloc)
		}
	}
	return nil
}

// prepareQueue readies the queue, just emptied, to be written straight
// from its buffer after b: when the log is written with direct I/O, the
// queue's buffer is aligned and begins with room for the bytes of the
// partial block b will leave at the end of the file. Writer goroutine,
// s.mu held.
func (s *Store) prepareQueue(b *batch) {
	seg := s.cur
	if seg == nil || !seg.direct {
		return
	}
	const align = vfs.DirectAlign
	q := &s.queue
	lead := int((seg.off + int64(len(b.buf)-b.lead)) & (align - 1))
	if want := min(max(2*len(b.buf), 64<<10), maxInPlace); cap(q.buf) < want || !isAligned(q.buf) {
		q.buf = vfs.AlignedBuffer(want)
	}
	q.buf, q.lead = q.buf[:lead], lead
}

// maxInPlace bounds the buffer prepareQueue gives the queue: a bigger
// batch outgrows it and goes out through the stage.
const maxInPlace = 4 << 20

func isAligned(b []byte) bool {
	return cap(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(vfs.DirectAlign-1) == 0
}

// writeInPlace writes b straight from its buffer, as prepareQueue laid it
// out, when it still fits the file's end: the partial block's bytes go
// into the room before the txns, zeros after them to the block's end.
// It reports false, having written nothing, when the batch must go
// through writeSeg instead: the file is not written with direct I/O (the
// stage, which holds its partial block, comes with its first direct
// write), or the file's end is not where prepareQueue planned (a new
// file), or the buffer outgrew its room, or the device refused the
// direct write.
func (s *Store) writeInPlace(seg *segment, b *batch) (bool, error) {
	const align = vfs.DirectAlign
	blk := seg.off &^ (align - 1)
	end := len(b.buf)
	padded := (end + align - 1) &^ (align - 1)
	if !seg.direct || s.stage == nil || b.lead != int(seg.off-blk) || !isAligned(b.buf) || cap(b.buf) < padded {
		return false, nil
	}
	copy(b.buf, s.stage[:b.lead])
	buf := b.buf[:padded]
	clear(buf[end:])
	if _, err := seg.f.WriteAt(buf, blk); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			return false, nil // writeSeg finds the same and turns direct I/O off
		}
		return false, fmt.Errorf("writing %s at %d: %w", seg.name, blk, err)
	}
	full := end &^ (align - 1)
	copy(s.stage, buf[full:end])
	seg.off = blk + int64(end)
	return true, nil
}

// writeSeg appends p to the segment at its end.
func (s *Store) writeSeg(seg *segment, p []byte) error {
	if seg.direct {
		return s.writeDirect(seg, p)
	}
	if _, err := seg.f.WriteAt(p, seg.off); err != nil {
		return fmt.Errorf("writing %s at %d: %w", seg.name, seg.off, err)
	}
	seg.off += int64(len(p))
	return nil
}

// writeDirect appends p to a segment written with direct I/O. Such
// writes cover whole blocks, so each starts at the block that holds the
// segment's end: that block's bytes so far (kept at the front of the
// stage) go out again ahead of p, and zeros pad the last block, as the
// preallocated file holds zeros there anyway. The page cache, which
// rewrites the whole page on every commit, does the same.
//
// Direct I/O saves the copy into the page cache (which, on a VM whose
// free memory goes back to the host, is a fresh page and a host fault
// every 4 KB) and fdatasync's search for dirty pages.
func (s *Store) writeDirect(seg *segment, p []byte) error {
	const align = vfs.DirectAlign
	if s.stage == nil {
		s.stage = vfs.AlignedBuffer(directChunk)
	}
	st := s.stage
	blk := seg.off &^ (align - 1)
	n := int(seg.off - blk) // bytes of the partial block at st[:n]
	for len(p) > 0 {
		c := copy(st[n:], p)
		p = p[c:]
		end := n + c
		padded := (end + align - 1) &^ (align - 1)
		clear(st[end:padded])
		if _, err := seg.f.WriteAt(st[:padded], blk); err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				return fmt.Errorf("writing %s at %d: %w", seg.name, blk, err)
			}
			// The device wants a coarser alignment than ours: go on
			// through the page cache.
			s.log.Info("direct I/O refused; writing the log through the page cache", "file", seg.name, "err", err)
			s.noDirect = true
			if err := seg.f.(vfs.DirectFile).SetDirect(false); err != nil {
				return fmt.Errorf("turning direct I/O off for %s: %w", seg.name, err)
			}
			seg.direct = false
			if _, err := seg.f.WriteAt(st[:end], blk); err != nil {
				return fmt.Errorf("writing %s at %d: %w", seg.name, blk, err)
			}
			seg.off = blk + int64(end)
			return s.writeSeg(seg, p)
		}
		seg.off = blk + int64(end)
		full := end &^ (align - 1)
		blk += int64(full)
		n = copy(st, st[full:end])
	}
	return nil
}

// paddedSize is the size the log file must have to hold end bytes: as
// ZooKeeper's FilePadding, it grows in PreAllocSize steps once fewer than
// 4 KB of zeros are left.
func (s *Store) paddedSize(end int64) int64 {
	step := s.opts.PreAllocSize
	if s.cur.alloc >= end+4096 {
		return s.cur.alloc
	}
	if step <= 0 {
		return end
	}
	return (end + 4096 + step - 1) / step * step
}

// openSegment starts log.<first>: the file header, preallocated, and its
// name made durable before any txn in it is acknowledged.
func (s *Store) openSegment(first int64) error {
	name := filepath.Join(s.logDir, logName(first))
	f, err := s.fs.Create(name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	seg := &segment{f: f, name: name}
	if df, ok := f.(vfs.DirectFile); ok && !s.opts.NoSync && !s.opts.BufferedLog && !s.noDirect {
		seg.direct = df.SetDirect(true) == nil
	}
	if err := s.writeSeg(seg, appendFileHeader(nil, logMagic)); err != nil {
		f.Close()
		return err
	}
	s.cur = seg
	seg.alloc = seg.off
	if grow := s.paddedSize(fileHeaderLen); grow > seg.alloc {
		if err := f.Allocate(grow); err != nil {
			return fmt.Errorf("preallocating %s: %w", name, err)
		}
		seg.alloc = grow
	}
	if err := s.fs.SyncDir(s.logDir); err != nil {
		return &syncError{fmt.Errorf("fsync of %s: %w", s.logDir, err)}
	}
	return nil
}

// closeSegment ends the current log file: the zeros after its last txn
// are cut off and the file is closed. A later txn starts a new file.
func (s *Store) closeSegment() {
	seg := s.cur
	if seg == nil {
		return
	}
	s.cur = nil
	if err := seg.f.Truncate(seg.off); err == nil && !s.opts.NoSync {
		err = seg.f.Sync()
		if err != nil {
			s.log.Warn("fsync after trimming a finished log file failed; it keeps its zeros", "file", seg.name, "err", err)
		}
	}
	seg.f.Close()
}

// afterBatch counts the batch towards the next snapshot point and, there,
// rolls the log and calls OnSnapshotDue, as ZooKeeper's
// SyncRequestProcessor rolls and starts a snapshot. It also rolls a log file past
// TxnLogSizeLimit.
func (s *Store) afterBatch(b *batch) {
	s.sinceSnap += b.n
	s.bytesSnap += int64(len(b.buf) - b.lead)
	if s.sinceSnap > s.rollAt || s.opts.SnapSizeLimit > 0 && s.bytesSnap > s.rollSize {
		s.closeSegment()
		s.pickRollPoint()
		if s.opts.OnSnapshotDue != nil {
			s.opts.OnSnapshotDue()
		}
		return
	}
	if s.opts.TxnLogSizeLimit > 0 && s.cur != nil && s.cur.off > s.opts.TxnLogSizeLimit {
		s.closeSegment()
	}
}

func (s *Store) pickRollPoint() {
	s.sinceSnap, s.bytesSnap = 0, 0
	half := s.opts.SnapCount / 2
	s.rollAt = half + s.rng.Intn(max(half, 1))
	if lim := s.opts.SnapSizeLimit; lim > 0 {
		s.rollSize = lim/2 + s.rng.Int63n(max(lim/2, 1))
	}
}

// Snapshot writes v as a snapshot now and returns its file name. v must
// hold only durable txns, which is so when txns are applied only after
// their Append completes, and the records it reads must stay as they are
// until Snapshot returns (a tree that reuses records keeps a reader slot
// entered meanwhile). Appends go on meanwhile. After Close it fails with
// ErrStopped; Close waits for one that is running.
func (s *Store) Snapshot(v *ztree.View) (string, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return "", ErrStopped
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	return s.snapshot(v)
}

// snapshot is Snapshot without the check for Close, for Open.
func (s *Store) snapshot(v *ztree.View) (string, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if d := s.durable.Load(); v.Zxid() > d {
		return "", fmt.Errorf("wal: the tree to snapshot is at %#x, past the durable log at %#x", v.Zxid(), d)
	}
	start := time.Now()
	name, size, err := writeSnapshotFile(s.fs, s.snapDir, v, s.opts.Compression, false)
	if err != nil {
		return "", err
	}
	s.log.Info("snapshot written", "file", filepath.Join(s.snapDir, name), "zxid", fmt.Sprintf("%#x", v.Zxid()),
		"znodes", v.NodeCount(), "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return name, nil
}

// WriteSnapshotFile writes v as a snapshot into dir (a version-2
// directory) with the given compression, the way Store.Snapshot does:
// into a tmp file, fsynced, renamed, the directory fsynced. It returns the
// file's name. fs is vfs.OS when nil.
func WriteSnapshotFile(fs vfs.FS, dir string, v *ztree.View, compression string) (string, error) {
	if fs == nil {
		fs = vfs.OS
	}
	name, _, err := writeSnapshotFile(fs, dir, v, compression, false)
	return name, err
}

// WriteStreamedSnapshotFile is WriteSnapshotFile for a tree a leader
// streamed (SNAP), which it wrote while it applied txns: the tree may hold
// changes of txns after its zxid, which the leader sends again after it,
// so its digest is not the leader's at its zxid. The file's zxid digest
// names txn 0, which ZooKeeper reads as no digest, and recovery lets the
// digests logged with the txns after it settle the tree (see
// Recovery.Unsettled).
func WriteStreamedSnapshotFile(fs vfs.FS, dir string, v *ztree.View, compression string) (string, error) {
	if fs == nil {
		fs = vfs.OS
	}
	name, _, err := writeSnapshotFile(fs, dir, v, compression, true)
	return name, err
}

func writeSnapshotFile(fs vfs.FS, dir string, v *ztree.View, compression string, streamed bool) (string, int64, error) {
	if !ValidCompression(compression) {
		return "", 0, fmt.Errorf("wal: unknown snapshot compression %q", compression)
	}
	name := snapName(v.Zxid()) + compressionSuffix[compression]
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, tmpPrefix+name)
	_ = fs.Remove(tmp)
	f, err := fs.Create(tmp)
	if err != nil {
		return "", 0, fmt.Errorf("wal: snapshot: %w", err)
	}
	w := vfs.NewWritebackWriter(f)
	cw, closeZ, err := compressor(w, compression)
	if err == nil {
		err = writeSnapshot(cw, v, streamed)
		if e := closeZ(); err == nil {
			err = e
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = fs.Rename(tmp, final)
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return "", 0, fmt.Errorf("wal: snapshot %s: %w", name, err)
	}
	return name, w.Off, nil
}

// Close writes out what is queued, waits for a running Snapshot and
// closes the log. Appends after Close fail.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stopPurge)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopErr
}
