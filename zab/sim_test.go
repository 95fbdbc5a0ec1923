package zab

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/wire"
	"zkd/zab/election"
)

// The randomized simulation: whole ensembles of 3 or 5 voters (and
// sometimes an observer) in one process, built from this package's rules
// and zab/election, driven the way engine's peer, leader and follower
// drive them (the same order of durable writes and sends, the same sync
// packets, ACKs held until the log is durable, PINGs not held once the
// server serves, commits applied by the leader and the followers whether
// or not their own disks hold them yet, and answered to their clients).
// One random source decides everything: which message is
// delivered next (in order within a connection, as TCP does), when time
// passes, when a disk syncs, when clients write, and the faults: crashes
// that lose every write not synced yet (or only part of them), crashes in
// the middle of carrying out a packet's actions, restarts, partitions of
// one server or one link, connections reset. After the faults, the
// network heals, every server restarts, and the ensemble must serve again.
//
// Checked on every step: at most one leader establishes each epoch;
// what a serving server applies is a prefix of one history; the history a
// leader holds when a quorum acks its NEWLEADER holds every txn committed
// in an earlier epoch; equal zxids have equal digests everywhere. At the
// end, every server holds that history, every write acknowledged to a
// client among it. A server the engine would stop for an operator (a
// TRUNC below a snapshot it was sent) stays down, and is counted.

// simConfig is one run's shape.
type simConfig struct {
	voters    int
	observer  bool
	steps     int // fault-phase events
	commitLog int // the leader's committed log (commitLogCount)
}

const (
	simTick      = 50 * time.Millisecond // tickTime
	simInitLimit = 10 * simTick
	simSyncLimit = 5 * simTick
	simStep      = 10 * time.Millisecond // time passes in these steps
)

type simTxn struct {
	zxid int64
	val  int64 // the client write's number; 0 for none
}

// simDisk is what survives a crash: the epochs and the log, whose tail
// after synced may be lost. log[:snapBase] came in a snapshot: it is no
// txn log a leader can read back.
type simDisk struct {
	accepted, current int64
	log               []simTxn
	synced            int
	snapBase          int
}

func (d *simDisk) last() int64 {
	if len(d.log) == 0 {
		return 0
	}
	return d.log[len(d.log)-1].zxid
}

func (d *simDisk) durable() int64 {
	if d.synced == 0 {
		return 0
	}
	return d.log[d.synced-1].zxid
}

type simPkt struct {
	wire.QuorumPacket
	snap []simTxn // a SNAP's tree
}

// simConn is a learner's connection to its leader. Each side reads what
// the other wrote, in order, until the other closed it and nothing is
// left; then it notices.
type simConn struct {
	learner, leader       int64
	toLeader, toLearner   []simPkt
	learnerOpen, leadOpen bool
}

// closeLeaderSide is the leader closing the connection: what was sent to
// it is never read; what it sent still reaches the learner.
func (c *simConn) closeLeaderSide() { c.leadOpen, c.toLeader = false, nil }

// closeLearnerSide is the learner closing it.
func (c *simConn) closeLearnerSide() { c.learnerOpen, c.toLearner = false, nil }

type roleKind int

const (
	roleDown roleKind = iota
	roleLooking
	roleConnecting
	roleFollowing
	roleLeading
)

type simNode struct {
	id       int64
	observer bool
	role     roleKind
	disk     simDisk
	el       *election.Election
	tree     []simTxn // applied
	serving  bool

	// Learner.
	leaderID  int64
	conn      *simConn
	deadline  time.Duration // connecting, or waiting for LEADERINFO
	lastHeard time.Duration
	fol       *Follower
	entries   map[int64]simTxn
	appended  int64 // the newest zxid handed to the log
	barrier   int64 // sends wait for the log to be durable up to here
	waiting   []simDeferred
	applyQ    []simTxn

	// Leader.
	ld *simLeader

	halted bool // stopped for good: needs an operator
}

type simDeferred struct {
	need int64
	p    simPkt
}

type learnerState int

const (
	lrHello learnerState = iota
	lrAwaitAccepted
	lrAwaitAckEpoch
	lrAwaitEstablished
	lrBroadcast
)

type simLearner struct {
	sid      int64
	observer bool
	conn     *simConn
	state    learnerState
	peerLast int64
	synced   bool
	heard    time.Duration
}

type simLeader struct {
	disc            *LeaderDiscovery
	acceptedWritten bool
	established     bool
	upToDate        bool
	epoch           int64
	props           *Proposals
	lastCommitted   int64
	committedLog    []int64
	outstanding     []simTxn
	undurable       []simTxn // committed, not on the leader's disk yet
	selfAcked       int64
	counter         int64
	learners        map[int64]*simLearner
	newLeaderAcks   []int64
	deadline        time.Duration
}

type sim struct {
	t      *testing.T
	seed   int64
	rng    *rand.Rand
	cfg    simConfig
	now    time.Duration
	nodes  map[int64]*simNode
	ids    []int64
	voters []int64
	elq    map[[2]int64][]wire.Notification
	conns  []*simConn
	cut    map[[2]int64]bool

	history     []simTxn         // every txn committed, in order
	commitEpoch []int64          // the epoch of the leader that committed each first
	digests     map[int64]uint64 // zxid → digest of the history up to it
	epochOf     map[int64]int64  // epoch → the leader that established it
	acked       map[int64]bool   // the client writes answered
	nextVal     int64
	trace       []string
	failed      bool
	verbose     bool // log every quorum packet delivered
	halts       int
	faults      bool
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%8v ", s.now)+fmt.Sprintf(format, args...))
}

func (s *sim) fatalf(format string, args ...any) {
	if s.failed {
		return
	}
	s.failed = true
	msg := fmt.Sprintf(format, args...)
	s.logf("FAILED: %s", msg)
	file := filepath.Join(os.TempDir(), fmt.Sprintf("zkd-sim-seed-%d.log", s.seed))
	where := "the whole run is in " + file
	if err := os.WriteFile(file, []byte(strings.Join(s.trace, "\n")+"\n"), 0o644); err != nil {
		where = err.Error()
	}
	tail := s.trace[max(0, len(s.trace)-40):]
	s.t.Errorf("seed %d (%d voters, observer %v): %s\n%s; its end:\n%s", s.seed, s.cfg.voters, s.cfg.observer,
		msg, where, strings.Join(tail, "\n"))
}

func newSim(t *testing.T, seed int64, cfg simConfig) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), cfg: cfg, nodes: map[int64]*simNode{},
		elq: map[[2]int64][]wire.Notification{}, cut: map[[2]int64]bool{}, digests: map[int64]uint64{},
		epochOf: map[int64]int64{}, acked: map[int64]bool{}}
	for i := 1; i <= cfg.voters; i++ {
		s.voters = append(s.voters, int64(i))
	}
	s.ids = slices.Clone(s.voters)
	if cfg.observer {
		s.ids = append(s.ids, int64(cfg.voters+1))
	}
	for _, id := range s.ids {
		s.nodes[id] = &simNode{id: id, observer: int(id) > cfg.voters}
	}
	return s
}

func (s *sim) quorum(ids []int64) bool {
	n := 0
	for _, v := range s.voters {
		if slices.Contains(ids, v) {
			n++
		}
	}
	return n > len(s.voters)/2
}

func (s *sim) isCut(a, b int64) bool { return s.cut[[2]int64{min(a, b), max(a, b)}] }

// --- election ---

func (s *sim) start(n *simNode) {
	// engine refuses a data directory whose log is of a later epoch than
	// currentEpoch, as ZooKeeper does.
	if e := n.disk.last() >> 32; e > n.disk.current {
		s.fatalf("%d cannot start: its log reaches %#x (epoch %d), its currentEpoch is %d", n.id, n.disk.last(), e, n.disk.current)
		return
	}
	n.role = roleLooking
	n.el = election.New(election.Config{ID: n.id, Voters: s.voters})
	n.disk.synced = len(n.disk.log) // what survived is on disk now
	s.lookAgain(n)
}

// lookAgain ends the node's role and starts an election, with the tree
// brought up to the end of the log, as engine's lookingAgain and catchUp.
func (s *sim) lookAgain(n *simNode) {
	s.endRole(n)
	n.role = roleLooking
	n.disk.synced = len(n.disk.log) // catchUp flushes the log first
	n.tree = slices.Clone(n.disk.log)
	s.logf("%d looking, last %#x epoch %d", n.id, n.disk.last(), n.disk.current)
	n.el.Start(s.now, n.disk.last(), n.disk.current)
	s.collect(n)
}

func (s *sim) endRole(n *simNode) {
	if n.conn != nil {
		n.conn.closeLearnerSide()
		n.conn = nil
	}
	if n.ld != nil {
		for _, lr := range n.ld.learners {
			lr.conn.closeLeaderSide()
		}
		n.ld = nil
	}
	n.fol, n.entries, n.waiting, n.applyQ = nil, nil, nil, nil
	n.serving = false
}

func (s *sim) collect(n *simNode) {
	r := n.el.Ready()
	for _, m := range r.Messages {
		if !s.isCut(n.id, m.To) && s.nodes[m.To].role != roleDown {
			k := [2]int64{n.id, m.To}
			s.elq[k] = append(s.elq[k], m.N)
		}
	}
	if !r.Decided {
		return
	}
	s.logf("%d decided %v for %d (zxid %#x epoch %d)", n.id, r.State, r.Vote.Leader, r.Vote.Zxid, r.Vote.PeerEpoch)
	switch r.State {
	case wire.StateLeading:
		s.lead(n)
	case wire.StateFollowing, wire.StateObserving:
		n.role, n.leaderID, n.deadline = roleConnecting, r.Vote.Leader, s.now+simInitLimit
		s.connect(n)
	}
}

// --- learner ---

func (s *sim) connect(n *simNode) {
	l := s.nodes[n.leaderID]
	if l.role != roleLeading || l.ld == nil || s.isCut(n.id, l.id) {
		if s.now > n.deadline {
			s.logf("%d cannot reach leader %d", n.id, l.id)
			s.lookAgain(n)
		}
		return
	}
	c := &simConn{learner: n.id, leader: l.id, learnerOpen: true, leadOpen: true}
	s.conns = append(s.conns, c)
	l.ld.learners[n.id] = replaceLearner(l.ld.learners[n.id], &simLearner{sid: n.id, conn: c, heard: s.now})
	if l.ld.props != nil {
		l.ld.props.Forget(n.id)
	}
	n.role, n.conn, n.lastHeard, n.deadline = roleFollowing, c, s.now, s.now+simInitLimit
	typ := wire.PacketFollowerInfo
	if n.observer {
		typ = wire.PacketObserverInfo
	}
	s.toLeader(n, simPkt{QuorumPacket: wire.QuorumPacket{Type: typ, Zxid: n.disk.accepted << 32}})
}

func replaceLearner(old, lr *simLearner) *simLearner {
	if old != nil {
		old.conn.closeLeaderSide()
	}
	return lr
}

func (s *sim) toLeader(n *simNode, p simPkt) {
	if n.conn != nil && n.conn.leadOpen {
		n.conn.toLeader = append(n.conn.toLeader, p)
	}
}

// send is engine's sendAfter: after everything queued before it, once the
// log is durable up to need.
func (s *sim) send(n *simNode, need int64, p simPkt) {
	if n.serving && need == 0 && p.Type == wire.PacketPing {
		s.toLeader(n, p)
		return
	}
	n.waiting = append(n.waiting, simDeferred{need, p})
	s.release(n)
}

func (s *sim) release(n *simNode) {
	d := n.disk.durable()
	for len(n.waiting) > 0 && n.waiting[0].need <= d {
		s.toLeader(n, n.waiting[0].p)
		n.waiting = n.waiting[1:]
	}
}

// applyCommitted applies the committed txns, logged but perhaps not
// durable here yet, as engine's follower does; a serving follower answers
// its clients' writes among them.
func (s *sim) applyCommitted(n *simNode) {
	for len(n.applyQ) > 0 {
		t := n.applyQ[0]
		n.applyQ = n.applyQ[1:]
		s.apply(n, t)
		if n.serving && t.val > 0 {
			s.acked[t.val] = true
		}
	}
}

func (s *sim) fromLeader(n *simNode, p simPkt) {
	n.lastHeard = s.now
	if n.fol == nil { // before LEADERINFO
		if p.Type != wire.PacketLeaderInfo {
			s.fatalf("%d: the leader opened with %s", n.id, wire.PacketName(p.Type))
			return
		}
		epoch := p.Zxid >> 32
		ack, persist, err := LearnerLeaderInfo(epoch, n.disk.accepted, n.disk.current)
		if err != nil {
			s.logf("%d: %v", n.id, err)
			s.lookAgain(n)
			return
		}
		if persist {
			n.disk.accepted = epoch
		}
		last := n.disk.last()
		data := binary.BigEndian.AppendUint32(nil, uint32(int32(ack)))
		s.toLeader(n, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketAckEpoch, Zxid: last, Data: data}})
		n.fol = NewFollower(epoch, last)
		if n.observer {
			n.fol = NewObserver(epoch, last)
		}
		n.entries, n.appended, n.barrier = map[int64]simTxn{}, last, 0
		return
	}
	if p.Type == wire.PacketProposal || p.Type == wire.PacketInform {
		n.entries[p.Zxid] = simTxn{p.Zxid, decodeVal(p.Data)}
	}
	acts, err := n.fol.Step(&p.QuorumPacket)
	if err != nil {
		s.logf("%d: %v", n.id, err)
		s.lookAgain(n)
		return
	}
	for _, a := range acts {
		if s.faults && s.rng.Intn(40) == 0 {
			s.logf("%d crashes while carrying out %v", n.id, a)
			s.crash(n)
			return
		}
		if !s.do(n, a, p) {
			return
		}
	}
}

func decodeVal(b []byte) int64 {
	if len(b) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func encodeVal(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// do carries out one action as engine's executor does; false when the
// node left its role.
func (s *sim) do(n *simNode, a Action, p simPkt) bool {
	d := &n.disk
	switch a.Kind {
	case ActTruncate:
		i := len(d.log)
		for i > 0 && d.log[i-1].zxid > a.Zxid {
			i--
		}
		if i > 0 && d.log[i-1].zxid != a.Zxid || i == 0 && a.Zxid != 0 {
			s.fatalf("%d: TRUNC to %#x, which its log (ending %#x) does not hold", n.id, a.Zxid, d.last())
			return false
		}
		if i < d.snapBase {
			// A snapshot from an earlier leader holds txns that were
			// never committed, and no log from before it is left:
			// engine stops the server, naming what to do
			// (ZOOKEEPER-1549's case).
			s.logf("%d stops: TRUNC to %#x, before its snapshot at %#x", n.id, a.Zxid, d.log[d.snapBase-1].zxid)
			s.halt(n)
			return false
		}
		s.logf("%d truncates to %#x (from %#x)", n.id, a.Zxid, d.last())
		d.log = d.log[:i]
		d.synced = min(d.synced, i)
		n.tree = slices.Clone(d.log)
		n.appended = a.Zxid
	case ActLoadSnapshot:
		s.logf("%d installs a snapshot at %#x", n.id, a.Zxid)
		d.log = slices.Clone(p.snap)
		d.synced, d.snapBase = len(d.log), len(d.log)
		n.tree = slices.Clone(p.snap)
		n.appended = a.Zxid
		s.raiseEpoch(n, a.Zxid>>32)
		s.checkTree(n)
	case ActTakeSnapshot:
		d.synced = len(d.log)
		s.release(n)
		s.applyCommitted(n)
	case ActLog:
		s.log(n, a.Zxid)
	case ActSyncLog:
		n.barrier = n.appended
	case ActPersistCurrentEpoch:
		d.synced = len(d.log)
		d.current = a.Zxid
		n.el.SetPeerEpoch(a.Zxid)
		s.release(n)
		s.applyCommitted(n)
	case ActSend:
		s.send(n, n.barrier, simPkt{QuorumPacket: a.Packet})
	case ActApply:
		if a.Zxid > n.appended {
			s.log(n, a.Zxid)
		}
		t, ok := n.entries[a.Zxid]
		if !ok {
			s.fatalf("%d: the leader committed %#x, never proposed", n.id, a.Zxid)
			return false
		}
		delete(n.entries, a.Zxid)
		n.applyQ = append(n.applyQ, t)
		s.applyCommitted(n)
	case ActServe:
		n.serving = true
		s.checkTree(n)
	case ActAnswerSync:
	case ActPong:
		s.send(n, 0, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketPing, Zxid: a.Zxid}})
	}
	return true
}

func (s *sim) log(n *simNode, zxid int64) {
	t, ok := n.entries[zxid]
	if !ok {
		s.fatalf("%d: asked to log %#x, never proposed", n.id, zxid)
		return
	}
	if zxid <= n.appended {
		return
	}
	s.raiseEpoch(n, zxid>>32)
	n.disk.log = append(n.disk.log, t)
	n.appended = zxid
}

// raiseEpoch is engine's: before a txn of a later epoch than
// currentEpoch goes to the log during a sync, what is logged is synced and
// currentEpoch raised to it.
func (s *sim) raiseEpoch(n *simNode, epoch int64) {
	if epoch > n.disk.current {
		n.disk.synced = len(n.disk.log)
		n.disk.current = epoch
	}
}

// apply adds a committed txn to n's tree and checks it against the
// history.
func (s *sim) apply(n *simNode, t simTxn) {
	if len(n.tree) > 0 && t.zxid <= n.tree[len(n.tree)-1].zxid {
		return // a fuzzy snapshot's overlap
	}
	n.tree = append(n.tree, t)
	s.checkTree(n)
}

// checkTree: n's tree is a prefix of the committed history, with the
// digest every server has at that zxid. During a sync the tree may hold
// the leader's history before a quorum has it: it is checked once the
// server serves.
func (s *sim) checkTree(n *simNode) {
	if !n.serving {
		return
	}
	if len(n.tree) > len(s.history) {
		s.fatalf("%d applied %d txns (up to %#x), only %d are committed", n.id, len(n.tree), n.tree[len(n.tree)-1].zxid, len(s.history))
		return
	}
	for i, t := range n.tree {
		if s.history[i] != t {
			s.fatalf("%d's tree holds %#x (write %d) at %d, the history %#x (write %d)", n.id, t.zxid, t.val, i, s.history[i].zxid, s.history[i].val)
			return
		}
	}
	if len(n.tree) > 0 {
		last := n.tree[len(n.tree)-1].zxid
		if s.digests[last] != digest(n.tree) {
			s.fatalf("%d: digest at %#x differs", n.id, last)
		}
	}
}

func digest(ts []simTxn) uint64 {
	h := fnv.New64a()
	for _, t := range ts {
		h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(t.zxid)), uint64(t.val)))
	}
	return h.Sum64()
}

// commit extends the committed history with ts, which must agree with
// it, committed by the leader of epoch. A leader establishing its epoch
// must hold every txn committed in an earlier epoch; one whose
// establishment completes late (a NEWLEADER ACK that was in flight) may
// lack what a later epoch committed since.
func (s *sim) commit(who int64, ts []simTxn, establish bool, epoch int64) {
	if establish {
		for i, e := range s.commitEpoch {
			if e < epoch && i >= len(ts) {
				s.fatalf("leader %d establishes epoch %d with a history of %d txns; txn %#x (write %d), committed in epoch %d, is not in it",
					who, epoch, len(ts), s.history[i].zxid, s.history[i].val, e)
				return
			}
		}
	}
	// A leader of an older epoch may still commit a txn a newer leader
	// took over: its history is then a prefix of the one committed.
	for i, t := range s.history[:min(len(ts), len(s.history))] {
		if ts[i] != t {
			s.fatalf("leader %d's history has %#x (write %d) at %d where %#x (write %d) was committed", who, ts[i].zxid, ts[i].val, i, t.zxid, t.val)
			return
		}
	}
	for i := len(s.history); i < len(ts); i++ {
		if i > 0 && ts[i].zxid <= ts[i-1].zxid {
			s.fatalf("leader %d's history goes from %#x to %#x", who, ts[i-1].zxid, ts[i].zxid)
			return
		}
		s.history = append(s.history, ts[i])
		s.commitEpoch = append(s.commitEpoch, epoch)
		s.digests[ts[i].zxid] = digest(s.history)
	}
}

// --- leader ---

func (s *sim) lead(n *simNode) {
	n.role = roleLeading
	ld := &simLeader{learners: map[int64]*simLearner{}, deadline: s.now + simInitLimit}
	n.ld = ld
	ld.disc = NewLeaderDiscovery(n.id, s.voters, n.disk.accepted, n.disk.current, n.disk.last())
	if epoch, frozen, _ := ld.disc.FollowerInfo(n.id, n.disk.accepted); frozen {
		s.writeAccepted(n, epoch)
	}
	if ok, _ := ld.disc.AckEpoch(n.id, n.disk.current, n.disk.last()); ok {
		s.establish(n)
	}
}

func (s *sim) toLearner(lr *simLearner, p simPkt) {
	if lr.conn.learnerOpen && lr.conn.leadOpen {
		lr.conn.toLearner = append(lr.conn.toLearner, p)
	}
}

func (s *sim) writeAccepted(n *simNode, epoch int64) {
	ld := n.ld
	if ld.acceptedWritten {
		return
	}
	n.disk.accepted = epoch
	ld.acceptedWritten = true
	for _, id := range s.ids {
		if lr := ld.learners[id]; lr != nil && lr.state == lrAwaitAccepted {
			s.sendLeaderInfo(n, lr)
		}
	}
}

func (s *sim) sendLeaderInfo(n *simNode, lr *simLearner) {
	lr.state = lrAwaitAckEpoch
	s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketLeaderInfo, Zxid: n.ld.disc.Epoch() << 32}})
}

func (s *sim) establish(n *simNode) {
	ld := n.ld
	ld.established = true
	ld.epoch = ld.disc.Epoch()
	if other, ok := s.epochOf[ld.epoch]; ok && other != n.id {
		s.fatalf("epoch %d established by %d and by %d", ld.epoch, other, n.id)
	}
	s.epochOf[ld.epoch] = n.id
	ld.lastCommitted = n.disk.last()
	var zs []int64
	for _, t := range n.disk.log[n.disk.snapBase:] {
		zs = append(zs, t.zxid)
	}
	if len(zs) > s.cfg.commitLog {
		zs = zs[len(zs)-s.cfg.commitLog:]
	}
	ld.committedLog = zs
	ld.props = NewProposals(s.voters, ld.lastCommitted)
	ld.selfAcked = ld.lastCommitted
	ld.newLeaderAcks = []int64{n.id}
	ld.deadline = s.now + simInitLimit
	s.logf("%d establishes epoch %d at %#x", n.id, ld.epoch, ld.lastCommitted)
	for _, id := range s.ids {
		if lr := ld.learners[id]; lr != nil && lr.state == lrAwaitEstablished {
			s.syncLearner(n, lr)
		}
	}
	s.checkNewLeaderQuorum(n)
}

func (s *sim) syncLearner(n *simNode, lr *simLearner) {
	ld := n.ld
	committed := ld.lastCommitted
	// What the log files hold is the synced part (the rest may still be
	// in the log's buffer), read up to onDisk; what is committed after
	// that is sent from memory.
	readable := n.disk.log[:n.disk.synced]
	onDisk := min(committed, ld.selfAcked)
	hist := History{LastProcessed: committed, Committed: slices.Clone(ld.committedLog), SnapshotSizeFactor: 0.33,
		SnapshotBytes: int64(16 * len(n.tree)),
		TxnLog: func(from, limit int64) []int64 {
			var zs []int64
			for _, t := range readable[n.disk.snapBase:] {
				if t.zxid >= from && t.zxid <= onDisk {
					zs = append(zs, t.zxid)
				}
			}
			if len(zs) == 0 || zs[0] != from {
				return nil // the log does not reach back to from
			}
			if limit >= 0 && int64(16*len(zs)) > limit {
				return nil
			}
			return zs
		}}
	plan := PlanSync(lr.peerLast, hist)
	put := func(p simPkt) { s.toLearner(lr, p) }
	sendTxns := func(after int64) {
		for _, t := range append(readable[:len(readable):len(readable)], ld.undurable...) {
			if t.zxid > after && (t.zxid <= onDisk || slices.Contains(ld.undurable, t)) {
				put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketProposal, Zxid: t.zxid, Data: encodeVal(t.val)}})
				put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketCommit, Zxid: t.zxid}})
			}
		}
	}
	s.logf("%d syncs %d (at %#x) by %v %#x", n.id, lr.sid, lr.peerLast, plan.Mode, plan.Zxid)
	switch plan.Mode {
	case SyncSnap:
		// The tree may trail the last commit; the txns between follow.
		v := n.tree
		vz := int64(0)
		if len(v) > 0 {
			vz = v[len(v)-1].zxid
		}
		put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketSnap, Zxid: vz}, snap: slices.Clone(v)})
		sendTxns(vz)
	case SyncTrunc:
		put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketTrunc, Zxid: plan.Zxid}})
		sendTxns(plan.Zxid)
	default:
		put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketDiff, Zxid: plan.Zxid}})
		if len(plan.Send) > 0 {
			sendTxns(plan.Send[0] - 1)
		}
	}
	if !lr.observer {
		for _, o := range ld.outstanding {
			put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketProposal, Zxid: o.zxid, Data: encodeVal(o.val)}})
		}
	}
	put(simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketNewLeader, Zxid: ld.epoch << 32}})
	lr.state = lrBroadcast
}

func (s *sim) checkNewLeaderQuorum(n *simNode) {
	ld := n.ld
	if ld.upToDate || !s.quorum(ld.newLeaderAcks) {
		return
	}
	n.disk.current = ld.epoch
	n.el.SetPeerEpoch(ld.epoch)
	ld.upToDate = true
	s.logf("%d leads epoch %d, acked by %v", n.id, ld.epoch, ld.newLeaderAcks)
	s.commit(n.id, n.disk.log, true, ld.epoch)
	n.serving = true
	s.checkTree(n)
	for _, sid := range ld.newLeaderAcks {
		if lr := ld.learners[sid]; lr != nil && lr.synced {
			s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketUpToDate, Zxid: -1}})
		}
	}
	n.serving = true
}

func (s *sim) fromLearner(n *simNode, lr *simLearner, p simPkt) {
	ld := n.ld
	lr.heard = s.now
	switch lr.state {
	case lrHello:
		if p.Type != wire.PacketFollowerInfo && p.Type != wire.PacketObserverInfo {
			s.fatalf("%d: a learner opened with %s", n.id, wire.PacketName(p.Type))
			return
		}
		lr.observer = p.Type == wire.PacketObserverInfo
		_, frozen, _ := ld.disc.FollowerInfo(lr.sid, p.Zxid>>32)
		lr.state = lrAwaitAccepted
		if frozen {
			s.writeAccepted(n, ld.disc.Epoch())
			if accepted := p.Zxid >> 32; accepted > ld.disc.Epoch() {
				s.logf("%d steps down: %d accepted epoch %d, past its %d", n.id, lr.sid, accepted, ld.disc.Epoch())
				s.lookAgain(n)
				return
			}
		}
		if ld.acceptedWritten && lr.state == lrAwaitAccepted {
			s.sendLeaderInfo(n, lr)
		}
	case lrAwaitAckEpoch:
		if p.Type != wire.PacketAckEpoch {
			s.fatalf("%d: %s instead of ACKEPOCH", n.id, wire.PacketName(p.Type))
			return
		}
		lr.peerLast = p.Zxid
		ok, err := ld.disc.AckEpoch(lr.sid, int64(int32(binary.BigEndian.Uint32(p.Data))), p.Zxid)
		if err != nil {
			s.logf("%d refuses %d: %v", n.id, lr.sid, err)
			s.dropLearner(n, lr)
			return
		}
		lr.state = lrAwaitEstablished
		if ok && !ld.established {
			s.establish(n)
		} else if ld.established {
			s.syncLearner(n, lr)
		}
	case lrBroadcast:
		switch p.Type {
		case wire.PacketAck:
			if p.Zxid == ld.epoch<<32 {
				if lr.synced {
					return
				}
				lr.synced = true
				if !slices.Contains(ld.newLeaderAcks, lr.sid) {
					ld.newLeaderAcks = append(ld.newLeaderAcks, lr.sid)
				}
				if ld.upToDate {
					s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketUpToDate, Zxid: -1}})
				} else {
					s.checkNewLeaderQuorum(n)
				}
				return
			}
			s.committed(n, ld.props.Ack(lr.sid, p.Zxid))
		case wire.PacketPing:
		default:
			s.fatalf("%d: %s from learner %d", n.id, wire.PacketName(p.Type), lr.sid)
		}
	default:
		s.fatalf("%d: %s from learner %d in state %d", n.id, wire.PacketName(p.Type), lr.sid, lr.state)
	}
}

func (s *sim) dropLearner(n *simNode, lr *simLearner) {
	lr.conn.closeLeaderSide()
	if n.ld.learners[lr.sid] == lr {
		delete(n.ld.learners, lr.sid)
	}
}

// write is a client's write at the leader.
func (s *sim) write(n *simNode) {
	ld := n.ld
	s.nextVal++
	ld.counter++
	t := simTxn{ld.epoch<<32 | ld.counter, s.nextVal}
	if err := ld.props.Propose(t.zxid); err != nil {
		s.fatalf("%d: %v", n.id, err)
		return
	}
	ld.outstanding = append(ld.outstanding, t)
	n.disk.log = append(n.disk.log, t)
	for _, id := range s.ids {
		if lr := ld.learners[id]; lr != nil && !lr.observer && lr.state == lrBroadcast {
			s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketProposal, Zxid: t.zxid, Data: encodeVal(t.val)}})
		}
	}
}

// localAck is the leader's own ACK after its log synced.
func (s *sim) localAck(n *simNode) {
	ld := n.ld
	if ld == nil || ld.props == nil {
		return
	}
	d := n.disk.durable()
	if d <= ld.selfAcked {
		return
	}
	var cs []Commit
	for _, o := range ld.outstanding {
		if o.zxid > d {
			break
		}
		if o.zxid > ld.selfAcked {
			cs = append(cs, ld.props.Ack(n.id, o.zxid)...)
		}
	}
	ld.selfAcked = d
	for len(ld.undurable) > 0 && ld.undurable[0].zxid <= d {
		ld.undurable = ld.undurable[1:]
	}
	s.committed(n, cs)
}

func (s *sim) committed(n *simNode, cs []Commit) {
	ld := n.ld
	for _, c := range cs {
		if len(ld.outstanding) == 0 || ld.outstanding[0].zxid != c.Zxid {
			s.fatalf("%d commits %#x, not its oldest outstanding proposal", n.id, c.Zxid)
			return
		}
		t := ld.outstanding[0]
		ld.outstanding = ld.outstanding[1:]
		if t.zxid > ld.selfAcked {
			ld.undurable = append(ld.undurable, t)
		}
		for _, id := range s.ids {
			lr := ld.learners[id]
			switch {
			case lr == nil || lr.state != lrBroadcast:
			case lr.observer:
				s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketInform, Zxid: c.Zxid, Data: encodeVal(t.val)}})
			default:
				s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketCommit, Zxid: c.Zxid}})
			}
		}
		ld.lastCommitted = c.Zxid
		ld.committedLog = append(ld.committedLog, c.Zxid)
		if k := len(ld.committedLog); k > s.cfg.commitLog {
			ld.committedLog = ld.committedLog[k-s.cfg.commitLog:]
		}
		i := slices.IndexFunc(n.disk.log, func(x simTxn) bool { return x.zxid == c.Zxid })
		s.commit(n.id, n.disk.log[:i+1], false, ld.epoch)
	}
	// The leader applies, and answers clients, up to what is committed,
	// whether or not its own disk holds it yet.
	for _, t := range n.disk.log[len(n.tree):] {
		if t.zxid > ld.lastCommitted {
			break
		}
		s.apply(n, t)
		if t.val > 0 {
			s.acked[t.val] = true
		}
	}
}

func (s *sim) tickLeader(n *simNode) {
	ld := n.ld
	if !ld.upToDate {
		if s.now > ld.deadline {
			s.logf("%d: no quorum within initLimit", n.id)
			s.lookAgain(n)
		}
		return
	}
	alive := []int64{n.id}
	for _, id := range s.ids {
		lr := ld.learners[id]
		if lr == nil {
			continue
		}
		if lr.state == lrBroadcast {
			// engine queues pings to a learner in discovery until its
			// sync is written: they reach it after NEWLEADER, ignored.
			s.toLearner(lr, simPkt{QuorumPacket: wire.QuorumPacket{Type: wire.PacketPing, Zxid: ld.lastCommitted}})
		}
		quiet := s.now - lr.heard
		switch {
		case lr.synced && quiet < simSyncLimit:
			alive = append(alive, id)
		case lr.synced || quiet >= simInitLimit:
			s.logf("%d drops %d, quiet for %v", n.id, id, quiet)
			s.dropLearner(n, lr)
		}
	}
	if !s.quorum(alive) {
		s.logf("%d steps down: only %v alive", n.id, alive)
		s.lookAgain(n)
	}
}

// --- faults ---

func (s *sim) crash(n *simNode) {
	s.logf("%d crashes", n.id)
	s.endRole(n)
	n.role = roleDown
	d := &n.disk
	// The disk keeps a random part of what was not synced.
	keep := d.synced + s.rng.Intn(len(d.log)-d.synced+1)
	d.log = d.log[:keep]
	d.synced = keep
	n.tree = nil
	for k := range s.elq {
		if k[0] == n.id || k[1] == n.id {
			delete(s.elq, k)
		}
	}
}

// halt stops n for good, as an operator would find it.
func (s *sim) halt(n *simNode) {
	s.crash(n)
	n.halted = true
	s.halts++
}

func (s *sim) partition(a, b int64) {
	s.cut[[2]int64{min(a, b), max(a, b)}] = true
	// The election's connections break; quorum connections hold what
	// they carry until the link heals or a side gives up.
	delete(s.elq, [2]int64{a, b})
	delete(s.elq, [2]int64{b, a})
}

// --- the run ---

// deliverable lists what could happen on the network now.
func (s *sim) deliver() bool {
	type option struct {
		el   [2]int64
		c    *simConn
		toLd bool
	}
	var opts []option
	for _, a := range s.ids {
		for _, b := range s.ids {
			if len(s.elq[[2]int64{a, b}]) > 0 {
				opts = append(opts, option{el: [2]int64{a, b}})
			}
		}
	}
	live := s.conns[:0]
	for _, c := range s.conns {
		if !c.learnerOpen && !c.leadOpen {
			continue
		}
		live = append(live, c)
		if s.isCut(c.learner, c.leader) {
			continue
		}
		if c.learnerOpen && (len(c.toLearner) > 0 || !c.leadOpen) {
			opts = append(opts, option{c: c})
		}
		if c.leadOpen && (len(c.toLeader) > 0 || !c.learnerOpen) {
			opts = append(opts, option{c: c, toLd: true})
		}
	}
	s.conns = live
	if len(opts) == 0 {
		return false
	}
	o := opts[s.rng.Intn(len(opts))]
	switch {
	case o.c == nil:
		q := s.elq[o.el]
		m := q[0]
		if len(q) == 1 {
			delete(s.elq, o.el)
		} else {
			s.elq[o.el] = q[1:]
		}
		to := s.nodes[o.el[1]]
		to.el.Step(s.now, o.el[0], m)
		s.collect(to)
	case o.toLd:
		c := o.c
		l := s.nodes[c.leader]
		lr := l.ld.learners[c.learner]
		if lr == nil || lr.conn != c {
			c.closeLeaderSide()
			return true
		}
		if len(c.toLeader) == 0 {
			s.dropLearner(l, lr) // the learner closed it
			return true
		}
		p := c.toLeader[0]
		c.toLeader = c.toLeader[1:]
		if s.verbose {
			s.logf("%d <- %d %s %#x", l.id, c.learner, wire.PacketName(p.Type), p.Zxid)
		}
		s.fromLearner(l, lr, p)
	default:
		c := o.c
		n := s.nodes[c.learner]
		if len(c.toLearner) == 0 {
			s.logf("%d: the leader closed the connection", n.id)
			s.lookAgain(n)
			return true
		}
		p := c.toLearner[0]
		c.toLearner = c.toLearner[1:]
		if s.verbose {
			s.logf("%d <- %d %s %#x", n.id, c.leader, wire.PacketName(p.Type), p.Zxid)
		}
		s.fromLeader(n, p)
	}
	return true
}

func (s *sim) tick() {
	s.now += simStep
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.role == roleDown {
			continue
		}
		n.el.Tick(s.now)
		s.collect(n)
		switch n.role {
		case roleConnecting:
			s.connect(n)
		case roleFollowing:
			limit := simInitLimit
			if n.fol != nil && n.fol.Serving() {
				limit = simSyncLimit
			}
			if s.now-n.lastHeard > limit {
				s.logf("%d: the leader went quiet", n.id)
				s.lookAgain(n)
			}
		case roleLeading:
			s.tickLeader(n)
		}
	}
}

func (s *sim) fsync(n *simNode) {
	n.disk.synced = len(n.disk.log)
	switch n.role {
	case roleFollowing:
		s.release(n)
		s.applyCommitted(n)
	case roleLeading:
		s.localAck(n)
	}
}

func (s *sim) leader() *simNode {
	for _, id := range s.ids {
		if n := s.nodes[id]; n.role == roleLeading && n.ld.upToDate {
			return n
		}
	}
	return nil
}

func (s *sim) up() []*simNode {
	var ns []*simNode
	for _, id := range s.ids {
		if n := s.nodes[id]; n.role != roleDown {
			ns = append(ns, n)
		}
	}
	return ns
}

func (s *sim) down() []*simNode {
	var ns []*simNode
	for _, id := range s.ids {
		if n := s.nodes[id]; n.role == roleDown && !n.halted {
			ns = append(ns, n)
		}
	}
	return ns
}

// step takes one random event; faults only while s.faults.
func (s *sim) step() {
	r := s.rng.Intn(1000)
	switch {
	case r < 750:
		if !s.deliver() {
			s.tick()
		}
	case r < 830:
		s.tick()
	case r < 880:
		// Clients keep a bounded number of writes in flight.
		if l := s.leader(); l != nil && len(l.ld.outstanding) < 8 && s.faults {
			s.write(l)
		}
	case r < 960:
		if up := s.up(); len(up) > 0 {
			s.fsync(up[s.rng.Intn(len(up))])
		}
	case !s.faults:
	case r < 968:
		if up := s.up(); len(up) > 0 {
			s.crash(up[s.rng.Intn(len(up))])
		}
	case r < 978:
		if down := s.down(); len(down) > 0 {
			n := down[s.rng.Intn(len(down))]
			s.logf("%d restarts", n.id)
			s.start(n)
		}
	case r < 983:
		a, b := s.ids[s.rng.Intn(len(s.ids))], s.ids[s.rng.Intn(len(s.ids))]
		if a != b {
			s.logf("link %d-%d cut", a, b)
			s.partition(a, b)
		}
	case r < 986:
		a := s.ids[s.rng.Intn(len(s.ids))]
		s.logf("%d isolated", a)
		for _, b := range s.ids {
			if b != a {
				s.partition(a, b)
			}
		}
	case r < 994:
		if len(s.cut) > 0 {
			s.logf("network healed")
			clear(s.cut)
		}
	default:
		// A connection reset: one side drops it.
		if len(s.conns) > 0 {
			c := s.conns[s.rng.Intn(len(s.conns))]
			if n := s.nodes[c.learner]; c.learnerOpen && n.conn == c && s.rng.Intn(2) == 0 {
				s.logf("%d resets its connection to the leader", n.id)
				s.lookAgain(n)
			} else if l := s.nodes[c.leader]; c.leadOpen && l.ld != nil {
				if lr := l.ld.learners[c.learner]; lr != nil && lr.conn == c {
					s.logf("leader %d resets %d's connection", l.id, c.learner)
					s.dropLearner(l, lr)
				}
			}
		}
	}
}

// settled: one leader serving, every other server in broadcast with it,
// and every server's tree at the leader's last commit.
func (s *sim) settled() bool {
	l := s.leader()
	if l == nil || len(l.ld.outstanding) > 0 {
		return false
	}
	for _, id := range s.ids {
		n := s.nodes[id]
		if n == l || n.halted {
			continue
		}
		if n.role != roleFollowing || n.leaderID != l.id || n.fol == nil || !n.fol.Serving() {
			return false
		}
	}
	for _, id := range s.ids {
		if n := s.nodes[id]; !n.halted && len(n.tree) != len(s.history) {
			return false
		}
	}
	return true
}

func (s *sim) run() {
	for _, i := range s.rng.Perm(len(s.ids)) {
		s.start(s.nodes[s.ids[i]])
	}
	s.faults = true
	for i := 0; i < s.cfg.steps && !s.failed; i++ {
		s.step()
	}
	// Heal, restart everything, and let the ensemble settle with one
	// more write through it.
	s.faults = false
	clear(s.cut)
	s.logf("faults end; network healed")
	for _, n := range s.down() {
		s.start(n)
	}
	wrote := int64(-1)
	for i := 0; !s.failed; i++ {
		if i > 400_000 || s.now > 10*time.Minute {
			s.fatalf("not settled after the faults: leader %v, %d txns committed", s.leader() != nil, len(s.history))
			return
		}
		if s.settled() {
			if wrote >= 0 && s.acked[wrote] {
				break
			}
			// Settled with nothing outstanding: the write is yet to
			// make, or was lost with its leader.
			s.write(s.leader())
			wrote = s.nextVal
		}
		s.step()
	}
	if s.failed {
		return
	}
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.halted && !slices.Equal(n.tree, s.history) {
			s.fatalf("%d ends with %d txns, the history has %d", id, len(n.tree), len(s.history))
		}
	}
	// Every acknowledged write is in the history.
	have := map[int64]bool{}
	for _, t := range s.history {
		have[t.val] = true
	}
	for v := range s.acked {
		if !have[v] {
			s.fatalf("write %d was acknowledged and is lost", v)
		}
	}
}

func simSeeds(t *testing.T, def int) int {
	if v := os.Getenv("ZKD_SIM_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("ZKD_SIM_SEEDS=%q: %v", v, err)
		}
		return n
	}
	if testing.Short() {
		return def / 10
	}
	return def
}

// TestSimulatedEnsembles runs the simulation over many seeds; ZKD_SIM_SEEDS
// sets how many, ZKD_SIM_FIRST the first of them (1 unless set), so that a
// long sweep can try seeds no earlier sweep tried; ZKD_SIM_SEED runs one.
func TestSimulatedEnsembles(t *testing.T) {
	first, seeds := int64(1), int64(simSeeds(t, 1000))
	if v := os.Getenv("ZKD_SIM_FIRST"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			t.Fatalf("ZKD_SIM_FIRST=%q: want a seed of 1 or more", v)
		}
		first = n
	}
	if v := os.Getenv("ZKD_SIM_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("ZKD_SIM_SEED=%q: %v", v, err)
		}
		first, seeds = n, 1
	}
	stats := map[string]int{}
	for seed := first; seed < first+seeds; seed++ {
		rng := rand.New(rand.NewSource(seed))
		cfg := simConfig{voters: 3 + 2*rng.Intn(2), observer: rng.Intn(3) == 0, steps: 3000 + rng.Intn(3000), commitLog: 2 + rng.Intn(8)}
		s := newSim(t, seed, cfg)
		s.verbose = os.Getenv("ZKD_SIM_SEED") != ""
		s.run()
		if s.failed {
			if !testing.Verbose() {
				return
			}
			continue
		}
		stats["epochs"] += len(s.epochOf)
		stats["txns"] += len(s.history)
		stats["halts"] += s.halts
	}
	t.Logf("seeds %d to %d: %d epochs established, %d txns committed; %d servers stopped at a TRUNC below an installed snapshot",
		first, first+seeds-1, stats["epochs"], stats["txns"], stats["halts"])
}
