package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"zkd/wire"
	"zkd/ztree"
)

// The file formats of Apache ZooKeeper 3.8 (FileTxnLog, FileSnap).
const (
	logMagic      = 0x5a4b4c47 // "ZKLG"
	snapMagic     = 0x5a4b534e // "ZKSN"
	formatVersion = 2
	fileHeaderLen = 16 // magic, version, dbid
	entryHeadLen  = 12 // Adler32 checksum as a long, payload length
	endOfRecord   = 'B'

	versionDir = "version-2"
	logPrefix  = "log."
	snapPrefix = "snapshot."
	tmpPrefix  = "tmp."
)

// Txn is one logged transaction: the header, the record its type names
// (nil for types without one) and the data-tree digest after it (nil where
// ZooKeeper logs none, as for error txns).
type Txn struct {
	Header wire.TxnHeader
	Record wire.Record
	Digest *wire.TxnDigest
}

func appendFileHeader(dst []byte, magic int32) []byte {
	h := wire.FileHeader{Magic: magic, Version: formatVersion}
	if magic == snapMagic {
		h.DBID = -1 // what ZooKeeper's FileSnap writes
	}
	return h.Append(dst)
}

// AppendTxn appends a txn's entry as the log holds it and a PROPOSAL or
// INFORM carries it: the TxnHeader, the txn record, and the digest when
// there is one.
func AppendTxn(dst []byte, t *Txn) []byte {
	dst = t.Header.Append(dst)
	if t.Record != nil {
		dst = t.Record.Append(dst)
	}
	if t.Digest != nil {
		dst = t.Digest.Append(dst)
	}
	return dst
}

// EncodeTxn is AppendTxn into a buffer of its own, sized for the txn's
// data at once: a txn that carries a znode's data would otherwise be
// copied as the buffer grows (for a setData of 1 KB, five allocations
// become one: BenchmarkEncodeTxn).
func EncodeTxn(t *Txn) []byte {
	n := 96 // the header, the digest and a record's fixed fields
	switch r := t.Record.(type) {
	case *wire.SetDataTxn:
		n += len(r.Path) + len(r.Data)
	case *wire.CreateTxn:
		n += len(r.Path) + len(r.Data) + 64*len(r.ACL)
	}
	return AppendTxn(make([]byte, 0, n), t)
}

// DecodeTxn reads a txn's entry (what AppendTxn writes), as the log,
// PROPOSAL and INFORM hold it. What it returns does not point into entry.
func DecodeTxn(entry []byte) (Txn, error) { return decodeTxn(entry) }

// DecodeTxnInPlace is DecodeTxn for an entry nobody changes or reuses
// while the txn is in use: its strings and byte slices point into entry
// instead of being copied (a learner's PROPOSAL, read into a buffer of
// its own).
func DecodeTxnInPlace(entry []byte) (Txn, error) { return decodeTxnAs(entry, wire.Alias) }

// appendEntry appends one log entry: checksum, length, the txn and the
// end-of-record byte.
func appendEntry(dst []byte, t *Txn) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, entryHeadLen)...)
	return sealEntry(AppendTxn(dst, t), start)
}

// appendEncodedEntry is appendEntry for a txn already encoded (AppendTxn).
func appendEncodedEntry(dst []byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, entryHeadLen)...)
	return sealEntry(append(dst, payload...), start)
}

// sealEntry fills in the head of the entry that starts at start and ends
// dst, and appends the end-of-record byte.
func sealEntry(dst []byte, start int) []byte {
	payload := dst[start+entryHeadLen:]
	binary.BigEndian.PutUint64(dst[start:], uint64(adlerSum(payload)))
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(payload)))
	return append(dst, endOfRecord)
}

// entryStatus is what parseEntry found at an offset.
type entryStatus int

const (
	entryOK  entryStatus = iota
	entryEnd             // a zero length: the preallocated rest of the file, or its end
	entryBad             // a record that is cut short or fails its checksum
)

// parseEntry looks at the log entry at the start of b and returns its
// payload and total size.
func parseEntry(b []byte) (payload []byte, size int, st entryStatus) {
	if len(b) < entryHeadLen {
		if allZero(b) {
			return nil, 0, entryEnd
		}
		return nil, 0, entryBad
	}
	sum := binary.BigEndian.Uint64(b)
	n := entryLength(b)
	if n == 0 {
		return nil, 0, entryEnd
	}
	if n < 0 || int64(entryHeadLen)+n+1 > int64(len(b)) {
		return nil, 0, entryBad
	}
	payload = b[entryHeadLen : entryHeadLen+n]
	if uint64(adlerSum(payload)) != sum || b[entryHeadLen+n] != endOfRecord {
		return nil, 0, entryBad
	}
	return payload, entryHeadLen + int(n) + 1, entryOK
}

// entryLength is the payload length an entry's head (at least
// entryHeadLen bytes) claims; a damaged one may be negative or huge.
func entryLength(head []byte) int64 { return int64(int32(binary.BigEndian.Uint32(head[8:]))) }

var zeros [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// decodeTxn decodes a log entry's payload.
func decodeTxn(payload []byte) (Txn, error) { return decodeTxnAs(payload, wire.Copy) }

// decodeTxnAs is decodeTxn, reading strings and byte slices as mode says.
func decodeTxnAs(payload []byte, mode wire.Mode) (Txn, error) {
	var t Txn
	n, err := t.Header.Decode(payload, mode)
	if err != nil {
		return t, err
	}
	rec, ok := wire.TxnRecord(t.Header.Type)
	if !ok {
		return t, fmt.Errorf("unknown txn type %d", int32(t.Header.Type))
	}
	if rec != nil {
		// A closeSession txn may have no record: ZooKeeper's before 3.7,
		// and 3.8's with closeSessionTxn.enabled=false, which still logs
		// a digest after the header. No record of 12 bytes that opens as
		// a digest (version 2, two paths) can list two real paths.
		if t.Header.Type == wire.OpCloseSession && (n == len(payload) || len(payload)-n == digestLen && digestVersionAt(payload[n:])) {
			rec = nil
		} else {
			m, err := rec.Decode(payload[n:], mode)
			if err != nil {
				return t, fmt.Errorf("%v txn: %w", t.Header.Type, err)
			}
			n += m
		}
	}
	t.Record = rec
	if n < len(payload) {
		var d wire.TxnDigest
		m, err := d.Decode(payload[n:], mode)
		if err != nil || n+m != len(payload) {
			return t, errors.New("bytes after the txn are not a digest")
		}
		t.Digest = &d
	}
	return t, nil
}

// digestLen is an encoded TxnDigest's length: its version and the tree
// digest.
const digestLen = 4 + 8

// digestVersionAt reports whether b opens with the digest version
// ZooKeeper 3.8 writes.
func digestVersionAt(b []byte) bool {
	return len(b) >= 4 && int32(binary.BigEndian.Uint32(b)) == ztree.DigestVersion
}

// Names: log.<hex zxid of the first txn>, snapshot.<hex zxid>[.gz|.snappy|.zst].

func logName(zxid int64) string  { return logPrefix + strconv.FormatInt(zxid, 16) }
func snapName(zxid int64) string { return snapPrefix + strconv.FormatInt(zxid, 16) }

// zxidOf parses the zxid of a log or snapshot file name, ok false when the
// name is not one.
func zxidOf(name, prefix string) (int64, bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, false
	}
	hex, _, _ := strings.Cut(rest, ".")
	z, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, false
	}
	return int64(z), true
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stringOf views b as a string without copying; b must not change while
// the string is in use.
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
