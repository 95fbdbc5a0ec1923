package electionport

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
)

// ports picks a quorum and an election port free on 127.0.0.1; every
// server binds them on its own address (127.0.0.N).
func ports(t *testing.T) (quorum, election int) {
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
	return q, e
}

func addr(id int64, port int) string {
	return net.JoinHostPort(fmt.Sprintf("127.0.0.%d", id), strconv.Itoa(port))
}

func voters(ids []int64, port int) []Peer {
	var out []Peer
	for _, id := range ids {
		out = append(out, Peer{ID: id, Addr: addr(id, port)})
	}
	return out
}

func listen(t *testing.T, id int64, ids []int64, port int) *Port {
	t.Helper()
	p, err := Listen(Config{ID: id, Addr: addr(id, port), Voters: voters(ids, port),
		QuorumConfig: "version=0", ConnectTimeout: 2 * time.Second, HelloTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type result struct {
	id int64
	d  Decision
	er error
}

func electAll(t *testing.T, ps map[int64]*Port, zxid, epoch int64) map[int64]Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan result, len(ps))
	for id, p := range ps {
		go func() {
			d, err := p.Elect(ctx, zxid, epoch)
			out <- result{id, d, err}
		}()
	}
	got := map[int64]Decision{}
	for range ps {
		r := <-out
		if r.er != nil {
			t.Fatalf("server %d: %v", r.id, r.er)
		}
		got[r.id] = r.d
	}
	return got
}

// Three zkd election ports on 127.0.0.1-3 elect the highest id, elect
// again among two when it goes, and take it back as a follower: real
// sockets, so the rule that only the higher id's connection survives is
// exercised both ways.
func TestThreeServersElectAndRejoin(t *testing.T) {
	_, port := ports(t)
	ids := []int64{1, 2, 3}
	ps := map[int64]*Port{}
	for _, id := range ids {
		ps[id] = listen(t, id, ids, port)
	}
	got := electAll(t, ps, 0, 0)
	for id, d := range got {
		want := wire.StateFollowing
		if id == 3 {
			want = wire.StateLeading
		}
		if d.State != want || d.Vote.Leader != 3 {
			t.Fatalf("server %d decided %v for %d; want %v for 3", id, d.State, d.Vote.Leader, want)
		}
	}

	ps[3].Close()
	delete(ps, 3)
	got = electAll(t, ps, 0x100000004, 1)
	if got[2].State != wire.StateLeading || got[1].State != wire.StateFollowing || got[1].Vote.Leader != 2 {
		t.Fatalf("after losing 3: %+v", got)
	}
	for _, p := range ps {
		p.SetPeerEpoch(2)
	}

	back := listen(t, 3, ids, port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := back.Elect(ctx, 0x100000004, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != wire.StateFollowing || d.Vote.Leader != 2 || d.Vote.PeerEpoch != 2 {
		t.Fatalf("returning server 3 decided %+v; want to follow 2 in epoch 2", d)
	}
}

// Garbage on the election port closes that connection only: an election
// still completes.
func TestBadHellosCloseOnlyTheirConnection(t *testing.T) {
	_, port := ports(t)
	ids := []int64{1, 2}
	p1 := listen(t, 1, ids, port)
	for _, junk := range [][]byte{
		[]byte("\xffGET / HTTP/1.1\r\n\r\n"), // a negative first long that is no version
		(&wire.ElectionHello{Protocol: wire.ElectionProtocolV1, ServerID: 9, Addrs: "x"}).Append(nil)[:16], // then an address of 1 MB:
	} {
		if len(junk) == 16 {
			junk = binary.BigEndian.AppendUint32(junk, 1<<20)
		}
		c, err := net.Dial("tcp", addr(1, port))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("after %q the connection stayed open: %v", junk, err)
		}
		c.Close()
	}
	p2 := listen(t, 2, ids, port)
	got := electAll(t, map[int64]*Port{1: p1, 2: p2}, 0, 0)
	if got[1].Vote.Leader != 2 || got[2].State != wire.StateLeading {
		t.Fatalf("%+v", got)
	}
}

// ensembleConfig is the zoo.cfg of a ZooKeeper member of the 3-server
// ensemble on 127.0.0.1-3.
func ensembleConfig(id int64, quorum, election int) map[string]string {
	cfg := map[string]string{"tickTime": "200", "initLimit": "20", "syncLimit": "10",
		"clientPortAddress": fmt.Sprintf("127.0.0.%d", id)}
	for s := int64(1); s <= 3; s++ {
		cfg[fmt.Sprintf("server.%d", s)] = fmt.Sprintf("127.0.0.%d:%d:%d", s, quorum, election)
	}
	return cfg
}

// The ZooKeeper ensemble's config text, as its members send it in their
// notifications: a zkd member sends the same.
func quorumConfig(quorum, election int) string {
	s := ""
	for id := 1; id <= 3; id++ {
		s += fmt.Sprintf("server.%d=127.0.0.%d:%d:%d:participant\n", id, id, quorum, election)
	}
	return s + "version=0"
}

// electAsThird runs an election as server 3 of the ensemble on
// 127.0.0.1-3, with an empty log.
func electAsThird(t *testing.T, quorum, election int) Decision {
	t.Helper()
	p, err := Listen(Config{ID: 3, Addr: addr(3, election), Voters: voters([]int64{1, 2, 3}, election),
		QuorumConfig: quorumConfig(quorum, election)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := p.Elect(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Two Apache ZooKeeper 3.8 servers form an ensemble; a zkd election port
// as the third server joins it and names the same leader.
func TestJoinsAZooKeeperEnsemble(t *testing.T) {
	quorum, election := ports(t)
	zk := map[int64]*zkref.Server{}
	for _, id := range []int64{1, 2} {
		zk[id] = zkreftest.Start(t, zkref.Options{MyID: id, Config: ensembleConfig(id, quorum, election)})
	}
	leader := int64(0)
	for id, s := range zk {
		if err := s.WaitServing(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		if s.Mode() == "leader" {
			leader = id
		}
	}
	if leader == 0 {
		t.Fatalf("no ZooKeeper server leads: modes %q and %q", zk[1].Mode(), zk[2].Mode())
	}
	d := electAsThird(t, quorum, election)
	if d.State != wire.StateFollowing || d.Vote.Leader != leader || d.Vote.PeerEpoch < 1 {
		t.Fatalf("zkd decided %+v; ZooKeeper's leader is %d", d, leader)
	}
}

// An Apache ZooKeeper 3.8 server and a zkd election port make a quorum of
// a 3-server ensemble: zkd has the higher id and leads, and ZooKeeper
// agrees: it connects to zkd's quorum port and introduces itself as a
// follower.
func TestLeadsAZooKeeperServer(t *testing.T) {
	quorum, election := ports(t)
	qln, err := net.Listen("tcp", addr(3, quorum))
	if err != nil {
		t.Fatal(err)
	}
	defer qln.Close()
	zkreftest.Start(t, zkref.Options{MyID: 1, Config: ensembleConfig(1, quorum, election)})
	d := electAsThird(t, quorum, election)
	if d.State != wire.StateLeading || d.Vote.Leader != 3 {
		t.Fatalf("zkd decided %+v; want to lead", d)
	}
	qln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := qln.Accept()
	if err != nil {
		t.Fatalf("ZooKeeper never connected to the leader's quorum port: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	buf := make([]byte, 0, 256)
	var pkt wire.QuorumPacket
	for {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("reading ZooKeeper's first packet: %v", err)
		}
		buf = append(buf, b)
		n, err := wire.ReadQuorumPacket(&pkt, buf, wire.Copy, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
	}
	li, err := wire.LearnerInfoFrom(pkt.Data)
	if pkt.Type != wire.PacketFollowerInfo || err != nil || li.ServerID != 1 || li.ProtocolVersion != wire.ZabProtocolVersion {
		t.Fatalf("ZooKeeper's first packet: %s %+v (%v)", wire.PacketName(pkt.Type), li, err)
	}
}
