package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// With leaderServes=no the leader takes no clients: a connect request is
// closed unanswered, and the four-letter words that need a serving
// server say it is not serving (isro says null), while writes through the
// followers go through it. When it dies, the follower elected in its
// place lets its clients go. The same steps on a 3-server ensemble of
// Apache ZooKeeper 3.8 and of zkd give the same answers.
func TestDifferentialLeaderServesNo(t *testing.T) {
	outcomes := map[bool]string{}
	for _, isZK := range []bool{true, false} {
		e := zkdtest.NewEnsemble(t, 3, map[string]string{"leaderServes": "no"})
		members := []*mixedMember{startMixed(t, e, 1, isZK, nil), startMixed(t, e, 2, isZK, nil), startMixed(t, e, 3, isZK, nil)}
		var out strings.Builder
		word := func(m *mixedMember, w string) string {
			got, err := zkdtest.FourLetterWord(m.addr, w)
			if err != nil {
				t.Fatalf("%s on %s: %v", w, m.label, err)
			}
			return strings.TrimSpace(strings.SplitN(got, "\n", 2)[0])
		}
		// leaderOf waits until every one of ms but one says it follows,
		// and returns that one.
		leaderOf := func(ms []*mixedMember) (leader *mixedMember, followers []*mixedMember) {
			t.Helper()
			deadline := time.Now().Add(60 * time.Second)
			for {
				leader, followers = nil, nil
				for _, m := range ms {
					if m.mode() == "follower" {
						followers = append(followers, m)
					} else {
						leader = m
					}
				}
				if len(followers) == len(ms)-1 && strings.HasPrefix(word(leader, "srvr"), "This ZooKeeper instance is not currently serving") {
					return leader, followers
				}
				if time.Now().After(deadline) {
					t.Fatalf("no leader that takes no clients among %d servers after 60 s", len(ms))
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		leader, followers := leaderOf(members)
		fmt.Fprintf(&out, "the leader's srvr: %s\n", word(leader, "srvr"))
		fmt.Fprintf(&out, "the leader's mntr: %s\n", word(leader, "mntr"))
		fmt.Fprintf(&out, "the leader's isro: %s\n", word(leader, "isro"))
		fmt.Fprintf(&out, "the leader's ruok: %s\n", word(leader, "ruok"))
		for _, w := range []string{"conf", "hash", "cons", "dirs", "wchs", "envi"} {
			got, err := zkdtest.FourLetterWord(leader.addr, w)
			if err != nil {
				t.Fatalf("%s on %s: %v", w, leader.label, err)
			}
			if w == "envi" {
				got = strings.SplitN(got, "\n", 2)[0] // the environment itself differs
			}
			fmt.Fprintf(&out, "the leader's %s: %q\n", w, got)
		}
		fmt.Fprintf(&out, "a follower's isro: %s\n", word(followers[0], "isro"))
		fmt.Fprintf(&out, "a connect to the leader: %s\n", connectOutcome(t, leader.addr, zkreftest.NewSession()))
		c := zkreftest.Dial(t, followers[0].addr, zkreftest.NewSession())
		c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/through-the-leader", Data: []byte("x"), ACL: openACL})
		d := zkreftest.Dial(t, followers[1].addr, zkreftest.NewSession())
		d.OK(wire.OpSync, &wire.SyncRequest{Path: "/"})
		h, _ := d.Call(wire.OpExists, &wire.ExistsRequest{Path: "/through-the-leader"})
		fmt.Fprintf(&out, "a write through one follower, seen through the other: %v\n", h.Err == wire.ErrOK)

		// The leader dies; of the two left, the one elected lets its
		// clients go, and the other takes them.
		leader.stop(t)
		var left []*mixedMember
		for _, m := range members {
			if m != leader {
				left = append(left, m)
			}
		}
		// Until the follower takes a session, the two may still be
		// electing, and a server looking for a leader answers as a leader
		// that takes no clients does.
		var next *mixedMember
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var rest []*mixedMember
			next, rest = leaderOf(left)
			if connectOutcome(t, rest[0].addr, zkreftest.NewSession()) == "session" {
				w := zkreftest.Dial(t, rest[0].addr, zkreftest.NewSession())
				h, _ := w.Call(wire.OpCreate, &wire.CreateRequest{Path: "/after-the-leader", ACL: openACL})
				fmt.Fprintf(&out, "a write through the follower left: %v\n", h.Err == wire.ErrOK)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the follower left takes no session 60 s after the leader's death")
			}
		}
		fmt.Fprintf(&out, "the next leader's srvr: %s\n", word(next, "srvr"))
		fmt.Fprintf(&out, "a connect to the next leader: %s\n", connectOutcome(t, next.addr, zkreftest.NewSession()))
		outcomes[isZK] = out.String()
	}
	compareLines(t, "leaderServes=no", outcomes[true], outcomes[false])
	if !strings.Contains(outcomes[false], "a connect to the leader: closed, no answer") {
		t.Fatalf("zkd:\n%s", outcomes[false])
	}
	t.Logf("both:\n%s", outcomes[false])
}
