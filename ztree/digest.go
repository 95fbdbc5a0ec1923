package ztree

import (
	"hash/crc32"
	"math/bits"
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
	crc := crc32.Update(0, crc32.IEEETable, bytesOf(path))
	crc = crc32.Update(crc, crc32.IEEETable, bytesOf(data))
	// The Stat fields go through the table byte by byte: a stack buffer
	// handed to crc32 would escape and cost an allocation per znode.
	crc = ^crc
	crc = crcWord(crc, uint64(m.Czxid), 8)
	crc = crcWord(crc, uint64(m.Mzxid), 8)
	crc = crcWord(crc, uint64(m.Pzxid), 8)
	crc = crcWord(crc, uint64(m.Ctime), 8)
	crc = crcWord(crc, uint64(m.Mtime), 8)
	crc = crcWord(crc, uint64(uint32(m.Version)), 4)
	crc = crcWord(crc, uint64(uint32(m.Cversion)), 4)
	crc = crcWord(crc, uint64(uint32(m.Aversion)), 4)
	crc = crcWord(crc, uint64(m.Owner), 8)
	return uint64(^crc)
}

// crcTables are slicing-by-8 tables for CRC-32 (IEEE): crcTables[k][b] is
// what byte b followed by k zero bytes does to the register. A Stat field
// then costs one round of independent lookups instead of a chain of eight.
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for b := range 256 {
		c := t[0][b]
		for k := 1; k < 8; k++ {
			c = t[0][byte(c)] ^ c>>8
			t[k][b] = c
		}
	}
	return t
}()

// crcWord feeds the n low bytes of v (n is 4 or 8), big-endian, into a
// CRC-32 (IEEE) register that is kept inverted, as crc32.Update keeps it
// inside.
func crcWord(crc uint32, v uint64, n int) uint32 {
	t := &crcTables
	if n == 4 {
		crc ^= bits.ReverseBytes32(uint32(v))
		return t[0][crc>>24] ^ t[1][byte(crc>>16)] ^ t[2][byte(crc>>8)] ^ t[3][byte(crc)]
	}
	crc ^= bits.ReverseBytes32(uint32(v >> 32))
	return t[0][byte(v)] ^ t[1][byte(v>>8)] ^ t[2][byte(v>>16)] ^ t[3][byte(v>>24)] ^
		t[4][crc>>24] ^ t[5][byte(crc>>16)] ^ t[6][byte(crc>>8)] ^ t[7][byte(crc)]
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
