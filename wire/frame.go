package wire

import (
	"encoding/binary"
	"fmt"
)

// Every message on a client connection is a frame: a big-endian int32
// length followed by that many bytes of payload.

// DefaultMaxBuffer is ZooKeeper's default jute.maxbuffer: the largest frame
// payload a server accepts (0xfffff bytes, just under 1 MiB).
const DefaultMaxBuffer = 0xfffff

// FrameHeaderSize is the size of a frame's length prefix.
const FrameHeaderSize = 4

// SplitFrame looks for one complete frame at the start of b. It returns the
// payload (aliasing b) and the bytes the whole frame takes; n == 0 and no
// error means more bytes are needed. A length below zero or above max is an
// error as soon as the four length bytes have arrived, before any payload is
// buffered.
func SplitFrame(b []byte, max int) (payload []byte, n int, err error) {
	if len(b) < FrameHeaderSize {
		return nil, 0, nil
	}
	size, err := frameLength(b, max)
	if err != nil {
		return nil, 0, err
	}
	if len(b)-FrameHeaderSize < size {
		return nil, 0, nil
	}
	end := FrameHeaderSize + size
	return b[FrameHeaderSize:end:end], end, nil
}

func frameLength(b []byte, max int) (int, error) {
	v := int32(binary.BigEndian.Uint32(b))
	if v < 0 {
		return 0, fmt.Errorf("%w: %d", ErrNegativeFrame, v)
	}
	if int64(v) > int64(max) {
		return 0, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, v, max)
	}
	return int(v), nil
}

// AppendFrame appends a frame holding payload.
func AppendFrame(dst []byte, payload []byte) []byte {
	dst = appendInt32(dst, int32(len(payload)))
	return append(dst, payload...)
}

// BeginFrame appends a placeholder length and returns where it is, so that a
// reply can be encoded straight into dst and closed with EndFrame.
func BeginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// EndFrame writes the length of the frame begun at start.
func EndFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-FrameHeaderSize))
	return dst
}

// FrameReader reassembles frames from a byte stream that arrives in pieces
// of any size: a frame split across many reads, or many frames in one read.
// Bytes are copied in only as they arrive, so a hostile length prefix costs
// nothing until its bytes are actually sent, and one above Max is refused
// when its prefix is complete.
//
// The zero value is not ready: use NewFrameReader.
type FrameReader struct {
	max  int
	buf  []byte // unconsumed bytes
	head int    // start of unconsumed bytes in buf
	err  error
}

// NewFrameReader returns a reader that refuses frames longer than max bytes
// (jute.maxbuffer; DefaultMaxBuffer when max <= 0).
func NewFrameReader(max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxBuffer
	}
	return &FrameReader{max: max}
}

// Write adds bytes that arrived. It never fails; errors surface from Next.
func (r *FrameReader) Write(p []byte) (int, error) {
	if r.err != nil {
		return len(p), nil
	}
	if r.head > 0 && r.head == len(r.buf) {
		r.buf, r.head = r.buf[:0], 0
	} else if r.head > 0 && r.head >= cap(r.buf)/2 {
		// Slide the partial frame down rather than grow without bound.
		r.buf = r.buf[:copy(r.buf, r.buf[r.head:])]
		r.head = 0
	}
	r.buf = append(r.buf, p...)
	return len(p), nil
}

// Next returns the next complete frame's payload, or nil when more bytes are
// needed. The payload aliases the reader's buffer and stays valid until the
// next call to Write. After an error every call returns the same error: the
// stream cannot be resynchronised and the connection must be closed.
func (r *FrameReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	payload, n, err := SplitFrame(r.buf[r.head:], r.max)
	if err != nil {
		r.err = err
		r.buf, r.head = nil, 0
		return nil, err
	}
	r.head += n
	return payload, nil
}

// Buffered reports how many bytes are held for an incomplete frame.
func (r *FrameReader) Buffered() int { return len(r.buf) - r.head }
