package zkreftest

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/wire"
)

// Ensemble is a 3-server ensemble on loopback for tests: server N binds
// 127.0.0.N, on the same quorum and election ports as the others. The
// tests start some members as Apache ZooKeeper (Start) and play the
// others themselves.
type Ensemble struct {
	QuorumPort, ElectionPort int
}

// NewEnsemble picks the ports, free on 127.0.0.1.
func NewEnsemble(t testing.TB) Ensemble {
	t.Helper()
	q, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if q == e {
		t.Skip("the same free port twice; run again")
	}
	return Ensemble{QuorumPort: q, ElectionPort: e}
}

// Addr is server id's address on port.
func (e Ensemble) Addr(id int64, port int) string { return fmt.Sprintf("127.0.0.%d:%d", id, port) }

// Config is the zoo.cfg of member id (ticks of 200 ms, every four-letter
// word allowed).
func (e Ensemble) Config(id int64) map[string]string {
	cfg := map[string]string{"tickTime": "200", "initLimit": "50", "syncLimit": "25",
		"clientPortAddress": fmt.Sprintf("127.0.0.%d", id), "4lw.commands.whitelist": "*"}
	for s := int64(1); s <= 3; s++ {
		cfg[fmt.Sprintf("server.%d", s)] = fmt.Sprintf("127.0.0.%d:%d:%d", s, e.QuorumPort, e.ElectionPort)
	}
	return cfg
}

// QuorumConfig is the config text the members send in their election
// notifications and NEWLEADER.
func (e Ensemble) QuorumConfig() string {
	s := ""
	for id := 1; id <= 3; id++ {
		s += fmt.Sprintf("server.%d=127.0.0.%d:%d:%d:participant\n", id, id, e.QuorumPort, e.ElectionPort)
	}
	return s + "version=0"
}

// Start starts the members ids as Apache ZooKeeper, stopped at cleanup.
func (e Ensemble) Start(t testing.TB, ids ...int64) map[int64]*zkref.Server {
	t.Helper()
	out := map[int64]*zkref.Server{}
	for _, id := range ids {
		out[id] = Start(t, zkref.Options{MyID: id, Config: e.Config(id)})
	}
	return out
}

// Leader waits until every server serves and returns the one leading.
func Leader(t testing.TB, servers map[int64]*zkref.Server) int64 {
	t.Helper()
	var leader int64
	for id, s := range servers {
		if err := s.WaitServing(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		if s.Mode() == "leader" {
			leader = id
		}
	}
	if leader == 0 {
		t.Fatal("no ZooKeeper server leads")
	}
	return leader
}

// QuorumConn is a test's end of a quorum-port connection: QuorumPackets,
// back to back.
type QuorumConn struct {
	T    testing.TB
	Conn net.Conn
	// R is the stream: a SNAP packet's tree is read from it too.
	R   *bufio.Reader
	buf []byte
}

// NewQuorumConn wraps c.
func NewQuorumConn(t testing.TB, c net.Conn) *QuorumConn {
	return &QuorumConn{T: t, Conn: c, R: bufio.NewReader(c)}
}

// Send writes p, failing the test on an error.
func (q *QuorumConn) Send(p wire.QuorumPacket) {
	q.T.Helper()
	q.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := q.Conn.Write(p.Append(nil)); err != nil {
		q.T.Fatalf("sending %s: %v", wire.PacketName(p.Type), err)
	}
}

// Read returns the next packet. It reads a byte at a time from R, so that
// nothing after the packet (a SNAP's tree) is taken off the stream.
func (q *QuorumConn) Read() wire.QuorumPacket {
	q.T.Helper()
	p, err := q.TryRead(30 * time.Second)
	if err != nil {
		q.T.Fatalf("reading a quorum packet: %v", err)
	}
	return p
}

// TryRead is Read within d, returning what stops it: the connection
// closed, the time up, or a packet that cannot be read.
func (q *QuorumConn) TryRead(d time.Duration) (wire.QuorumPacket, error) {
	q.Conn.SetReadDeadline(time.Now().Add(d))
	q.buf = q.buf[:0]
	for {
		b, err := q.R.ReadByte()
		if err != nil {
			return wire.QuorumPacket{}, err
		}
		q.buf = append(q.buf, b)
		var p wire.QuorumPacket
		n, err := wire.ReadQuorumPacket(&p, q.buf, wire.Copy, 4<<20)
		if err != nil {
			return wire.QuorumPacket{}, err
		}
		if n > 0 {
			return p, nil
		}
	}
}
