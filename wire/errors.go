package wire

import "errors"

// Decoding errors. Every decoder returns one of these (possibly wrapped with
// detail) instead of panicking; a connection that sends such bytes is closed
// by the engine, and nothing else is affected.
var (
	// ErrShortRecord means the input ended inside a record, or a length
	// prefix claims more bytes than the input holds.
	ErrShortRecord = errors.New("wire: record truncated or length exceeds input")
	// ErrNegativeLength means a length or count below -1 (null).
	ErrNegativeLength = errors.New("wire: negative length")
	// ErrFrameTooLarge means a frame length above the jute.maxbuffer limit.
	ErrFrameTooLarge = errors.New("wire: frame length exceeds jute.maxbuffer")
	// ErrNegativeFrame means a frame length below zero.
	ErrNegativeFrame = errors.New("wire: negative frame length")
	// ErrUnknownOpCode means an opcode with no record layout in this
	// package; the engine answers it with UNIMPLEMENTED.
	ErrUnknownOpCode = errors.New("wire: unknown opcode")
	// ErrBadMultiOp means an op type that is not allowed inside multi or
	// multiRead, or read and write ops mixed in one request.
	ErrBadMultiOp = errors.New("wire: invalid op inside multi")
	// ErrTrailingBytes means a frame holds bytes after its last record.
	ErrTrailingBytes = errors.New("wire: trailing bytes after record")
)
