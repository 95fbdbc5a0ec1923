package wal

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"math"
	"path"
	"strings"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"

	"zkd/wal/vfs"
	"zkd/wire"
	"zkd/ztree"
)

// Snapshot compression methods (snapshot.compression.method). "" writes
// ZooKeeper's plain checked stream; gz and snappy are ZooKeeper's own;
// zstd is zkd's extension, which ZooKeeper cannot read.
var compressionSuffix = map[string]string{"": "", "gz": ".gz", "snappy": ".snappy", "zstd": ".zst"}

// ValidCompression reports whether method is a known compression method.
func ValidCompression(method string) bool {
	_, ok := compressionSuffix[method]
	return ok
}

func compressionOf(name string) string {
	switch {
	case strings.HasSuffix(name, ".gz"):
		return "gz"
	case strings.HasSuffix(name, ".snappy"):
		return "snappy"
	case strings.HasSuffix(name, ".zst"):
		return "zstd"
	}
	return ""
}

// snapWriter writes jute values and keeps the Adler32 checksum of
// everything written, as ZooKeeper's CheckedOutputStream does (the
// checksum is of the uncompressed stream).
type snapWriter struct {
	w   *bufio.Writer
	sum hash.Hash32
	b   [8]byte
}

func (s *snapWriter) write(p []byte) {
	s.w.Write(p) // the error sticks in the bufio.Writer; Flush reports it
	s.sum.Write(p)
}

func (s *snapWriter) int32(v int32) {
	binary.BigEndian.PutUint32(s.b[:4], uint32(v))
	s.write(s.b[:4])
}

func (s *snapWriter) int64(v int64) {
	binary.BigEndian.PutUint64(s.b[:], uint64(v))
	s.write(s.b[:])
}

func (s *snapWriter) string(v string) {
	s.int32(int32(len(v)))
	s.w.WriteString(v)
	s.sum.Write(bytesOf(v))
}

// seal writes the checksum so far and the "/" that ends a sealed part.
func (s *snapWriter) seal() {
	s.int64(int64(s.sum.Sum32()))
	s.string("/")
}

// writeSnapshot writes v in ZooKeeper's snapshot format to w: the file
// header, the tree (writeTree), a seal, the zxid digest and a second seal.
// A tree a leader streamed (streamed) gets zxid 0 in its zxid digest,
// which ZooKeeper reads as no digest: its own digest is not the leader's
// at its zxid (see WriteStreamedSnapshotFile). The digest is the tree's
// all the same, which ZooKeeper's empty one (0) never is, so that zkd
// tells the two apart and checks the tree it loads.
func writeSnapshot(w io.Writer, v *ztree.View, streamed bool) error {
	s := &snapWriter{w: bufio.NewWriterSize(w, 1<<16), sum: adler32.New()}
	s.write(appendFileHeader(nil, snapMagic))
	writeTree(s, v)
	s.seal()
	if streamed {
		s.int64(0)
	} else {
		s.int64(v.Zxid())
	}
	s.int32(ztree.DigestVersion)
	s.int64(int64(v.Digest()))
	s.seal()
	return s.w.Flush()
}

// snapSignature ends the tree a leader streams after a SNAP packet.
const snapSignature = "BenWasHere"

// WriteSnapBody writes v as a leader streams it to a learner after a SNAP
// packet: the tree as a snapshot file holds it, with no file header, no
// seals and no digest, then the signature ZooKeeper's learners check.
func WriteSnapBody(w io.Writer, v *ztree.View) error {
	s := &snapWriter{w: bufio.NewWriterSize(w, 1<<16), sum: adler32.New()}
	writeTree(s, v)
	s.string(snapSignature)
	return s.w.Flush()
}

// writeTree writes the sessions, the ACL table and the znodes depth first
// (the root spelled ""), and the "/" that ends them.
func writeTree(s *snapWriter, v *ztree.View) {
	s.int32(int32(v.SessionCount()))
	v.Sessions(func(x ztree.Session) bool {
		s.int64(x.ID)
		s.int32(x.Timeout)
		return true
	})
	// ACL index 0 is OPEN_ACL_UNSAFE, which ZooKeeper spells -1 and
	// keeps out of its table; the others keep their index.
	acls := v.ACLTable()
	s.int32(int32(len(acls) - 1))
	var buf []byte
	for i := 1; i < len(acls); i++ {
		s.int64(int64(i))
		s.int32(int32(len(acls[i])))
		for _, a := range acls[i] {
			buf = a.Append(buf[:0])
			s.write(buf)
		}
	}
	v.Walk(func(n ztree.Node) bool {
		p := n.Path
		if p == "/" {
			p = ""
		}
		s.string(p)
		if ztree.IsNull(n.Data) {
			s.int32(-1) // null data, kept apart from empty
		} else {
			s.string(n.Data) // a buffer is encoded as a string is
		}
		acl := int64(n.ACLIndex)
		if acl == 0 {
			acl = -1
		}
		s.int64(acl)
		buf = n.Persisted.Append(buf[:0])
		s.write(buf)
		return true
	})
	s.string("/")
}

// compressor wraps w for method; close flushes the compressed stream.
func compressor(w io.Writer, method string) (io.Writer, func() error, error) {
	switch method {
	case "":
		return w, func() error { return nil }, nil
	case "gz":
		z := gzip.NewWriter(w)
		return z, z.Close, nil
	case "snappy":
		z := &snappyJavaWriter{w: w}
		return z, z.Close, nil
	case "zstd":
		z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	}
	return nil, nil, fmt.Errorf("wal: unknown snapshot compression %q", method)
}

// snapReader reads jute values, keeping the checksum of what it read.
type snapReader struct {
	r   *bufio.Reader
	sum hash.Hash32
	b   [8]byte
	err error
	// null is whether the last field appendField read was null.
	null bool
}

var errShort = errors.New("snapshot is cut short")

func (s *snapReader) read(p []byte) {
	if s.err != nil {
		clear(p)
		return
	}
	if _, err := io.ReadFull(s.r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errShort
		}
		s.err = err
		clear(p)
		return
	}
	s.sum.Write(p)
}

func (s *snapReader) int32() int32 {
	s.read(s.b[:4])
	return int32(binary.BigEndian.Uint32(s.b[:4]))
}

func (s *snapReader) int64() int64 {
	s.read(s.b[:])
	return int64(binary.BigEndian.Uint64(s.b[:]))
}

// maxSnapField bounds one string or buffer in a snapshot (jute.maxbuffer
// bounds them far lower in practice); a larger length means corruption.
const maxSnapField = 1 << 30

func (s *snapReader) bytes(dst []byte) []byte { return s.appendField(dst[:0]) }

// appendField reads a length-prefixed buffer onto the end of dst; null
// says it was null (length -1) rather than empty.
func (s *snapReader) appendField(dst []byte) []byte {
	n := s.int32()
	s.null = n == -1
	if s.err != nil || n <= 0 {
		if n < -1 {
			s.err = fmt.Errorf("negative length %d", n)
		}
		return dst
	}
	if n > maxSnapField {
		s.err = fmt.Errorf("length %d is too large", n)
		return dst
	}
	// Grow with the bytes that actually arrive, never by the length a
	// damaged file claims.
	for rest := int(n); rest > 0 && s.err == nil; {
		k := min(rest, 1<<16)
		if cap(dst)-len(dst) < k {
			dst = append(dst[:cap(dst)], make([]byte, k)...)[:len(dst)]
		}
		s.read(dst[len(dst) : len(dst)+k])
		dst = dst[:len(dst)+k]
		rest -= k
	}
	return dst
}

func (s *snapReader) checkSeal(what string) {
	want := s.sum.Sum32()
	got := s.int64()
	slash := s.bytes(nil)
	if s.err == nil && (uint32(got) != want || got>>32 != 0 || string(slash) != "/") {
		s.err = fmt.Errorf("checksum of the %s does not match (CRC corruption)", what)
	}
}

// snapDigest is the zxid digest a snapshot ends with: the tree's digest
// after txn Zxid. ZooKeeper's snapshots are fuzzy, so Zxid may be past the
// snapshot's own zxid; the digest then holds once replay reaches it.
type snapDigest struct {
	Zxid    int64
	Version int32
	Digest  uint64
	// streamed is set for the zxid digest zkd writes for a tree a
	// leader streamed (SNAP): zxid 0, which ZooKeeper reads as no
	// digest, with the tree's digest (ZooKeeper's empty one has 0), in
	// a snapshot after txn 0.
	streamed bool

	// unsettled is, during recovery, the first mismatch found since the
	// snapshot (the snapshot's own digest, or one logged with a txn after
	// it), until a digest logged with a later txn matches; settled is
	// set once one has, and from then on a mismatch stops recovery.
	unsettled error
	settled   bool
}

// readSnapshot loads a snapshot into a tree as of zxid.
func readSnapshot(r io.Reader, zxid int64, opts ztree.Options) (*ztree.Tree, snapDigest, error) {
	s := &snapReader{r: bufio.NewReaderSize(r, 1<<16), sum: adler32.New()}
	var dg snapDigest
	var hb [fileHeaderLen]byte
	s.read(hb[:])
	var h wire.FileHeader
	if _, err := h.Decode(hb[:], wire.Copy); s.err == nil && (err != nil || h.Magic != snapMagic) {
		return nil, dg, fmt.Errorf("not a snapshot (magic %#x)", uint32(h.Magic))
	}
	l, err := readTree(s, opts)
	if err != nil {
		return nil, dg, err
	}
	s.checkSeal("tree")
	if s.err != nil {
		return nil, dg, s.err
	}
	// Snapshots from before ZooKeeper 3.6 end here; later ones add the
	// zxid digest and a second seal.
	if _, err := s.r.Peek(1); err == nil {
		dg.Zxid = s.int64()
		dg.Version = s.int32()
		dg.Digest = uint64(s.int64())
		dg.streamed = dg.Zxid == 0 && dg.Digest != 0 && zxid != 0
		s.checkSeal("digest")
		if s.err != nil {
			return nil, dg, s.err
		}
	}
	t, err := l.Finish(zxid)
	return t, dg, err
}

// readTree reads what writeTree wrote into a loader.
func readTree(s *snapReader, opts ztree.Options) (*ztree.Loader, error) {
	l := ztree.NewLoader(opts)
	for n := s.int32(); n > 0 && s.err == nil; n-- {
		id := s.int64()
		l.AddSession(id, s.int32())
	}
	acls, err := readACLs(s)
	if err != nil {
		return nil, err
	}
	if err := loadNodes(s, l, acls); err != nil {
		return nil, err
	}
	return l, s.err
}

// readACLs reads a snapshot's ACL lists, by the key its znodes name them.
func readACLs(s *snapReader) (map[int64][]wire.ACL, error) {
	acls := map[int64][]wire.ACL{}
	for n := s.int32(); n > 0 && s.err == nil; n-- {
		key := s.int64()
		cnt := s.int32()
		if cnt < 0 || cnt > 1<<20 {
			return nil, fmt.Errorf("ACL list %d has %d entries", key, cnt)
		}
		list := []wire.ACL{}
		for ; cnt > 0 && s.err == nil; cnt-- {
			perms := s.int32()
			scheme := s.bytes(nil)
			id := s.bytes(nil)
			list = append(list, wire.ACL{Perms: wire.Perm(perms), ID: wire.Id{Scheme: string(scheme), ID: string(id)}})
		}
		acls[key] = list
	}
	return acls, nil
}

// ReadSnapBody reads the tree a leader streams after a SNAP packet (see
// WriteSnapBody) as the tree after txn zxid, the SNAP packet's. It reads
// from r through a *bufio.Reader: pass one, which it then reads no further
// than the signature, when the packets that follow are to be read from it
// too. A stream cut short, malformed or without the signature is an error.
func ReadSnapBody(r io.Reader, zxid int64, opts ztree.Options) (*ztree.Tree, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	s := &snapReader{r: br, sum: adler32.New()}
	l, err := readTree(s, opts)
	if err != nil {
		return nil, fmt.Errorf("wal: the leader's snapshot: %w", err)
	}
	if sig := s.bytes(nil); s.err != nil || string(sig) != snapSignature {
		if s.err == nil {
			s.err = fmt.Errorf("it ends in %q, not the signature %q", sig, snapSignature)
		}
		return nil, fmt.Errorf("wal: the leader's snapshot: %w", s.err)
	}
	t, err := l.Finish(zxid)
	if err != nil {
		return nil, err
	}
	// The learner writes the tree to disk as its snapshot at once, before
	// the txns that would give such a znode its ACL: its table must be
	// whole. A leader that snapshots while it applies (ZooKeeper's) can
	// send one that is not, and the learner will sync again.
	if paths := t.ACLsAwaited(); len(paths) > 0 {
		return nil, fmt.Errorf("wal: the leader's snapshot: znode %q names an ACL the snapshot's ACL table lacks "+
			"(it was written while the leader applied txns)", paths[0])
	}
	return t, nil
}

// snapNode is one znode as the snapshot reader parsed it; path and data
// are offsets into its chunk's buf.
type snapNode struct {
	path, data [2]int
	null       bool // the data is null, not empty
	acl        int64
	st         wire.StatPersisted
}

// snapChunk carries parsed znodes from the reading goroutine to the loading
// one. last says the reader stopped after it: at the end of the znodes, or
// at an error it left in the snapReader.
type snapChunk struct {
	buf   []byte
	nodes []snapNode
	last  bool
}

// loadNodes reads the znode section and feeds it to l. The reading (file,
// decompression, checksum, decoding) runs on a goroutine of its own,
// chunks ahead of the loading, so a restart uses both cores. Once it
// returns, s is the caller's again, positioned after the section (or
// holding the error that stopped it).
func loadNodes(s *snapReader, l *ztree.Loader, acls map[int64][]wire.ACL) error {
	const chunks = 3
	free := make(chan *snapChunk, chunks)
	full := make(chan *snapChunk, chunks)
	quit := make(chan struct{})
	for range chunks {
		free <- &snapChunk{buf: make([]byte, 0, 256<<10), nodes: make([]snapNode, 0, 2048)}
	}
	go func() {
		defer close(full)
		var stb [60]byte // a StatPersisted; one for the whole section
		for {
			var c *snapChunk
			select {
			case c = <-free:
			case <-quit:
				return
			}
			c.buf, c.nodes = c.buf[:0], c.nodes[:0]
			for len(c.buf) < 256<<10 && len(c.nodes) < 2048 {
				var n snapNode
				n.path[0] = len(c.buf)
				c.buf = s.appendField(c.buf)
				n.path[1] = len(c.buf)
				if s.err != nil || string(c.buf[n.path[0]:n.path[1]]) == "/" {
					c.buf = c.buf[:n.path[0]]
					c.last = true
					break
				}
				n.data[0] = len(c.buf)
				c.buf = s.appendField(c.buf)
				n.data[1] = len(c.buf)
				n.null = s.null
				n.acl = s.int64()
				s.read(stb[:])
				if s.err != nil {
					c.last = true
					break
				}
				if _, err := n.st.Decode(stb[:], wire.Copy); err != nil {
					s.err = err
					c.last = true
					break
				}
				c.nodes = append(c.nodes, n)
			}
			select {
			case full <- c:
			case <-quit:
				return
			}
			if c.last {
				return
			}
		}
	}()
	var err error
	for c := range full {
		for i := range c.nodes {
			n := &c.nodes[i]
			path := c.buf[n.path[0]:n.path[1]]
			acl := ztree.OpenACL
			// AddNode copies what it keeps of path and data.
			data := c.buf[n.data[0]:n.data[1]:n.data[1]]
			if n.null {
				data = nil
			}
			if n.acl != -1 {
				var ok bool
				if acl, ok = acls[n.acl]; !ok {
					// A fuzzy snapshot's: the txns after it hold the ACL.
					if err = l.AddNodeAwaitingACL(stringOf(path), data, n.st); err != nil {
						break
					}
					continue
				}
			}
			if err = l.AddNode(stringOf(path), data, acl, n.st); err != nil {
				break
			}
		}
		if err != nil {
			close(quit)
			for range full { // wait for the reader to let go of s
			}
			return err
		}
		free <- c
	}
	return nil
}

// decompressor wraps r for the compression of the file name.
func decompressor(r io.Reader, method string) (io.Reader, func(), error) {
	switch method {
	case "":
		return r, func() {}, nil
	case "gz":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case "snappy":
		z, err := newSnappyJavaReader(r)
		return z, func() {}, err
	case "zstd":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q", method)
}

// loadSnapshot reads the snapshot file name in dir. An error reading the
// file (opening it, or a read the OS failed) comes back as a
// *SnapshotIOError: the file may be intact, so recovery must not take it
// for a damaged one. Any other error means the bytes read are not a whole
// snapshot (cut short, a checksum or the format wrong).
func loadSnapshot(fs vfs.FS, dir, name string, opts ztree.Options) (*ztree.Tree, snapDigest, error) {
	zxid, _ := zxidOf(name, snapPrefix)
	file := path.Join(dir, name)
	f, err := fs.OpenRead(file)
	if err != nil {
		return nil, snapDigest{}, &SnapshotIOError{File: file, Err: err}
	}
	defer f.Close()
	r := &readErrors{r: &vfs.Reader{F: f}}
	t, dg, err := func() (*ztree.Tree, snapDigest, error) {
		z, done, err := decompressor(r, compressionOf(name))
		if err != nil {
			return nil, snapDigest{}, err
		}
		defer done()
		return readSnapshot(z, zxid, opts)
	}()
	if r.err != nil {
		// Whatever the parser made of it, the file was not read whole.
		return nil, snapDigest{}, &SnapshotIOError{File: file, Err: r.err}
	}
	return t, dg, err
}

// SnapshotIOError is a snapshot that could not be read: the file system
// refused to open it or failed a read (permissions, EIO, …). It says
// nothing about the snapshot's contents, so recovery stops on it rather
// than start from an older tree.
type SnapshotIOError struct {
	File string
	Err  error
}

func (e *SnapshotIOError) Error() string {
	return fmt.Sprintf("wal: cannot read snapshot %s: %v. zkd will not start from an older snapshot, "+
		"which would lose the txns this one holds: make the file readable by the user zkd runs as "+
		"(or repair the disk) and start again", e.File, e.Err)
}

func (e *SnapshotIOError) Unwrap() error { return e.Err }

// readErrors passes reads through and keeps the first error other than
// io.EOF, which a decompressor or parser may otherwise report as damage.
type readErrors struct {
	r   io.Reader
	err error
}

func (r *readErrors) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// The stream format of snappy-java's SnappyOutputStream, which ZooKeeper
// uses for .snappy snapshots: an 8-byte magic, two 4-byte versions, then
// blocks, each a 4-byte big-endian length and a raw snappy block.
var snappyJavaMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const snappyJavaBlock = 32 << 10 // snappy-java's default block size

type snappyJavaWriter struct {
	w       io.Writer
	buf     []byte
	started bool
	err     error
}

func (z *snappyJavaWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && z.err == nil {
		k := min(len(p), snappyJavaBlock-len(z.buf))
		z.buf = append(z.buf, p[:k]...)
		p = p[k:]
		if len(z.buf) == snappyJavaBlock {
			z.flush()
		}
	}
	return n, z.err
}

func (z *snappyJavaWriter) flush() {
	if !z.started {
		h := append(append([]byte(nil), snappyJavaMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
		_, z.err = z.w.Write(h)
		z.started = true
	}
	if len(z.buf) == 0 || z.err != nil {
		return
	}
	enc := snappy.Encode(nil, z.buf)
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(enc)))
	if _, z.err = z.w.Write(l[:]); z.err == nil {
		_, z.err = z.w.Write(enc)
	}
	z.buf = z.buf[:0]
}

func (z *snappyJavaWriter) Close() error {
	z.flush()
	return z.err
}

type snappyJavaReader struct {
	r   *bufio.Reader
	out []byte
	pos int
	in  []byte
}

func newSnappyJavaReader(r io.Reader) (*snappyJavaReader, error) {
	br := bufio.NewReader(r)
	var h [16]byte
	if _, err := io.ReadFull(br, h[:]); err != nil || !bytes.Equal(h[:8], snappyJavaMagic) {
		return nil, errors.New("not a snappy-java stream")
	}
	return &snappyJavaReader{r: br}, nil
}

func (z *snappyJavaReader) Read(p []byte) (int, error) {
	for z.pos == len(z.out) {
		var l [4]byte
		if _, err := io.ReadFull(z.r, l[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				return 0, errShort
			}
			return 0, err
		}
		n := binary.BigEndian.Uint32(l[:])
		if n > math.MaxInt32 || n > 64<<20 {
			return 0, fmt.Errorf("snappy block of %d bytes", n)
		}
		if cap(z.in) < int(n) {
			z.in = make([]byte, n)
		}
		z.in = z.in[:n]
		if _, err := io.ReadFull(z.r, z.in); err != nil {
			return 0, errShort
		}
		out, err := snappy.Decode(z.out[:cap(z.out)], z.in)
		if err != nil {
			return 0, err
		}
		z.out, z.pos = out, 0
	}
	n := copy(p, z.out[z.pos:])
	z.pos += n
	return n, nil
}
