package wal

import (
	"bufio"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"

	"zkd/wire"
)

// SnapshotVisitor is told what a snapshot file holds, in the file's
// order; any field may be nil.
type SnapshotVisitor struct {
	Session func(id int64, timeout int32)
	// Node gets each znode; data is nil for null data and is reused
	// after Node returns. acl is nil for the open ACL, and for an ACL the
	// snapshot's table lacks: ZooKeeper writes its snapshots while it
	// applies txns, so a znode created after the table was written may
	// name an ACL that only the txn log after the snapshot holds.
	Node func(path string, data []byte, acl []wire.ACL, st wire.StatPersisted) error
	// Digest gets the zxid digest snapshots end with since ZooKeeper 3.6.
	Digest func(zxid int64, version int32, digest uint64)
	// Progress is told how many bytes of the file have been read, now and
	// then.
	Progress func(read, size int64)
}

// ScanSnapshot reads the snapshot file at path (plain, or compressed as
// its name says) for a tool that shows it, checking its checksums. An
// error names the file and what is wrong; one from the file system is a
// *SnapshotIOError.
func ScanSnapshot(path string, v SnapshotVisitor) error {
	f, err := os.Open(path)
	if err != nil {
		return &SnapshotIOError{File: path, Err: err}
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	counted := &countingReader{r: f, size: size, progress: v.Progress}
	r := &readErrors{r: counted}
	err = func() error {
		z, done, err := decompressor(r, compressionOf(filepath.Base(path)))
		if err != nil {
			return err
		}
		defer done()
		return scanSnapshot(z, v)
	}()
	if r.err != nil {
		return &SnapshotIOError{File: path, Err: r.err}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func scanSnapshot(r io.Reader, v SnapshotVisitor) error {
	s := &snapReader{r: bufio.NewReaderSize(r, 1<<16), sum: adler32.New()}
	var hb [fileHeaderLen]byte
	s.read(hb[:])
	var h wire.FileHeader
	if _, err := h.Decode(hb[:], wire.Copy); s.err == nil && (err != nil || h.Magic != snapMagic) {
		return fmt.Errorf("not a snapshot (magic %#x)", uint32(h.Magic))
	}
	for n := s.int32(); n > 0 && s.err == nil; n-- {
		id, timeout := s.int64(), s.int32()
		if v.Session != nil && s.err == nil {
			v.Session(id, timeout)
		}
	}
	acls, err := readACLs(s)
	if err != nil {
		return err
	}
	var path, data []byte
	var stb [60]byte
	for s.err == nil {
		path = s.bytes(path)
		if s.err != nil || string(path) == "/" {
			break
		}
		data = s.bytes(data)
		null := s.null
		key := s.int64()
		s.read(stb[:])
		if s.err != nil {
			break
		}
		var st wire.StatPersisted
		if _, err := st.Decode(stb[:], wire.Copy); err != nil {
			return fmt.Errorf("znode %q: %v", path, err)
		}
		acl := []wire.ACL(nil)
		if key != -1 {
			acl = acls[key] // nil for one the table lacks (see Node)
		}
		d := data
		if null {
			d = nil
		}
		if v.Node != nil {
			if err := v.Node(string(path), d, acl, st); err != nil {
				return err
			}
		}
	}
	if s.err != nil {
		return s.err
	}
	// The "/" that ends the znodes was read; the seal follows.
	s.checkSeal("tree")
	if s.err != nil {
		return s.err
	}
	if _, err := s.r.Peek(1); err == nil {
		zxid, version, digest := s.int64(), s.int32(), uint64(s.int64())
		s.checkSeal("digest")
		if s.err != nil {
			return s.err
		}
		if v.Digest != nil {
			v.Digest(zxid, version, digest)
		}
	}
	return nil
}

// countingReader tells progress how far into the file reading has got,
// every 4 MiB.
type countingReader struct {
	r            io.Reader
	size, n      int64
	lastReported int64
	progress     func(read, size int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && (c.n-c.lastReported >= 4<<20 || err == io.EOF) {
		c.lastReported = c.n
		c.progress(c.n, c.size)
	}
	return n, err
}
