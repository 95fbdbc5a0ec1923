package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The server-to-server vectors: a 3-server Apache ZooKeeper 3.8 ensemble
// recorded by testdata/capture/quorum.sh (tcpdump on the loopback
// interface, streams cut by their length fields alone). Every hello,
// notification and quorum packet must decode with nothing left over and
// re-encode to the same bytes.

type quorumVector struct {
	line            int
	conn, dir, kind string
	b               []byte
}

func readQuorumVectors(t testing.TB) []quorumVector {
	t.Helper()
	const name = "testdata/quorum/zk38-ensemble.txt"
	f, err := os.Open(name)
	if err != nil {
		t.Fatalf("%v: run testdata/capture/quorum.sh (make golden-quorum)", err)
	}
	defer f.Close()
	var out []quorumVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 4 {
			t.Fatalf("%s:%d: malformed line", name, line)
		}
		b, err := hex.DecodeString(fields[3])
		if err != nil {
			t.Fatalf("%s:%d: %v", name, line, err)
		}
		out = append(out, quorumVector{line, fields[0], fields[1], fields[2], b})
	}
	return out
}

func TestQuorumGoldenVectors(t *testing.T) {
	vectors := readQuorumVectors(t)
	packets := map[int32]int{}
	states := map[PeerState]int{}
	hellos, snaps, touched := 0, 0, 0
	lastPacket := map[string]int32{}
	for _, v := range vectors {
		switch v.kind {
		case "hello":
			h, n, err := DecodeElectionHello(v.b)
			if err != nil || n != len(v.b) {
				t.Fatalf("line %d: hello: %v, %d of %d bytes", v.line, err, n, len(v.b))
			}
			if h.Protocol != ElectionProtocolV1 || h.ServerID < 1 || h.ServerID > 3 || !strings.HasPrefix(h.Addrs, "127.0.0.") {
				t.Errorf("line %d: hello %+v", v.line, h)
			}
			if got := h.Append(nil); !bytes.Equal(got, v.b) {
				t.Errorf("line %d: hello re-encodes to %x", v.line, got)
			}
			hellos++
		case "note":
			payload, n, err := SplitFrame(v.b, MaxElectionMessage)
			if err != nil || n != len(v.b) {
				t.Fatalf("line %d: notification frame: %v, %d of %d bytes", v.line, err, n, len(v.b))
			}
			note, err := DecodeNotification(payload)
			if err != nil {
				t.Fatalf("line %d: %v", v.line, err)
			}
			if note.Version != NotificationVersion || note.State > StateObserving || note.Leader < 1 || note.Leader > 3 {
				t.Errorf("line %d: notification %+v", v.line, note)
			}
			// The committed config, as every member's static zoo.cfg gives it.
			if !strings.Contains(note.Config, "server.1=127.0.0.1:22888:23888:participant") || !strings.HasSuffix(note.Config, "\nversion=0") {
				t.Errorf("line %d: config %q", v.line, note.Config)
			}
			if got := note.Append(nil); !bytes.Equal(got, payload) {
				t.Errorf("line %d: notification re-encodes to %x", v.line, got)
			}
			states[note.State]++
		case "packet":
			var p QuorumPacket
			n, err := ReadQuorumPacket(&p, v.b, Copy, 2<<20)
			if err != nil || n != len(v.b) {
				t.Fatalf("line %d: packet: %v, %d of %d bytes", v.line, err, n, len(v.b))
			}
			if got := p.Append(nil); !bytes.Equal(got, v.b) {
				t.Errorf("line %d: %s re-encodes to %x", v.line, PacketName(p.Type), got)
			}
			// A stream reader given part of a packet waits for the rest.
			for cut := 0; cut < len(v.b); cut++ {
				var q QuorumPacket
				if n, err := ReadQuorumPacket(&q, v.b[:cut], Alias, 2<<20); n != 0 || err != nil {
					t.Fatalf("line %d: %d of %d bytes read as a whole packet (%d, %v)", v.line, cut, len(v.b), n, err)
				}
			}
			checkQuorumPacket(t, v, &p, &touched)
			packets[p.Type]++
			lastPacket[v.conn+v.dir] = p.Type
		case "snap":
			// The leader's tree after a SNAP packet (wal reads it:
			// TestSnapBodyFromZooKeeper); here only where it stands.
			if lastPacket[v.conn+v.dir] != PacketSnap {
				t.Errorf("line %d: a snapshot not after a SNAP packet", v.line)
			}
			snaps++
		default:
			t.Fatalf("line %d: kind %q", v.line, v.kind)
		}
	}
	// What the capture must keep covering when it is re-recorded.
	if hellos == 0 || snaps == 0 || touched == 0 || states[StateLooking] == 0 || states[StateFollowing]+states[StateLeading] == 0 {
		t.Errorf("hellos %d, snapshots %d, session touches %d, notifications by state %v", hellos, snaps, touched, states)
	}
	for _, typ := range []int32{PacketRequest, PacketProposal, PacketAck, PacketCommit, PacketPing,
		PacketNewLeader, PacketFollowerInfo, PacketUpToDate, PacketDiff, PacketSnap, PacketLeaderInfo, PacketAckEpoch} {
		if packets[typ] == 0 {
			t.Errorf("no %s packet in the vectors", PacketName(typ))
		}
	}
}

// checkQuorumPacket checks the data of the packet types whose layout the
// fact sheet gives, against what the capture's ensemble was.
func checkQuorumPacket(t *testing.T, v quorumVector, p *QuorumPacket, touched *int) {
	t.Helper()
	epoch := p.Zxid >> 32
	switch p.Type {
	case PacketFollowerInfo:
		li, err := LearnerInfoFrom(p.Data)
		if err != nil || len(p.Data) != 20 || li.ServerID < 1 || li.ServerID > 3 ||
			li.ProtocolVersion != ZabProtocolVersion || li.ConfigVersion != 0 || p.Zxid&0xffffffff != 0 {
			t.Errorf("line %d: FOLLOWERINFO zxid %#x %+v (%v)", v.line, p.Zxid, li, err)
		}
	case PacketLeaderInfo:
		if len(p.Data) != 4 || binary.BigEndian.Uint32(p.Data) != ZabProtocolVersion || epoch < 1 || p.Zxid&0xffffffff != 0 {
			t.Errorf("line %d: LEADERINFO zxid %#x data %x", v.line, p.Zxid, p.Data)
		}
	case PacketAckEpoch:
		if len(p.Data) != 4 {
			t.Errorf("line %d: ACKEPOCH data %x", v.line, p.Data)
		}
	case PacketNewLeader:
		if !strings.Contains(string(p.Data), "server.3=127.0.0.3:22888:23888:participant") || p.Zxid&0xffffffff != 0 {
			t.Errorf("line %d: NEWLEADER zxid %#x data %q", v.line, p.Zxid, p.Data)
		}
	case PacketAck, PacketCommit, PacketUpToDate, PacketDiff, PacketSnap:
		if p.Data != nil || p.AuthInfo != nil {
			t.Errorf("line %d: %s carries data %x, auth %v", v.line, PacketName(p.Type), p.Data, p.AuthInfo)
		}
	case PacketRequest:
		// int64 session, int32 cxid, int32 op, then the request body;
		// the client's identities ride along (null with a createSession,
		// whose body is the session timeout).
		if len(p.Data) < 16 || p.Zxid != -1 {
			t.Errorf("line %d: REQUEST zxid %#x data %x", v.line, p.Zxid, p.Data)
			return
		}
		op := OpCode(int32(binary.BigEndian.Uint32(p.Data[12:])))
		if (op == OpCreateSession) != (p.AuthInfo == nil) || (op != OpCreateSession && p.AuthInfo[0].Scheme != "ip") {
			t.Errorf("line %d: REQUEST zxid %#x data %x auth %v", v.line, p.Zxid, p.Data, p.AuthInfo)
		}
		fr, err := DecodeForwardedRequest(p.Data)
		if err != nil || fr.Op != op || !bytes.Equal(fr.Append(nil), p.Data) {
			t.Errorf("line %d: REQUEST data %x reads as %+v (%v)", v.line, p.Data, fr, err)
		}
		// The body is the client's request as it sent it: the request
		// record of its op, whole (createSession's is the timeout).
		if rec, ok := RequestRecord(fr.Op); ok && rec != nil && fr.Op != OpCreateSession {
			n, err := rec.Decode(fr.Body, Copy)
			if err != nil || n != len(fr.Body) || !bytes.Equal(rec.Append(nil), fr.Body) {
				t.Errorf("line %d: the forwarded %v body %x: %d of %d bytes (%v)", v.line, fr.Op, fr.Body, n, len(fr.Body), err)
			}
		}
	case PacketPing:
		// A learner's ping carries (int64 session, int32 timeout) touches.
		if v.dir == ">" {
			if p.Data == nil {
				t.Errorf("line %d: a learner's PING with null data", v.line)
			}
			touches, err := DecodeTouches(p.Data)
			if err != nil || !bytes.Equal(AppendTouches(nil, touches), p.Data) {
				t.Errorf("line %d: a learner's PING of %d bytes: %v", v.line, len(p.Data), err)
			}
			for _, tc := range touches {
				if tc.Timeout <= 0 || tc.Session == 0 {
					t.Errorf("line %d: touch %+v", v.line, tc)
				}
			}
			*touched += len(touches)
		}
	}
}

func TestElectionHello(t *testing.T) {
	v2 := ElectionHello{Protocol: ElectionProtocolV2, ServerID: 5, Addrs: "10.0.0.5:3888|10.0.1.5:3888"}
	b := v2.Append(nil)
	if h, n, err := DecodeElectionHello(append(b, 0, 0, 0, 1)); err != nil || n != len(b) || h != v2 {
		t.Fatalf("V2 hello: %+v %d %v", h, n, err)
	}
	// A 3.4 server sends its id alone.
	old := ElectionHello{ServerID: 7}
	if b := old.Append(nil); len(b) != 8 {
		t.Fatalf("3.4 hello is %d bytes", len(b))
	}
	if h, n, err := DecodeElectionHello(old.Append(nil)); err != nil || n != 8 || h != old {
		t.Fatalf("3.4 hello: %+v %d %v", h, n, err)
	}
	for cut := 0; cut < len(b); cut++ {
		if _, _, err := DecodeElectionHello(b[:cut]); !errors.Is(err, ErrShortRecord) {
			t.Fatalf("%d of %d bytes: %v", cut, len(b), err)
		}
	}
	bad := func(protocol int64, addrLen int32) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(protocol))
		b = binary.BigEndian.AppendUint64(b, 1)
		return binary.BigEndian.AppendUint32(b, uint32(addrLen))
	}
	for _, c := range []struct {
		b    []byte
		want error
	}{
		{bad(-65537, 5), ErrElectionProtocol},
		{bad(ElectionProtocolV1, 0), ErrElectionAddr},
		{bad(ElectionProtocolV1, -1), ErrElectionAddr},
		{bad(ElectionProtocolV1, MaxElectionAddr+1), ErrElectionAddr},
	} {
		if _, _, err := DecodeElectionHello(c.b); !errors.Is(err, c.want) {
			t.Errorf("%x: %v, want %v", c.b, err, c.want)
		}
	}
}

func TestNotificationFormats(t *testing.T) {
	n := Notification{State: StateFollowing, Leader: 3, Zxid: 0x500000007, ElectionEpoch: 9, PeerEpoch: 5,
		Version: NotificationVersion, Config: "server.1=a:1:2:participant\nversion=0"}
	b := n.Append(nil)
	if len(b) != 44+len(n.Config) {
		t.Fatalf("%d bytes", len(b))
	}
	if got, err := DecodeNotification(b); err != nil || got != n {
		t.Fatalf("%+v %v", got, err)
	}
	// Bytes after the config are ignored, as ZooKeeper ignores them.
	if got, err := DecodeNotification(append(b, 1, 2, 3)); err != nil || got != n {
		t.Fatalf("with trailing bytes: %+v %v", got, err)
	}
	// Before 3.4: 28 bytes, the peer epoch taken from the zxid.
	if got, err := DecodeNotification(b[:28]); err != nil || got.PeerEpoch != 5 || got.Version != 0 || got.Config != "" {
		t.Fatalf("28 bytes: %+v %v", got, err)
	}
	// 3.4 before versions: 40 bytes, of which the last four are not read.
	old := Notification{State: StateLooking, Leader: 2, Zxid: 0x100000001, ElectionEpoch: 1, PeerEpoch: 1}
	ob := old.Append(nil)
	if len(ob) != 40 {
		t.Fatalf("a version-0 notification is %d bytes", len(ob))
	}
	if got, err := DecodeNotification(ob); err != nil || got != old {
		t.Fatalf("40 bytes: %+v %v", got, err)
	}
	// 40 bytes are read as the format before versions even when the last
	// four say 1 (3.4.6 sent that); longer, version 1 has no config.
	v1 := append(b[:36:36], 0, 0, 0, 1)
	if got, err := DecodeNotification(v1); err != nil || got.Version != 0 {
		t.Fatalf("40 bytes saying version 1: %+v %v", got, err)
	}
	v1 = append(v1, 0, 0, 0, 9)
	if got, err := DecodeNotification(v1); err != nil || got.Version != 1 || got.Config != "" {
		t.Fatalf("version 1: %+v %v", got, err)
	}
	for _, c := range [][]byte{
		b[:27], b[:35], b[:39], b[:43],
		append(append([]byte(nil), b[:40]...), 0xff, 0xff, 0xff, 0xff), // config length -1
		append(append([]byte(nil), b[:40]...), 0, 0, 1, 0),             // config longer than the message
	} {
		if _, err := DecodeNotification(c); !errors.Is(err, ErrNotification) {
			t.Errorf("%d bytes %x: %v", len(c), c, err)
		}
	}
}

func TestQuorumPacketLimit(t *testing.T) {
	p := QuorumPacket{Type: PacketProposal, Zxid: 0x100000001, Data: make([]byte, 100)}
	b := p.Append(nil)
	if n, err := ReadQuorumPacket(&QuorumPacket{}, b, Copy, 100); err != nil || n != len(b) {
		t.Fatalf("at the limit: %d %v", n, err)
	}
	// Over the limit fails on the length alone, before the data is in.
	if _, err := ReadQuorumPacket(&QuorumPacket{}, b[:16], Copy, 99); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	bad := append(append([]byte(nil), b[:12]...), 0xff, 0xff, 0xff, 0xfe) // data length -2
	if _, err := ReadQuorumPacket(&QuorumPacket{}, bad, Copy, 100); !errors.Is(err, ErrNegativeLength) {
		t.Fatalf("negative length: %v", err)
	}
}

// A learner's PING with no touches is an empty buffer, as ZooKeeper's
// learners send it: its leader fails on a null one.
func TestEmptyTouchesAreNotNull(t *testing.T) {
	b := (&QuorumPacket{Type: PacketPing, Zxid: 5, Data: AppendTouches(nil, nil)}).Append(nil)
	if got := binary.BigEndian.Uint32(b[12:]); got != 0 {
		t.Fatalf("data length %d, want 0", int32(got))
	}
}

func TestLearnerInfoFrom(t *testing.T) {
	full := (&LearnerInfo{ServerID: 4, ProtocolVersion: ZabProtocolVersion, ConfigVersion: 0x100000000}).Append(nil)
	for _, c := range []struct {
		n    int
		want LearnerInfo
	}{
		{20, LearnerInfo{4, ZabProtocolVersion, 0x100000000}},
		{12, LearnerInfo{4, ZabProtocolVersion, 0}},
		{8, LearnerInfo{4, 0, 0}},
	} {
		if got, err := LearnerInfoFrom(full[:c.n]); err != nil || got != c.want {
			t.Errorf("%d bytes: %+v %v", c.n, got, err)
		}
	}
	if _, err := LearnerInfoFrom(full[:7]); !errors.Is(err, ErrShortRecord) {
		t.Errorf("7 bytes: %v", err)
	}
}

func addQuorumSeeds(f *testing.F, kind string) {
	for _, v := range readQuorumVectors(f) {
		if v.kind == kind {
			f.Add(v.b)
		}
	}
}

func FuzzElectionHello(f *testing.F) {
	addQuorumSeeds(f, "hello")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := DecodeElectionHello(b)
		if err != nil {
			return
		}
		if got := h.Append(nil); !bytes.Equal(got, b[:n]) {
			t.Fatalf("%x re-encodes to %x", b[:n], got)
		}
	})
}

func FuzzNotification(f *testing.F) {
	for _, v := range readQuorumVectors(f) {
		if v.kind == "note" && len(v.b) > 4 {
			f.Add(v.b[4:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNotification(b)
		if err != nil {
			return
		}
		if n.Version > 1 {
			if got := n.Append(nil); !bytes.Equal(got, b[:44+len(n.Config)]) {
				t.Fatalf("%x re-encodes to %x", b, got)
			}
		}
	})
}

func FuzzQuorumPacket(f *testing.F) {
	addQuorumSeeds(f, "packet")
	f.Fuzz(func(t *testing.T, b []byte) {
		var p QuorumPacket
		var n int
		checkAllocs(t, len(b), func() { n, _ = ReadQuorumPacket(&p, b, Copy, 1<<20) })
		if n == 0 {
			return
		}
		got := p.Append(nil)
		if !bytes.Equal(got, b[:n]) && !nullStringsEmptied(b[:n], got) {
			t.Fatalf("%x re-encodes to %x", b[:n], got)
		}
		var again QuorumPacket
		if m, err := ReadQuorumPacket(&again, got, Copy, 1<<20); err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%x: the re-encoded packet reads back as %+v (%d bytes, %v), not %+v", b[:n], again, m, err, p)
		}
	})
}

// nullStringsEmptied reports whether enc differs from in only where a null
// string's length (-1) became an empty string's (0): the decoder reads a
// null string, such as the id of an identity in a packet's authinfo, as
// empty (as it does in every record), and the encoder writes it so. Null
// buffers, the packet's data among them, keep their null.
func nullStringsEmptied(in, enc []byte) bool {
	if len(in) != len(enc) {
		return false
	}
	for i := 0; i < len(in); i++ {
		if in[i] == enc[i] {
			continue
		}
		if i+4 > len(in) || !bytes.Equal(in[i:i+4], []byte{0xff, 0xff, 0xff, 0xff}) || !bytes.Equal(enc[i:i+4], []byte{0, 0, 0, 0}) {
			return false
		}
		i += 3
	}
	return true
}
