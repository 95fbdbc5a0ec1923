package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The golden vectors are frames recorded between real clients and Apache
// ZooKeeper 3.8 by testdata/capture/capture.sh. Every frame must decode with
// no byte left over and re-encode to exactly the same bytes.

type goldenFrame struct {
	file   string
	line   int
	conn   string
	client bool // client to server
	frame  []byte
}

func readGolden(t testing.TB) []goldenFrame {
	t.Helper()
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (err %v): run testdata/capture/capture.sh", err)
	}
	var out []goldenFrame
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 4<<20)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			fields := strings.Fields(text)
			if len(fields) != 3 || (fields[1] != ">" && fields[1] != "<") {
				t.Fatalf("%s:%d: malformed line", name, line)
			}
			b, err := hex.DecodeString(fields[2])
			if err != nil {
				t.Fatalf("%s:%d: %v", name, line, err)
			}
			out = append(out, goldenFrame{filepath.Base(name), line, fields[0], fields[1] == ">", b})
		}
		f.Close()
	}
	return out
}

// goldenSeen collects what the vectors cover, to prove the coverage the
// codec's tests rely on.
type goldenSeen struct {
	requests      map[OpCode]bool
	replies       map[OpCode]bool
	connectSizes  map[int]bool
	responseSizes map[int]bool
	multiOK       bool
	multiFailed   bool
	multiRead     bool
	notification  bool
	errorReply    bool
}

func TestGoldenVectors(t *testing.T) {
	frames := readGolden(t)
	seen := goldenSeen{
		requests: map[OpCode]bool{}, replies: map[OpCode]bool{},
		connectSizes: map[int]bool{}, responseSizes: map[int]bool{},
	}
	type connState struct {
		sentConnect, gotConnect bool
		pending                 map[int32]OpCode // xid -> opcode awaiting reply
	}
	conns := map[string]*connState{}
	for _, g := range frames {
		key := g.file + "/" + g.conn
		st := conns[key]
		if st == nil {
			st = &connState{pending: map[int32]OpCode{}}
			conns[key] = st
		}
		where := fmt.Sprintf("%s:%d", g.file, g.line)
		payload, n, err := SplitFrame(g.frame, DefaultMaxBuffer)
		if err != nil || n != len(g.frame) {
			t.Fatalf("%s: frame split: n=%d of %d, err %v", where, n, len(g.frame), err)
		}
		var re []byte
		switch {
		case g.client && !st.sentConnect:
			st.sentConnect = true
			var r ConnectRequest
			re = roundTrip(t, where, &r, payload)
			seen.connectSizes[len(payload)] = true
		case !g.client && !st.gotConnect:
			st.gotConnect = true
			var r ConnectResponse
			re = roundTrip(t, where, &r, payload)
			seen.responseSizes[len(payload)] = true
		case g.client:
			h, rec, n, err := DecodeRequest(payload)
			if err != nil || n != len(payload) {
				t.Fatalf("%s: request %v: used %d of %d bytes, err %v", where, h.Type, n, len(payload), err)
			}
			st.pending[h.Xid] = h.Type
			seen.requests[h.Type] = true
			re = h.Append(nil)
			if rec != nil {
				re = rec.Append(re)
				if m, ok := rec.(*MultiRequest); ok && h.Type == OpMultiRead {
					seen.multiRead = len(m.Ops) > 0
				}
			}
		default:
			hdr, _, err := DecodeReplyHeader(payload)
			if err != nil {
				t.Fatalf("%s: reply header: %v", where, err)
			}
			op, ok := st.pending[hdr.Xid]
			if hdr.Xid == XidNotification {
				op, ok = OpNotification, true
			}
			if !ok {
				t.Fatalf("%s: reply to unknown xid %d", where, hdr.Xid)
			}
			delete(st.pending, hdr.Xid)
			h, rec, n, err := DecodeReply(payload, op)
			if err != nil || n != len(payload) {
				t.Fatalf("%s: reply to %v: used %d of %d bytes, err %v", where, op, n, len(payload), err)
			}
			seen.replies[op] = true
			switch {
			case h.Xid == XidNotification:
				seen.notification = true
			case h.Err != ErrOK:
				seen.errorReply = true
			}
			if m, ok := rec.(*MultiResponse); ok && op == OpMulti {
				failed := len(m.Results) > 0 && m.Results[0].Type == OpError
				seen.multiOK = seen.multiOK || !failed
				seen.multiFailed = seen.multiFailed || failed
			}
			re = h.Append(nil)
			if rec != nil {
				re = rec.Append(re)
			}
		}
		if !bytes.Equal(re, payload) {
			t.Fatalf("%s: re-encoding differs\n got %x\nwant %x", where, re, payload)
		}
	}
	checkGoldenCoverage(t, &seen)
}

// roundTrip decodes a record that must fill payload exactly and re-encodes it.
func roundTrip(t *testing.T, where string, r Record, payload []byte) []byte {
	t.Helper()
	n, err := r.Decode(payload, Copy)
	if err != nil || n != len(payload) {
		t.Fatalf("%s: %T: used %d of %d bytes, err %v", where, r, n, len(payload), err)
	}
	return r.Append(nil)
}

// checkGoldenCoverage fails when a re-capture lost something the issue asks
// the vectors to cover.
func checkGoldenCoverage(t *testing.T, s *goldenSeen) {
	t.Helper()
	// Every opcode a client sends (deleteContainer and createSession are
	// server-internal; check travels inside multi).
	want := []OpCode{
		OpCreate, OpDelete, OpExists, OpGetData, OpSetData, OpGetACL, OpSetACL,
		OpGetChildren, OpSync, OpPing, OpGetChildren2, OpMulti, OpCreate2,
		OpReconfig, OpCheckWatches, OpRemoveWatches, OpCreateContainer, OpCreateTTL,
		OpMultiRead, OpAuth, OpSetWatches, OpGetEphemerals, OpGetAllChildrenNumber,
		OpSetWatches2, OpAddWatch, OpWhoAmI, OpCloseSession, OpSASL,
	}
	var missing []string
	for _, op := range want {
		if !s.requests[op] {
			missing = append(missing, "request "+op.String())
		}
		if !s.replies[op] {
			missing = append(missing, "reply "+op.String())
		}
	}
	for what, ok := range map[string]bool{
		"44-byte connect request":  s.connectSizes[44],
		"45-byte connect request":  s.connectSizes[45],
		"multi success reply":      s.multiOK,
		"multi failure reply":      s.multiFailed,
		"multiRead with ops":       s.multiRead,
		"watch notification":       s.notification,
		"error reply":              s.errorReply,
		"36-byte connect response": s.responseSizes[36],
		"37-byte connect response": s.responseSizes[37],
	} {
		if !ok {
			missing = append(missing, what)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("golden vectors do not cover: %s", strings.Join(missing, ", "))
	}
}
