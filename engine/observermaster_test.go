package engine_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wal"
	"zkd/wire"
)

// With observerMasterPort set, an observer syncs from a follower, not the
// leader, and its clients' sessions, writes and syncs go through that
// follower; when the follower goes, the observer moves to another, and
// its clients keep their sessions. Each case runs one implementation's
// voters with the other's observer, so that zkd's port for observers is
// checked against Apache ZooKeeper's observer, and zkd's observer against
// ZooKeeper's port.
func TestObserverMasters(t *testing.T) {
	if err := zkref.Available(); err != nil {
		if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
			t.Fatalf("reference server required (ZKD_REQUIRE_REFERENCE is set): %v", err)
		}
		t.Skipf("SKIPPED: %v (make test installs it)", err)
	}
	// The observers command on each follower that synced the observer:
	// zkd's (first case) and ZooKeeper's (second), compared by shape.
	var observersShapes []string
	for _, tc := range []struct {
		name                 string
		zkVoters, zkObserver bool
	}{
		{"zkd voters, a ZooKeeper observer", false, true},
		{"ZooKeeper voters, a zkd observer", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, err := zkref.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			e := zkdtest.NewEnsemble(t, 4, map[string]string{"observerMasterPort": fmt.Sprint(port), "maxSessionTimeout": "20000"})
			e.Observers = 1
			e.Member = map[int64]map[string]string{}
			admin := map[int64]string{}
			for id := int64(1); id <= 3; id++ {
				e.Member[id], admin[id] = adminConfig(t, fmt.Sprintf("127.0.0.%d", id))
			}
			members := map[int64]*mixedMember{}
			for id := int64(1); id <= 3; id++ {
				members[id] = startMixed(t, e, id, tc.zkVoters, nil, adminJars...)
			}
			for id := int64(1); id <= 3; id++ {
				members[id].waitServing(t)
			}
			obs := startMixed(t, e, 4, tc.zkObserver, nil)
			obs.waitServing(t)
			if m := obs.mode(); m != "observer" {
				t.Fatalf("%s says %q", obs.label, m)
			}
			var leader int64
			for id := int64(1); id <= 3; id++ {
				if members[id].mode() == "leader" {
					leader = id
				}
			}
			if leader == 0 {
				t.Fatal("no voter leads")
			}
			// The observer's master is a follower, which counts it.
			master := waitMaster(t, obs, members, leader, 0)
			_, answer, raw := adminGet(t, admin[master], "observers")
			list, _ := answer["observers"].([]any)
			if answer["synced_observers"] != float64(1) || len(list) != 1 || list[0].(map[string]any)["sid"] != float64(4) {
				t.Fatalf("the observers command on %s: %s", members[master].label, raw)
			}
			observersShapes = append(observersShapes, shape(answer, false))

			// Its clients' writes go through the follower to the leader
			// and come back; the voters' writes reach it.
			c := connect(t, obs.addr)
			check(c.Create("/om", nil, 0, zk.WorldACL(zk.PermAll)))(t)
			for id := int64(1); id <= 4; id++ {
				cl := connect(t, e.Addr(id))
				check(cl.Create(fmt.Sprintf("/om/via-%d", id), nil, 0, zk.WorldACL(zk.PermAll)))(t)
			}
			for id := int64(1); id <= 4; id++ {
				if got := strings.Join(childrenOn(t, e.Addr(id), "/om"), ","); got != "via-1,via-2,via-3,via-4" {
					t.Fatalf("server %d has %s", id, got)
				}
			}
			// A sync on the observer is answered through its master,
			// after the write before it.
			lc := connect(t, e.Addr(leader))
			for i := range 20 {
				check(lc.Set("/om", []byte(fmt.Sprint(i)), -1))(t)
				if _, err := c.Sync("/om"); err != nil {
					t.Fatalf("sync on the observer: %v", err)
				}
				data, _, err := c.Get("/om")
				if err != nil || string(data) != fmt.Sprint(i) {
					t.Fatalf("after a sync the observer has %q (%v), want %d", data, err, i)
				}
			}

			// A session of the observer's lives while its client pings
			// the observer: the touches reach the leader through the
			// master.
			sc, events := connectAll(t, []string{obs.addr}, 1200*time.Millisecond)
			waitConnected(t, events)
			check(sc.Create("/om/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
			time.Sleep(4 * time.Second)
			if ok, _, err := lc.Exists("/om/eph"); err != nil || !ok {
				t.Fatalf("the observer's client's ephemeral is gone on the leader after 4 s of a 1.2 s session (%v)", err)
			}

			sc.Close()

			// The master goes: the observer syncs from the other
			// follower, and its client keeps its session (the new master
			// asks the leader about it). The session outlasts the
			// observer's search for a new master: a few seconds when it
			// tries the dead one and the leader first.
			sc, events = connectAll(t, []string{obs.addr}, 15*time.Second)
			waitConnected(t, events)
			check(sc.Create("/om/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
			members[master].stop(t)
			other := int64(6) - leader - master
			waitMaster(t, obs, members, leader, other)
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := sc.Create("/om/after", nil, 0, zk.WorldACL(zk.PermAll))
				if err == nil {
					break
				}
				if err == zk.ErrSessionExpired || time.Now().After(deadline) {
					t.Fatalf("writing through the observer after its master went: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if ok, _, err := lc.Exists("/om/eph"); err != nil || !ok {
				t.Fatalf("the ephemeral is gone after the observer changed masters (%v)", err)
			}
			for {
				select {
				case ev := <-events:
					if ev.State == zk.StateExpired {
						t.Fatal("the observer's client's session expired")
					}
					continue
				default:
				}
				break
			}
		})
	}
	if len(observersShapes) == 2 && observersShapes[0] != observersShapes[1] {
		t.Errorf("the observers command on a follower differs from ZooKeeper's: %s", shapeDiff(observersShapes[1], observersShapes[0]))
	}
}

// waitMaster waits until the observer syncs from a follower (want, or any
// when want is 0): its mntr names the follower, and that follower's
// counts one synced observer; the leader counts none. It returns the
// follower.
func waitMaster(t *testing.T, obs *mixedMember, members map[int64]*mixedMember, leader, want int64) int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := "?"
		if obs.mode() == "observer" {
			got = obs.mntr(t)["zk_observer_master_id"]
		}
		var id int64
		fmt.Sscan(got, &id)
		if id != 0 && id != leader && (want == 0 || id == want) {
			if n := members[id].mntr(t)["zk_synced_observers"]; n == "1" {
				if n := members[leader].mntr(t)["zk_synced_observers"]; n != "0" {
					t.Fatalf("the leader, %s, counts %s synced observers", members[leader].label, n)
				}
				return id
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the observer's master is %s, not a follower counting it as synced (leader %d, want %d)", got, leader, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A follower syncs an observer on its port for observers as Apache
// ZooKeeper's follower does: an observer a few txns behind is sent a DIFF
// with them, one ahead a TRUNC to the follower's last commit, one with
// nothing a snapshot (SNAP) once the follower has restarted, and once
// told UPTODATE the leader's commits come as INFORMs, with PINGs. The
// test plays observer 4 over the quorum protocol against a follower of
// each implementation, and compares what each sends.
func TestDifferentialFollowerSyncsAnObserver(t *testing.T) {
	if err := zkref.Available(); err != nil {
		if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
			t.Fatalf("reference server required (ZKD_REQUIRE_REFERENCE is set): %v", err)
		}
		t.Skipf("SKIPPED: %v (make test installs it)", err)
	}
	run := func(t *testing.T, isZK bool) []string {
		port, err := zkref.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		e := zkdtest.NewEnsemble(t, 4, map[string]string{"observerMasterPort": fmt.Sprint(port)})
		e.Observers = 1
		members := map[int64]*mixedMember{}
		for id := int64(1); id <= 3; id++ {
			members[id] = startMixed(t, e, id, isZK, nil)
		}
		var leader, follower int64
		for id := int64(1); id <= 3; id++ {
			members[id].waitServing(t)
			if members[id].mode() == "leader" {
				leader = id
			} else {
				follower = id
			}
		}
		lc := connect(t, e.Addr(leader))
		check(lc.Create("/d", nil, 0, zk.WorldACL(zk.PermAll)))(t)
		for i := range 5 {
			check(lc.Set("/d", []byte(fmt.Sprint(i)), -1))(t)
		}
		fc := connect(t, e.Addr(follower))
		if _, err := fc.Sync("/d"); err != nil {
			t.Fatal(err)
		}
		z := srvrZxid(t, e.Addr(follower))
		if lz := srvrZxid(t, e.Addr(leader)); lz != z {
			t.Fatalf("the follower is at %#x, the leader at %#x", z, lz)
		}
		addr := fmt.Sprintf("127.0.0.%d:%d", follower, port)
		var seen []string
		for _, c := range []struct {
			name string
			last int64
		}{{"3 behind", z - 3}, {"5 ahead", z + 5}, {"from nothing, after the follower restarted", 0}} {
			if c.last == 0 {
				// What it committed before its restart it has only on
				// disk, not in memory: a SNAP.
				members[follower].stop(t)
				members[follower].launch(t)
				members[follower].waitServing(t)
				fc := connect(t, e.Addr(follower))
				if _, err := fc.Sync("/d"); err != nil {
					t.Fatal(err)
				}
				z = srvrZxid(t, e.Addr(follower))
			}
			q, li := joinAsAt(t, addr, 4, true, c.last)
			if li.Zxid != z&^0xffffffff {
				t.Fatalf("%s: LEADERINFO says %#x; the epoch is %#x", c.name, li.Zxid, z>>32)
			}
			rel := func(p wire.QuorumPacket) {
				if p.Type != wire.PacketPing {
					seen = append(seen, fmt.Sprintf("%s: %s %+d", c.name, wire.PacketName(p.Type), p.Zxid-z))
				}
			}
			syncAsLearner(t, q, li, rel)
			// A write after the sync comes as an INFORM.
			check(lc.Set("/d", []byte(c.name), -1))(t)
			readUntil(t, q, wire.PacketInform, rel)
			z = srvrZxid(t, e.Addr(leader))
			q.Conn.Close()
		}
		return seen
	}
	got := run(t, false)
	want := run(t, true)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("zkd's follower sent\n%s\nZooKeeper's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("both sent\n%s", strings.Join(got, "\n"))
}

// joinAsAt is joinAs for a learner whose history ends at last.
func joinAsAt(t *testing.T, addr string, sid int64, observer bool, last int64) (*zkreftest.QuorumConn, wire.QuorumPacket) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	q := zkreftest.NewQuorumConn(t, nc)
	info := wire.QuorumPacket{Type: wire.PacketFollowerInfo, Zxid: last &^ 0xffffffff,
		Data: (&wire.LearnerInfo{ServerID: sid, ProtocolVersion: wire.ZabProtocolVersion}).Append(nil)}
	if observer {
		info.Type = wire.PacketObserverInfo
	}
	q.Send(info)
	li := q.Read()
	if li.Type != wire.PacketLeaderInfo {
		t.Fatalf("%s answered with %s", wire.PacketName(info.Type), wire.PacketName(li.Type))
	}
	q.Send(wire.QuorumPacket{Type: wire.PacketAckEpoch, Zxid: last, Data: binary.BigEndian.AppendUint32(nil, uint32(last>>32))})
	return q, li
}

// srvrZxid is the last zxid srvr reports on addr.
func srvrZxid(t *testing.T, addr string) int64 {
	t.Helper()
	out, err := zkdtest.FourLetterWord(addr, "srvr")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if z, ok := strings.CutPrefix(l, "Zxid: "); ok {
			var v int64
			if _, err := fmt.Sscanf(z, "0x%x", &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("no zxid in srvr on %s:\n%s", addr, out)
	return 0
}

// A follower keeps the leader's watch over where a session's client is
// for its observers and itself: the leader sees them all as the follower.
// A write an observer forwards for a session its client has since resumed
// on another observer of the same follower (a write held up on the way,
// say) becomes an error txn in its place, not a write after the newer
// ones; the observer the client resumed on goes on writing; and this
// server's own connection of a session resumed on an observer is closed.
// The test plays observers 4 and 5 over the quorum protocol.
func TestFollowerRefusesAnObserversWriteOfASessionThatMovedOn(t *testing.T) {
	t.Run("zkd leader", func(t *testing.T) { followerRefusesStaleWrites(t, false) })
	t.Run("ZooKeeper leader", func(t *testing.T) {
		if err := zkref.Available(); err != nil {
			if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
				t.Fatalf("reference server required (ZKD_REQUIRE_REFERENCE is set): %v", err)
			}
			t.Skipf("SKIPPED: %v (make test installs it)", err)
		}
		followerRefusesStaleWrites(t, true)
	})
}

// followerRefusesStaleWrites runs the test against zkd follower 1, with
// zkd voters 2 and 3 or, when zkVoters, ZooKeeper ones (which lead: the
// highest id of equals does).
func followerRefusesStaleWrites(t *testing.T, zkVoters bool) {
	port, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e := zkdtest.NewEnsemble(t, 5, map[string]string{"observerMasterPort": fmt.Sprint(port)})
	e.Observers = 2
	members := map[int64]*mixedMember{1: startMixed(t, e, 1, false, nil)}
	for id := int64(2); id <= 3; id++ {
		members[id] = startMixed(t, e, id, zkVoters, nil)
	}
	var leader int64
	for id := int64(1); id <= 3; id++ {
		members[id].waitServing(t)
		if members[id].mode() == "leader" {
			leader = id
		}
	}
	const follower = 1
	if leader == follower || leader == 0 {
		t.Fatalf("server %d leads", leader)
	}
	lc := connect(t, e.Addr(leader))
	check(lc.Create("/m", []byte("orig"), 0, zk.WorldACL(zk.PermAll)))(t)
	fc := connect(t, e.Addr(follower))
	if _, err := fc.Sync("/m"); err != nil {
		t.Fatal(err)
	}
	z := srvrZxid(t, e.Addr(follower))
	addr := fmt.Sprintf("127.0.0.%d:%d", follower, port)
	join := func(sid int64) *zkreftest.QuorumConn {
		q, li := joinAsAt(t, addr, sid, true, z)
		syncAsLearner(t, q, li, nil)
		return q
	}
	q4, q5 := join(4), join(5)
	// outcome reads q's INFORMs until the txn of session and cxid, and
	// returns its type.
	outcome := func(q *zkreftest.QuorumConn, session int64, cxid int32) wire.OpCode {
		t.Helper()
		var typ wire.OpCode
		found := false
		readUntilFunc(t, q, func(p wire.QuorumPacket) bool {
			if p.Type != wire.PacketInform {
				return false
			}
			txn, err := wal.DecodeTxnInPlace(p.Data)
			if err != nil {
				t.Fatal(err)
			}
			if txn.Header.ClientID == session && txn.Header.Cxid == cxid {
				typ, found = txn.Header.Type, true
				if typ == wire.OpError {
					t.Logf("session %#x cxid %d: an error txn, %+v", session, cxid, txn.Record)
				}
			}
			return found
		})
		return typ
	}
	// A session of observer 4's client, with a minute to live untouched.
	const session = int64(4)<<56 | 0x77
	forwardAsLearner(q4, session, 0, wire.OpCreateSession, rawRecord(binary.BigEndian.AppendUint32(nil, 60000)))
	if got := outcome(q4, session, 0); got != wire.OpCreateSession {
		t.Fatalf("the createSession became %s", got)
	}
	// Its client resumes it on observer 5; a write it sent on observer 4
	// before comes after.
	if v := revalidateAsLearner(t, q5, session); v != 1 {
		t.Fatal("the session is not open")
	}
	// As a server forwards a client's request: with the client's ids
	// (ZooKeeper's leader fails a request without any).
	write := func(q *zkreftest.QuorumConn, cxid int32, data string) {
		body := (&wire.SetDataRequest{Path: "/m", Data: []byte(data), Version: -1}).Append(nil)
		q.Send(wire.QuorumPacket{Type: wire.PacketRequest, AuthInfo: []wire.Id{{Scheme: "ip", ID: "127.0.0.1"}},
			Data: (&wire.ForwardedRequest{Session: session, Cxid: cxid, Op: wire.OpSetData, Body: body}).Append(nil)})
	}
	write(q4, 1, "stale")
	if got := outcome(q5, session, 1); got != wire.OpError {
		t.Fatalf("the write from the observer the session left became %s, not an error txn", got)
	}
	write(q5, 2, "fresh")
	if got := outcome(q5, session, 2); got != wire.OpSetData {
		t.Fatalf("the write from the observer the session is on became %s", got)
	}
	for id := int64(1); id <= 3; id++ {
		c := connect(t, e.Addr(id))
		if _, err := c.Sync("/m"); err != nil {
			t.Fatal(err)
		}
		if data, _, err := c.Get("/m"); err != nil || string(data) != "fresh" {
			t.Fatalf("server %d has /m = %q (%v), want fresh", id, data, err)
		}
	}

	// A client of the follower's own whose session resumes on observer
	// 4: its connection to the follower goes.
	own, events := connectAll(t, []string{e.Addr(follower)}, 10*time.Second)
	waitConnected(t, events)
	if v := revalidateAsLearner(t, q4, own.SessionID()); v != 1 {
		t.Fatal("the follower's client's session is not open")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateDisconnected {
				return
			}
			continue
		case <-deadline:
			t.Fatal("the follower kept its connection of a session that resumed on its observer")
		}
	}
}

// rawRecord is a request body given as its bytes.
type rawRecord []byte

func (r rawRecord) Append(dst []byte) []byte { return append(dst, r...) }
func (r rawRecord) Decode(b []byte, _ wire.Mode) (int, error) {
	return len(b), nil
}

// readUntilFunc takes what a learner is sent, answering PINGs, until done
// says so.
func readUntilFunc(t *testing.T, q *zkreftest.QuorumConn, done func(wire.QuorumPacket) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := q.TryRead(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if p.Type == wire.PacketPing {
			q.Send(wire.QuorumPacket{Type: wire.PacketPing, Zxid: p.Zxid, Data: wire.AppendTouches(nil, nil)})
		}
		if done(p) {
			return
		}
	}
	t.Fatal("not seen within 30 s")
}
