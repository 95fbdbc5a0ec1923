package ztree

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/cespare/xxhash/v2"

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
// record, path | header | data, where the header is the data length and
// the meta as varints (the data length takes the place a header length
// would: one more byte would move many records up a size class). A change
// to a znode makes a new record, so a published version can share items
// with the applier's tree without locks, and a znode costs one allocation
// plus this 24-byte slot.
//
// A lookup key is an item whose p is the path alone, with no header.
//
// Items are ordered by (parent hash, name prefix, parent path, name). The
// first two are in the slot, so a search decides most of its comparisons
// without reading the records, which are scattered over the heap and cost
// a cache miss each. The children of one znode share the parent hash, so
// they are a contiguous run sorted by name (the prefix orders them as the
// name does, and the name decides ties), interleaved only with the children
// of a parent whose hash collides, which readers skip; they also share a
// shard, chosen by the same hash.
type item struct {
	p    unsafe.Pointer // the record, a lookup key's path, or a *cell (cellBit)
	klen uint32         // len(path), with cellBit when p is a *cell
	ph   uint32         // parentHash of the path's parent
	pfx  uint64         // namePrefix of the path's name
}

func (it item) path() string {
	if it.klen&cellBit != 0 {
		// A cell's head record starts with the path too.
		return unsafe.String((*cell)(it.p).rec.Load(), int(it.klen&^cellBit))
	}
	return unsafe.String((*byte)(it.p), int(it.klen))
}

// mustBeRecord stops a read of a record through a cell's item, which would
// read the cell's memory as a record.
func (it item) mustBeRecord() {
	if it.klen&cellBit != 0 {
		panic("ztree: a record read through a cell: " + it.path())
	}
}

func (it item) parent() string {
	p := it.path()
	return p[:lastSlash(p)]
}

func (it item) name() string {
	p := it.path()
	s := lastSlash(p)
	if s+1 >= len(p) {
		return "" // the root
	}
	return p[s+1:]
}

// shard is the index of the B-tree the item belongs in.
func (it item) shard() int { return int(it.ph & (shardCount - 1)) }

// at is byte i of the record.
func (it item) at(i int) byte { return *(*byte)(unsafe.Add(it.p, i)) }

// uvarintAt decodes the varint at offset i of the record, which its writer
// made, so it is well formed; it returns the value and the offset after it.
func (it item) uvarintAt(i int) (uint64, int) {
	var x uint64
	var s uint
	for {
		c := it.at(i)
		i++
		if c < 0x80 {
			return x | uint64(c)<<s, i
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
}

// metaFields is the number of varints meta.appendTo writes.
const metaFields = 11

// pooledSize reports whether the record's memory is the pool's, and the
// record's length.
func (it item) pooledSize() (bool, int) {
	it.mustBeRecord()
	n, i := it.uvarintAt(int(it.klen))
	for k := 1; k < metaFields; i++ {
		if it.at(i) < 0x80 {
			k++
		}
	}
	acl, i := it.uvarintAt(i) // the last field
	return acl&1 == 1, i + dataLen(n)
}

// The header's first varint is the data's length plus one, or 0 for null
// data: ZooKeeper keeps null (a create or setData with no data, as
// Curator's containers and setQuota's nodes have) apart from empty, and
// returns and snapshots it as length -1. In a string, null is the one
// with no pointer (see isNull).

// dataLen is the data length a header's first varint gives.
func dataLen(v uint64) int {
	if v == 0 {
		return 0
	}
	return int(v - 1)
}

// isNull reports whether data is null rather than empty.
func isNull(data string) bool { return unsafe.StringData(data) == nil }

// IsNull reports whether a znode's Data is null (length -1 on the wire and
// in snapshots) rather than empty.
func IsNull(data string) bool { return isNull(data) }

// emptyByte gives empty, non-null data its pointer.
var emptyByte byte

// Empty is empty data that is not null.
var Empty = unsafe.String(&emptyByte, 0)

// data returns the znode's data, sharing the record's memory.
func (it item) data() string {
	it.mustBeRecord()
	v, i := it.uvarintAt(int(it.klen))
	switch v {
	case 0:
		return "" // null: no pointer
	case 1:
		// Empty, not null: a non-nil pointer (the record's start; past
		// its end is not a pointer into it).
		return unsafe.String((*byte)(it.p), 0)
	}
	for k := 0; k < metaFields; i++ {
		if it.at(i) < 0x80 {
			k++
		}
	}
	return unsafe.String((*byte)(unsafe.Add(it.p, i)), dataLen(v))
}

// parentHash picks a parent's shard (its low bits) and orders the parents
// within a shard.
func parentHash(parent string) uint32 { return uint32(xxhash.Sum64String(parent) >> 32) }

// namePrefix is a name's first eight bytes as a big-endian number, padded
// with zeros: names that differ in them compare as these numbers do, and
// no name holds a NUL (ValidatePath refuses control characters).
func namePrefix(name string) uint64 {
	if len(name) >= 8 {
		return binary.BigEndian.Uint64(unsafe.Slice(unsafe.StringData(name), 8))
	}
	var x uint64
	for i := 0; i < len(name); i++ {
		x |= uint64(name[i]) << (56 - 8*i)
	}
	return x
}

// lessItem orders items by (parent hash, name prefix, parent path, name).
// Every lookup makes a few dozen of these calls; among siblings only those
// whose names share their first eight bytes read the records.
func lessItem(a, b item) bool {
	if a.ph != b.ph {
		return a.ph < b.ph
	}
	if a.pfx != b.pfx {
		return a.pfx < b.pfx
	}
	// A search that finds its key ends with two comparisons of equal
	// paths, which need no parsing.
	pa, pb := a.path(), b.path()
	if pa == pb {
		return false
	}
	return lessPath(pa, pb)
}

// lessPath orders two paths by (parent path, name). That is the byte order
// of the keys parent + "\x00" + name (no path holds a NUL), which is the path
// with its last '/' read as 0; so one pass over the two paths decides, with
// no second comparison of the names.
func lessPath(a, b string) bool {
	sa, sb := lastSlash(a), lastSlash(b)
	i := mismatch(a, b)
	if sa != sb {
		// Up to i the paths agree; at the first of the two last slashes
		// before i, the path whose last slash it is reads 0, the other '/'.
		if s := min(sa, sb); s < i {
			return sa < sb
		}
	}
	x, y := keyByte(a, sa, i), keyByte(b, sb, i)
	if x == 0 && y == 0 {
		// Both at their last slash, where the paths' bytes differ: the
		// names after it decide.
		return a[min(i+1, len(a)):] < b[min(i+1, len(b)):]
	}
	return x < y
}

// keyByte is byte i of a path as lessPath reads it: 0 at the last slash, -1
// past the end.
func keyByte(p string, slash, i int) int {
	switch {
	case i == slash:
		return 0
	case i < len(p):
		return int(p[i])
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
	s := lastSlash(path)
	it := item{p: unsafe.Pointer(unsafe.StringData(path)), klen: uint32(len(path)), ph: parentHash(path[:s])}
	if s+1 < len(path) {
		it.pfx = namePrefix(path[s+1:])
	}
	return it
}

// childrenKey is a key at or before every child of path (the root's
// children are filed under the parent ""); they follow it, among the keys
// with the same parent hash.
func childrenKey(path string) item {
	if path == "/" {
		path = ""
	}
	return item{p: unsafe.Pointer(unsafe.StringData(path)), klen: uint32(len(path)), ph: parentHash(path)}
}

func lastSlash(path string) int {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return 0
	}
	return i
}

// maxHeader bounds the header: the data length and the meta, twelve
// varints of at most 10 bytes.
const maxHeader = (1 + metaFields) * binary.MaxVarintLen64

func (m *meta) appendTo(b []byte, pooled bool) []byte {
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
	// The ACL index's low bit says whether the record's memory is the
	// pool's (see recordPool); the bit never changes the varint's length.
	acl := uint64(m.ACL) << 1
	if pooled {
		acl |= 1
	}
	return binary.AppendUvarint(b, acl)
}

// makeItem builds the record of a znode in a single allocation: path, data
// length and meta as varints, data. key is the znode's lookup key or its
// current item, whose path, parent hash and name prefix carry over without
// being computed again.
func makeItem(key item, m *meta, data string) item {
	return makeItemFrom(nil, key, m, data)
}

// makeItemFrom is makeItem for a record the pool may reuse later (when
// record reuse is on): its memory is rounded up to a size class, taken
// from the pool's free records when it has one of that class.
func makeItemFrom(pool *recordPool, key item, m *meta, data string) item {
	path := key.path()
	pooled := pool != nil && pool.readers != nil && len(path)+maxHeader+len(data) <= maxPooledRecord
	var hdr [maxHeader]byte
	dl := uint64(len(data)) + 1
	if isNull(data) {
		dl = 0
	}
	h := binary.AppendUvarint(hdr[:0], dl)
	h = m.appendTo(h, pooled)
	n := len(path) + len(h) + len(data)
	var buf []byte
	if pooled {
		c := recordClass(n)
		if buf = pool.take(c); buf == nil {
			buf = make([]byte, 0, c)
		}
	} else {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, path...)
	buf = append(buf, h...)
	buf = append(buf, data...)
	key.p = unsafe.Pointer(unsafe.SliceData(buf))
	return key
}

// meta decodes the item's metadata. The record was written by makeItem, so
// the varints are well formed.
func (it item) meta() meta {
	it.mustBeRecord()
	var m meta
	_, i := it.uvarintAt(int(it.klen)) // the data length
	u := func() uint64 {
		x, next := it.uvarintAt(i)
		i = next
		return x
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
	m.ACL = uint32(u() >> 1) // the low bit is the pool's
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
