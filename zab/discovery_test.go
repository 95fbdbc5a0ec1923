package zab

import (
	"errors"
	"testing"
)

// A leader of five with accepted epoch 3 hears from learners that
// accepted 2, 5 and (after the freeze) 7: the epoch is one past the
// newest heard before a quorum (6), frozen when the third participant
// (leader included) is heard, and final for the late one.
func TestLeaderDiscoveryProposesOnePastEveryAcceptedEpoch(t *testing.T) {
	d := NewLeaderDiscovery(1, []int64{1, 2, 3, 4, 5}, 3, 3, 3<<32|10)
	if e, frozen, _ := d.FollowerInfo(2, 2); e != 4 || frozen {
		t.Fatalf("after server 2: epoch %d frozen %v", e, frozen)
	}
	// An observer (not a voter) raises the epoch but does not count.
	if e, frozen, _ := d.FollowerInfo(9, 5); e != 6 || frozen {
		t.Fatalf("after observer 9: epoch %d frozen %v", e, frozen)
	}
	e, frozen, persist := d.FollowerInfo(3, 1)
	if e != 6 || !frozen || !persist {
		t.Fatalf("after server 3 (a quorum of 1, 2, 3): epoch %d frozen %v persist %v", e, frozen, persist)
	}
	if e, frozen, persist := d.FollowerInfo(4, 7); e != 6 || !frozen || persist {
		t.Fatalf("a learner after the freeze: epoch %d frozen %v persist %v", e, frozen, persist)
	}

	// ACKEPOCHs: one that had accepted the epoch already (-1) is not
	// counted; an observer's is not; a quorum of participants ends it.
	for _, a := range []struct {
		sid, current, zxid int64
		want               bool
	}{{2, -1, 3<<32 | 4, false}, {9, 3, 3<<32 | 9, false}, {3, 3, 3<<32 | 9, false}, {4, 2, 2<<32 | 50, true}} {
		if got, err := d.AckEpoch(a.sid, a.current, a.zxid); err != nil || got != a.want {
			t.Fatalf("ACKEPOCH of %d: established %v (%v), want %v", a.sid, got, err, a.want)
		}
	}
}

// A learner newer than the leader, by epoch or by zxid in the same
// epoch, is refused; one equal to it is counted.
func TestLeaderDiscoveryRefusesALearnerAhead(t *testing.T) {
	for _, c := range []struct {
		current, zxid int64
		ahead         bool
	}{{4, 3<<32 | 1, true}, {3, 3<<32 | 11, true}, {3, 3<<32 | 10, false}, {2, 9<<32 | 99, false}} {
		d := NewLeaderDiscovery(1, []int64{1, 2, 3}, 3, 3, 3<<32|10)
		_, err := d.AckEpoch(2, c.current, c.zxid)
		if errors.Is(err, ErrAhead) != c.ahead {
			t.Errorf("learner at epoch %d zxid %#x: %v", c.current, c.zxid, err)
		}
	}
}

func TestLearnerLeaderInfo(t *testing.T) {
	if ack, persist, err := LearnerLeaderInfo(5, 4, 4); ack != 4 || !persist || err != nil {
		t.Fatalf("a new epoch: %d %v %v", ack, persist, err)
	}
	if ack, persist, err := LearnerLeaderInfo(5, 5, 4); ack != -1 || persist || err != nil {
		t.Fatalf("an epoch accepted already: %d %v %v", ack, persist, err)
	}
	if _, _, err := LearnerLeaderInfo(4, 5, 4); !errors.Is(err, ErrEpochBehind) {
		t.Fatalf("an older epoch: %v", err)
	}
}
