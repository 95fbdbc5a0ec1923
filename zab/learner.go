package zab

import (
	"cmp"
	"fmt"

	"zkd/wire"
)

// A follower's side of sync and broadcast, from the packet that opens the
// sync (DIFF, TRUNC or SNAP) on (shared/reference/zab-protocol.md 2.6-2.8),
// with ZooKeeper 3.8.5's ordering (ZOOKEEPER-4785): nothing is
// acknowledged that is not durable. Each packet in gives a list of
// actions, to be carried out in order; an action that writes (Log,
// TakeSnapshot, PersistCurrentEpoch) must be durable before any Send
// after it.

// ActionKind is what a Follower asks of its driver.
type ActionKind int

const (
	// ActTruncate: cut the log back to Zxid (wal.TruncateLog) and reload
	// the tree from the data directory.
	ActTruncate ActionKind = iota
	// ActLoadSnapshot: read the tree that follows the SNAP packet on the
	// stream (wal.ReadSnapBody) as the tree after Zxid, in memory.
	ActLoadSnapshot
	// ActTakeSnapshot: write a snapshot of the tree, durably.
	ActTakeSnapshot
	// ActLog: append the txn Entry (Zxid) to the log.
	ActLog
	// ActSyncLog: make everything logged so far durable.
	ActSyncLog
	// ActPersistCurrentEpoch: write Zxid as currentEpoch, durably.
	ActPersistCurrentEpoch
	// ActSend: send Packet to the leader.
	ActSend
	// ActApply: apply the logged txn Zxid to the tree and answer whoever
	// waits for it. After a SNAP the snapshot is fuzzy: it may hold the
	// txn already, and applying must be idempotent, as replay is.
	ActApply
	// ActServe: the follower is in sync: serve clients.
	ActServe
	// ActAnswerSync: answer the oldest sync request waiting.
	ActAnswerSync
	// ActPong: answer the leader's PING (Zxid) with the sessions touched
	// since the last one (wire.AppendTouches): an empty buffer when there
	// are none, never null, which ZooKeeper's leader fails on.
	ActPong
)

// Action is one step a Follower asks for.
type Action struct {
	Kind   ActionKind
	Zxid   int64
	Entry  []byte
	Packet wire.QuorumPacket
}

func (a Action) String() string {
	switch a.Kind {
	case ActTruncate:
		return fmt.Sprintf("truncate %#x", a.Zxid)
	case ActLoadSnapshot:
		return fmt.Sprintf("load-snapshot %#x", a.Zxid)
	case ActTakeSnapshot:
		return "take-snapshot"
	case ActLog:
		return fmt.Sprintf("log %#x", a.Zxid)
	case ActSyncLog:
		return "sync-log"
	case ActPersistCurrentEpoch:
		return fmt.Sprintf("persist-current-epoch %d", a.Zxid)
	case ActSend:
		return fmt.Sprintf("send %s %#x", wire.PacketName(a.Packet.Type), a.Packet.Zxid)
	case ActApply:
		return fmt.Sprintf("apply %#x", a.Zxid)
	case ActServe:
		return "serve"
	case ActAnswerSync:
		return "answer-sync"
	case ActPong:
		return "pong"
	}
	return fmt.Sprintf("Action(%d)", int(a.Kind))
}

type followerPhase int

const (
	awaitingSync followerPhase = iota
	syncing
	afterNewLeader
	serving
)

type txnEntry struct {
	zxid  int64
	entry []byte
}

// Follower is a follower's state from the end of discovery on.
type Follower struct {
	epoch    int64 // the new epoch, LEADERINFO's
	phase    followerPhase
	mode     SyncMode
	lastZxid int64 // the newest txn the follower holds or has been sent
	// lastQueued is the newest PROPOSAL (or INFORM) received since the
	// sync opened; 0 before the first.
	lastQueued int64

	// During sync: proposals not logged yet, and commits not applied.
	pending   []txnEntry
	commits   []int64
	deferred  []int64  // proposals logged at NEWLEADER, acknowledged at UPTODATE
	logged    []int64  // logged, not committed, in zxid order (serving)
	inMemOnly bool     // SNAP or TRUNC: commits during sync apply in memory
	observer  bool     // takes INFORMs, acknowledges no proposal
	acts      []Action // what broadcast returns, reused packet after packet
}

// NewFollower starts a follower's sync in epoch (the LEADERINFO's), after
// it sent ACKEPOCH with its log ending at lastZxid.
func NewFollower(epoch, lastZxid int64) *Follower {
	return &Follower{epoch: epoch, lastZxid: lastZxid}
}

// NewObserver is NewFollower for an observer: its sync is a follower's
// (ZooKeeper's learners share it), and in broadcast it takes each
// committed txn as one INFORM, which it logs and applies without
// acknowledging: it has no vote.
func NewObserver(epoch, lastZxid int64) *Follower {
	return &Follower{epoch: epoch, lastZxid: lastZxid, observer: true}
}

// Serving reports whether the follower is in sync and serving clients.
func (f *Follower) Serving() bool { return f.phase == serving }

func send(typ int32, zxid int64) Action {
	return Action{Kind: ActSend, Packet: wire.QuorumPacket{Type: typ, Zxid: zxid}}
}

// Step takes a packet from the leader and returns the actions it asks for,
// valid until the next Step. An error means the leader broke the protocol
// (or the learner's history does not fit it): go back to election.
func (f *Follower) Step(p *wire.QuorumPacket) ([]Action, error) {
	switch f.phase {
	case awaitingSync:
		return f.startSync(p)
	case syncing, afterNewLeader:
		return f.sync(p)
	}
	return f.broadcast(p)
}

func (f *Follower) startSync(p *wire.QuorumPacket) ([]Action, error) {
	f.phase = syncing
	if p.Zxid>>32 > f.epoch {
		// The leader's history cannot hold a txn of an epoch after the
		// one it leads.
		return nil, fmt.Errorf("zab: %s %#x from the leader of epoch %d", wire.PacketName(p.Type), p.Zxid, f.epoch)
	}
	switch p.Type {
	case wire.PacketDiff:
		f.mode = SyncDiff
		return nil, nil
	case wire.PacketTrunc:
		f.mode, f.inMemOnly, f.lastZxid = SyncTrunc, true, p.Zxid
		return []Action{{Kind: ActTruncate, Zxid: p.Zxid}}, nil
	case wire.PacketSnap:
		f.mode, f.inMemOnly, f.lastZxid = SyncSnap, true, p.Zxid
		return []Action{{Kind: ActLoadSnapshot, Zxid: p.Zxid}}, nil
	}
	return nil, fmt.Errorf("zab: the leader opened the sync with %s, not DIFF, TRUNC or SNAP", wire.PacketName(p.Type))
}

func (f *Follower) sync(p *wire.QuorumPacket) ([]Action, error) {
	switch p.Type {
	case wire.PacketProposal:
		if err := f.queue(p); err != nil {
			return nil, err
		}
		f.pending = append(f.pending, txnEntry{p.Zxid, p.Data})
		f.lastZxid = p.Zxid
		return nil, nil
	case wire.PacketCommit:
		if f.phase == syncing && f.inMemOnly {
			// After SNAP or TRUNC the tree is rebuilt in memory and
			// snapshotted at NEWLEADER: a commit applies at once.
			if len(f.pending) == 0 || f.pending[0].zxid != p.Zxid {
				return nil, fmt.Errorf("zab: COMMIT %#x does not match the oldest proposal", p.Zxid)
			}
			f.pending = f.pending[1:]
			return []Action{{Kind: ActApply, Zxid: p.Zxid}}, nil
		}
		f.commits = append(f.commits, p.Zxid)
		return nil, nil
	case wire.PacketInform:
		// An observer takes a txn committed during its sync as its
		// proposal and commit at once, as ZooKeeper's learners do.
		if !f.observer {
			return nil, fmt.Errorf("zab: INFORM to a follower")
		}
		if err := f.queue(p); err != nil {
			return nil, err
		}
		f.pending = append(f.pending, txnEntry{p.Zxid, p.Data})
		f.lastZxid = p.Zxid
		return f.sync(&wire.QuorumPacket{Type: wire.PacketCommit, Zxid: p.Zxid})
	case wire.PacketPing, wire.PacketRevalidate:
		return nil, nil // not answered during sync
	case wire.PacketNewLeader:
		if f.phase != syncing || p.Zxid != f.epoch<<32 {
			return nil, fmt.Errorf("zab: NEWLEADER %#x in epoch %d", p.Zxid, f.epoch)
		}
		f.phase = afterNewLeader
		var acts []Action
		if f.inMemOnly {
			acts = append(acts, Action{Kind: ActTakeSnapshot})
		}
		// Every proposal received is on disk before the leader is told
		// this follower holds its history.
		for _, t := range f.pending {
			acts = append(acts, Action{Kind: ActLog, Zxid: t.zxid, Entry: t.entry})
			f.deferred = append(f.deferred, t.zxid)
			f.logged = append(f.logged, t.zxid)
		}
		f.pending = nil
		if len(f.deferred) > 0 {
			acts = append(acts, Action{Kind: ActSyncLog})
		}
		acts = append(acts, Action{Kind: ActPersistCurrentEpoch, Zxid: f.epoch}, send(wire.PacketAck, p.Zxid))
		return acts, nil
	case wire.PacketUpToDate:
		if f.phase != afterNewLeader {
			return nil, fmt.Errorf("zab: UPTODATE before NEWLEADER")
		}
		f.phase = serving
		acts := []Action{send(wire.PacketAck, f.epoch<<32), {Kind: ActServe}}
		// An observer has no vote: it acknowledges no txn, those of its
		// sync included, as ZooKeeper's observers do not.
		if !f.observer {
			for _, z := range f.deferred {
				acts = append(acts, send(wire.PacketAck, z))
			}
		}
		f.deferred = nil
		// Then what came after NEWLEADER, as in broadcast.
		for _, t := range f.pending {
			acts = append(acts, Action{Kind: ActLog, Zxid: t.zxid, Entry: t.entry})
			if !f.observer {
				acts = append(acts, Action{Kind: ActSyncLog}, send(wire.PacketAck, t.zxid))
			}
			f.logged = append(f.logged, t.zxid)
		}
		f.pending = nil
		for _, z := range f.commits {
			a, err := f.commit(z)
			if err != nil {
				return nil, err
			}
			acts = append(acts, a)
		}
		f.commits = nil
		return acts, nil
	}
	return nil, fmt.Errorf("zab: %s during sync", wire.PacketName(p.Type))
}

// queue checks that a PROPOSAL or INFORM follows the one before it in
// this sync: within an epoch the leader's txns are numbered one after
// another, so a gap means the leader's history has a hole (as Apache
// ZooKeeper 3.9.3's leaders could ship, ZOOKEEPER-4925), and logging the
// txns after it would leave one in this server's log too. Every epoch's
// txns start at counter 1: a txn of a later epoch than the one before
// it (or than the point the sync starts from) must be its epoch's first.
// Apache ZooKeeper 3.8 followers acting as observer masters were seen to
// send a DIFF that went from the end of one epoch into the middle of the
// next (their committed log has a hole where a sync's txns were applied
// without being recorded), and the observer's tree lacked every znode
// the skipped txns made. Otherwise the first after the sync opens may
// leave a gap: after a SNAP it may even be a txn the fuzzy snapshot holds
// already, and after a DIFF or a TRUNC it need only come after the point
// the sync starts from. ZooKeeper 3.9.4 learners refuse a gap within an
// epoch the same way.
func (f *Follower) queue(p *wire.QuorumPacket) error {
	if e := p.Zxid >> 32; p.Zxid&0xffffffff == 0 || e > f.epoch || f.phase != syncing && e != f.epoch {
		// No txn has counter 0, and once NEWLEADER is in, the leader
		// sends only txns of the epoch it leads.
		return fmt.Errorf("zab: %s %#x from the leader of epoch %d", wire.PacketName(p.Type), p.Zxid, f.epoch)
	}
	last := f.lastQueued
	if last != 0 && p.Zxid != last+1 && p.Zxid>>32 <= last>>32 {
		return fmt.Errorf("zab: %s %#x after %#x: the leader's history skips or repeats txns", wire.PacketName(p.Type), p.Zxid, last)
	}
	if ref := cmp.Or(last, f.lastZxid); p.Zxid>>32 > ref>>32 && p.Zxid&0xffffffff != 1 {
		return fmt.Errorf("zab: %s %#x after %#x: the leader's history skips the start of epoch %d", wire.PacketName(p.Type), p.Zxid, ref, p.Zxid>>32)
	}
	if last == 0 && f.phase != serving && f.mode != SyncSnap && p.Zxid <= f.lastZxid {
		// After a DIFF from the end of this server's log, or a TRUNC,
		// the leader sends only what comes after.
		return fmt.Errorf("zab: %s %#x in a %s sync from %#x", wire.PacketName(p.Type), p.Zxid, f.mode, f.lastZxid)
	}
	f.lastQueued = p.Zxid
	return nil
}

// commit applies the oldest logged txn, which must be zxid.
func (f *Follower) commit(zxid int64) (Action, error) {
	if len(f.logged) == 0 || f.logged[0] != zxid {
		return Action{}, fmt.Errorf("zab: COMMIT %#x does not match the oldest logged txn", zxid)
	}
	f.logged = f.logged[1:]
	return Action{Kind: ActApply, Zxid: zxid}, nil
}

// actions returns acts in f's reused slice: a follower takes a PROPOSAL
// and a COMMIT for every write, and a new slice each was most of what it
// allocated beside the txns themselves.
func (f *Follower) actions(acts ...Action) []Action {
	clear(f.acts)
	f.acts = append(f.acts[:0], acts...)
	return f.acts
}

func (f *Follower) broadcast(p *wire.QuorumPacket) ([]Action, error) {
	if f.observer {
		switch p.Type {
		case wire.PacketInform:
			if p.Zxid <= f.lastZxid {
				return nil, fmt.Errorf("zab: INFORM %#x after %#x", p.Zxid, f.lastZxid)
			}
			if err := f.queue(p); err != nil {
				return nil, err
			}
			f.lastZxid = p.Zxid
			return f.actions(Action{Kind: ActLog, Zxid: p.Zxid, Entry: p.Data}, Action{Kind: ActApply, Zxid: p.Zxid}), nil
		case wire.PacketProposal, wire.PacketCommit:
			// Not an observer's business; ZooKeeper's observers ignore
			// them too.
			return nil, nil
		}
	}
	switch p.Type {
	case wire.PacketProposal:
		if p.Zxid <= f.lastZxid {
			return nil, fmt.Errorf("zab: PROPOSAL %#x after %#x", p.Zxid, f.lastZxid)
		}
		if err := f.queue(p); err != nil {
			return nil, err
		}
		f.lastZxid = p.Zxid
		f.logged = append(f.logged, p.Zxid)
		// ACK only once the txn is durable.
		return f.actions(Action{Kind: ActLog, Zxid: p.Zxid, Entry: p.Data}, Action{Kind: ActSyncLog}, send(wire.PacketAck, p.Zxid)), nil
	case wire.PacketCommit:
		a, err := f.commit(p.Zxid)
		if err != nil {
			return nil, err
		}
		return f.actions(a), nil
	case wire.PacketPing:
		return f.actions(Action{Kind: ActPong, Zxid: p.Zxid}), nil
	case wire.PacketSync:
		return f.actions(Action{Kind: ActAnswerSync}), nil
	}
	return nil, fmt.Errorf("zab: unexpected %s", wire.PacketName(p.Type))
}
