package wire

import (
	"encoding/binary"
	"unsafe"
)

// Jute primitives. Every multi-byte value is big-endian; ustring, buffer and
// vector carry an int32 length or count first, where -1 means null.

// Mode selects whether decoded strings and byte slices alias the input.
type Mode uint8

const (
	// Copy makes every decoded string and []byte an independent copy: the
	// record stays valid after the input buffer is reused.
	Copy Mode = iota
	// Alias makes decoded strings and []byte fields point into the input,
	// and reuses the capacity of slices already in the record (their old
	// contents are overwritten). Nothing is allocated in steady state, but
	// the record is valid only while the input is unchanged.
	Alias
)

func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendString writes a ustring. Go strings cannot be null, so a string is
// always written with its length (never -1).
func appendString(b []byte, s string) []byte {
	b = appendInt32(b, int32(len(s)))
	return append(b, s...)
}

// appendOptString writes a ustring that may be null (nil).
func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return appendInt32(b, -1)
	}
	return appendString(b, *s)
}

// appendBuffer writes a buffer; a nil slice is written as null (-1), a
// non-nil empty slice as length 0, as the Java client distinguishes them.
func appendBuffer(b []byte, p []byte) []byte {
	if p == nil {
		return appendInt32(b, -1)
	}
	b = appendInt32(b, int32(len(p)))
	return append(b, p...)
}

// appendStrings writes a vector<ustring>; nil is written as null (-1).
func appendStrings(b []byte, v []string) []byte {
	if v == nil {
		return appendInt32(b, -1)
	}
	b = appendInt32(b, int32(len(v)))
	for _, s := range v {
		b = appendString(b, s)
	}
	return b
}

// decoder is a cursor over one record. The first error sticks: later reads
// return zero values, so record decoders read every field and check err once.
type decoder struct {
	b    []byte
	off  int
	mode Mode
	err  error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.off = len(d.b)
}

func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n > len(d.b)-d.off {
		d.fail(ErrShortRecord)
		return false
	}
	return true
}

func (d *decoder) int32() int32 {
	if !d.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(d.b[d.off:]))
	d.off += 4
	return v
}

func (d *decoder) int64() int64 {
	if !d.need(8) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(d.b[d.off:]))
	d.off += 8
	return v
}

// bool reads a jute boolean. Java writes 0 or 1 and reads any non-zero byte
// as true; zkd does the same so that re-encoding is canonical.
func (d *decoder) bool() bool {
	if !d.need(1) {
		return false
	}
	v := d.b[d.off] != 0
	d.off++
	return v
}

// length reads a length or count prefix and checks it against the bytes
// that remain, assuming each element needs at least minSize bytes. Nothing is
// ever allocated from a length before this check has passed, so a hostile
// length can cost at most the size of the input already in memory.
func (d *decoder) length(minSize int) (n int, null bool) {
	v := d.int32()
	if d.err != nil {
		return 0, false
	}
	if v == -1 {
		return 0, true
	}
	if v < 0 {
		d.fail(ErrNegativeLength)
		return 0, false
	}
	if int64(v)*int64(minSize) > int64(len(d.b)-d.off) {
		d.fail(ErrShortRecord)
		return 0, false
	}
	return int(v), false
}

// bytes returns the next n bytes (already checked by length).
func (d *decoder) bytes(n int) []byte {
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

// string reads a ustring; null decodes as "".
func (d *decoder) string() string {
	n, _ := d.length(1)
	if d.err != nil || n == 0 {
		return ""
	}
	p := d.bytes(n)
	if d.mode == Alias {
		return unsafe.String(&p[0], n)
	}
	return string(p)
}

// optString reads a ustring that may be null (decoded as nil).
func (d *decoder) optString() *string {
	n, null := d.length(1)
	if d.err != nil || null {
		return nil
	}
	var s string
	if n > 0 {
		s = string(d.bytes(n))
	}
	return &s
}

// buffer reads a buffer; null decodes as nil, empty as a non-nil empty slice.
func (d *decoder) buffer() []byte {
	n, null := d.length(1)
	if d.err != nil || null {
		return nil
	}
	p := d.bytes(n)
	if d.mode == Alias {
		return p
	}
	return append(make([]byte, 0, n), p...)
}

// strings reads a vector<ustring> into dst's capacity in Alias mode, into a
// fresh slice in Copy mode. Null decodes as nil.
func (d *decoder) strings(dst []string) []string {
	n, null := d.length(4)
	if d.err != nil || null {
		return nil
	}
	if d.mode == Alias && dst != nil && cap(dst) >= n {
		dst = dst[:0]
	} else {
		dst = make([]string, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		dst = append(dst, d.string())
	}
	return dst
}

// done reports how many bytes the record took, or the first error.
func (d *decoder) done() (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	return d.off, nil
}

// element is a record that can sit in a jute vector. readFrom takes and
// returns the decoder by value: a *decoder passed through a type parameter's
// method would escape to the heap and cost an allocation per Decode.
type element[T any] interface {
	*T
	readFrom(d decoder) decoder
}

// appender is a record that can be written in a jute vector.
type appender[T any] interface {
	*T
	Append(dst []byte) []byte
}

// appendRecords writes a vector of records; nil is written as null (-1).
func appendRecords[T any, P appender[T]](dst []byte, v []T) []byte {
	if v == nil {
		return appendInt32(dst, -1)
	}
	dst = appendInt32(dst, int32(len(v)))
	for i := range v {
		dst = P(&v[i]).Append(dst)
	}
	return dst
}

// readRecords reads a vector of records whose encodings take at least
// minSize bytes each, into dst's capacity in Alias mode and into a fresh
// slice in Copy mode. Null decodes as nil.
func readRecords[T any, P element[T]](d *decoder, dst []T, minSize int) []T {
	n, null := d.length(minSize)
	if d.err != nil || null {
		return nil
	}
	if d.mode == Alias && dst != nil && cap(dst) >= n {
		dst = dst[:n]
	} else {
		dst = make([]T, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		*d = P(&dst[i]).readFrom(*d)
	}
	return dst
}
