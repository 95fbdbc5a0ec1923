// Package wire is the ZooKeeper client protocol and the jute records that the
// transaction log and replication carry, as pure functions over byte slices.
//
// It covers every request and reply of ZooKeeper 3.9 (zookeeper.jute), the
// handshake in both its 44/45-byte forms, multi and multiRead framing, watch
// notifications, the KeeperException codes and the other protocol constants,
// and the txn and quorum records, laid out byte for byte as Apache ZooKeeper
// writes them.
//
// # Encoding and decoding
//
// Every record type X has
//
//	func (r *X) Append(dst []byte) []byte          // encode, appending to dst
//	func (r *X) Decode(b []byte, m Mode) (int, error) // decode in place
//	func DecodeX(b []byte) (X, int, error)         // decode into a new value
//
// DecodeX copies every string and byte slice, so its result outlives b.
// Decode with Alias makes strings and slices point into b and reuses the
// record's existing slices: it allocates nothing once warm, and the record is
// valid only while b is unchanged. That is the mode for the server's hot path,
// which answers a read before its input buffer is reused.
//
// A request payload is a RequestHeader and the record RequestRecord names; a
// reply payload is a ReplyHeader and, when Err is OK, the record ReplyRecord
// names. DecodeRequest and DecodeReply do both steps for code that is not on
// the hot path.
//
// # Safety
//
// Decoders never panic and never allocate from a length they have not
// checked: every length and count is compared with the bytes actually present
// before anything is allocated, so the memory a hostile input can claim is
// bounded by its own size. Frames are bounded by jute.maxbuffer
// (SplitFrame, FrameReader) before their payload is buffered. Errors are the
// Err* sentinels of this package.
//
// The package does no I/O and uses no reflection.
package wire

//go:generate go run gen_decode.go
