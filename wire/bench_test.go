package wire

import (
	"fmt"
	"testing"
)

// Benchmarks of the hot path: decoding the requests the server sees most
// (Alias mode, into a reused record) and encoding their replies into a reused
// buffer. Both must allocate nothing; TestHotPathAllocatesNothing enforces it.

func requestPayload(op OpCode, body Record) []byte {
	b := (&RequestHeader{Xid: 1234, Type: op}).Append(nil)
	if body != nil {
		b = body.Append(b)
	}
	return b
}

var (
	hotPath = "/app/config/service-0001"
	hotData = make([]byte, 1024) // the ZooKeeper paper's 1 KB znodes
)

// hotRequests are the request payloads of the hot opcodes, with a decoder
// that reads each into reused records as the engine does.
func hotRequests() []struct {
	name    string
	payload []byte
} {
	return []struct {
		name    string
		payload []byte
	}{
		{"ping", requestPayload(OpPing, nil)},
		{"getData", requestPayload(OpGetData, &PathWatchRequest{Path: hotPath, Watch: true})},
		{"exists", requestPayload(OpExists, &PathWatchRequest{Path: hotPath})},
		{"getChildren", requestPayload(OpGetChildren2, &PathWatchRequest{Path: "/app/config"})},
		{"setData", requestPayload(OpSetData, &SetDataRequest{Path: hotPath, Data: hotData, Version: -1})},
		{"create", requestPayload(OpCreate, &CreateRequest{Path: hotPath, Data: hotData, ACL: sampleACL[:1], Flags: ModeEphemeralSequential})},
	}
}

// hotDecoder holds the records a connection reuses from request to request.
type hotDecoder struct {
	hdr     RequestHeader
	pw      PathWatchRequest
	setData SetDataRequest
	create  CreateRequest
}

func (h *hotDecoder) decode(b []byte) error {
	n, err := h.hdr.Decode(b, Alias)
	if err != nil {
		return err
	}
	body := b[n:]
	switch h.hdr.Type {
	case OpPing:
	case OpGetData, OpExists, OpGetChildren, OpGetChildren2:
		_, err = h.pw.Decode(body, Alias)
	case OpSetData:
		_, err = h.setData.Decode(body, Alias)
	case OpCreate:
		_, err = h.create.Decode(body, Alias)
	default:
		err = ErrUnknownOpCode
	}
	return err
}

func BenchmarkDecodeRequest(b *testing.B) {
	for _, r := range hotRequests() {
		b.Run(r.name, func(b *testing.B) {
			var h hotDecoder
			b.ReportAllocs()
			b.SetBytes(int64(len(r.payload)))
			for b.Loop() {
				if err := h.decode(r.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var (
	children  = []string{"service-0001", "service-0002", "service-0003", "service-0004", "service-0005", "service-0006", "service-0007", "service-0008"}
	replyStat = sampleStat
)

// hotReply is one hot reply: its header fields and body.
type hotReply struct {
	name string
	xid  int32
	zxid int64
	body Record // nil for a bare header
}

// encode appends the reply, framed, to dst, as the engine will.
func (r *hotReply) encode(dst []byte) []byte {
	dst, s := BeginFrame(dst)
	dst = AppendReplyHeader(dst, r.xid, r.zxid, ErrOK)
	if r.body != nil {
		dst = r.body.Append(dst)
	}
	return EndFrame(dst, s)
}

var hotReplies = []hotReply{
	{"ping", XidPing, 0x100000001, nil},
	{"getData", 1234, 0x100000001, &GetDataResponse{Data: hotData, Stat: replyStat}},
	{"exists", 1234, 0x100000001, &StatResponse{Stat: replyStat}},
	{"getChildren", 1234, 0x100000001, &GetChildren2Response{Children: children, Stat: replyStat}},
	{"setData", 1234, 0x100000002, &StatResponse{Stat: replyStat}},
	{"create", 1234, 0x100000003, &PathRequest{Path: hotPath}},
	{"notification", XidNotification, -1, &WatcherEvent{Type: EventNodeDataChanged, State: StateSyncConnected, Path: hotPath}},
}

func BenchmarkEncodeReply(b *testing.B) {
	for i := range hotReplies {
		r := &hotReplies[i]
		b.Run(r.name, func(b *testing.B) {
			buf := r.encode(nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				buf = r.encode(buf[:0])
			}
		})
	}
}

// BenchmarkDecodeCopy shows what the safe DecodeX functions cost, for
// comparison with the Alias path.
func BenchmarkDecodeCopy(b *testing.B) {
	for _, r := range hotRequests() {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.payload)))
			for b.Loop() {
				if _, _, _, err := DecodeRequest(r.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFrameReader(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var stream []byte
			for i := 0; i < batch; i++ {
				stream = AppendFrame(stream, hotRequests()[1].payload)
			}
			r := NewFrameReader(DefaultMaxBuffer)
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				r.Write(stream)
				for p, _ := r.Next(); p != nil; p, _ = r.Next() {
				}
			}
		})
	}
}

func TestHotPathAllocatesNothing(t *testing.T) {
	var h hotDecoder
	for _, r := range hotRequests() {
		if err := h.decode(r.payload); err != nil { // warm the reused records
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(100, func() { _ = h.decode(r.payload) }); a != 0 {
			t.Errorf("decoding %s: %v allocs/op", r.name, a)
		}
	}
	buf := make([]byte, 0, 4096)
	for i := range hotReplies {
		r := &hotReplies[i]
		if a := testing.AllocsPerRun(100, func() { buf = r.encode(buf[:0]) }); a != 0 {
			t.Errorf("encoding %s reply: %v allocs/op", r.name, a)
		}
	}
	fr := NewFrameReader(DefaultMaxBuffer)
	stream := AppendFrame(nil, hotRequests()[1].payload)
	fr.Write(stream)
	fr.Next()
	if a := testing.AllocsPerRun(100, func() {
		fr.Write(stream)
		for p, _ := fr.Next(); p != nil; p, _ = fr.Next() {
		}
	}); a != 0 {
		t.Errorf("frame reader: %v allocs/op", a)
	}
}
