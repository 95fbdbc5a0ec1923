package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"zkd/wal/vfs"
	"zkd/wire"
	"zkd/ztree"
)

// Recovery says what Open found and did.
type Recovery struct {
	Snapshot string // the snapshot loaded; "" when none was
	// SkippedSnapshots are newer snapshots that could not be read (cut
	// short by a crash while being written, say) and were passed over.
	SkippedSnapshots []string
	Zxid             int64         // the last txn in the recovered tree
	Replayed         int           // txns replayed from the log after the snapshot
	Replay           time.Duration // how long replaying them took
	// Truncated names the log file and offset where a torn tail was cut
	// off; "" when the log ended cleanly.
	Truncated string
	// TornTail is the file that keeps the bytes cut off the log (other
	// than preallocated zeros); "" when nothing was cut.
	TornTail string
	// SnapshotLoad is how long reading snapshots took, a damaged one
	// passed over included.
	SnapshotLoad time.Duration
	// Unsettled is set when the snapshot is one a leader streamed
	// (WriteStreamedSnapshotFile) and the log ends before a digest
	// logged with a txn after it has matched the tree: the server
	// stopped during its sync, and the tree holds changes of txns its
	// log does not have yet. They are committed txns, which the leader
	// sends again when this server syncs; until then the tree is not
	// the leader's at any one zxid, and a snapshot of it would carry a
	// digest no log matches.
	Unsettled bool
	// Untrusted is set when Options.NoEmptyTrust found neither snapshot
	// nor log, and no initialize file: the tree is empty, and may be so
	// because data was lost.
	Untrusted bool
}

// CorruptError means a log file is damaged somewhere other than a torn
// tail: txns after the damage cannot be read, so recovery refuses to go on
// rather than lose them silently.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s is corrupt at offset %d: %s. zkd will not start, because the txns after "+
		"that point would be lost. Restore the data directory from a backup or from another server's copy; "+
		"or, to accept losing every txn from there on, cut the file at that offset "+
		"(truncate -s %d %s) and remove the log files that follow it.",
		e.File, e.Offset, e.Reason, e.Offset, e.File)
}

// ErrDigestMismatch means the recovered tree is not the tree that was
// logged: its digest differs from the one recorded with a txn or snapshot.
var ErrDigestMismatch = errors.New("wal: the recovered tree's digest does not match the logged digest")

// Open recovers the data directory (creating it if needed) and returns a
// Store ready for Append, and the recovered tree, which the caller owns
// from then on (the Store keeps no reference to it): the newest readable
// snapshot with every logged txn after it applied, its digest checked
// against the digests logged. A torn tail at the end of the newest log file
// is cut off with a log line; damage anywhere else is a *CorruptError.
// When Recovery().Replayed is not zero, a snapshot written now spares the
// next start the replay.
func Open(opts Options) (*Store, *ztree.Tree, error) {
	if opts.FS == nil {
		opts.FS = vfs.OS
	}
	if opts.LogDir == "" {
		opts.LogDir = opts.Dir
	}
	if opts.PreAllocSize == 0 {
		opts.PreAllocSize = defaultPreAlloc
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = defaultMaxPending
	}
	if opts.SnapCount <= 0 {
		opts.SnapCount = defaultSnapCount
	}
	if opts.SnapCount < 2 {
		opts.SnapCount = 2
	}
	if opts.SnapSizeLimit == 0 {
		opts.SnapSizeLimit = defaultSnapSize
	}
	if !ValidCompression(opts.Compression) {
		return nil, nil, fmt.Errorf("wal: unknown snapshot compression %q (use gz, snappy or zstd)", opts.Compression)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	s := &Store{
		opts:    opts,
		fs:      opts.FS,
		log:     opts.Logger,
		snapDir: filepath.Join(opts.Dir, versionDir),
		logDir:  filepath.Join(opts.LogDir, versionDir),
		rng:     opts.Rand,

		stopPurge: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	for _, d := range []string{s.snapDir, s.logDir} {
		if opts.NoDirCreate {
			if _, err := s.fs.List(d); errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("wal: the data directory %s is missing, and zookeeper.datadir.autocreate=false "+
					"forbids creating it: if its disk is not mounted, mount it; if this is a new server, create the directory", d)
			} else if err != nil {
				return nil, nil, fmt.Errorf("wal: %w", err)
			}
		}
		if err := s.fs.MkdirAll(d); err != nil {
			return nil, nil, fmt.Errorf("wal: %w", err)
		}
		// Make version-2's own name durable, or a power cut could take
		// the directory with every file in it.
		if err := s.fs.SyncDir(filepath.Dir(d)); err != nil {
			return nil, nil, fmt.Errorf("wal: fsync of %s: %w", filepath.Dir(d), err)
		}
	}
	needSnap, err := s.recover()
	if err != nil {
		return nil, nil, err
	}
	if needSnap && opts.NoEmptyTrust && s.tree.Zxid() == 0 {
		if needSnap, err = s.trustEmpty(); err != nil {
			return nil, nil, err
		}
	}
	s.durable.Store(s.tree.Zxid())
	s.last = s.tree.Zxid()
	s.pickRollPoint()
	if s.stopErr != nil {
		// Recovered, but the log cannot go on (see cutTail): no
		// snapshot either, on a disk that has no room for one.
	} else if needSnap {
		// A fresh data directory gets snapshot.0 at once, as ZooKeeper's
		// does: ZooKeeper refuses a data directory with logs but no
		// snapshot.
		if _, err := s.snapshot(s.tree.Published()); err != nil {
			return nil, nil, err
		}
	}
	s.wg.Add(1)
	go s.writer()
	if opts.PurgeInterval > 0 {
		s.wg.Add(1)
		go s.autopurge(max(opts.PurgeRetain, MinRetain), opts.PurgeInterval)
	}
	t := s.tree
	s.tree = nil
	return s, t, nil
}

// Recovery says what Open found and did.
func (s *Store) Recovery() Recovery { return s.recovery }

// trustEmpty decides, for Options.NoEmptyTrust, whether a data directory
// with neither snapshot nor log is trusted: only when an "initialize"
// file is in LogDir, as ZooKeeper's zkServer-initialize.sh leaves one.
// The file is removed, so that it is trusted once. It reports whether the
// empty tree gets its snapshot.
func (s *Store) trustEmpty() (bool, error) {
	logs, err := listData(s.fs, s.logDir, logPrefix)
	if err != nil || len(logs) > 0 {
		return true, err
	}
	parent := filepath.Dir(s.logDir)
	names, err := s.fs.List(parent)
	if err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	if !slices.Contains(names, initializeFile) {
		s.recovery.Untrusted = true
		return false, nil
	}
	if err := s.fs.Remove(filepath.Join(parent, initializeFile)); err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	if err := s.fs.SyncDir(parent); err != nil {
		return false, fmt.Errorf("wal: fsync of %s: %w", parent, err)
	}
	s.log.Info("an initialize file was found: the empty data directory is trusted", "file", filepath.Join(parent, initializeFile))
	return true, nil
}

// initializeFile, in the log's directory, makes an empty data directory
// trusted with zookeeper.db.autocreate=false.
const initializeFile = "initialize"

type dataFile struct {
	name string
	zxid int64
}

// listData lists the log or snapshot files (by prefix) of dir, by zxid.
func listData(fs vfs.FS, dir, prefix string) ([]dataFile, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var out []dataFile
	for _, n := range names {
		if z, ok := zxidOf(n, prefix); ok {
			out = append(out, dataFile{n, z})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].zxid < out[j].zxid })
	return out, nil
}

// recover loads the newest readable snapshot and replays the log after it.
// It reports whether the directory had no snapshot at all.
func (s *Store) recover() (needSnap bool, err error) {
	// A snapshot being written when the process died is only a tmp file.
	names, err := s.fs.List(s.snapDir)
	if err != nil {
		return false, fmt.Errorf("wal: %w", err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, tmpPrefix) {
			// Never read as a snapshot, so one that cannot go only
			// costs room: worth a line, not a refusal to start.
			if err := s.fs.Remove(filepath.Join(s.snapDir, n)); err != nil {
				s.log.Warn("cannot remove an unfinished snapshot", "file", filepath.Join(s.snapDir, n), "err", err)
			}
		}
	}
	snaps, err := listData(s.fs, s.snapDir, snapPrefix)
	if err != nil {
		return false, err
	}
	logs, err := listData(s.fs, s.logDir, logPrefix)
	if err != nil {
		return false, err
	}
	var dg snapDigest
	if t := s.opts.Installed; t != nil {
		if n := len(snaps); n == 0 || snaps[n-1].zxid != t.Zxid() {
			return false, fmt.Errorf("wal: the installed tree is at %#x, and the newest snapshot in %s is not", t.Zxid(), s.snapDir)
		}
		s.tree = t
		s.recovery.Snapshot = snaps[len(snaps)-1].name
	}
	// Only a snapshot whose bytes were read and found damaged is passed
	// over; one the file system would not let us read stops recovery.
	var damaged error
	var damagedZxid int64
	loadStart := time.Now()
	for i := len(snaps) - 1; i >= 0 && s.tree == nil; i-- {
		file := filepath.Join(s.snapDir, snaps[i].name)
		t, d, err := loadSnapshot(s.fs, s.snapDir, snaps[i].name, s.opts.Tree)
		if err != nil {
			var ioe *SnapshotIOError
			if errors.As(err, &ioe) {
				return false, err
			}
			s.log.Warn("snapshot damaged, trying an older one; the txn logs must reach past it", "file", file, "err", err)
			s.recovery.SkippedSnapshots = append(s.recovery.SkippedSnapshots, snaps[i].name)
			if damaged == nil {
				damaged, damagedZxid = fmt.Errorf("%s: %w", file, err), snaps[i].zxid
			}
			continue
		}
		s.tree, dg = t, d
		s.recovery.Snapshot = snaps[i].name
	}
	s.recovery.SnapshotLoad = time.Since(loadStart)
	if s.tree == nil {
		// Without a snapshot only a log that starts at the first txn can
		// rebuild the tree.
		if len(logs) > 0 && logs[0].zxid > 1 {
			what := "there is no snapshot"
			if len(snaps) > 0 {
				what = "no snapshot is readable (" + strings.Join(s.recovery.SkippedSnapshots, ", ") + ")"
			}
			return false, fmt.Errorf("wal: %s in %s, and the log in %s starts at txn %#x, so the txns before it are gone; "+
				"restore a snapshot from a backup or another server", what, s.snapDir, s.logDir, logs[0].zxid)
		}
		s.tree = ztree.New(s.opts.Tree)
		needSnap = len(snaps) == 0
	}
	base := s.tree.Zxid()
	if dg.Zxid != 0 && dg.Zxid == base {
		s.snapshotDigestAt(&dg, base)
	}
	if dg.streamed {
		// The tree as this server wrote it, whatever the leader's
		// digest at its zxid.
		if err := s.checkDigest(dg.Version, dg.Digest, base, filepath.Join(s.snapDir, s.recovery.Snapshot), -1); err != nil {
			return false, fmt.Errorf("%w; the snapshot does not hold the tree it was written from: move it aside and "+
				"start again (in an ensemble, moving aside the whole version-2 directory makes the server copy the leader's state)", err)
		}
	}
	// The log files to read: the newest that starts at or before the
	// first txn after the snapshot, and every later one.
	start := 0
	for i, l := range logs {
		if l.zxid <= base+1 {
			start = i
		}
	}
	replayStart := time.Now()
	for i := start; i < len(logs); i++ {
		if err := s.replay(logs[i].name, i == len(logs)-1, &dg); err != nil {
			return false, err
		}
	}
	s.recovery.Replay = time.Since(replayStart)
	// A leader's streamed tree that no logged digest has settled: the
	// server stopped before the txns it already held were logged again
	// (or none had a digest).
	s.recovery.Unsettled = dg.streamed && !dg.settled
	if dg.unsettled != nil && dg.streamed {
		s.log.Warn("the tree from a snapshot a leader streamed holds changes of txns this server's log does not have yet; "+
			"they come again from the leader when this server syncs", "snapshot", filepath.Join(s.snapDir, s.recovery.Snapshot),
			"zxid", fmt.Sprintf("%#x", s.tree.Zxid()))
	} else if dg.unsettled != nil {
		// No replayed txn could account for the snapshot's mismatch.
		return false, fmt.Errorf("%w; no digest logged after it matches the tree, so snapshot %s and the txn logs in %s "+
			"do not make the tree the leader logged. zkd will not start: move %s aside and start again, and zkd will start "+
			"from the snapshot before it (in an ensemble, moving aside the whole version-2 directory makes the server copy "+
			"the leader's state)", dg.unsettled, filepath.Join(s.snapDir, s.recovery.Snapshot), s.logDir,
			filepath.Join(s.snapDir, s.recovery.Snapshot))
	}
	if damaged != nil && s.tree.Zxid() < damagedZxid {
		// The older snapshot and the logs do not rebuild what the damaged
		// one held: starting would silently drop acknowledged txns.
		return false, fmt.Errorf("wal: snapshot %v; the snapshots before it and the txn logs in %s reach only txn %#x, "+
			"short of its txn %#x, so starting would lose the txns in between. zkd will not start: restore the snapshot "+
			"from a backup or from another server's data directory", damaged, s.logDir, s.tree.Zxid(), damagedZxid)
	}
	if paths := s.tree.ACLsAwaited(); len(paths) > 0 {
		// A fuzzy snapshot's znode whose ACL no txn after it gave: the
		// snapshot is not what ZooKeeper writes.
		file := filepath.Join(s.snapDir, s.recovery.Snapshot)
		return false, fmt.Errorf("wal: snapshot %s: znode %q names an ACL that neither the snapshot's ACL table nor the txn logs "+
			"after it in %s hold. zkd will not start: move %s aside and start again, and zkd will start from the snapshot before it",
			file, paths[0], s.logDir, file)
	}
	s.tree.Publish()
	s.recovery.Zxid = s.tree.Zxid()
	s.log.Info("data directory recovered", "dataDir", s.opts.Dir, "dataLogDir", s.opts.LogDir,
		"snapshot", s.recovery.Snapshot, "zxid", fmt.Sprintf("%#x", s.recovery.Zxid), "replayed", s.recovery.Replayed,
		"znodes", s.tree.Published().NodeCount())
	return needSnap, nil
}

// snapshotDigestAt compares the snapshot's own digest with the tree's,
// now that the tree has reached the txn it was taken after. ZooKeeper
// writes a snapshot while it goes on applying txns, and logs a txn's
// digest only after the txn's changes, so the tree can hold the next txn,
// in part or whole, under the digest from before it. Replaying that txn
// settles the tree: a mismatch here is held, and the first digest logged
// with a later txn decides.
func (s *Store) snapshotDigestAt(dg *snapDigest, zxid int64) {
	err := s.checkDigest(dg.Version, dg.Digest, zxid, s.recovery.Snapshot, -1)
	if err != nil {
		s.log.Warn("the snapshot's digest does not match its tree; a fuzzy snapshot may hold part of the next txn, so the next logged digest decides",
			"file", filepath.Join(s.snapDir, s.recovery.Snapshot), "zxid", fmt.Sprintf("%#x", zxid))
	}
	*dg = snapDigest{unsettled: err}
}

// logDigestAt compares the tree's digest after txn zxid with the one the
// leader logged with it (file, offset off). Until one matches, a mismatch
// is held: a snapshot a ZooKeeper leader streamed to this server (SNAP)
// was written while the leader went on applying txns, and holds changes
// of txns after the zxid it is named for, which come again after it; the
// tree settles once replay is past them, and the first match says so
// (a matching digest is the whole tree's). A tree that no logged digest
// settles is refused once the log ends, and a mismatch after one has
// matched at once.
func (s *Store) logDigestAt(dg *snapDigest, want uint64, zxid int64, file string, off int64) {
	err := s.checkDigest(ztree.DigestVersion, want, zxid, file, off)
	switch {
	case err == nil:
		if dg.unsettled != nil {
			s.log.Info("the tree replayed from the snapshot settled: its digest matches the logged one",
				"snapshot", s.recovery.Snapshot, "zxid", fmt.Sprintf("%#x", zxid))
		}
		dg.unsettled, dg.settled = nil, true
	case dg.settled:
		dg.unsettled = err
	case dg.unsettled == nil:
		dg.unsettled = err
		s.log.Warn("a logged digest does not match the tree replayed from the snapshot; a snapshot written while txns were applied holds some of the txns after it, so the digests logged later decide",
			"snapshot", s.recovery.Snapshot, "file", file, "offset", off, "zxid", fmt.Sprintf("%#x", zxid))
	}
}

// checkDigest compares the tree's digest after zxid with the one logged in
// file (at offset off, or -1 for a snapshot's own).
func (s *Store) checkDigest(version int32, want uint64, zxid int64, file string, off int64) error {
	if version != ztree.DigestVersion {
		return nil // a digest of another kind: nothing to compare
	}
	if got := s.tree.Digest(); got != want {
		where := file
		if off >= 0 {
			where = fmt.Sprintf("%s offset %d", file, off)
		}
		return fmt.Errorf("%w: after txn %#x (%s) the tree's digest is %#x, the logged one %#x",
			ErrDigestMismatch, zxid, where, got, want)
	}
	return nil
}

// replay applies the txns of one log file that the tree does not have yet.
// newest says whether it is the last file, the only one that may end in a
// torn write.
func (s *Store) replay(name string, newest bool, dg *snapDigest) error {
	file := filepath.Join(s.logDir, name)
	lf, err := openLog(s.fs, file)
	if err != nil {
		return fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	defer lf.close()
	head, err := lf.bytes(0, fileHeaderLen)
	if err != nil {
		return fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	var h wire.FileHeader
	if _, err := h.Decode(head, wire.Copy); err != nil || h.Magic != logMagic || h.Version != formatVersion {
		if newest && lf.end <= fileHeaderLen {
			// Created, but the process died before its first batch was
			// durable: nothing in it was acknowledged.
			s.log.Warn("removing a log file whose header never reached the disk", "file", file)
			return s.cutTail(lf, file, 0, true)
		}
		return &CorruptError{File: file, Offset: 0, Reason: fmt.Sprintf("bad file header %+v", h)}
	}
	off := int64(fileHeaderLen)
	txns := 0
	// last is the zxid of the last txn read from this file: an intact txn
	// after damage is one that comes after it.
	last, _ := zxidOf(name, logPrefix)
	last--
	for {
		payload, size, st, err := lf.entry(off)
		if err != nil {
			return fmt.Errorf("wal: reading log %s: %w", file, err)
		}
		if st == entryEnd && off >= lf.end {
			break // the end of what was written; only zeros follow
		}
		if st != entryOK {
			if !newest {
				reason := "a txn is cut short or fails its checksum"
				if st == entryEnd {
					reason = "a zero length is followed by data"
				}
				return &CorruptError{File: file, Offset: off, Reason: reason}
			}
			// The newest file may end in a torn write, and only there.
			reason, err := lf.notTorn(off, last)
			if err != nil {
				return fmt.Errorf("wal: reading log %s: %w", file, err)
			}
			if reason != "" {
				return &CorruptError{File: file, Offset: off, Reason: reason}
			}
			s.log.Warn("cutting off a torn write at the end of the log", "file", file, "offset", off)
			s.recovery.Truncated = fmt.Sprintf("%s at offset %d", file, off)
			break
		}
		txn, err := decodeTxn(payload) // copies what it keeps: payload is the window's
		if err != nil {
			return &CorruptError{File: file, Offset: off, Reason: err.Error()}
		}
		z := txn.Header.Zxid
		last = z
		prev := s.tree.Zxid()
		if z > prev {
			if z>>32 == prev>>32 && z != prev+1 && prev != 0 {
				return &CorruptError{File: file, Offset: off,
					Reason: fmt.Sprintf("txn %#x follows txn %#x: the txns between are missing", z, prev)}
			}
			s.tree.Apply(&txn.Header, txn.Record)
			s.recovery.Replayed++
			switch {
			case dg.Zxid != 0 && z < dg.Zxid:
				// Short of the fuzzy snapshot's digest: the tree may
				// still hold changes of later txns.
			case dg.Zxid != 0 && z == dg.Zxid:
				// The snapshot's digest is due: the same figure as this
				// txn's, so it stands for both.
				s.snapshotDigestAt(dg, z)
			default:
				if dg.Zxid != 0 {
					*dg = snapDigest{unsettled: dg.unsettled} // its txn is not in the log
				}
				if d := txn.Digest; d != nil && d.Version == ztree.DigestVersion {
					s.logDigestAt(dg, uint64(d.TreeDigest), z, file, off)
					if dg.settled && dg.unsettled != nil {
						return dg.unsettled
					}
				}
			}
			if s.recovery.Replayed%65536 == 0 {
				s.tree.Publish() // release the watch triggers replay piles up
			}
		}
		txns++
		off += int64(size)
	}
	if !newest || off >= lf.size {
		return nil
	}
	// Cut the torn tail and the preallocated zeros, so that nothing
	// after the last good txn can be mistaken for one; a file with no
	// whole txn goes.
	return s.cutTail(lf, file, off, txns == 0)
}

// tornPrefix starts the name of the file that keeps the bytes recovery
// cut off a log: torn.log.<hex zxid>.at-<offset>, beside the log. Neither
// zkd nor ZooKeeper takes it for a log file, and ZooKeeper's purge leaves
// it alone.
const tornPrefix = "torn."

// cutTail ends the newest log file at off (removing it when whole is
// set), after keeping the bytes it cuts, other than the preallocated
// zeros, in a file of their own: the operator may want them, and recovery
// may have misjudged. When the disk is too full to keep them, nothing is
// cut and the log starts stopped: the server serves the recovered tree
// and refuses writes until there is room (see Store.Stopped).
func (s *Store) cutTail(lf *logFile, file string, off int64, whole bool) error {
	if off < lf.end {
		kept, err := s.keepCut(lf, file, off)
		if err != nil {
			if isNoSpace(err) {
				s.stopErr = fmt.Errorf("%w: %w: the torn tail of %s at offset %d cannot be kept "+
					"before it is cut, so no txn can be logged after it; free some space and restart", ErrStopped, ErrDiskFull, file, off)
				s.log.Error("cannot keep the torn tail of the log: the disk is full; the log takes no txn until restarted with free space",
					"file", file, "offset", off, "err", err)
				return nil
			}
			return fmt.Errorf("wal: keeping the torn tail of %s at offset %d before cutting it: %w", file, off, err)
		}
		s.recovery.TornTail = kept
		s.log.Warn("the bytes cut off the log are kept", "file", kept, "bytes", lf.end-off)
	}
	lf.close()
	if whole {
		return s.removeLog(file)
	}
	f, err := s.fs.Open(file)
	if err != nil {
		return fmt.Errorf("wal: opening %s to cut its torn tail: %w", file, err)
	}
	defer f.Close()
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("wal: cutting %s at %d: %w", file, off, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync of %s: %w", file, err)
	}
	return nil
}

// keepCut writes the non-zero bytes of the log from off on into their own
// file beside it, durably, and returns its path.
func (s *Store) keepCut(lf *logFile, file string, off int64) (string, error) {
	data := make([]byte, lf.end-off)
	if _, err := lf.f.ReadAt(data, off); err != nil && err != io.EOF {
		return "", err
	}
	name := filepath.Join(s.logDir, fmt.Sprintf("%s%s.at-%d", tornPrefix, filepath.Base(file), off))
	if old, err := vfs.ReadFile(s.fs, name); err == nil {
		if bytes.Equal(old, data) {
			return name, nil // kept by a start that died before it cut
		}
		name += fmt.Sprintf(".%d", time.Now().UnixNano())
	}
	f, err := s.fs.Create(name)
	if err != nil {
		return "", err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = s.fs.SyncDir(s.logDir)
	}
	if err != nil {
		_ = s.fs.Remove(name)
		return "", err
	}
	return name, nil
}

// isNoSpace reports whether err is the file system saying it is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// logFile reads a log file forward through a window of about a megabyte,
// so that replaying a 64 MB log does not hold all of it in memory.
type logFile struct {
	f    vfs.File
	size int64  // the file's size
	end  int64  // after the file's last non-zero byte: the rest is zeros
	buf  []byte // the file's bytes [at, at+len(buf))
	at   int64
}

// logWindow is how much of a log file replay reads at a time.
const logWindow = 1 << 20

// openLog opens a log file for replay and finds where its preallocated
// zeros begin, reading backwards from the end a megabyte at a time. Parsing
// only up to there reaches the same verdicts as parsing the whole file.
func openLog(fs vfs.FS, name string) (*logFile, error) {
	f, err := fs.OpenRead(name)
	if err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &logFile{f: f, size: size, buf: make([]byte, 0, min(size, logWindow))}
	end := size
	for end > 0 {
		start := max(0, end-int64(cap(l.buf)))
		chunk := l.buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && err != io.EOF {
			f.Close()
			return nil, err
		}
		if i := lastNonZero(chunk); i >= 0 {
			end = start + int64(i) + 1
			break
		}
		end = start
	}
	l.end = end
	l.buf = l.buf[:0]
	return l, nil
}

// bytes returns the file's bytes [off, off+n), cut short at end. They are
// the window's: valid until the next call.
func (l *logFile) bytes(off int64, n int) ([]byte, error) {
	hi := min(off+int64(n), l.end)
	if off >= hi {
		return nil, nil
	}
	if off >= l.at && hi <= l.at+int64(len(l.buf)) {
		return l.buf[off-l.at : hi-l.at], nil
	}
	// Refill from off: a window, or the one entry that is larger.
	want := max(hi-off, min(logWindow, l.end-off))
	if int64(cap(l.buf)) < want {
		l.buf = make([]byte, want)
	}
	l.buf = l.buf[:want]
	if _, err := l.f.ReadAt(l.buf, off); err != nil && err != io.EOF {
		l.buf = l.buf[:0]
		return nil, err
	}
	l.at = off
	return l.buf[:hi-off], nil
}

// entry parses the log entry at off, as parseEntry does the rest of the
// file from there. A length that runs past end is read no further: the
// verdict is entryBad either way.
func (l *logFile) entry(off int64) ([]byte, int, entryStatus, error) {
	b, err := l.bytes(off, entryHeadLen)
	if err != nil {
		return nil, 0, entryBad, err
	}
	if len(b) == entryHeadLen {
		n := entryLength(b)
		if n > 0 && off+entryHeadLen+n+1 <= l.end {
			if b, err = l.bytes(off, entryHeadLen+int(n)+1); err != nil {
				return nil, 0, entryBad, err
			}
		}
	}
	payload, size, st := parseEntry(b)
	return payload, size, st, nil
}

// notTorn says why the damaged or zero-length entry at off cannot be a
// torn write, or "" when it can. A torn write is the unfinished end of
// the last batch: the first part of an entry, then the zeros the file
// was preallocated with. So it is not torn when an intact txn (one after
// txn last) follows it anywhere, or when non-zero bytes lie past where
// the entry's length, read whole, says it ends.
func (l *logFile) notTorn(off, last int64) (string, error) {
	at, err := l.intactAfter(off, last)
	if err != nil {
		return "", err
	}
	if at >= 0 {
		return fmt.Sprintf("a txn is damaged and an intact txn follows it at offset %d, so this is not a torn write", at), nil
	}
	if l.end <= off+entryHeadLen {
		return "", nil // the entry's head was being written
	}
	b, err := l.bytes(off, entryHeadLen)
	if err != nil {
		return "", err
	}
	if n := entryLength(b); n > 0 && off+entryHeadLen+n+1 >= l.end {
		return "", nil // cut short within the length it gives
	}
	return "a txn's length is damaged and data other than preallocated zeros follows it, so this is not a torn write", nil
}

// txnHeadLen is a TxnHeader's size: clientId, cxid, zxid, time, type.
const txnHeadLen = 32

// intactAfter looks at every offset after off for an intact entry holding
// a txn after txn last, and returns the first it finds, or -1. Garbage
// rarely gets past the cheap checks (a length that fits, the
// end-of-record byte, the zxid), so the checksum runs seldom.
func (l *logFile) intactAfter(off, last int64) (int64, error) {
	for p := off + 1; p+entryHeadLen+txnHeadLen+1 <= l.end; p++ {
		b, err := l.bytes(p, entryHeadLen+txnHeadLen)
		if err != nil {
			return -1, err
		}
		n := entryLength(b)
		if n < txnHeadLen || p+entryHeadLen+n+1 > l.end {
			continue
		}
		if z := int64(binary.BigEndian.Uint64(b[entryHeadLen+12:])); z <= last {
			continue
		}
		end, err := l.bytes(p+entryHeadLen+n, 1)
		if err != nil {
			return -1, err
		}
		if len(end) != 1 || end[0] != endOfRecord {
			continue
		}
		if _, _, st, err := l.entry(p); err != nil {
			return -1, err
		} else if st == entryOK {
			return p, nil
		}
	}
	return -1, nil
}

func (l *logFile) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// lastNonZero is the index of the last byte of b that is not 0, or -1.
func lastNonZero(b []byte) int {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		tail := b[len(b)-n:]
		if !bytes.Equal(tail, zeros[:n]) {
			for i := n - 1; ; i-- {
				if tail[i] != 0 {
					return len(b) - n + i
				}
			}
		}
		b = b[:len(b)-n]
	}
	return -1
}

func (s *Store) removeLog(file string) error {
	if err := s.fs.Remove(file); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := s.fs.SyncDir(s.logDir); err != nil {
		return fmt.Errorf("wal: fsync of %s: %w", s.logDir, err)
	}
	return nil
}
