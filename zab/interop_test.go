package zab_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/electionport"
	"zkd/wal"
	"zkd/wire"
	"zkd/zab"
	"zkd/ztree"
)

// This package's follower rules, driven over a socket by the test, follow
// a ZooKeeper 3.8 leader: discovery (LearnerLeaderInfo), the SNAP sync and
// its tree (wal.ReadSnapBody), NEWLEADER and UPTODATE (Follower), then
// broadcast. The learner ends with the tree ZooKeeper has, and the leader
// counts it among its synced followers.
func TestFollowsAZooKeeperLeader(t *testing.T) {
	ens := zkreftest.NewEnsemble(t)
	zk := ens.Start(t, 1, 2)
	leader := zkreftest.Leader(t, zk)
	client := zkreftest.Dial(t, zk[leader].Addr, zkreftest.NewSession())
	acl := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
	client.OK(wire.OpCreate, &wire.CreateRequest{Path: "/interop", Data: []byte("before"), ACL: acl})
	client.OK(wire.OpCreate, &wire.CreateRequest{Path: "/interop/child", Data: []byte("c"), ACL: acl})

	c, err := net.Dial("tcp", ens.Addr(leader, ens.QuorumPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := zkreftest.NewQuorumConn(t, c)

	// Discovery: an empty server 3, which accepted no epoch yet.
	info := (&wire.LearnerInfo{ServerID: 3, ProtocolVersion: wire.ZabProtocolVersion}).Append(nil)
	l.Send(wire.QuorumPacket{Type: wire.PacketFollowerInfo, Zxid: 0, Data: info})
	li := l.Read()
	if li.Type != wire.PacketLeaderInfo {
		t.Fatalf("the leader answered FOLLOWERINFO with %s", wire.PacketName(li.Type))
	}
	epoch := li.Zxid >> 32
	current, _, err := zab.LearnerLeaderInfo(epoch, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Send(wire.QuorumPacket{Type: wire.PacketAckEpoch, Zxid: 0, Data: binary.BigEndian.AppendUint32(nil, uint32(current))})

	// Sync and broadcast, the Follower's actions carried out on a tree.
	f := zab.NewFollower(epoch, 0)
	var tree *ztree.Tree
	entries := map[int64][]byte{}
	serving, pongs := false, 0
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
		p := l.Read()
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
				if tree, err = wal.ReadSnapBody(l.R, a.Zxid, ztree.Options{}); err != nil {
					t.Fatal(err)
				}
			case zab.ActTruncate:
				t.Fatalf("an empty learner was told to truncate to %#x", a.Zxid)
			case zab.ActSend:
				l.Send(a.Packet)
			case zab.ActApply:
				apply(a.Zxid)
			case zab.ActServe:
				serving = true
			case zab.ActPong:
				l.Send(wire.QuorumPacket{Type: wire.PacketPing, Zxid: a.Zxid, Data: wire.AppendTouches(nil, nil)})
				pongs++
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
	// It answers the leader's pings (every tickTime/2), and stays
	// connected.
	for start := pongs; pongs < start+3; {
		step()
	}
	// The leader counts it among its synced followers: the ZooKeeper
	// follower and this one. (A learner's ACKs and pings keep it synced;
	// a loaded machine may take a moment, so ask a few times, answering
	// the leader meanwhile.)
	synced := ""
	for i := 0; i < 50; i++ {
		for _, line := range strings.Split(fourLetterWord(t, zk[leader].Addr, "mntr"), "\n") {
			if v, ok := strings.CutPrefix(line, "zk_synced_followers\t"); ok {
				synced = v
			}
		}
		if synced == "2" {
			break
		}
		step() // a PING, at tickTime/2
	}
	if synced != "2" {
		t.Fatalf("the leader counts %s synced followers; want 2, this learner among them", synced)
	}
}

// The other way round: a test built from this package's leader rules
// (LeaderDiscovery, PlanSync, Proposals) leads an Apache ZooKeeper 3.8
// follower. Server 3 (the test) and ZooKeeper's server 1 elect 3 through
// engine/electionport; ZooKeeper connects to the test's quorum port, is
// given its epoch, synced (an empty DIFF) and told it is up to date; a
// txn the test proposes is acknowledged by ZooKeeper, committed at the
// quorum of the two, and applied by ZooKeeper.
func TestLeadsAZooKeeperFollower(t *testing.T) {
	ens := zkreftest.NewEnsemble(t)
	config := ens.QuorumConfig()
	var voters []electionport.Peer
	for s := int64(1); s <= 3; s++ {
		voters = append(voters, electionport.Peer{ID: s, Addr: ens.Addr(s, ens.ElectionPort)})
	}
	qln, err := net.Listen("tcp", ens.Addr(3, ens.QuorumPort))
	if err != nil {
		t.Fatal(err)
	}
	defer qln.Close()
	zk := ens.Start(t, 1)[1]
	port, err := electionport.Listen(electionport.Config{ID: 3, Addr: ens.Addr(3, ens.ElectionPort), Voters: voters, QuorumConfig: config})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d, err := port.Elect(ctx, 0, 0); err != nil || d.State != wire.StateLeading {
		t.Fatalf("election: %+v %v", d, err)
	}

	qln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := qln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := zkreftest.NewQuorumConn(t, c)
	fi := l.Read()
	li, err := wire.LearnerInfoFrom(fi.Data)
	if fi.Type != wire.PacketFollowerInfo || err != nil || li.ServerID != 1 {
		t.Fatalf("first packet %s %+v (%v)", wire.PacketName(fi.Type), li, err)
	}

	// Discovery: the leader (accepted epoch 0, empty log) and server 1.
	d := zab.NewLeaderDiscovery(3, []int64{1, 2, 3}, 0, 0, 0)
	epoch, frozen, _ := d.FollowerInfo(1, fi.Zxid>>32)
	if !frozen {
		t.Fatal("the epoch is not frozen with a quorum of two")
	}
	l.Send(wire.QuorumPacket{Type: wire.PacketLeaderInfo, Zxid: epoch << 32,
		Data: binary.BigEndian.AppendUint32(nil, wire.ZabProtocolVersion)})
	ack := l.Read()
	if ack.Type != wire.PacketAckEpoch || len(ack.Data) != 4 {
		t.Fatalf("ACKEPOCH expected, got %s", wire.PacketName(ack.Type))
	}
	if ok, err := d.AckEpoch(1, int64(int32(binary.BigEndian.Uint32(ack.Data))), ack.Zxid); err != nil || !ok {
		t.Fatalf("epoch not established: %v", err)
	}

	// Sync: both logs are empty, so an empty DIFF.
	tree := ztree.New(ztree.Options{})
	plan := zab.PlanSync(ack.Zxid, zab.History{LastProcessed: tree.Zxid()})
	if plan.Mode != zab.SyncDiff || len(plan.Send) != 0 {
		t.Fatalf("plan %+v", plan)
	}
	l.Send(wire.QuorumPacket{Type: wire.PacketDiff, Zxid: plan.Zxid})
	newLeader := epoch << 32
	l.Send(wire.QuorumPacket{Type: wire.PacketNewLeader, Zxid: newLeader, Data: []byte(config)})
	if a := l.Read(); a.Type != wire.PacketAck || a.Zxid != newLeader {
		t.Fatalf("NEWLEADER answered with %s %#x", wire.PacketName(a.Type), a.Zxid)
	}
	l.Send(wire.QuorumPacket{Type: wire.PacketUpToDate, Zxid: -1})
	if a := l.Read(); a.Type != wire.PacketAck || a.Zxid != newLeader {
		t.Fatalf("UPTODATE answered with %s %#x", wire.PacketName(a.Type), a.Zxid)
	}

	znodes := func() string {
		for _, l := range strings.Split(fourLetterWord(t, zk.Addr, "mntr"), "\n") {
			if v, ok := strings.CutPrefix(l, "zk_znode_count\t"); ok {
				return v
			}
		}
		return "?"
	}
	before := znodes()

	// Broadcast one txn: create /from-zkd.
	props := zab.NewProposals([]int64{1, 2, 3}, newLeader)
	zxid := newLeader | 1
	txn, err := tree.Prep(&ztree.Request{Zxid: zxid, Time: time.Now().UnixMilli(), Op: wire.OpCreate,
		Body: &wire.CreateRequest{Path: "/from-zkd", Data: []byte("led by zkd"), ACL: ztree.OpenACL}})
	if err != nil {
		t.Fatal(err)
	}
	entry := wal.Txn{Header: txn.Header, Record: txn.Record}
	if txn.HasDigest {
		entry.Digest = &txn.Digest
	}
	if err := props.Propose(zxid); err != nil {
		t.Fatal(err)
	}
	l.Send(wire.QuorumPacket{Type: wire.PacketProposal, Zxid: zxid, Data: wal.AppendTxn(nil, &entry)})
	props.Ack(3, zxid) // the leader's own, after its fsync
	var commits []zab.Commit
	for len(commits) == 0 {
		p := l.Read()
		if p.Type == wire.PacketAck {
			commits = props.Ack(1, p.Zxid)
		}
	}
	if commits[0].Zxid != zxid {
		t.Fatalf("committed %#x", commits[0].Zxid)
	}
	l.Send(wire.QuorumPacket{Type: wire.PacketCommit, Zxid: zxid})
	l.Send(wire.QuorumPacket{Type: wire.PacketPing, Zxid: zxid})

	// ZooKeeper, following, applied what the test's leader committed:
	// srvr shows the txn's zxid, and mntr one znode more. (A client
	// session would need the leader to commit the createSession
	// ZooKeeper forwards; that is the engine's work to come.)
	want := fmt.Sprintf("Zxid: %#x", zxid)
	var srvr string
	for i := 0; i < 100; i++ {
		if srvr = fourLetterWord(t, zk.Addr, "srvr"); strings.Contains(srvr, want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, _ := strconv.Atoi(before)
	if after := znodes(); !strings.Contains(srvr, want) || !strings.Contains(srvr, "Mode: follower") || after != strconv.Itoa(n+1) {
		t.Fatalf("ZooKeeper did not apply the txn the test led (znodes %s before, %s after):\n%s", before, after, srvr)
	}
}

func fourLetterWord(t *testing.T, addr, word string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(word))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
