package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Records of the two server-to-server ports of a ZooKeeper 3.8 ensemble:
// the election port (a hello, then length-prefixed Fast Leader Election
// notifications) and the quorum port (QuorumPackets back to back, with no
// frame around them). Layouts: shared/reference/zab-protocol.md, sections
// 1.1–1.4 and 2.1–2.2.

// Election-port protocol versions: the first int64 of a hello. V1 carries
// one election address, V2 (zookeeper.multiAddress.enabled) a list of them
// separated by '|'. A first int64 of zero or more is a 3.4 server's bare
// server id, with nothing after it.
const (
	ElectionProtocolV1 int64 = -65536
	ElectionProtocolV2 int64 = -65535
)

// Limits the Java peers apply on the election port.
const (
	// MaxElectionAddr bounds a hello's address bytes (maxBuffer).
	MaxElectionAddr = 2048
	// MaxElectionMessage bounds a notification frame (PACKETMAXSIZE).
	MaxElectionMessage = 524288
)

// Errors of the server-to-server records.
var (
	// ErrElectionProtocol means a hello whose first int64 is negative but
	// neither protocol version.
	ErrElectionProtocol = errors.New("wire: unknown election protocol version")
	// ErrElectionAddr means a hello's address length outside 1..2048.
	ErrElectionAddr = errors.New("wire: election address length out of range")
	// ErrNotification means a notification too short for its format, or
	// whose config length does not fit it.
	ErrNotification = errors.New("wire: malformed election notification")
	// ErrPacketTooLarge means a QuorumPacket whose data is longer than
	// the limit the reader was given.
	ErrPacketTooLarge = errors.New("wire: quorum packet data exceeds the limit")
)

// ElectionHello is what a server sends first on an election connection it
// opened: who it is and where its election port is.
type ElectionHello struct {
	// Protocol is ElectionProtocolV1 or V2; zero for a 3.4 server, which
	// sends its id alone.
	Protocol int64
	ServerID int64
	// Addrs is "host:port" (V1) or "host:port|host:port|…" (V2).
	Addrs string
}

// Append encodes the hello. A hello with Protocol zero is written as a 3.4
// server writes it: the id alone.
func (h *ElectionHello) Append(dst []byte) []byte {
	if h.Protocol == 0 {
		return appendInt64(dst, h.ServerID)
	}
	dst = appendInt64(dst, h.Protocol)
	dst = appendInt64(dst, h.ServerID)
	return appendString(dst, h.Addrs)
}

// DecodeElectionHello reads a hello from the start of b and returns the
// bytes it took; ErrShortRecord means more bytes are needed (the lengths
// seen so far are in range).
func DecodeElectionHello(b []byte) (ElectionHello, int, error) {
	var h ElectionHello
	if len(b) < 8 {
		return h, 0, ErrShortRecord
	}
	first := int64(binary.BigEndian.Uint64(b))
	if first >= 0 {
		h.ServerID = first
		return h, 8, nil
	}
	if first != ElectionProtocolV1 && first != ElectionProtocolV2 {
		return h, 0, fmt.Errorf("%w: %d", ErrElectionProtocol, first)
	}
	h.Protocol = first
	if len(b) < 20 {
		return h, 0, ErrShortRecord
	}
	h.ServerID = int64(binary.BigEndian.Uint64(b[8:]))
	n := int32(binary.BigEndian.Uint32(b[16:]))
	if n < 1 || n > MaxElectionAddr {
		return h, 0, fmt.Errorf("%w: %d", ErrElectionAddr, n)
	}
	if len(b) < 20+int(n) {
		return h, 0, ErrShortRecord
	}
	h.Addrs = string(b[20 : 20+n])
	return h, 20 + int(n), nil
}

// PeerState is a server's state as its election notifications give it.
type PeerState int32

// The peer states, as their ordinals go on the wire.
const (
	StateLooking PeerState = iota
	StateFollowing
	StateLeading
	StateObserving
)

func (s PeerState) String() string {
	switch s {
	case StateLooking:
		return "LOOKING"
	case StateFollowing:
		return "FOLLOWING"
	case StateLeading:
		return "LEADING"
	case StateObserving:
		return "OBSERVING"
	}
	return fmt.Sprintf("PeerState(%d)", int32(s))
}

// NotificationVersion is the notification format 3.5 to 3.9 send: with a
// version field and the sender's committed ensemble config.
const NotificationVersion = 2

// Notification is a Fast Leader Election message: the sender's state and
// the vote it holds.
type Notification struct {
	State         PeerState
	Leader        int64 // the server id it votes for, or follows
	Zxid          int64 // the last zxid of that server, as the vote has it
	ElectionEpoch int64 // the sender's election round (logicalclock)
	PeerEpoch     int64 // the epoch of the server voted for
	// Version is NotificationVersion for 3.5 and later; 0 for the older
	// formats (28 and 40 bytes), which carry no config.
	Version int32
	// Config is the text of the sender's committed ensemble config
	// (version > 1 only): server.N=… lines and version=<hex>.
	Config string
}

// Append encodes the notification payload (the frame's length prefix is
// the caller's): the 44-byte form with its config when Version > 1, the
// 40-byte form (state, leader, zxid, epochs, and four bytes nobody reads)
// for Version 0.
func (n *Notification) Append(dst []byte) []byte {
	dst = appendInt32(dst, int32(n.State))
	dst = appendInt64(dst, n.Leader)
	dst = appendInt64(dst, n.Zxid)
	dst = appendInt64(dst, n.ElectionEpoch)
	dst = appendInt64(dst, n.PeerEpoch)
	dst = appendInt32(dst, n.Version)
	if n.Version > 1 {
		dst = appendString(dst, n.Config)
	}
	return dst
}

// DecodeNotification reads one notification payload, in any of the formats
// a 3.4 to 3.9 server sends: 28 bytes (no peer epoch: it is the zxid's),
// 40 bytes (peer epoch, no version), or with a version and, above version
// 1, a config. Bytes after the config are ignored, as ZooKeeper ignores
// them. The state is returned as sent; ZooKeeper drops a notification with
// an unknown one, and so must the caller.
func DecodeNotification(b []byte) (Notification, error) {
	var n Notification
	if len(b) < 28 {
		return n, fmt.Errorf("%w: %d bytes", ErrNotification, len(b))
	}
	n.State = PeerState(int32(binary.BigEndian.Uint32(b)))
	n.Leader = int64(binary.BigEndian.Uint64(b[4:]))
	n.Zxid = int64(binary.BigEndian.Uint64(b[12:]))
	n.ElectionEpoch = int64(binary.BigEndian.Uint64(b[20:]))
	switch {
	case len(b) == 28:
		n.PeerEpoch = n.Zxid >> 32
		return n, nil
	case len(b) < 36:
		return n, fmt.Errorf("%w: %d bytes", ErrNotification, len(b))
	}
	n.PeerEpoch = int64(binary.BigEndian.Uint64(b[28:]))
	if len(b) == 40 {
		return n, nil // the format before versions: no more to read
	}
	if len(b) < 40 {
		return n, fmt.Errorf("%w: %d bytes", ErrNotification, len(b))
	}
	n.Version = int32(binary.BigEndian.Uint32(b[36:]))
	if n.Version <= 1 {
		return n, nil
	}
	if len(b) < 44 {
		return n, fmt.Errorf("%w: version %d and %d bytes", ErrNotification, n.Version, len(b))
	}
	size := int32(binary.BigEndian.Uint32(b[40:]))
	if size < 0 || int(size) > len(b)-44 {
		return n, fmt.Errorf("%w: config length %d in %d bytes", ErrNotification, size, len(b))
	}
	n.Config = string(b[44 : 44+size])
	return n, nil
}

// The quorum packet types, QuorumPacket.Type (Leader.java's constants).
const (
	PacketRequest           int32 = 1
	PacketProposal          int32 = 2
	PacketAck               int32 = 3
	PacketCommit            int32 = 4
	PacketPing              int32 = 5
	PacketRevalidate        int32 = 6
	PacketSync              int32 = 7
	PacketInform            int32 = 8
	PacketCommitAndActivate int32 = 9
	PacketNewLeader         int32 = 10
	PacketFollowerInfo      int32 = 11
	PacketUpToDate          int32 = 12
	PacketDiff              int32 = 13
	PacketTrunc             int32 = 14
	PacketSnap              int32 = 15
	PacketObserverInfo      int32 = 16
	PacketLeaderInfo        int32 = 17
	PacketAckEpoch          int32 = 18
	PacketInformAndActivate int32 = 19
)

var packetNames = [...]string{
	PacketRequest: "REQUEST", PacketProposal: "PROPOSAL", PacketAck: "ACK", PacketCommit: "COMMIT",
	PacketPing: "PING", PacketRevalidate: "REVALIDATE", PacketSync: "SYNC", PacketInform: "INFORM",
	PacketCommitAndActivate: "COMMITANDACTIVATE", PacketNewLeader: "NEWLEADER",
	PacketFollowerInfo: "FOLLOWERINFO", PacketUpToDate: "UPTODATE", PacketDiff: "DIFF",
	PacketTrunc: "TRUNC", PacketSnap: "SNAP", PacketObserverInfo: "OBSERVERINFO",
	PacketLeaderInfo: "LEADERINFO", PacketAckEpoch: "ACKEPOCH", PacketInformAndActivate: "INFORMANDACTIVATE",
}

// PacketName is a quorum packet type's name, as ZooKeeper logs it.
func PacketName(t int32) string {
	if t > 0 && int(t) < len(packetNames) {
		return packetNames[t]
	}
	return fmt.Sprintf("UNKNOWN(%d)", t)
}

// ReadQuorumPacket reads one packet from the start of b, a quorum-port
// stream with no frames, into p, and returns the bytes it took. n == 0 and
// no error means the packet is not all there yet. A data length above max
// fails as soon as its four bytes are in, so a reader never waits for (or
// buffers) more than max bytes of data: ZooKeeper's limit is jute.maxbuffer
// plus its extra size (about 2 MiB by default). In Alias mode Data and the
// identities point into b.
func ReadQuorumPacket(p *QuorumPacket, b []byte, mode Mode, max int) (int, error) {
	if len(b) >= 16 {
		if size := int32(binary.BigEndian.Uint32(b[12:])); int64(size) > int64(max) {
			return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrPacketTooLarge, size, max)
		}
	}
	n, err := p.Decode(b, mode)
	if errors.Is(err, ErrShortRecord) {
		return 0, nil
	}
	return n, err
}

// ZabProtocolVersion is the Zab version a 3.5+ learner states in its
// LearnerInfo and a leader sends in LEADERINFO.
const ZabProtocolVersion = 0x10000

// LearnerInfoFrom reads the LearnerInfo in a FOLLOWERINFO or OBSERVERINFO.
// As ZooKeeper's leader does, it takes the shorter forms older learners
// send: the id alone (8 bytes), or the id and protocol version (12); the
// fields they lack are zero. Bytes after the 20 are ignored.
func LearnerInfoFrom(data []byte) (LearnerInfo, error) {
	var l LearnerInfo
	switch {
	case len(data) >= 20:
		l.ConfigVersion = int64(binary.BigEndian.Uint64(data[12:]))
		fallthrough
	case len(data) >= 12:
		l.ProtocolVersion = int32(binary.BigEndian.Uint32(data[8:]))
		fallthrough
	case len(data) >= 8:
		l.ServerID = int64(binary.BigEndian.Uint64(data))
		return l, nil
	}
	return l, fmt.Errorf("%w: LearnerInfo of %d bytes", ErrShortRecord, len(data))
}

// ForwardedRequest is the data of a REQUEST a learner forwards to its
// leader: the client's session, its cxid and op, and the request body as
// the client sent it (after the RequestHeader).
type ForwardedRequest struct {
	Session int64
	Cxid    int32
	Op      OpCode
	Body    []byte
}

// Append encodes the REQUEST data.
func (r *ForwardedRequest) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.Session)
	dst = appendInt32(dst, r.Cxid)
	dst = appendInt32(dst, int32(r.Op))
	return append(dst, r.Body...)
}

// DecodeForwardedRequest reads REQUEST data; Body points into b.
func DecodeForwardedRequest(b []byte) (ForwardedRequest, error) {
	if len(b) < 16 {
		return ForwardedRequest{}, fmt.Errorf("%w: REQUEST data of %d bytes", ErrShortRecord, len(b))
	}
	return ForwardedRequest{
		Session: int64(binary.BigEndian.Uint64(b)),
		Cxid:    int32(binary.BigEndian.Uint32(b[8:])),
		Op:      OpCode(int32(binary.BigEndian.Uint32(b[12:]))),
		Body:    b[16:],
	}, nil
}

// SessionTouch is a session a learner saw activity on, with its timeout
// in ms, as its answer to the leader's PING reports it.
type SessionTouch struct {
	Session int64
	Timeout int32
}

// AppendTouches encodes a learner's PING data: its touches back to back.
// With none it is an empty buffer, never null: ZooKeeper's leader reads
// the data of a learner's PING without checking, and a null one kills
// the learner's connection.
func AppendTouches(dst []byte, ts []SessionTouch) []byte {
	if dst == nil {
		dst = make([]byte, 0, 12*len(ts))
	}
	for _, t := range ts {
		dst = appendInt64(dst, t.Session)
		dst = appendInt32(dst, t.Timeout)
	}
	return dst
}

// DecodeTouches reads a learner's PING data (a leader's PING has none).
func DecodeTouches(b []byte) ([]SessionTouch, error) {
	if len(b)%12 != 0 {
		return nil, fmt.Errorf("%w: PING data of %d bytes is no whole number of (session, timeout)", ErrShortRecord, len(b))
	}
	out := make([]SessionTouch, 0, len(b)/12)
	for ; len(b) > 0; b = b[12:] {
		out = append(out, SessionTouch{Session: int64(binary.BigEndian.Uint64(b)), Timeout: int32(binary.BigEndian.Uint32(b[8:]))})
	}
	return out, nil
}
