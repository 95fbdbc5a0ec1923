package zab

import "fmt"

// How a leader brings a learner up to date (ZooKeeper 3.8's
// LearnerHandler.syncFollower; shared/reference/zab-protocol.md 2.5). The
// learner's last zxid decides between a DIFF (the txns it lacks), a TRUNC
// (cut the txns the leader never committed, then the ones it lacks) and a
// SNAP (the whole tree), from the leader's in-memory committed log (the
// last commitLogCount txns) and, further back, its txn log on disk when
// that is small next to a snapshot.

// SyncMode is the packet a sync starts with.
type SyncMode int

const (
	SyncDiff SyncMode = iota
	SyncTrunc
	SyncSnap
)

func (m SyncMode) String() string {
	switch m {
	case SyncDiff:
		return "DIFF"
	case SyncTrunc:
		return "TRUNC"
	case SyncSnap:
		return "SNAP"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// SyncPlan is what the leader sends a learner: Mode's packet with Zxid,
// then each txn of Send as a PROPOSAL and its COMMIT, in order.
type SyncPlan struct {
	Mode SyncMode
	Zxid int64
	Send []int64
}

// History is what the leader has to sync from.
type History struct {
	// LastProcessed is the zxid of the newest txn applied to the tree.
	LastProcessed int64
	// Committed are the zxids of the committed log, oldest first.
	Committed []int64
	// TxnLog returns the zxids of the txn log from the txn at or before
	// from onward, as long as the log files they are in total at most
	// sizeLimit bytes; nil when they are more, or when the log does not
	// reach back to from.
	TxnLog func(from, sizeLimit int64) []int64
	// SnapshotBytes is the size of the newest snapshot file, and
	// SnapshotSizeFactor (zookeeper.snapshotSizeFactor, 0.33 by default)
	// the share of it the txn log may come to before a SNAP is cheaper;
	// below zero the txn log is never used.
	SnapshotBytes      int64
	SnapshotSizeFactor float64
	// ForceSnap is zookeeper.forceSnapshotSync.
	ForceSnap bool
}

func epochStart(zxid int64) bool { return zxid&0xffffffff == 0 }

// PlanSync decides how to sync a learner whose log ends at peer.
func PlanSync(peer int64, h History) SyncPlan {
	minC, maxC := h.LastProcessed, h.LastProcessed
	if n := len(h.Committed); n > 0 {
		minC, maxC = h.Committed[0], h.Committed[n-1]
	}
	snap := SyncPlan{Mode: SyncSnap, Zxid: h.LastProcessed}
	switch {
	case h.ForceSnap:
		return snap
	case peer == h.LastProcessed:
		return SyncPlan{Mode: SyncDiff, Zxid: peer}
	case peer > maxC && !epochStart(peer):
		// The learner has txns the leader never committed, past all it
		// has: it cuts back to the leader's last.
		return SyncPlan{Mode: SyncTrunc, Zxid: maxC}
	case minC <= peer && peer <= maxC:
		w := walker{peer: peer, last: peer, lastCommitted: maxC}
		w.walk(h.Committed, 0)
		if w.op == nil {
			return snap // a case ZooKeeper does not expect: send it all
		}
		return SyncPlan{Mode: w.op.mode, Zxid: w.op.zxid, Send: w.send}
	case peer < minC && h.SnapshotSizeFactor >= 0 && h.TxnLog != nil:
		limit := int64(-1)
		if h.SnapshotSizeFactor > 0 {
			limit = int64(h.SnapshotSizeFactor * float64(h.SnapshotBytes))
		}
		disk := h.TxnLog(peer, limit)
		if len(disk) == 0 {
			return snap
		}
		w := walker{peer: peer, last: peer, lastCommitted: maxC}
		w.walk(disk, minC)
		if w.last < minC {
			return snap // the log on disk ends before the committed log starts
		}
		w.walk(h.Committed, 0)
		if w.op == nil {
			return snap
		}
		return SyncPlan{Mode: w.op.mode, Zxid: w.op.zxid, Send: w.send}
	}
	return snap
}

type opPacket struct {
	mode SyncMode
	zxid int64
}

// walker is ZooKeeper's queueCommittedProposals over one or two runs of
// history: it finds where the learner's log leaves the leader's (the op
// packet) and collects the txns after it.
type walker struct {
	peer, lastCommitted int64
	last                int64 // the newest txn queued, or the learner's last
	op                  *opPacket
	send                []int64
	abandoned           bool
}

// walk goes through zxids, up to limit when limit is not zero.
func (w *walker) walk(zxids []int64, limit int64) {
	if w.abandoned {
		return
	}
	prev := int64(-1)
	for _, z := range zxids {
		if limit != 0 && z > limit {
			break
		}
		if z < w.peer {
			prev = z
			continue // the learner has it
		}
		if w.op == nil {
			switch {
			case z == w.peer:
				// The learner's last txn is in the leader's history:
				// it lacks what follows.
				w.op = &opPacket{SyncDiff, w.lastCommitted}
				continue
			case epochStart(w.peer):
				w.op = &opPacket{SyncDiff, w.lastCommitted}
			case z > w.peer:
				// The learner has txns the leader never committed. A
				// TRUNC may not cross epochs: the learner would fail.
				if z>>32 != w.peer>>32 {
					w.abandoned = true
					return
				}
				w.op = &opPacket{SyncTrunc, prev}
			}
		}
		if z <= w.last {
			continue
		}
		w.send = append(w.send, z)
		w.last = z
	}
	if w.op == nil && epochStart(w.peer) {
		w.op = &opPacket{SyncDiff, w.lastCommitted}
	}
}
