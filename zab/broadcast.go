package zab

import (
	"errors"
	"fmt"
	"slices"

	"zkd/internal/queue"
	"zkd/zab/quorum"
)

// The leader's side of broadcast (shared/reference/zab-protocol.md 2.8,
// 2.11): proposals are pipelined, many in flight; each is committed once a
// quorum of voters has acknowledged it (the leader's own ack, after its
// fsync, counts as one; a quorum of followers is enough) and every
// earlier proposal is committed, so commits go out in strict zxid order
// whatever order the ACKs arrive in. A SYNC a learner forwards is
// answered after the newest proposal at the time commits, or at once when
// none is outstanding.

// ErrCounterExhausted is a zxid whose counter would reach 0xffffffff: the
// leader must step down so that a new epoch starts the counter again.
var ErrCounterExhausted = errors.New("zab: the zxid counter of this epoch is exhausted")

// Proposals tracks a leader's outstanding proposals.
type Proposals struct {
	quorum        *quorum.Quorum
	pending       queue.Queue[*proposal] // outstanding, by zxid
	free          []*proposal            // committed, to reuse
	out           []Commit               // Ack's result, reused
	lastProposed  int64
	lastCommitted int64
}

type proposal struct {
	zxid  int64
	acks  []int64 // the voters that acknowledged it, each once
	syncs []int64 // learners whose SYNC waits for this commit
}

// Commit is a proposal to commit: COMMIT to the followers, INFORM to the
// observers, apply, then SYNC to each learner in Syncs.
type Commit struct {
	Zxid  int64
	Syncs []int64
}

// NewProposals starts broadcast for the participants voters, after the
// last txn committed before the epoch began.
func NewProposals(voters []int64, lastCommitted int64) *Proposals {
	return NewProposalsQuorum(quorum.Majority(voters), lastCommitted)
}

// NewProposalsQuorum is NewProposals for the voters of q, a proposal
// committing once the servers that acknowledged it include a quorum.
func NewProposalsQuorum(q *quorum.Quorum, lastCommitted int64) *Proposals {
	return &Proposals{quorum: q, lastProposed: lastCommitted, lastCommitted: lastCommitted}
}

// Propose records a new proposal. Its zxid must follow the last proposed:
// the next counter of the same epoch, or the first of a later epoch.
func (p *Proposals) Propose(zxid int64) error {
	if zxid&0xffffffff == 0xffffffff {
		return fmt.Errorf("%w: %#x", ErrCounterExhausted, zxid)
	}
	if zxid <= p.lastProposed || (zxid>>32 == p.lastProposed>>32 && zxid != p.lastProposed+1) {
		return fmt.Errorf("zab: proposal %#x does not follow %#x", zxid, p.lastProposed)
	}
	var q *proposal
	if n := len(p.free); n > 0 {
		q, p.free = p.free[n-1], p.free[:n-1]
		q.zxid = zxid
	} else {
		q = &proposal{zxid: zxid}
	}
	p.pending.Push(q)
	p.lastProposed = zxid
	return nil
}

// Ack records server sid's ACK of zxid and returns what can be committed
// now, in zxid order. ACKs from non-voters, of committed or unknown
// zxids, are ignored. The slice returned is valid until the next Ack.
func (p *Proposals) Ack(sid, zxid int64) []Commit {
	if !p.quorum.IsVoter(sid) || zxid <= p.lastCommitted {
		return nil
	}
	live := p.pending.Items()
	// Within an epoch the outstanding zxids follow one another: the
	// ACK's proposal is where its distance from the oldest says, unless
	// an epoch began among them.
	i, found := 0, false
	if len(live) > 0 {
		if d := zxid - live[0].zxid; d >= 0 && d < int64(len(live)) && live[d].zxid == zxid {
			i, found = int(d), true
		}
	}
	if !found {
		i, found = slices.BinarySearchFunc(live, zxid, func(q *proposal, z int64) int {
			switch {
			case q.zxid < z:
				return -1
			case q.zxid > z:
				return 1
			}
			return 0
		})
	}
	if !found {
		return nil
	}
	if q := live[i]; !slices.Contains(q.acks, sid) {
		q.acks = append(q.acks, sid)
	}
	clear(p.out)
	p.out = p.out[:0]
	for p.pending.Len() > 0 && p.acked(p.pending.Items()[0]) {
		q := p.pending.Items()[0]
		p.out = append(p.out, Commit{Zxid: q.zxid, Syncs: q.syncs})
		p.lastCommitted = q.zxid
		p.pending.Pop()
		// The Commit keeps the syncs; the rest is reused.
		q.acks, q.syncs = q.acks[:0], nil
		p.free = append(p.free, q)
	}
	if len(p.out) == 0 {
		return nil
	}
	return p.out
}

// acked reports whether q's ACKs make a quorum. They come from voters
// only (Ack drops the others), each once, so a majority is a count.
func (p *Proposals) acked(q *proposal) bool {
	if !p.quorum.Hierarchical() {
		return len(q.acks) > len(p.quorum.Voters())/2
	}
	return p.quorum.ContainsIDs(q.acks)
}

// Forget drops server sid's ACKs of the outstanding proposals: it has
// connected again, and its sync may cut its log back (TRUNC) past txns it
// acknowledged on its old connection, so those ACKs no longer say its disk
// holds them. It acknowledges them again once it holds them.
func (p *Proposals) Forget(sid int64) {
	for _, q := range p.pending.Items() {
		q.acks = slices.DeleteFunc(q.acks, func(id int64) bool { return id == sid })
	}
}

// Sync takes a learner's forwarded SYNC. It reports true when the SYNC is
// to be answered at once (nothing outstanding); otherwise it is answered
// in the Commit of the newest proposal.
func (p *Proposals) Sync(sid int64) (now bool) {
	live := p.pending.Items()
	if len(live) == 0 {
		return true
	}
	last := live[len(live)-1]
	last.syncs = append(last.syncs, sid)
	return false
}

// Outstanding is the number of proposals not committed yet.
func (p *Proposals) Outstanding() int { return p.pending.Len() }

// LastCommitted is the newest committed zxid.
func (p *Proposals) LastCommitted() int64 { return p.lastCommitted }

// PendingSyncs is the number of learners' SYNCs waiting for a commit.
func (p *Proposals) PendingSyncs() int {
	n := 0
	for _, q := range p.pending.Items() {
		n += len(q.syncs)
	}
	return n
}
