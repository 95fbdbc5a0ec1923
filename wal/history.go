package wal

import (
	"fmt"
	"path/filepath"

	"zkd/wal/vfs"
	"zkd/wire"
)

// What replication needs of the log besides appending: a leader reads the
// txns a follower lacks (DIFF), and a follower whose log runs past the
// leader's history cuts it back (TRUNC).

// ReadTxns calls fn, in zxid order, with every txn in the logs of
// dataLogDir whose zxid is after `after` and at most upTo, and with the
// txn's entry as the log holds it (TxnHeader, record and digest: what a
// PROPOSAL carries); the entry is valid during the call only. upTo must be
// durable: the newest log file may be being written past it, and what
// lies there is never read. A damaged txn at or below upTo, or txns
// missing between two of an epoch, is a *CorruptError naming the file.
// An error from fn stops the walk and is returned.
func ReadTxns(fsys vfs.FS, dataLogDir string, after, upTo int64, fn func(txn *Txn, entry []byte) error) error {
	dir := filepath.Join(dataLogDir, "version-2")
	logs, err := listData(fsys, dir, logPrefix)
	if err != nil {
		return err
	}
	// The last file starting at or before after+1 may hold txns after
	// it; the ones before it hold none.
	first := 0
	for i, l := range logs {
		if l.zxid <= after+1 {
			first = i
		}
	}
	prev := int64(0)
	for i := first; i < len(logs); i++ {
		if logs[i].zxid > upTo {
			break
		}
		file := filepath.Join(dir, logs[i].name)
		done, err := readLogFile(fsys, file, after, upTo, &prev, fn)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// readLogFile walks one log file for ReadTxns and reports whether upTo
// was reached.
func readLogFile(fsys vfs.FS, file string, after, upTo int64, prev *int64, fn func(*Txn, []byte) error) (bool, error) {
	lf, err := openLog(fsys, file)
	if err != nil {
		return false, fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	defer lf.close()
	head, err := lf.bytes(0, fileHeaderLen)
	if err != nil {
		return false, fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	var h wire.FileHeader
	if _, err := h.Decode(head, wire.Copy); err != nil || h.Magic != logMagic || h.Version != formatVersion {
		return false, &CorruptError{File: file, Offset: 0, Reason: fmt.Sprintf("bad file header %+v", h)}
	}
	for off := int64(fileHeaderLen); ; {
		payload, size, st, err := lf.entry(off)
		if err != nil {
			return false, fmt.Errorf("wal: reading log %s: %w", file, err)
		}
		if st == entryEnd && off >= lf.end {
			return false, nil
		}
		if st != entryOK {
			// Short of upTo, which is durable: damage.
			return false, &CorruptError{File: file, Offset: off,
				Reason: fmt.Sprintf("a txn after %#x is cut short or fails its checksum", *prev)}
		}
		txn, err := decodeTxn(payload)
		if err != nil {
			return false, &CorruptError{File: file, Offset: off, Reason: err.Error()}
		}
		z := txn.Header.Zxid
		if z > upTo {
			return true, nil
		}
		if *prev != 0 && z>>32 == *prev>>32 && z != *prev+1 {
			return false, &CorruptError{File: file, Offset: off,
				Reason: fmt.Sprintf("txn %#x follows txn %#x: the txns between are missing", z, *prev)}
		}
		*prev = z
		if z > after {
			if err := fn(&txn, payload); err != nil {
				return false, err
			}
		}
		if z == upTo {
			return true, nil
		}
		off += int64(size)
	}
}

// truncatedPrefix starts the names of files TruncateLog sets aside: a log
// or snapshot holding txns after the cut, or the bytes cut off a log file.
// Neither zkd nor ZooKeeper loads them, and neither's purge removes them.
const truncatedPrefix = "truncated."

// TruncateLog removes every txn after zxid from the data directory, as a
// follower must when the leader's history does not have them (TRUNC):
// the log file holding zxid is cut after it, later log files and every
// snapshot after zxid are set aside (renamed truncated.<name>), and so are
// the bytes cut off, in truncated.<log name>.at-<offset>. Each step is
// durable before the next, so a crash part way leaves a directory the
// next TruncateLog finishes. The Store must not be open.
func TruncateLog(fsys vfs.FS, dataDir, dataLogDir string, zxid int64) error {
	logDir := filepath.Join(dataLogDir, "version-2")
	snapDir := filepath.Join(dataDir, "version-2")
	// Snapshots first: a snapshot after the cut with its logs gone
	// would be loaded as it is.
	snaps, err := listData(fsys, snapDir, snapPrefix)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if s.zxid > zxid {
			if err := setAside(fsys, snapDir, s.name); err != nil {
				return err
			}
		}
	}
	logs, err := listData(fsys, logDir, logPrefix)
	if err != nil {
		return err
	}
	for i := len(logs) - 1; i >= 0; i-- {
		if logs[i].zxid > zxid {
			if err := setAside(fsys, logDir, logs[i].name); err != nil {
				return err
			}
			continue
		}
		return cutAfter(fsys, logDir, logs[i].name, zxid)
	}
	return nil
}

// SetAsideLogs sets aside (renames truncated.<name>) every log file of
// dataLogDir that starts at or before zxid, as a follower must once the
// leader's snapshot at zxid is durably installed: up to zxid its log may
// hold another history, which must never be read back as this server's
// (a leader sends learners txns from its log). Call it after TruncateLog
// to zxid, so that those files hold nothing later. Nothing is lost: the
// snapshot holds the tree they led to. The Store must not be open.
func SetAsideLogs(fsys vfs.FS, dataLogDir string, zxid int64) error {
	logDir := filepath.Join(dataLogDir, "version-2")
	logs, err := listData(fsys, logDir, logPrefix)
	if err != nil {
		return err
	}
	for _, l := range logs {
		if l.zxid <= zxid {
			if err := setAside(fsys, logDir, l.name); err != nil {
				return err
			}
		}
	}
	return nil
}

func setAside(fsys vfs.FS, dir, name string) error {
	if err := fsys.Rename(filepath.Join(dir, name), filepath.Join(dir, truncatedPrefix+name)); err != nil {
		return fmt.Errorf("wal: setting aside %s: %w", filepath.Join(dir, name), err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("wal: fsync of %s: %w", dir, err)
	}
	return nil
}

// cutAfter ends log file name after the entry of txn zxid, keeping what
// it cuts in a file beside it.
func cutAfter(fsys vfs.FS, dir, name string, zxid int64) error {
	file := filepath.Join(dir, name)
	lf, err := openLog(fsys, file)
	if err != nil {
		return fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	off := int64(fileHeaderLen)
	for {
		payload, size, st, err := lf.entry(off)
		if err != nil {
			lf.close()
			return fmt.Errorf("wal: reading log %s: %w", file, err)
		}
		if st != entryOK {
			break // the end, or a torn write: cut there too
		}
		txn, err := decodeTxn(payload)
		if err != nil {
			lf.close()
			return &CorruptError{File: file, Offset: off, Reason: err.Error()}
		}
		if txn.Header.Zxid > zxid {
			break
		}
		off += int64(size)
	}
	end := lf.end
	lf.close()
	if off >= end {
		return nil // nothing after zxid but the preallocated zeros
	}
	tail := make([]byte, end-off)
	src, err := fsys.OpenRead(file)
	if err != nil {
		return fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	_, err = src.ReadAt(tail, off)
	src.Close()
	if err != nil {
		return fmt.Errorf("wal: reading log %s: %w", file, err)
	}
	keep := filepath.Join(dir, fmt.Sprintf("%s%s.at-%d", truncatedPrefix, name, off))
	fsys.Remove(keep) // from a TruncateLog a crash interrupted
	err = createSynced(fsys, keep, tail)
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("wal: keeping the txns cut off %s in %s: %w", file, keep, err)
	}
	f, err := fsys.Open(file)
	if err != nil {
		return fmt.Errorf("wal: cutting log %s: %w", file, err)
	}
	err = f.Truncate(off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: cutting log %s at offset %d: %w", file, off, err)
	}
	return nil
}
