package ztree

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"unsafe"
)

// DigestVersion is the version of the digest algorithm, as TxnDigest and
// snapshots carry it (ZooKeeper 3.8's DigestCalculator is version 2).
const DigestVersion = 2

// nodeDigest is ZooKeeper's per-znode digest: CRC-32 (IEEE) over the path,
// the data and nine Stat fields, big-endian. The tree digest is the sum of
// the node digests, wrapping at 64 bits, so a change subtracts the old
// node's digest and adds the new one. Nodes under /zookeeper/ count as 0
// (ZooKeeper updates quota nodes locally and leaves them out), and the root
// is hashed under the empty path.
func nodeDigest(path, data string, m *meta) uint64 {
	if strings.HasPrefix(path, systemSubtree) {
		return 0
	}
	if path == rootPath {
		path = ""
	}
	var b [60]byte
	binary.BigEndian.PutUint64(b[0:], uint64(m.Czxid))
	binary.BigEndian.PutUint64(b[8:], uint64(m.Mzxid))
	binary.BigEndian.PutUint64(b[16:], uint64(m.Pzxid))
	binary.BigEndian.PutUint64(b[24:], uint64(m.Ctime))
	binary.BigEndian.PutUint64(b[32:], uint64(m.Mtime))
	binary.BigEndian.PutUint32(b[40:], uint32(m.Version))
	binary.BigEndian.PutUint32(b[44:], uint32(m.Cversion))
	binary.BigEndian.PutUint32(b[48:], uint32(m.Aversion))
	binary.BigEndian.PutUint64(b[52:], uint64(m.Owner))
	crc := crc32.Update(0, crc32.IEEETable, bytesOf(path))
	crc = crc32.Update(crc, crc32.IEEETable, bytesOf(data))
	crc = crc32.Update(crc, crc32.IEEETable, b[:])
	return uint64(crc)
}

func itemDigest(it item) uint64 {
	m := it.meta()
	return nodeDigest(it.path(), it.data(), &m)
}

// stringOf views b as a string without copying; b must not change while
// the string is in use.
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// bytesOf views s as bytes without copying; the result must not be changed.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
