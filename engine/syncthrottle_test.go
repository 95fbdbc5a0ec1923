package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"zkd/engine/zkdtest"
	"zkd/wire"
)

// A leader syncs at most leader.maxConcurrentSnapSyncs learners by SNAP,
// and leader.maxConcurrentDiffSyncs by DIFF or TRUNC, at a time. An
// observer past the limit is turned away (its connection closes after
// ACKEPOCH) and is synced when it comes back once a sync has ended; a
// follower is never turned away, as the quorum may need it, but counts.
// A sync lasts until the learner acks NEWLEADER, which it may take up to
// initLimit to do (it may be writing a large snapshot), not syncLimit.
//
// The test plays follower 3 and observers 4 and 5 over the quorum
// protocol, with both limits at 1, against a leader of Apache ZooKeeper
// 3.8 servers and one of zkd servers. Both must do the same.
func TestDifferentialLeaderThrottlesObserverSyncs(t *testing.T) {
	for _, impl := range []struct {
		name string
		isZK bool
	}{{"ZooKeeper", true}, {"zkd", false}} {
		t.Run(impl.name, func(t *testing.T) {
			// Ticks of 200 ms: syncLimit 2 s, initLimit 20 s.
			e := zkdtest.NewEnsemble(t, 5, map[string]string{"syncLimit": "10", "initLimit": "100",
				"leader.maxConcurrentSnapSyncs": "1", "leader.maxConcurrentDiffSyncs": "1"})
			e.Observers = 2
			var leader *mixedMember
			members := []*mixedMember{startMixed(t, e, 1, impl.isZK, nil), startMixed(t, e, 2, impl.isZK, nil)}
			for _, m := range members {
				m.waitServing(t)
				if m.mode() == "leader" {
					leader = m
				}
			}
			if leader == nil {
				t.Fatal("neither server 1 nor server 2 leads")
			}
			at := fmt.Sprintf("127.0.0.%d:%d", leader.id, e.QuorumPort)

			// Observer 4 is synced up to NEWLEADER, and holds its ACK.
			o4, li := joinAs(t, at, 4, true)
			var opened int32 = -1
			readUntil(t, o4, wire.PacketNewLeader, func(p wire.QuorumPacket) {
				if opened < 0 {
					opened = p.Type
				}
			})
			held := time.Now()
			// Observer 5, with the same empty history, needs the same kind
			// of sync: it is turned away.
			o5, _ := joinAs(t, at, 5, true)
			if p, err := o5.TryRead(10 * time.Second); err == nil {
				t.Fatalf("with observer 4's %s sync in progress and a limit of 1, observer 5 was sent %s",
					wire.PacketName(opened), wire.PacketName(p.Type))
			}
			// Follower 3 is synced all the same.
			f3, li3 := joinAs(t, at, 3, false)
			syncAsLearner(t, f3, li3, nil)
			// Observer 4 acks NEWLEADER past syncLimit, within initLimit,
			// and is told it is up to date.
			time.Sleep(time.Until(held.Add(3 * time.Second)))
			o4.Send(wire.QuorumPacket{Type: wire.PacketAck, Zxid: li.Zxid})
			readUntil(t, o4, wire.PacketUpToDate, nil)
			// Its sync over, observer 5 comes back and is synced.
			o5, li5 := joinAs(t, at, 5, true)
			syncAsLearner(t, o5, li5, nil)

			// The syncs in progress, counted at each change: at most 2,
			// observer 4's and follower 3's.
			kind := "diff"
			if opened == wire.PacketSnap {
				kind = "snap"
			}
			mntr := leader.mntr(t)
			if got := mntr["zk_max_inflight_"+kind+"_count"]; got != "2" {
				t.Errorf("the leader synced learners by %s, and mntr says at most %s of those syncs were in progress at once, not 2",
					wire.PacketName(opened), got)
			}
		})
	}
}

// An observer the leader turns away (too many syncs in progress) comes
// back after a random pause below observer.election.DelayMs (200 ms by
// default), as ZooKeeper's observers do, not at once: while the test
// holds the only sync allowed, zkd observer 5 is turned away a few dozen
// times at most in two seconds, not thousands, and is synced once the
// held sync ends.
func TestATurnedAwayObserverComesBackAtAPace(t *testing.T) {
	// initLimit 30 s: observer 4 holds its sync while server 5 starts.
	e := zkdtest.NewEnsemble(t, 5, map[string]string{"syncLimit": "10", "initLimit": "150",
		"leader.maxConcurrentSnapSyncs": "1", "leader.maxConcurrentDiffSyncs": "1"})
	e.Observers = 2
	e.Start(t, 1, 2)
	e.WaitServing(t, 30*time.Second)
	leader := e.Leader()
	o4, li := joinAs(t, fmt.Sprintf("127.0.0.%d:%d", leader, e.QuorumPort), 4, true)
	readUntil(t, o4, wire.PacketNewLeader, nil)
	e.Start(t, 5)
	refusals := func() int { return strings.Count(e.Servers[leader].Log(), "turning the observer away") }
	for deadline := time.Now().Add(30 * time.Second); refusals() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("observer 5 was not turned away within 30 s")
		}
	}
	const hold = 2 * time.Second
	first := refusals()
	time.Sleep(hold)
	turnedAway := refusals() - first
	o4.Send(wire.QuorumPacket{Type: wire.PacketAck, Zxid: li.Zxid})
	readUntil(t, o4, wire.PacketUpToDate, nil)
	e.WaitServing(t, 30*time.Second)
	if m := e.Servers[5].Mode(); m != "observer" {
		t.Fatalf("server 5 serves as %q", m)
	}
	// A pause of 100 ms on average: about 20 tries in 2 s. Without it,
	// an observer tries again within a millisecond.
	if turnedAway > 60 {
		t.Fatalf("in %v, the leader turned observer 5 away %d more times; want 60 at most", hold, turnedAway)
	}
	t.Logf("turned away %d times in %v", turnedAway, hold)
}
