package wal

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"

	"zkd/wal/vfs"
)

// MinRetain is the fewest snapshots Purge keeps (autopurge.snapRetainCount
// has the same floor in ZooKeeper).
const MinRetain = 3

// Purge removes old snapshots and log files from a data directory, as
// ZooKeeper's PurgeTxnLog does: it keeps the newest retain snapshots that
// look intact, and every log file holding txns after the oldest of them
// (the newest log file that starts at or before it, and all later ones).
// Everything older goes. It returns the paths removed. It is safe while
// the server runs: the files it removes are ones recovery no longer reads.
func Purge(fs vfs.FS, dataDir, dataLogDir string, retain int) ([]string, error) {
	if retain < MinRetain {
		return nil, fmt.Errorf("wal: purge must keep at least %d snapshots, not %d", MinRetain, retain)
	}
	if fs == nil {
		fs = vfs.OS
	}
	if dataLogDir == "" {
		dataLogDir = dataDir
	}
	snapDir, logDir := filepath.Join(dataDir, versionDir), filepath.Join(dataLogDir, versionDir)
	snaps, err := listData(fs, snapDir, snapPrefix)
	if err != nil {
		return nil, err
	}
	logs, err := listData(fs, logDir, logPrefix)
	if err != nil {
		return nil, err
	}
	kept := 0
	oldest := int64(-1)
	for i := len(snaps) - 1; i >= 0 && kept < retain; i-- {
		ok, err := looksIntact(fs, filepath.Join(snapDir, snaps[i].name))
		if err != nil {
			// A snapshot that cannot be read is not a damaged one:
			// counting it out could remove the logs it still needs.
			return nil, fmt.Errorf("wal: purge: %w", err)
		}
		if ok {
			kept++
			oldest = snaps[i].zxid
		}
	}
	if kept < retain {
		return nil, nil // too few snapshots to remove anything
	}
	var removed []string
	remove := func(dir, name string) error {
		p := filepath.Join(dir, name)
		if err := fs.Remove(p); err != nil {
			return fmt.Errorf("wal: purge: %w", err)
		}
		removed = append(removed, p)
		return nil
	}
	// The newest log file starting at or before the oldest kept snapshot
	// holds the txns right after it; it stays, and so does every later one.
	keepLog := -1
	for i, l := range logs {
		if l.zxid <= oldest {
			keepLog = i
		}
	}
	for i := 0; i < keepLog; i++ {
		if err := remove(logDir, logs[i].name); err != nil {
			return removed, err
		}
	}
	for _, sn := range snaps {
		if sn.zxid < oldest {
			if err := remove(snapDir, sn.name); err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// looksIntact is ZooKeeper's quick snapshot check: a plain snapshot ends
// with the seal's "/" string, a compressed one starts with its magic. An
// error reading the file is returned, not taken for damage.
func looksIntact(fs vfs.FS, p string) (bool, error) {
	f, err := fs.OpenRead(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return false, err
	}
	if size < 10 {
		return false, nil
	}
	head := make([]byte, 8)
	tail := make([]byte, 5)
	if _, err := f.ReadAt(head, 0); err != nil {
		return false, err
	}
	if _, err := f.ReadAt(tail, size-5); err != nil {
		return false, err
	}
	switch compressionOf(p) {
	case "gz":
		return head[0] == 0x1f && head[1] == 0x8b, nil
	case "snappy":
		return bytes.Equal(head, snappyJavaMagic), nil
	case "zstd":
		return bytes.Equal(head[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}), nil
	}
	return bytes.Equal(tail, []byte{0, 0, 0, 1, '/'}), nil
}

// autopurge runs Purge every interval until the store closes.
func (s *Store) autopurge(retain int, every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopPurge:
			return
		case <-t.C:
			removed, err := Purge(s.fs, s.opts.Dir, s.opts.LogDir, retain)
			if err != nil {
				s.log.Error("autopurge failed", "err", err)
				continue
			}
			s.log.Info("autopurge done", "removed", len(removed), "kept snapshots", retain)
		}
	}
}
