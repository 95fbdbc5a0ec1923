package ztree

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unsafe"

	"zkd/wire"
)

// meta is a znode's metadata as the tree keeps it. Cversion is ZooKeeper's
// persisted cversion, which counts child creates only; clients see
// 2*Cversion - NumChildren, which also counts deletes (see Stat).
type meta struct {
	Czxid, Mzxid, Pzxid int64
	Ctime, Mtime        int64
	Version             int32
	Cversion            int32
	Aversion            int32
	Owner               int64 // raw ephemeralOwner: session, container or TTL marker
	NumChildren         int32
	ACL                 uint32 // index into the ACL table
}

// item is one znode in a shard's B-tree. The znode lives in one immutable
// string, rec = path | header | data, where the header is a length byte and
// the varint-encoded meta. A change to a znode makes a new rec, so a published
// version can share items with the applier's tree without locks, and a znode
// costs one allocation plus this 24-byte slot.
//
// Items are ordered by (parent path, name): the children of one znode are a
// contiguous range, sorted by name, and they share a shard because the shard
// is chosen by the parent path.
type item struct {
	rec   string
	klen  uint32 // len(path)
	slash uint32 // index of the last '/' in path
}

func (it item) path() string   { return it.rec[:it.klen] }
func (it item) parent() string { return it.rec[:it.slash] }

func (it item) name() string {
	if it.slash >= it.klen {
		return ""
	}
	return it.rec[it.slash+1 : it.klen]
}

// data returns the znode's data, sharing the record's memory.
func (it item) data() string {
	h := int(it.klen)
	return it.rec[h+1+int(it.rec[h]):]
}

// lessItem orders items by (parent path, name). That is the byte order of
// the keys parent + "\x00" + name (no path holds a NUL: ValidatePath refuses
// control characters), which is the path with its last '/' read as 0; so
// one pass over the two paths decides, with no second comparison of the
// names. Every lookup makes a few dozen of these calls.
func lessItem(a, b item) bool {
	i := mismatch(a.rec[:a.klen], b.rec[:b.klen])
	if a.slash != b.slash {
		// Up to i the paths agree; at the first of the two last slashes
		// before i, the item whose last slash it is reads 0, the other '/'.
		if s := min(a.slash, b.slash); int(s) < i {
			return a.slash < b.slash
		}
	}
	x, y := keyByte(a, i), keyByte(b, i)
	if x == 0 && y == 0 {
		// Both at their last slash, where the paths' bytes differ: one
		// is a children key ending there, the other a path whose last
		// slash is there. The names after it decide.
		return a.rec[min(i+1, int(a.klen)):a.klen] < b.rec[min(i+1, int(b.klen)):b.klen]
	}
	return x < y
}

// keyByte is byte i of the item's key as lessItem reads it: 0 at the last
// slash (which childrenKey puts just past the end), -1 past the end.
func keyByte(it item, i int) int {
	switch {
	case i == int(it.slash):
		return 0
	case i < int(it.klen):
		return int(it.rec[i])
	}
	return -1
}

// mismatch is the index of the first byte where a and b differ, or the
// length of the shorter one. It compares eight bytes at a time.
func mismatch(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		x := load64(a, i) ^ load64(b, i)
		if x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// load64 reads s[i:i+8] as a little-endian word; the caller checks bounds.
func load64(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
}

// keyOf is the lookup key of path. It shares path's memory.
func keyOf(path string) item {
	return item{rec: path, klen: uint32(len(path)), slash: uint32(lastSlash(path))}
}

// childrenKey is the first key at or after every child of path.
func childrenKey(path string) item {
	if path == "/" {
		path = ""
	}
	n := uint32(len(path))
	return item{rec: path, klen: n, slash: n}
}

func lastSlash(path string) int {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return 0
	}
	return i
}

// maxHeader bounds the encoded meta: eleven varints of at most 10 bytes.
const maxHeader = 1 + 11*binary.MaxVarintLen64

func (m *meta) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(m.Czxid))
	b = binary.AppendVarint(b, m.Mzxid-m.Czxid)
	b = binary.AppendVarint(b, m.Pzxid-m.Czxid)
	b = binary.AppendVarint(b, m.Ctime)
	b = binary.AppendVarint(b, m.Mtime-m.Ctime)
	b = binary.AppendVarint(b, int64(m.Version))
	b = binary.AppendVarint(b, int64(m.Cversion))
	b = binary.AppendVarint(b, int64(m.Aversion))
	b = binary.AppendVarint(b, m.Owner)
	b = binary.AppendUvarint(b, uint64(m.NumChildren))
	return binary.AppendUvarint(b, uint64(m.ACL))
}

// makeItem builds the record of a znode in a single allocation.
func makeItem(path string, m *meta, data string) item {
	var hdr [maxHeader]byte
	h := m.appendTo(hdr[:1])
	hdr[0] = byte(len(h) - 1)
	buf := make([]byte, 0, len(path)+len(h)+len(data))
	buf = append(buf, path...)
	buf = append(buf, h...)
	buf = append(buf, data...)
	return item{
		rec:   unsafe.String(unsafe.SliceData(buf), len(buf)),
		klen:  uint32(len(path)),
		slash: uint32(lastSlash(path)),
	}
}

// meta decodes the item's metadata. The record was written by makeItem, so
// the varints are well formed.
func (it item) meta() meta {
	var m meta
	b := it.rec[it.klen+1:]
	u := func() uint64 {
		var x uint64
		var s uint
		for i := 0; ; i++ {
			c := b[i]
			if c < 0x80 {
				b = b[i+1:]
				return x | uint64(c)<<s
			}
			x |= uint64(c&0x7f) << s
			s += 7
		}
	}
	v := func() int64 {
		x := u()
		return int64(x>>1) ^ -int64(x&1)
	}
	m.Czxid = int64(u())
	m.Mzxid = m.Czxid + v()
	m.Pzxid = m.Czxid + v()
	m.Ctime = v()
	m.Mtime = m.Ctime + v()
	m.Version = int32(v())
	m.Cversion = int32(v())
	m.Aversion = int32(v())
	m.Owner = v()
	m.NumChildren = int32(u())
	m.ACL = uint32(u())
	return m
}

// stat is the Stat a client sees for a znode with metadata m and data of
// length dlen: cversion counts deletes too, and only a plain ephemeral shows
// its owner (a container's or TTL node's marker is internal).
func (m *meta) stat(dlen int, extended bool) wire.Stat {
	owner := m.Owner
	if ephemeralKind(owner, extended) != kindEphemeral {
		owner = 0
	}
	return wire.Stat{
		Czxid:          m.Czxid,
		Mzxid:          m.Mzxid,
		Ctime:          m.Ctime,
		Mtime:          m.Mtime,
		Version:        m.Version,
		Cversion:       m.Cversion*2 - m.NumChildren,
		Aversion:       m.Aversion,
		EphemeralOwner: owner,
		DataLength:     int32(dlen),
		NumChildren:    m.NumChildren,
		Pzxid:          m.Pzxid,
	}
}

// persisted is the StatPersisted of m, as snapshots store it.
func (m *meta) persisted() wire.StatPersisted {
	return wire.StatPersisted{
		Czxid: m.Czxid, Mzxid: m.Mzxid, Ctime: m.Ctime, Mtime: m.Mtime,
		Version: m.Version, Cversion: m.Cversion, Aversion: m.Aversion,
		EphemeralOwner: m.Owner, Pzxid: m.Pzxid,
	}
}

// nodeKind is what a znode's ephemeralOwner makes of it.
type nodeKind uint8

const (
	kindPersistent nodeKind = iota
	kindEphemeral
	kindContainer
	kindTTL
)

// Extended ephemeralOwner layout (ZooKeeper's EphemeralType): a container is
// exactly MinInt64; with extended types enabled, a TTL node has the top byte
// 0xff, two zero feature bytes, and the TTL in milliseconds in the low 40 bits.
const (
	containerOwner  = int64(-1 << 63)
	extendedMask    = int64(-1 << 56) // 0xff00000000000000
	reservedMask    = int64(0x00ffff0000000000)
	ttlValueMask    = ^(extendedMask | reservedMask)
	maxTTL          = ttlValueMask
	extendedTTLBits = int64(0)
)

func ephemeralKind(owner int64, extended bool) nodeKind {
	if extended && owner&extendedMask == extendedMask {
		if owner&reservedMask == extendedTTLBits {
			return kindTTL
		}
		// An unknown extended feature: ZooKeeper refuses it; treat it
		// as an ordinary ephemeral so nothing reaps it by mistake.
		return kindEphemeral
	}
	switch owner {
	case containerOwner:
		return kindContainer
	case 0:
		return kindPersistent
	}
	return kindEphemeral
}

func ttlOwner(ttl int64) int64 { return extendedMask | extendedTTLBits | ttl }

func validTTL(ttl int64) bool { return ttl > 0 && ttl <= maxTTL }
