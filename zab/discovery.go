package zab

import (
	"errors"
	"fmt"

	"zkd/zab/quorum"
)

// Discovery: the newly elected leader and its learners agree on a new
// epoch before any history moves (shared/reference/zab-protocol.md 2.3).
// Each learner says the newest epoch it accepted (FOLLOWERINFO); the
// leader proposes one past every accepted epoch it hears of until a quorum
// of participants (itself included) has been heard, then freezes it and
// sends it (LEADERINFO). Each learner answers with its current epoch and
// last zxid (ACKEPOCH); once a quorum has answered, and none of them is
// ahead of the leader, the epoch is established.

// ErrAhead is a learner whose history is newer than the leader's: the
// leader must not lead it (ZooKeeper drops that learner's connection).
var ErrAhead = errors.New("zab: the learner is ahead of the leader")

// ErrEpochBehind is a LEADERINFO proposing an epoch older than one the
// learner accepted: it goes back to election.
var ErrEpochBehind = errors.New("zab: the leader proposes an epoch older than one accepted")

// LeaderDiscovery is a new leader's side of discovery.
type LeaderDiscovery struct {
	id     int64
	quorum *quorum.Quorum

	epoch      int64
	frozen     bool
	connecting map[int64]bool

	current, lastZxid int64 // the leader's own state summary
	acked             map[int64]bool
	established       bool
}

// NewLeaderDiscovery starts discovery on the leader id of an ensemble whose
// participants are voters, with the leader's accepted and current epochs
// and its last zxid. The leader counts as the first learner heard.
func NewLeaderDiscovery(id int64, voters []int64, accepted, current, lastZxid int64) *LeaderDiscovery {
	return NewLeaderDiscoveryQuorum(id, quorum.Majority(voters), accepted, current, lastZxid)
}

// NewLeaderDiscoveryQuorum is NewLeaderDiscovery for the voters of q,
// whose quorums it waits for.
func NewLeaderDiscoveryQuorum(id int64, q *quorum.Quorum, accepted, current, lastZxid int64) *LeaderDiscovery {
	d := &LeaderDiscovery{id: id, quorum: q, connecting: map[int64]bool{},
		acked: map[int64]bool{}, current: current, lastZxid: lastZxid}
	d.FollowerInfo(id, accepted)
	d.AckEpoch(id, current, lastZxid)
	return d
}

// hasQuorum reports whether set, the leader among them, includes a quorum.
func (d *LeaderDiscovery) hasQuorum(set map[int64]bool) bool {
	return set[d.id] && d.quorum.Contains(set)
}

// FollowerInfo takes a learner's FOLLOWERINFO (or OBSERVERINFO) with the
// epoch it last accepted. It returns the epoch proposed so far; frozen
// reports whether that is final (LEADERINFO can go out), and
// persistAccepted, true once, that the leader must now durably write it
// as its acceptedEpoch, before sending any LEADERINFO.
func (d *LeaderDiscovery) FollowerInfo(sid, accepted int64) (epoch int64, frozen, persistAccepted bool) {
	if d.frozen {
		return d.epoch, true, false
	}
	if accepted >= d.epoch {
		d.epoch = accepted + 1
	}
	if d.quorum.IsVoter(sid) {
		d.connecting[sid] = true
	}
	if d.hasQuorum(d.connecting) {
		d.frozen = true
		return d.epoch, true, true
	}
	return d.epoch, false, false
}

// AckEpoch takes a learner's ACKEPOCH: its current epoch (-1 when it had
// already accepted this epoch: it is not counted) and last zxid. A learner
// whose (current epoch, last zxid) is newer than the leader's is refused
// with ErrAhead. It reports whether the epoch is now established, at which
// point the leader must durably write it as its currentEpoch.
func (d *LeaderDiscovery) AckEpoch(sid, current, lastZxid int64) (established bool, err error) {
	if d.established {
		return true, nil
	}
	if current != -1 {
		if current > d.current || (current == d.current && lastZxid > d.lastZxid) {
			return false, fmt.Errorf("%w: server %d has epoch %d and zxid %#x, the leader epoch %d and zxid %#x",
				ErrAhead, sid, current, lastZxid, d.current, d.lastZxid)
		}
		if lastZxid != -1 && d.quorum.IsVoter(sid) {
			d.acked[sid] = true
		}
	}
	if d.hasQuorum(d.acked) {
		d.established = true
	}
	return d.established, nil
}

// Epoch is the epoch proposed, final once FollowerInfo reported it frozen.
func (d *LeaderDiscovery) Epoch() int64 { return d.epoch }

// LearnerLeaderInfo is a learner's answer to LEADERINFO proposing epoch,
// given the epochs it has accepted and is in: the current epoch to put in
// ACKEPOCH (-1 when it accepted this epoch already), and whether it must
// first durably write epoch as its acceptedEpoch. An older epoch than it
// accepted is ErrEpochBehind.
func LearnerLeaderInfo(epoch, accepted, current int64) (ack int64, persistAccepted bool, err error) {
	switch {
	case epoch > accepted:
		return current, true, nil
	case epoch == accepted:
		return -1, false, nil
	}
	return 0, false, fmt.Errorf("%w: proposed %d, accepted %d", ErrEpochBehind, epoch, accepted)
}
