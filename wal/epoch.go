package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"zkd/wal/vfs"
)

// The epoch files of an ensemble member, kept as ZooKeeper keeps them in
// <dataDir>/version-2: acceptedEpoch is the newest epoch the server agreed
// to follow or lead (written when a leader proposes one), currentEpoch the
// newest it synced to (written when it has the leader's history). Each is
// the decimal text of the epoch, no newline, replaced whole: written to
// <name>.tmp, fsynced, renamed over the old one, and the directory
// fsynced, so a crash leaves the old value or the new one.
const (
	AcceptedEpochFile = "acceptedEpoch"
	CurrentEpochFile  = "currentEpoch"
)

// Epochs are an ensemble member's two epochs.
type Epochs struct {
	Current, Accepted int64
}

// EpochError is an epoch file that holds what it must not, or a pair
// that contradicts the log; the server must not start on it.
type EpochError struct {
	File string
	Msg  string
}

func (e *EpochError) Error() string { return e.File + ": " + e.Msg }

func epochDir(dataDir string) string { return filepath.Join(dataDir, "version-2") }

// LoadEpochs reads the epoch files in dataDir, given the zxid of the
// newest txn the data directory holds, with ZooKeeper's start-up rules:
//
//   - a missing file is written with the epoch of lastZxid (a data
//     directory from a standalone server, or a new one);
//   - a currentEpoch behind the log's epoch means the server crashed while
//     writing it: the value in currentEpoch.tmp, if that holds one at
//     least the log's epoch, is taken; otherwise the server stops;
//   - an acceptedEpoch behind currentEpoch is impossible; the server stops.
//
// An I/O error is returned as one, never taken for a missing file.
func LoadEpochs(fsys vfs.FS, dataDir string, lastZxid int64) (Epochs, error) {
	dir := epochDir(dataDir)
	logEpoch := lastZxid >> 32
	var e Epochs
	var err error
	if e.Current, err = loadEpoch(fsys, dir, CurrentEpochFile, logEpoch); err != nil {
		return Epochs{}, err
	}
	if e.Current < logEpoch {
		tmp := filepath.Join(dir, CurrentEpochFile+".tmp")
		v, found, err := readEpoch(fsys, tmp)
		if err != nil {
			return Epochs{}, err
		}
		if !found || v < logEpoch {
			return Epochs{}, &EpochError{File: filepath.Join(dir, CurrentEpochFile), Msg: fmt.Sprintf(
				"the epoch %d is behind the log, which reaches zxid %#x (epoch %d), and %s does not make up for it; "+
					"the files do not belong together: restore them from a backup or sync this server from the others",
				e.Current, lastZxid, logEpoch, tmp)}
		}
		if err := WriteEpoch(fsys, dataDir, CurrentEpochFile, v); err != nil {
			return Epochs{}, err
		}
		e.Current = v
	}
	if e.Accepted, err = loadEpoch(fsys, dir, AcceptedEpochFile, logEpoch); err != nil {
		return Epochs{}, err
	}
	if e.Accepted < e.Current {
		return Epochs{}, &EpochError{File: filepath.Join(dir, AcceptedEpochFile), Msg: fmt.Sprintf(
			"the accepted epoch %d is behind the current epoch %d, which no server writes; restore the epoch files from a backup",
			e.Accepted, e.Current)}
	}
	return e, nil
}

// loadEpoch reads one epoch file, writing it with def when it is missing.
func loadEpoch(fsys vfs.FS, dir, name string, def int64) (int64, error) {
	v, found, err := readEpoch(fsys, filepath.Join(dir, name))
	if err != nil || found {
		return v, err
	}
	if err := WriteEpoch(fsys, filepath.Dir(dir), name, def); err != nil {
		return 0, err
	}
	return def, nil
}

// readEpoch reads an epoch file; found is false when there is none.
func readEpoch(fsys vfs.FS, p string) (v int64, found bool, err error) {
	f, err := fsys.OpenRead(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the epoch file %s: %w", p, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, false, fmt.Errorf("reading the epoch file %s: %w", p, err)
	}
	if size > 64 {
		return 0, false, &EpochError{File: p, Msg: fmt.Sprintf("%d bytes is not an epoch", size)}
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		return 0, false, fmt.Errorf("reading the epoch file %s: %w", p, err)
	}
	v, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return 0, false, &EpochError{File: p, Msg: fmt.Sprintf("%q is not an epoch (a decimal number)", b)}
	}
	return v, true, nil
}

// WriteEpoch replaces the epoch file name (AcceptedEpochFile or
// CurrentEpochFile) in dataDir with epoch, durably: it returns once the
// new value survives a crash.
func WriteEpoch(fsys vfs.FS, dataDir, name string, epoch int64) error {
	dir := epochDir(dataDir)
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("writing the epoch file %s: %w", name, err)
	}
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	if err := fsys.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("writing the epoch file %s: %w", final, err)
	}
	err := createSynced(fsys, tmp, []byte(strconv.FormatInt(epoch, 10)))
	if err == nil {
		err = fsys.Rename(tmp, final)
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("writing the epoch file %s: %w", final, err)
	}
	return nil
}

// createSynced makes a new file holding data, fsynced; making its name
// durable (SyncDir) is the caller's.
func createSynced(fsys vfs.FS, name string, data []byte) error {
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
