package wire

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func strp(s string) *string { return &s }

var sampleStat = Stat{
	Czxid: 0x100000001, Mzxid: 0x100000002, Ctime: 1700000000000, Mtime: 1700000000123,
	Version: 3, Cversion: 4, Aversion: 5, EphemeralOwner: 0x7200000a1b2c0001,
	DataLength: 11, NumChildren: 2, Pzxid: 0x100000003,
}

var sampleACL = []ACL{
	{Perms: PermAll, ID: Id{Scheme: "world", ID: "anyone"}},
	{Perms: PermRead | PermAdmin, ID: Id{Scheme: "digest", ID: "user:ZCKBfbbFMXSs5zv9e9ib0x5SfBo="}},
}

// sampleRecords holds one value of every record type with every field set,
// so that a field dropped or swapped by a codec change shows up.
func sampleRecords() []Record {
	return []Record{
		&Id{Scheme: "ip", ID: "10.0.0.0/8"},
		&ACL{Perms: PermCreate | PermDelete, ID: Id{Scheme: "auth", ID: ""}},
		&Stat{}, func() *Stat { s := sampleStat; return &s }(),
		&StatPersisted{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: 5, Cversion: 6, Aversion: 7, EphemeralOwner: 8, Pzxid: 9},
		&ClientInfo{AuthScheme: "digest", User: "alice"},
		&RequestHeader{Xid: 42, Type: OpGetData},
		&ReplyHeader{Xid: 42, Zxid: 0x100000007, Err: ErrNoNode},
		&MultiHeader{Type: OpCreate, Done: false, Err: -1},
		&ConnectRequest{ProtocolVersion: 0, LastZxidSeen: 77, TimeOut: 30000, SessionID: 0x100, Passwd: make([]byte, 16), ReadOnly: true, HasReadOnly: true},
		&ConnectRequest{TimeOut: 4000, Passwd: bytes.Repeat([]byte{7}, 16)},
		&ConnectResponse{TimeOut: 4000, SessionID: 0x1000, Passwd: bytes.Repeat([]byte{9}, 16), HasReadOnly: true},
		&ConnectResponse{TimeOut: 0, SessionID: 0, Passwd: make([]byte, 16)},
		&CreateRequest{Path: "/a/b", Data: []byte("data"), ACL: sampleACL, Flags: ModeEphemeralSequential},
		&CreateRequest{Path: "/null-data", Data: nil, ACL: []ACL{}, Flags: ModeContainer},
		&CreateTTLRequest{Path: "/ttl", Data: []byte{}, ACL: sampleACL, Flags: ModePersistentWithTTL, TTL: 60000},
		&PathVersionRequest{Path: "/del", Version: -1},
		&PathWatchRequest{Path: "/w", Watch: true},
		&PathRequest{Path: "/zookeeper/config"},
		&SetDataRequest{Path: "/s", Data: []byte("x"), Version: 9},
		&SetACLRequest{Path: "/acl", ACL: sampleACL, Version: 2},
		&ReconfigRequest{JoiningServers: strp("server.4=127.0.0.1:2888:3888;2181"), LeavingServers: strp(""), NewMembers: nil, CurConfigID: -1},
		&WatchesRequest{Path: "/watched", Type: WatcherAny},
		&AddWatchRequest{Path: "/p", Mode: AddWatchPersistentRecursive},
		&AuthPacket{Type: 0, Scheme: "digest", Auth: []byte("user:secret")},
		&SetWatches{RelativeZxid: 0x100000010, DataWatches: []string{"/a", "/b"}, ExistWatches: []string{}, ChildWatches: []string{"/"}},
		&SetWatches2{RelativeZxid: 5, DataWatches: []string{"/d"}, ExistWatches: []string{"/e"}, ChildWatches: []string{"/c"}, PersistentWatches: []string{"/p"}, PersistentRecursiveWatches: []string{"/r", "/s"}},
		&SASLToken{Token: []byte("charset=utf-8,username=\"alice\"")},
		&DeleteContainerRequest{Path: "/container"},
		&MultiRequest{Ops: []MultiOp{
			{Type: OpCreate, Path: "/m1", Data: []byte("m"), ACL: sampleACL, Flags: ModePersistent},
			{Type: OpCreate2, Path: "/m2", Data: nil, ACL: sampleACL[:1], Flags: ModeEphemeral},
			{Type: OpCreateContainer, Path: "/m3", Data: []byte{}, ACL: sampleACL, Flags: ModeContainer},
			{Type: OpCreateTTL, Path: "/m4", Data: []byte("t"), ACL: sampleACL, Flags: ModePersistentWithTTL, TTL: 1000},
			{Type: OpSetData, Path: "/m1", Data: []byte("m2"), Version: -1},
			{Type: OpCheck, Path: "/m1", Version: 1},
			{Type: OpDelete, Path: "/m1", Version: 1},
		}},
		&MultiRequest{Ops: []MultiOp{{Type: OpGetData, Path: "/r", Watch: true}, {Type: OpGetChildren, Path: "/"}}},
		&MultiRequest{},
		&MultiResponse{Results: []OpResult{
			{Type: OpCreate, Path: "/m1"}, {Type: OpCreate2, Path: "/m2", Stat: sampleStat},
			{Type: OpSetData, Stat: sampleStat}, {Type: OpCheck}, {Type: OpDelete},
		}},
		&MultiResponse{Results: []OpResult{
			{Type: OpError, Err: ErrOK}, {Type: OpError, Err: ErrNoNode}, {Type: OpError, Err: ErrRuntimeInconsistency},
		}},
		&MultiResponse{Results: []OpResult{
			{Type: OpGetData, Data: []byte("d"), Stat: sampleStat}, {Type: OpGetChildren, Children: []string{"a", "b"}},
			{Type: OpError, Err: ErrNoNode},
		}},
		&Create2Response{Path: "/seq-0000000001", Stat: sampleStat},
		&StatResponse{Stat: sampleStat},
		&GetDataResponse{Data: []byte("hello world"), Stat: sampleStat},
		&GetACLResponse{ACL: sampleACL, Stat: sampleStat},
		&StringsResponse{Strings: []string{"x", "y", "zookeeper"}},
		&GetChildren2Response{Children: []string{"c1"}, Stat: sampleStat},
		&GetAllChildrenNumberResponse{TotalNumber: 12345},
		&ErrorResponse{Err: ErrBadVersion},
		&WhoAmIResponse{ClientInfo: []ClientInfo{{AuthScheme: "ip", User: "127.0.0.1"}, {AuthScheme: "digest", User: "alice"}}},
		&WatcherEvent{Type: EventNodeDataChanged, State: StateSyncConnected, Path: "/changed"},
		&TxnHeader{ClientID: 0x7200000a1b2c0001, Cxid: 17, Zxid: 0x200000001, Time: 1700000000000, Type: OpCreate},
		&CreateTxn{Path: "/t", Data: []byte("v"), ACL: sampleACL, Ephemeral: true, ParentCVersion: 8},
		&CreateContainerTxn{Path: "/c", Data: []byte{}, ACL: sampleACL, ParentCVersion: 2},
		&CreateTTLTxn{Path: "/ttl", Data: []byte("t"), ACL: sampleACL, ParentCVersion: 3, TTL: 5000},
		&CreateSessionTxn{TimeOut: 30000},
		&CloseSessionTxn{Paths2Delete: []string{"/e1", "/e2"}},
		&Txn{Type: OpDelete, Data: []byte{0, 0, 0, 2, '/', 'x'}},
		&MultiTxn{Txns: []Txn{{Type: OpCreate, Data: []byte("abc")}, {Type: OpError, Data: []byte{0xff, 0xff, 0xff, 0x9b}}}},
		&TxnDigest{Version: 2, TreeDigest: 0x1234567890},
		&FileHeader{Magic: 0x5a4b4c47, Version: 2, DBID: 0},
		&QuorumPacket{Type: 2, Zxid: 0x300000001, Data: []byte("proposal"), AuthInfo: []Id{{Scheme: "ip", ID: "127.0.0.1"}}},
		&LearnerInfo{ServerID: 3, ProtocolVersion: 0x10000, ConfigVersion: 0x100000000},
	}
}

// newEmpty returns a new zero value of r's type.
func newEmpty(r Record) Record { return reflect.New(reflect.TypeOf(r).Elem()).Interface().(Record) }

func TestRoundTripEveryRecord(t *testing.T) {
	for i, want := range sampleRecords() {
		t.Run(fmt.Sprintf("%d-%T", i, want), func(t *testing.T) {
			enc := want.Append(nil)
			// Append must append, not overwrite.
			prefixed := want.Append([]byte("pre"))
			if !bytes.Equal(prefixed[3:], enc) || string(prefixed[:3]) != "pre" {
				t.Fatalf("Append does not append")
			}
			for _, mode := range []Mode{Copy, Alias} {
				got := newEmpty(want)
				n, err := got.Decode(enc, mode)
				if err != nil || n != len(enc) {
					t.Fatalf("mode %d: decode used %d of %d bytes, err %v", mode, n, len(enc), err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("mode %d: round trip\n got %+v\nwant %+v", mode, got, want)
				}
				if re := got.Append(nil); !bytes.Equal(re, enc) {
					t.Fatalf("mode %d: re-encoding differs", mode)
				}
			}
			// A Copy decode must not change when the input is reused.
			buf := append([]byte(nil), enc...)
			got := newEmpty(want)
			if _, err := got.Decode(buf, Copy); err != nil {
				t.Fatal(err)
			}
			for j := range buf {
				buf[j] ^= 0xff
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Copy decode aliases its input")
			}
			// Trailing bytes are left for the caller.
			// (Except where the length decides the form: the handshake's
			// optional readOnly byte, deleteContainer's raw path.)
			n, err := newEmpty(want).Decode(append(enc, 1, 2, 3), Copy)
			switch want.(type) {
			case *DeleteContainerRequest, *ConnectRequest, *ConnectResponse:
				return
			}
			if err != nil || n != len(enc) {
				t.Fatalf("with trailing bytes: used %d of %d, err %v", n, len(enc), err)
			}
		})
	}
}

// A record cut short anywhere must give an error, never a panic or a record
// that silently lost fields. The exceptions are the forms that are valid
// shorter: a handshake without its readOnly byte, and deleteContainer's raw
// path.
func TestTruncatedRecordsFail(t *testing.T) {
	for i, rec := range sampleRecords() {
		enc := rec.Append(nil)
		for cut := 0; cut < len(enc); cut++ {
			got := newEmpty(rec)
			_, err := got.Decode(enc[:cut], Copy)
			switch rec.(type) {
			case *DeleteContainerRequest:
				continue
			case *ConnectRequest, *ConnectResponse:
				if cut == len(enc)-1 && reflect.ValueOf(rec).Elem().FieldByName("HasReadOnly").Bool() {
					if err != nil {
						t.Errorf("%d %T: handshake without readOnly byte: %v", i, rec, err)
					}
					continue
				}
			}
			if !errors.Is(err, ErrShortRecord) {
				t.Errorf("%d %T cut at %d of %d: err %v, want ErrShortRecord", i, rec, cut, len(enc), err)
			}
		}
	}
}

// Every opcode's request, reply and txn record must be one the samples cover.
func TestDispatchCoversEveryOpcode(t *testing.T) {
	covered := map[string]bool{}
	for _, r := range sampleRecords() {
		covered[fmt.Sprintf("%T", r)] = true
	}
	for op := range opNames {
		for name, fn := range map[string]func(OpCode) (Record, bool){
			"request": RequestRecord, "reply": ReplyRecord, "txn": TxnRecord,
		} {
			rec, ok := fn(op)
			if ok && rec != nil && !covered[fmt.Sprintf("%T", rec)] {
				t.Errorf("%s record %T of %v has no sample", name, rec, op)
			}
		}
		if _, ok := RequestRecord(op); !ok && op != OpNotification && op != OpCreateSession && op != OpError {
			t.Errorf("client opcode %v has no request record", op)
		}
	}
	if _, ok := RequestRecord(OpCode(99)); ok {
		t.Error("opcode 99 should be unknown")
	}
	if _, ok := ReplyRecord(OpCode(-99)); ok {
		t.Error("opcode -99 should be unknown")
	}
}

func TestLengthsAreCheckedBeforeAllocating(t *testing.T) {
	huge := []byte{0x7f, 0xff, 0xff, 0xff}
	cases := []struct {
		name string
		rec  Record
		in   []byte
		want error
	}{
		{"string claims 2 GiB", &PathRequest{}, huge, ErrShortRecord},
		{"buffer claims 2 GiB", &SASLToken{}, huge, ErrShortRecord},
		{"string vector claims 2^31 entries", &StringsResponse{}, huge, ErrShortRecord},
		{"ACL vector claims 2^31 entries", &GetACLResponse{}, huge, ErrShortRecord},
		{"txn vector claims 2^31 entries", &MultiTxn{}, huge, ErrShortRecord},
		{"id vector claims 2^31 entries", &QuorumPacket{}, append(make([]byte, 12), append([]byte{0, 0, 0, 0}, huge...)...), ErrShortRecord},
		{"negative string length", &PathRequest{}, []byte{0xff, 0xff, 0xff, 0xfe}, ErrNegativeLength},
		{"negative buffer length", &SASLToken{}, []byte{0x80, 0, 0, 0}, ErrNegativeLength},
		// 100 entries of at least 4 bytes each cannot fit in 8 bytes.
		{"vector count beyond input", &StringsResponse{}, []byte{0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0}, ErrShortRecord},
	}
	for _, c := range cases {
		var err error
		allocs := testing.AllocsPerRun(10, func() { _, err = c.rec.Decode(c.in, Copy) })
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if allocs > 0 {
			t.Errorf("%s: %v allocations before rejecting", c.name, allocs)
		}
	}
}

func TestNullEncodings(t *testing.T) {
	// Null buffer, vector and string decode to nil and re-encode as -1;
	// empty ones stay empty.
	null := []byte{0xff, 0xff, 0xff, 0xff}
	var tok SASLToken
	if _, err := tok.Decode(null, Copy); err != nil || tok.Token != nil {
		t.Fatalf("null buffer: %v %#v", err, tok.Token)
	}
	if _, err := tok.Decode([]byte{0, 0, 0, 0}, Copy); err != nil || tok.Token == nil || len(tok.Token) != 0 {
		t.Fatalf("empty buffer: %v %#v", err, tok.Token)
	}
	var sr StringsResponse
	if _, err := sr.Decode(null, Alias); err != nil || sr.Strings != nil {
		t.Fatalf("null vector: %v %#v", err, sr.Strings)
	}
	if got := sr.Append(nil); !bytes.Equal(got, null) {
		t.Fatalf("nil vector encodes as %x", got)
	}
	var p PathRequest
	if _, err := p.Decode(null, Copy); err != nil || p.Path != "" {
		t.Fatalf("null string: %v %q", err, p.Path)
	}
}

func TestMultiRejectsBadOps(t *testing.T) {
	header := func(op OpCode) []byte { return (&MultiHeader{Type: op, Err: -1}).Append(nil) }
	pathWatch := (&PathWatchRequest{Path: "/x"}).Append(nil)
	pathVersion := (&PathVersionRequest{Path: "/x", Version: -1}).Append(nil)
	end := multiEnd.Append(nil)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := map[string][]byte{
		"op not allowed in multi": cat(header(OpSync), (&PathRequest{Path: "/x"}).Append(nil), end),
		"reads mixed with writes": cat(header(OpGetData), pathWatch, header(OpDelete), pathVersion, end),
		"writes mixed with reads": cat(header(OpCheck), pathVersion, header(OpGetChildren), pathWatch, end),
	}
	for name, in := range cases {
		var m MultiRequest
		if _, err := m.Decode(in, Copy); !errors.Is(err, ErrBadMultiOp) {
			t.Errorf("%s: err %v, want ErrBadMultiOp", name, err)
		}
	}
	var m MultiRequest
	if _, err := m.Decode(cat(header(OpDelete), pathVersion), Copy); !errors.Is(err, ErrShortRecord) {
		t.Errorf("missing terminator: err %v", err)
	}
	var res MultiResponse
	if _, err := res.Decode(cat(header(OpSync), end), Copy); !errors.Is(err, ErrBadMultiOp) {
		t.Errorf("bad result type: err %v", err)
	}
}

func TestAliasReusesSlices(t *testing.T) {
	in := (&CreateRequest{Path: "/a", Data: []byte("d"), ACL: sampleACL, Flags: 0}).Append(nil)
	var r CreateRequest
	if _, err := r.Decode(in, Alias); err != nil {
		t.Fatal(err)
	}
	first := &r.ACL[0]
	if _, err := r.Decode(in, Alias); err != nil {
		t.Fatal(err)
	}
	if &r.ACL[0] != first {
		t.Error("Alias decode did not reuse the ACL slice")
	}
	in[4] = 'b' // the first byte of the path, after its 4-byte length
	if r.Path[0] != 'b' {
		t.Errorf("Alias path does not point into the input: %q", r.Path)
	}
}

func TestDecodeRequestAndReply(t *testing.T) {
	req := (&RequestHeader{Xid: 7, Type: OpSetData}).Append(nil)
	req = (&SetDataRequest{Path: "/x", Data: []byte("v"), Version: 1}).Append(req)
	h, rec, n, err := DecodeRequest(req)
	if err != nil || n != len(req) || h.Type != OpSetData || rec.(*SetDataRequest).Path != "/x" {
		t.Fatalf("DecodeRequest: %v %v %d %v", h, rec, n, err)
	}
	unknown := (&RequestHeader{Xid: 8, Type: 55}).Append(nil)
	if h, _, _, err := DecodeRequest(unknown); !errors.Is(err, ErrUnknownOpCode) || h.Xid != 8 {
		t.Fatalf("unknown opcode: %v %v", h, err)
	}
	ping := (&RequestHeader{Xid: XidPing, Type: OpPing}).Append(nil)
	if _, rec, n, err := DecodeRequest(ping); err != nil || rec != nil || n != 8 {
		t.Fatalf("ping: %v %d %v", rec, n, err)
	}
	// An error reply has no body, whatever the opcode.
	errReply := AppendReplyHeader(nil, 3, 0x10, ErrNoNode)
	if h, rec, n, err := DecodeReply(errReply, OpGetData); err != nil || rec != nil || n != 16 || h.Err != ErrNoNode {
		t.Fatalf("error reply: %v %v %d %v", h, rec, n, err)
	}
	note := AppendReplyHeader(nil, XidNotification, -1, ErrOK)
	note = (&WatcherEvent{Type: EventNodeDeleted, State: StateSyncConnected, Path: "/gone"}).Append(note)
	if _, rec, _, err := DecodeReply(note, OpGetData); err != nil || rec.(*WatcherEvent).Path != "/gone" {
		t.Fatalf("notification: %v %v", rec, err)
	}
}

// decode_gen.go must be what gen_decode.go writes today.
func TestGeneratedDecodersAreCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "decode_gen.go")
	cmd := exec.Command("go", "run", "gen_decode.go", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_decode.go: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("decode_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("decode_gen.go is stale: run go generate ./wire")
	}
}
