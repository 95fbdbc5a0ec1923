package zab_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wal"
	"zkd/wire"
	"zkd/zab"
	"zkd/ztree"
)

// learnerConn is the learner's end of a quorum connection, for the test.
type learnerConn struct {
	t   *testing.T
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

func (l *learnerConn) send(p wire.QuorumPacket) {
	l.t.Helper()
	l.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := l.c.Write(p.Append(nil)); err != nil {
		l.t.Fatalf("sending %s: %v", wire.PacketName(p.Type), err)
	}
}

// read returns the next packet, a byte at a time through the stream
// reader (the SNAP body must stay on the stream after its packet).
func (l *learnerConn) read() wire.QuorumPacket {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	l.buf = l.buf[:0]
	for {
		b, err := l.br.ReadByte()
		if err != nil {
			l.t.Fatalf("reading from the leader: %v", err)
		}
		l.buf = append(l.buf, b)
		var p wire.QuorumPacket
		n, err := wire.ReadQuorumPacket(&p, l.buf, wire.Copy, 4<<20)
		if err != nil {
			l.t.Fatal(err)
		}
		if n > 0 {
			return p
		}
	}
}

// A ZooKeeper 3.8 leader takes the rules of this package, driven by a
// test over a socket, for a follower: discovery (LearnerLeaderInfo), the
// SNAP sync with its tree (wal.ReadSnapBody), NEWLEADER and UPTODATE
// (Follower), then broadcast. The learner ends with the tree ZooKeeper
// has, and the leader counts it among its synced followers.
func TestFollowsAZooKeeperLeader(t *testing.T) {
	q, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e, err := zkref.FreePort()
	if err != nil || e == q {
		t.Skipf("no two free ports (%v)", err)
	}
	zk := map[int64]*zkref.Server{}
	for id := int64(1); id <= 2; id++ {
		cfg := map[string]string{"tickTime": "200", "initLimit": "50", "syncLimit": "25",
			"clientPortAddress": fmt.Sprintf("127.0.0.%d", id), "4lw.commands.whitelist": "*"}
		for s := 1; s <= 3; s++ {
			cfg[fmt.Sprintf("server.%d", s)] = fmt.Sprintf("127.0.0.%d:%d:%d", s, q, e)
		}
		zk[id] = zkreftest.Start(t, zkref.Options{MyID: id, Config: cfg})
	}
	var leader int64
	for id, s := range zk {
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
	client := zkreftest.Dial(t, zk[leader].Addr, zkreftest.NewSession())
	acl := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	client.OK(wire.OpCreate, &wire.CreateRequest{Path: "/interop", Data: []byte("before"), ACL: acl})
	client.OK(wire.OpCreate, &wire.CreateRequest{Path: "/interop/child", Data: []byte("c"), ACL: acl})

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.%d:%d", leader, q))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := &learnerConn{t: t, c: c, br: bufio.NewReader(c)}

	// Discovery: an empty server 3, which accepted no epoch yet.
	info := (&wire.LearnerInfo{ServerID: 3, ProtocolVersion: wire.ZabProtocolVersion}).Append(nil)
	l.send(wire.QuorumPacket{Type: wire.PacketFollowerInfo, Zxid: 0, Data: info})
	li := l.read()
	if li.Type != wire.PacketLeaderInfo {
		t.Fatalf("the leader answered FOLLOWERINFO with %s", wire.PacketName(li.Type))
	}
	epoch := li.Zxid >> 32
	current, _, err := zab.LearnerLeaderInfo(epoch, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.send(wire.QuorumPacket{Type: wire.PacketAckEpoch, Zxid: 0, Data: binary.BigEndian.AppendUint32(nil, uint32(current))})

	// Sync and broadcast, the Follower's actions carried out on a tree.
	f := zab.NewFollower(epoch, 0)
	var tree *ztree.Tree
	entries := map[int64][]byte{}
	serving := false
	apply := func(z int64) {
		txn, err := wal.DecodeTxn(entries[z])
		if err != nil {
			t.Fatalf("txn %#x: %v", z, err)
		}
		if z > tree.Zxid() { // the SNAP's tree is fuzzy: it may hold z
			tree.Apply(&txn.Header, txn.Record)
			tree.Publish()
		}
	}
	step := func() {
		p := l.read()
		if p.Type == wire.PacketProposal {
			entries[p.Zxid] = p.Data
		}
		acts, err := f.Step(&p)
		if err != nil {
			t.Fatalf("after %s %#x: %v", wire.PacketName(p.Type), p.Zxid, err)
		}
		for _, a := range acts {
			switch a.Kind {
			case zab.ActLoadSnapshot:
				if tree, err = wal.ReadSnapBody(l.br, a.Zxid, ztree.Options{}); err != nil {
					t.Fatal(err)
				}
			case zab.ActTruncate:
				t.Fatalf("an empty learner was told to truncate to %#x", a.Zxid)
			case zab.ActSend:
				l.send(a.Packet)
			case zab.ActApply:
				apply(a.Zxid)
			case zab.ActServe:
				serving = true
			case zab.ActPong:
				l.send(wire.QuorumPacket{Type: wire.PacketPing, Zxid: a.Zxid})
			}
		}
	}
	for i := 0; !serving; i++ {
		if i > 1000 {
			t.Fatal("not serving after 1000 packets")
		}
		step()
	}
	if tree == nil {
		t.Fatal("an empty learner was not sent a snapshot")
	}

	// Broadcast: a write on the leader reaches this follower, which
	// acknowledges it; ZooKeeper then commits it here too.
	client.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/interop", Data: []byte("after"), Version: -1})
	for i := 0; i < 1000; i++ {
		if n, ok := tree.Published().Get("/interop"); ok && n.Data == "after" {
			break
		}
		step()
	}
	v := tree.Published()
	n, ok := v.Get("/interop")
	kids, _, _ := v.AppendChildren(nil, "/interop", nil)
	if !ok || n.Data != "after" || len(kids) != 1 || kids[0] != "child" {
		t.Fatalf("the learner's /interop: %q (%v), children %v", n.Data, ok, kids)
	}
	mc, err := net.Dial("tcp", zk[leader].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	mc.SetDeadline(time.Now().Add(10 * time.Second))
	mc.Write([]byte("mntr"))
	raw, err := io.ReadAll(mc)
	if err != nil {
		t.Fatal(err)
	}
	mntr := string(raw)
	if !strings.Contains(mntr, "zk_synced_followers\t2") {
		t.Fatalf("the leader does not count this learner among its synced followers:\n%s", mntr)
	}
}
