package wire

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"runtime"
	"testing"
)

// Fuzz targets. `go test` runs their seed corpora (sample records and every
// golden frame); `make fuzz` runs each for a while. Together they reach every
// decoder of the package: FuzzRecord picks any record type by its first byte,
// the others go through the opcode dispatch the server uses.

// allocLimit is the most a decoder may allocate for an input of n bytes.
// Decoded structs are at most a few times larger than their encodings (a
// 12-byte ACL becomes a 40-byte struct, append may double a slice), so a
// decoder that allocates from an unchecked length blows far past it.
func allocLimit(n int) uint64 { return uint64(64*n + 64<<10) }

// checkAllocs fails t when fn, decoding n bytes of input, allocates more
// than allocLimit(n). TotalAlloc counts the whole process, and the fuzzing
// engine allocates too, so a measurement over the limit is repeated and the
// smallest kept: the decoder allocates the same every time, the noise does
// not.
func checkAllocs(t *testing.T, n int, fn func()) {
	t.Helper()
	limit := allocLimit(n)
	var least uint64
	for try := 0; try < 3; try++ {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		a := after.TotalAlloc - before.TotalAlloc
		if try == 0 || a < least {
			least = a
		}
		if least <= limit {
			return
		}
	}
	t.Fatalf("%d bytes allocated for %d bytes of input", least, n)
}

// checkCanonical re-encodes a decoded record and decodes it again: the
// result must be the same record, and encoding it again the same bytes.
func checkCanonical(t *testing.T, rec Record) {
	t.Helper()
	enc := rec.Append(nil)
	again := newEmpty(rec)
	n, err := again.Decode(enc, Copy)
	if err != nil || n != len(enc) {
		t.Fatalf("%T: re-encoded record does not decode: used %d of %d, %v", rec, n, len(enc), err)
	}
	if !reflect.DeepEqual(again, rec) {
		t.Fatalf("%T: round trip changed the record\n got %+v\nwant %+v", rec, again, rec)
	}
	if re := again.Append(nil); !bytes.Equal(re, enc) {
		t.Fatalf("%T: encoding is not stable", rec)
	}
}

// seedFrames adds every golden payload to f through add.
func seedGolden(f *testing.F, add func(client bool, payload []byte)) {
	for _, g := range readGolden(f) {
		payload, _, err := SplitFrame(g.frame, DefaultMaxBuffer)
		if err == nil {
			add(g.client, payload)
		}
	}
}

func FuzzRecord(f *testing.F) {
	samples := sampleRecords()
	for i, r := range samples {
		f.Add(append([]byte{byte(i)}, r.Append(nil)...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		proto := samples[int(in[0])%len(samples)]
		b := in[1:]
		rec := newEmpty(proto)
		var n int
		var err error
		checkAllocs(t, len(b), func() { n, err = rec.Decode(b, Copy) })
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("%T: used %d of %d bytes", rec, n, len(b))
		}
		aliased := newEmpty(proto)
		if m, err := aliased.Decode(b, Alias); err != nil || m != n || !reflect.DeepEqual(aliased, rec) {
			t.Fatalf("%T: Alias decode differs from Copy: %d/%d %v", rec, m, n, err)
		}
		checkCanonical(t, rec)
	})
}

func FuzzRequest(f *testing.F) {
	seedGolden(f, func(client bool, p []byte) {
		if client {
			f.Add(p)
		}
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec Record
		var err error
		checkAllocs(t, len(b), func() { _, rec, _, err = DecodeRequest(b) })
		if err == nil && rec != nil {
			checkCanonical(t, rec)
		}
		// The same bytes as a handshake.
		var c ConnectRequest
		if _, err := c.Decode(b, Copy); err == nil {
			checkCanonical(t, &c)
		}
	})
}

func FuzzReply(f *testing.F) {
	// A reply's layout depends on the request's opcode, which the fuzzer
	// picks as the first four bytes.
	seedGolden(f, func(client bool, p []byte) {
		if !client {
			for _, op := range []OpCode{OpGetData, OpMulti, OpGetChildren2, OpWhoAmI} {
				f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(op)), p...))
			}
		}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 4 {
			return
		}
		op := OpCode(binary.BigEndian.Uint32(in))
		b := in[4:]
		var rec Record
		var err error
		checkAllocs(t, len(b), func() { _, rec, _, err = DecodeReply(b, op) })
		if err == nil && rec != nil {
			checkCanonical(t, rec)
		}
		var c ConnectResponse
		if _, err := c.Decode(b, Copy); err == nil {
			checkCanonical(t, &c)
		}
	})
}

func FuzzTxn(f *testing.F) {
	for _, r := range sampleRecords() {
		for _, op := range []OpCode{OpCreate, OpMulti, OpCloseSession, OpSetACL} {
			h := TxnHeader{ClientID: 1, Cxid: 2, Zxid: 3, Time: 4, Type: op}
			f.Add((&TxnDigest{Version: 2, TreeDigest: 9}).Append(r.Append(h.Append(nil))))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h TxnHeader
		n, err := h.Decode(b, Copy)
		if err != nil {
			return
		}
		rec, ok := TxnRecord(h.Type)
		if !ok {
			return
		}
		var m int
		checkAllocs(t, len(b), func() { m, err = rec.Decode(b[n:], Copy) })
		if err != nil {
			return
		}
		checkCanonical(t, rec)
		// Multi sub-txns are records too.
		if mt, ok := rec.(*MultiTxn); ok {
			for _, sub := range mt.Txns {
				if r, ok := TxnRecord(sub.Type); ok {
					if _, err := r.Decode(sub.Data, Copy); err == nil {
						checkCanonical(t, r)
					}
				}
			}
		}
		var dg TxnDigest
		if _, err := dg.Decode(b[n+m:], Copy); err == nil {
			checkCanonical(t, &dg)
		}
	})
}

// FuzzFrameReader feeds a stream in pieces whose sizes the fuzzer picks and
// checks the reader against SplitFrame on the whole stream, and that it never
// holds more than one frame's worth of bytes plus the last piece.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{3, 1, 7}, frames([]byte("abc"), nil, []byte("defgh")))
	f.Add([]byte{1}, []byte{0x00, 0x10, 0x00, 0x00, 1, 2, 3})
	f.Add([]byte{2}, []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, cuts, stream []byte) {
		const max = 64
		// Reference: split the whole stream.
		var want [][]byte
		var wantErr bool
		for rest := stream; ; {
			p, n, err := SplitFrame(rest, max)
			if err != nil {
				wantErr = true
				break
			}
			if n == 0 {
				break
			}
			want = append(want, p)
			rest = rest[n:]
		}
		r := NewFrameReader(max)
		var got [][]byte
		var gotErr bool
		for i, rest := 0, stream; len(rest) > 0 && !gotErr; i++ {
			n := 1
			if len(cuts) > 0 {
				n = 1 + int(cuts[i%len(cuts)])
			}
			n = min(n, len(rest))
			r.Write(rest[:n])
			rest = rest[n:]
			if r.Buffered() > FrameHeaderSize+max+n {
				t.Fatalf("holds %d bytes; a frame is at most %d", r.Buffered(), FrameHeaderSize+max)
			}
			for {
				p, err := r.Next()
				if err != nil {
					gotErr = true
					break
				}
				if p == nil {
					break
				}
				got = append(got, append([]byte(nil), p...))
			}
		}
		if gotErr != wantErr || len(got) != len(want) {
			t.Fatalf("reader: %d frames err=%v; whole stream: %d frames err=%v", len(got), gotErr, len(want), wantErr)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}
