package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"zkd/internal/queue"
	"zkd/wal"
	"zkd/wire"
	"zkd/zab"
)

// The leader's side of the quorum port: discovery with each learner,
// syncing it (DIFF, TRUNC or SNAP, as zab.PlanSync decides), then
// broadcast. The applier proposes every txn it preps (propose); acks come
// from the log (localAck) and from the learners (ack); zab.Proposals says
// what is committed, in zxid order, and the applier applies up to there.

type leader struct {
	p     *peer
	s     *Server
	epoch int64
	ln    net.Listener

	failed   chan struct{}
	failOnce sync.Once
	failErr  error

	mu              sync.Mutex
	cond            *sync.Cond // discovery and NEWLEADER progress
	disc            *zab.LeaderDiscovery
	acceptedWritten bool
	established     bool // a quorum acked the epoch: learners may sync
	upToDate        bool // a quorum acked NEWLEADER: serving
	newLeaderAcks   []int64
	props           *zab.Proposals
	outstanding     queue.Queue[outProp] // proposed, not committed, by zxid
	commitBuf       []zab.Commit         // localAck's, reused
	selfAcked       int64
	// undurable are the txns committed (a quorum of learners has them)
	// and not yet on this server's disk, by zxid: a learner synced
	// meanwhile is sent them from here, as the log cannot give them yet.
	undurable     []outProp
	learners      map[int64]*learner
	lastCommitted int64
	// committedLog are the zxids of the newest committed txns, at most
	// commitLogCount of them, oldest first: ZooKeeper's in-memory
	// committed log, which lets a follower a little behind be sent the
	// txns it lacks (DIFF) whatever the snapshot's size.
	committedLog     []int64
	discoveryTimeout time.Duration
	// syncing counts the learners being synced, from the choice of their
	// sync to their ACK of NEWLEADER, by SNAP ([syncSnap]) and by DIFF or
	// TRUNC ([syncDiff]).
	syncing [2]int
	started time.Time // for mntr's leader_uptime
	// The sizes of the txns this leader proposed, for mntr's
	// last_proposal_size, min_ and max_; -1 before the first.
	propLast, propMin, propMax int
}

type outProp struct {
	zxid  int64
	entry []byte
	start time.Time // when its request reached the applier (quorum_ack_latency)
}

// learner is one follower's connection to this leader.
type learner struct {
	learnerOutbox // its mu also guards broadcast
	l             *leader
	sid           int64
	pc            *packetConn
	broadcast     bool // receives proposals and commits
	heard         atomic.Int64
	// established is when it connected, for the observers command.
	established time.Time
	synced      atomic.Bool // acked NEWLEADER
	// syncKind is its sync while it counts in leader.syncing: syncSnap+1
	// or syncDiff+1; 0 before and after. l.mu guards it.
	syncKind int
	observer bool // takes INFORMs, has no vote
	// Packets taken from it once synced, and the REQUESTs among them
	// (the observers command).
	received, requests atomic.Int64
}

// learnerOutbox is the sending side of a connection to a learner, a
// leader's or a follower's observer's: its COMMITs, INFORMs and SYNCs
// wait until it is told it is up to date.
type learnerOutbox struct {
	*outbox // its mu also guards told and held
	// told is set once UPTODATE is queued; until then the COMMITs,
	// INFORMs and SYNCs for the learner wait in held (see sendCommit).
	told bool
	held []wire.QuorumPacket
}

// sendCommit queues a COMMIT, an INFORM or a SYNC, or holds it until the
// learner is told it is up to date. Apache ZooKeeper 3.8.0's learners
// fail on a COMMIT that arrives between NEWLEADER and UPTODATE (a
// NullPointerException in Learner.syncWithLeader), go back to election
// and take the same txns again, logging them twice; a leader that syncs a
// learner while it commits writes would otherwise send exactly that.
// zkd's learners take the COMMITs either way. PROPOSALs are not held: the
// learner logs and acks them meanwhile.
func (lo *learnerOutbox) sendCommit(p wire.QuorumPacket) {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	if !lo.told {
		lo.held = append(lo.held, p)
		return
	}
	lo.queueLocked(p)
}

// sendUpToDate queues UPTODATE (with zxid -1, as ZooKeeper's), then what
// was held.
func (lo *learnerOutbox) sendUpToDate() {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	if lo.told {
		return
	}
	lo.told = true
	lo.queueLocked(wire.QuorumPacket{Type: wire.PacketUpToDate, Zxid: -1})
	for _, p := range lo.held {
		lo.queueLocked(p)
	}
	lo.held = nil
}

func (p *peer) runLeader(ctx context.Context, ep wal.Epochs, last int64) error {
	s := p.s
	addr := p.me.QuorumAddr
	if p.ens.ListenOnAllIPs {
		addr = ":" + portOf(addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.lookNow()
		return fmt.Errorf("quorum port %s: %w", addr, err)
	}
	l := &leader{p: p, s: s, ln: ln, failed: make(chan struct{}), learners: map[int64]*learner{},
		discoveryTimeout: p.tick * time.Duration(p.ens.InitLimit), started: time.Now(),
		propLast: -1, propMin: -1, propMax: -1}
	l.cond = sync.NewCond(&l.mu)
	l.disc = zab.NewLeaderDiscoveryQuorum(p.me.ID, p.quorum, ep.Accepted, ep.Current, last)
	p.role.Store(int32(roleLeading))
	p.mu.Lock()
	p.lead = l
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.lead = nil
		p.mu.Unlock()
		l.close()
	}()
	go l.acceptLoop()
	go func() {
		select {
		case <-ctx.Done():
			l.stepDown(ctx.Err())
		case <-l.failed:
		}
	}()

	// Discovery: the leader counts as heard; a quorum freezes the epoch.
	l.mu.Lock()
	if epoch, frozen, _ := l.disc.FollowerInfo(p.me.ID, ep.Accepted); frozen {
		if err := l.writeAccepted(epoch); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	// A quorum of one (standaloneEnabled=false with one server line) is
	// established by the leader alone.
	if ok, _ := l.disc.AckEpoch(p.me.ID, ep.Current, last); ok {
		l.established = true
	}
	deadline := time.Now().Add(l.discoveryTimeout)
	timer := time.AfterFunc(l.discoveryTimeout, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer timer.Stop()
	for !l.established && time.Now().Before(deadline) && l.failErr == nil {
		l.cond.Wait()
	}
	if !l.established {
		l.mu.Unlock()
		return fmt.Errorf("no quorum of followers agreed on an epoch within initLimit (%v)", l.discoveryTimeout)
	}
	l.epoch = l.disc.Epoch()
	l.lastCommitted = s.tree.Load().Zxid()
	l.committedLog = l.loadCommittedLog(l.lastCommitted)
	l.props = zab.NewProposalsQuorum(p.quorum, l.lastCommitted)
	l.selfAcked = l.lastCommitted
	l.mu.Unlock()
	s.log.Info("leading", "epoch", l.epoch, "zxid", fmt.Sprintf("%#x", l.lastCommitted))

	// The applier proposes from the first zxid of the epoch on.
	if !s.writes.do(func() {
		s.writes.lead = l
		s.writes.nextZxid = l.epoch<<32 | 1
		s.writes.durable.Store(l.lastCommitted)
	}) {
		return ctx.Err()
	}
	l.mu.Lock()
	l.cond.Broadcast() // learners may sync now (established is set)
	// NEWLEADER: a quorum, this server among them, holds the history.
	l.newLeaderAcks = append(l.newLeaderAcks, p.me.ID)
	timer.Reset(time.Until(deadline.Add(l.discoveryTimeout)))
	for !p.quorumOf(l.newLeaderAcks) && time.Now().Before(deadline.Add(l.discoveryTimeout)) && l.failErr == nil {
		l.cond.Wait()
	}
	if !p.quorumOf(l.newLeaderAcks) {
		l.mu.Unlock()
		return fmt.Errorf("no quorum of followers synced within initLimit")
	}
	l.mu.Unlock()
	if err := wal.WriteEpoch(p.fs(), s.cfg.DataDir, wal.CurrentEpochFile, l.epoch); err != nil {
		return &fatalError{err}
	}
	p.port.SetPeerEpoch(l.epoch)
	l.mu.Lock()
	l.upToDate = true
	for _, sid := range l.newLeaderAcks {
		// Only to the connection that acked NEWLEADER: a learner that
		// reconnected since is told once it acks on its new one.
		if lr := l.learners[sid]; lr != nil && lr.synced.Load() {
			lr.sendUpToDate()
		}
	}
	l.mu.Unlock()
	// The sessions get a full timeout from the new leader.
	s.writes.do(func() { s.resetSessions() })
	p.serve(roleLeading)

	// Broadcast: ping the learners every half tick, and give up the lead
	// when fewer than a quorum have been heard from within syncLimit, or
	// when this server's own disk has held a txn that long without making
	// it durable while the others make a quorum without it. The followers'
	// ACKs commit the writes meanwhile, but the log takes only so much
	// (64 MB) behind a stalled disk before the applier waits: past that,
	// the whole ensemble's writes wait for one disk while the followers'
	// disks, a quorum, keep up. So it gives up the lead sooner, once its
	// log has been full for fullLimit, when the writes come fast enough
	// to fill it before syncLimit. The followers then elect one of them;
	// this server's vote, its last durable zxid, is behind theirs. It
	// follows once its disk goes on.
	limit := p.tick * time.Duration(p.ens.SyncLimit)
	t := time.NewTicker(max(p.tick/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.failed:
			return l.failErr
		case <-t.C:
		}
		now := time.Now().UnixNano()
		var quiet []*learner
		l.mu.Lock()
		// Alive first: a learner heard since is not then also quiet.
		alive := l.aliveLocked(now)
		for _, lr := range l.learners {
			lr.send(wire.QuorumPacket{Type: wire.PacketPing, Zxid: l.lastCommitted})
			if synced := lr.synced.Load(); (synced && !l.heardWithin(lr, now)) ||
				(!synced && now-lr.heard.Load() >= int64(l.discoveryTimeout)) {
				// Silent past syncLimit (initLimit while it syncs).
				quiet = append(quiet, lr)
			}
		}
		l.mu.Unlock()
		if !p.quorumOf(alive) {
			// The deferred close ends the lead, and the election port
			// is LOOKING before any learner sees its connection go.
			return fmt.Errorf("lost the quorum: only %v heard from within syncLimit (%v)", alive, limit)
		}
		for _, lr := range quiet {
			s.log.Warn("closing a follower that went quiet", "sid", lr.sid,
				"quiet", time.Duration(now-lr.heard.Load()).Round(time.Millisecond))
			l.forget(lr)
		}
		// Only when the others heard from make a quorum without this
		// server: otherwise no one else could lead either.
		if !p.quorumOf(alive[1:]) {
			continue
		}
		st, at := s.store.Load(), time.Now()
		if lag := st.Lag(at); lag >= limit {
			return fmt.Errorf("this server's txn log has waited %v for the disk, past syncLimit (%v): giving up the lead to a server whose disk keeps up", lag.Round(time.Millisecond), limit)
		}
		if full := st.Full(at); full >= min(p.fullLimit(), limit) {
			return fmt.Errorf("this server's txn log has been full for %v, holding every write, its oldest txn waiting %v for the disk: giving up the lead to a server whose disk keeps up", full.Round(time.Millisecond), st.Lag(at).Round(time.Millisecond))
		}
	}
}

// writeAccepted makes the frozen epoch this server's acceptedEpoch, once,
// before any LEADERINFO goes out. l.mu held.
func (l *leader) writeAccepted(epoch int64) error {
	if l.acceptedWritten {
		return nil
	}
	if err := wal.WriteEpoch(l.p.fs(), l.s.cfg.DataDir, wal.AcceptedEpochFile, epoch); err != nil {
		return &fatalError{err}
	}
	l.acceptedWritten = true
	l.cond.Broadcast()
	return nil
}

// stepDown ends the lead, once, for err.
//
// The server's election port goes LOOKING first, before anything that
// reacts to the end of the lead closes a learner's connection: a follower
// that sees its connection go and asks who leads must not hear "this
// server leads" from it, or it may decide for a leader that is gone and
// wait initLimit to find out, while the others elect without it.
func (l *leader) stepDown(err error) {
	l.failOnce.Do(func() {
		l.p.lookNow()
		l.mu.Lock()
		l.failErr = err
		l.cond.Broadcast()
		l.mu.Unlock()
		close(l.failed)
	})
}

// steppedDown reports whether the lead has ended (stepDown).
func (l *leader) steppedDown() bool {
	select {
	case <-l.failed:
		return true
	default:
		return false
	}
}

func (l *leader) close() {
	l.stepDown(errors.New("stopped leading"))
	l.ln.Close()
	l.mu.Lock()
	for _, lr := range l.learners {
		lr.close()
	}
	l.mu.Unlock()
}

func (l *leader) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.serveLearner(c)
	}
}

// serveLearner runs one learner's connection: discovery, sync, then its
// acks, pings and forwarded requests.
func (l *leader) serveLearner(raw net.Conn) {
	s := l.s
	initLimit := l.discoveryTimeout
	from := raw.RemoteAddr().String()
	c, err := l.p.sec.Accept(raw, initLimit)
	if err != nil {
		s.log.Warn("quorum port: refusing a connection", "from", from, "err", err)
		return
	}
	lr := &learner{learnerOutbox: learnerOutbox{outbox: newOutbox(c)}, l: l, pc: newPacketConn(c), established: time.Now()}
	lr.heard.Store(time.Now().UnixNano())
	defer l.forget(lr)
	// The quorum SASL exchange, when the ensemble has one, comes before
	// the learner's first packet.
	c.SetDeadline(time.Now().Add(initLimit))
	if err := l.p.sec.Admit(lr.pc.br, c, from); err != nil {
		s.log.Warn("quorum port: refusing a server", "from", from, "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	fi, err := lr.pc.read(initLimit)
	if err != nil {
		s.log.Warn("closing a quorum-port connection whose first packet could not be read", "from", c.RemoteAddr().String(), "err", err)
		return
	}
	if fi.Type != wire.PacketFollowerInfo && fi.Type != wire.PacketObserverInfo {
		s.log.Warn("a learner opened with something other than FOLLOWERINFO or OBSERVERINFO; closing it", "packet", wire.PacketName(fi.Type), "from", c.RemoteAddr().String())
		return
	}
	info, err := wire.LearnerInfoFrom(fi.Data)
	if err != nil {
		s.log.Warn("unreadable "+wire.PacketName(fi.Type)+"; closing", "from", c.RemoteAddr().String(), "err", err)
		return
	}
	lr.sid = info.ServerID
	lr.observer = fi.Type == wire.PacketObserverInfo
	lr.qp = s.learnerQueue(lr.sid)
	if m, ok := l.p.member(lr.sid); !ok || m.Observer != lr.observer {
		s.log.Warn("a server this ensemble's config does not have in that role tried to join; closing",
			"sid", lr.sid, "as", wire.PacketName(fi.Type))
		return
	}

	// Discovery.
	l.mu.Lock()
	if old := l.learners[lr.sid]; old != nil {
		old.close()
	}
	l.learners[lr.sid] = lr
	if l.props != nil {
		l.props.Forget(lr.sid)
	}
	epoch, frozen, _ := l.disc.FollowerInfo(lr.sid, fi.Zxid>>32)
	if frozen {
		if err := l.writeAccepted(epoch); err != nil {
			l.mu.Unlock()
			l.stepDown(err)
			return
		}
	}
	for !l.acceptedWritten && l.failErr == nil && !lr.isClosed() {
		l.cond.Wait()
	}
	epoch = l.disc.Epoch()
	failed := l.failErr != nil
	l.mu.Unlock()
	if failed {
		return
	}
	if accepted := fi.Zxid >> 32; accepted > epoch {
		// It promised a leader that never established its epoch not to
		// follow an older one: it can never follow this leader, and
		// would stay out until the next election. Hold that election
		// now; this server proposes an epoch past its promise then.
		l.stepDown(fmt.Errorf("server %d accepted epoch %d, past this leader's %d, and cannot follow it; electing again so that it can",
			lr.sid, accepted, epoch))
		return
	}
	li := wire.QuorumPacket{Type: wire.PacketLeaderInfo, Zxid: epoch << 32, Data: binary.BigEndian.AppendUint32(nil, wire.ZabProtocolVersion)}
	if err := lr.write(li, initLimit); err != nil {
		return
	}
	ack, err := lr.pc.read(initLimit)
	if err != nil || ack.Type != wire.PacketAckEpoch || len(ack.Data) < 4 {
		return
	}
	peerLast := ack.Zxid
	l.mu.Lock()
	ok, err := l.disc.AckEpoch(lr.sid, int64(int32(binary.BigEndian.Uint32(ack.Data))), peerLast)
	if err != nil {
		l.mu.Unlock()
		s.log.Warn("refusing a follower", "sid", lr.sid, "err", err)
		return
	}
	if ok && !l.established {
		l.established = true
		l.cond.Broadcast()
	}
	for (!l.established || l.props == nil) && l.failErr == nil && !lr.isClosed() {
		l.cond.Wait()
	}
	failed = l.failErr != nil
	l.mu.Unlock()
	if failed || lr.isClosed() {
		return
	}
	if err := l.syncLearner(lr, peerLast); err != nil {
		s.log.Warn("syncing a follower failed", "sid", lr.sid, "err", err)
		return
	}
	go lr.run(l.p.tick * time.Duration(l.p.ens.SyncLimit))
	l.readLearner(lr)
}

// syncLearner registers lr for broadcast and writes its sync: the packet
// that opens it, the txns it lacks up to the last commit, the proposals
// outstanding, NEWLEADER. What is proposed meanwhile waits in its queue.
func (l *leader) syncLearner(lr *learner, peerLast int64) error {
	s := l.s
	// The view a SNAP streams is loaded with the rest, under l.mu: it is
	// then at or before the last commit, and everything after it reaches
	// the learner once, from the log or from its queue. The slot keeps
	// its records while they are written out.
	slot := s.readers.NewSlot()
	defer slot.Close()
	slot.Enter()
	defer slot.Leave()
	l.mu.Lock()
	committed := l.lastCommitted
	// The log holds the history up to onDisk; the rest of what is
	// committed is sent from memory.
	onDisk := min(committed, l.selfAcked)
	undurable := slices.Clone(l.undurable)
	outs := slices.Clone(l.outstanding.Items())
	lr.mu.Lock()
	lr.broadcast = true
	lr.mu.Unlock()
	recent := l.committedLog
	if n := len(recent); n > l.p.ens.CommitLogCount {
		recent = recent[n-l.p.ens.CommitLogCount:]
	}
	hist := zab.History{LastProcessed: committed, Committed: slices.Clone(recent), SnapshotSizeFactor: l.p.ens.SnapshotSizeFactor,
		TxnLog: func(from, limit int64) []int64 {
			var zs []int64
			var size int64
			err := wal.ReadTxns(l.p.fs(), s.cfg.LogDir(), from-1, onDisk, func(t *wal.Txn, e []byte) error {
				if len(zs) == 0 && t.Header.Zxid != from {
					return errTooMuch // the log does not reach back to from
				}
				zs = append(zs, t.Header.Zxid)
				size += int64(len(e))
				if limit >= 0 && size > limit {
					return errTooMuch
				}
				return nil
			})
			if err != nil {
				return nil
			}
			return zs
		}}
	hist.SnapshotBytes = snapshotBytes(s.cfg.DataDir)
	v := s.view.Load()
	l.mu.Unlock()
	plan := zab.PlanSync(peerLast, hist)
	if err := l.beginSync(lr, plan.Mode); err != nil {
		return err
	}
	w := bufio.NewWriterSize(lr.c, 64<<10)
	lr.c.SetWriteDeadline(time.Now().Add(l.discoveryTimeout))
	put := func(p wire.QuorumPacket) error {
		_, err := w.Write(p.Append(nil))
		return err
	}
	sendTxns := func(after int64) error {
		err := wal.ReadTxns(l.p.fs(), s.cfg.LogDir(), after, onDisk, func(t *wal.Txn, e []byte) error {
			if err := put(wire.QuorumPacket{Type: wire.PacketProposal, Zxid: t.Header.Zxid, Data: e}); err != nil {
				return err
			}
			return put(wire.QuorumPacket{Type: wire.PacketCommit, Zxid: t.Header.Zxid})
		})
		for _, o := range undurable {
			if err != nil {
				break
			}
			if o.zxid > after {
				if err = put(wire.QuorumPacket{Type: wire.PacketProposal, Zxid: o.zxid, Data: o.entry}); err == nil {
					err = put(wire.QuorumPacket{Type: wire.PacketCommit, Zxid: o.zxid})
				}
			}
		}
		return err
	}
	s.log.Info("syncing a follower", "sid", lr.sid, "mode", plan.Mode.String(), "peerZxid", fmt.Sprintf("%#x", peerLast),
		"zxid", fmt.Sprintf("%#x", committed))
	if plan.Mode == zab.SyncSnap {
		s.stats.snapSyncs.Add(1)
	} else { // DIFF, TRUNC or TRUNC+DIFF, all of them ZooKeeper's diff_count
		s.stats.diffSyncs.Add(1)
	}
	switch plan.Mode {
	case zab.SyncSnap:
		// The view may trail the last commit; the txns between follow it.
		err := put(wire.QuorumPacket{Type: wire.PacketSnap, Zxid: v.Zxid()})
		if err == nil {
			err = wal.WriteSnapBody(w, v)
		}
		slot.Leave()
		if err == nil {
			err = sendTxns(v.Zxid())
		}
		if err != nil {
			return err
		}
	case zab.SyncTrunc:
		if err := put(wire.QuorumPacket{Type: wire.PacketTrunc, Zxid: plan.Zxid}); err != nil {
			return err
		}
		if err := sendTxns(plan.Zxid); err != nil {
			return err
		}
	default:
		if err := put(wire.QuorumPacket{Type: wire.PacketDiff, Zxid: plan.Zxid}); err != nil {
			return err
		}
		if len(plan.Send) > 0 {
			if err := sendTxns(plan.Send[0] - 1); err != nil {
				return err
			}
		}
	}
	for _, o := range outs {
		if lr.observer {
			break // an observer hears of them as they commit (INFORM)
		}
		if err := put(wire.QuorumPacket{Type: wire.PacketProposal, Zxid: o.zxid, Data: o.entry}); err != nil {
			return err
		}
	}
	if err := put(wire.QuorumPacket{Type: wire.PacketNewLeader, Zxid: l.epoch << 32, Data: []byte(l.p.qcfg)}); err != nil {
		return err
	}
	return w.Flush()
}

var errTooMuch = errors.New("more than the limit")

// The kinds of sync leader.syncing counts.
const (
	syncSnap = iota
	syncDiff // DIFF, TRUNC or TRUNC+DIFF
)

// beginSync counts lr's sync among those in progress, or refuses it, as
// ZooKeeper's leader does: an observer is turned away when as many syncs
// of its kind are in progress as leader.maxConcurrentSnapSyncs (or
// leader.maxConcurrentDiffSyncs) allow, and tries again; a follower never
// is, since the quorum may need it, but counts. Each change of the count
// goes to mntr's inflight_snap_count or inflight_diff_count.
func (l *leader) beginSync(lr *learner, mode zab.SyncMode) error {
	kind, limit := syncDiff, l.p.ens.MaxDiffSyncs
	if mode == zab.SyncSnap {
		kind, limit = syncSnap, l.p.ens.MaxSnapSyncs
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lr.observer && l.syncing[kind] >= limit {
		key := "leader.maxConcurrentDiffSyncs"
		if kind == syncSnap {
			key = "leader.maxConcurrentSnapSyncs"
		}
		return fmt.Errorf("%d syncs by %s are in progress, as many as %s allows; turning the observer away until one ends",
			l.syncing[kind], mode, key)
	}
	l.syncing[kind]++
	lr.syncKind = kind + 1
	l.s.stats.inflightSyncs[kind].add(int64(l.syncing[kind]))
	return nil
}

// endSyncLocked takes lr's sync, if it counts, off those in progress.
// l.mu held.
func (l *leader) endSyncLocked(lr *learner) {
	if lr.syncKind == 0 {
		return
	}
	kind := lr.syncKind - 1
	lr.syncKind = 0
	l.syncing[kind]--
	l.s.stats.inflightSyncs[kind].add(int64(l.syncing[kind]))
}

// loadCommittedLog reads the zxids of the newest commitLogCount txns the
// log holds after the newest snapshot, as ZooKeeper fills its committed
// log from the txns it replays at start. Up to upTo, which is durable.
func (l *leader) loadCommittedLog(upTo int64) []int64 {
	s := l.s
	var zs []int64
	max := l.p.ens.CommitLogCount
	err := wal.ReadTxns(l.p.fs(), s.cfg.LogDir(), newestSnapshotZxid(s.cfg.DataDir), upTo, func(t *wal.Txn, _ []byte) error {
		zs = append(zs, t.Header.Zxid)
		if len(zs) > 2*max {
			zs = append(zs[:0], zs[len(zs)-max:]...)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("cannot read the recent txns for the committed log; followers behind will be synced from the log on disk or a snapshot", "err", err)
		return nil
	}
	if len(zs) > max {
		zs = zs[len(zs)-max:]
	}
	return zs
}

// newestSnapshotZxid is the zxid of the newest snapshot in dataDir, 0
// when there is none.
func newestSnapshotZxid(dataDir string) int64 {
	matches, _ := filepath.Glob(filepath.Join(dataDir, "version-2", "snapshot.*"))
	var newest int64
	for _, m := range matches {
		var z int64
		if _, err := fmt.Sscanf(filepath.Base(m), "snapshot.%x", &z); err == nil && z > newest {
			newest = z
		}
	}
	return newest
}

// snapshotBytes is the size of the newest snapshot in dataDir.
func snapshotBytes(dataDir string) int64 {
	matches, _ := filepath.Glob(filepath.Join(dataDir, "version-2", "snapshot.*"))
	var newest int64 = -1
	var size int64
	for _, m := range matches {
		var z int64
		if _, err := fmt.Sscanf(filepath.Base(m), "snapshot.%x", &z); err != nil || z < newest {
			continue
		}
		if st, err := os.Stat(m); err == nil {
			newest, size = z, st.Size()
		}
	}
	return size
}

// readLearner takes a synced learner's packets until it goes.
func (l *leader) readLearner(lr *learner) {
	s := l.s
	limit := l.p.tick * time.Duration(l.p.ens.SyncLimit)
	for {
		// Until it acks NEWLEADER the learner may still be taking in a
		// large snapshot, and answers nothing: it has initLimit for
		// that, as ZooKeeper's leader allows.
		d := limit
		if !lr.synced.Load() {
			d = l.discoveryTimeout
		}
		p, err := lr.pc.read(d)
		if err != nil {
			if !lr.isClosed() {
				s.log.Info("a follower went", "sid", lr.sid, "err", err)
			}
			return
		}
		lr.heard.Store(lr.pc.at.UnixNano())
		lr.received.Add(1)
		switch p.Type {
		case wire.PacketAck:
			if p.Zxid == l.epoch<<32 {
				l.newLeaderAck(lr)
				continue
			}
			l.ack(lr, p.Zxid)
		case wire.PacketPing:
			touches, err := wire.DecodeTouches(p.Data)
			if err != nil {
				s.log.Warn("unreadable PING from a follower; closing it", "sid", lr.sid, "err", err)
				return
			}
			now := s.mono()
			for _, t := range touches {
				if se := s.sessions.get(t.Session); se != nil {
					s.sessions.touchFor(se, t.Timeout, now)
				}
			}
		case wire.PacketRequest:
			lr.requests.Add(1)
			if err := l.request(lr, &p); err != nil {
				s.log.Warn("unreadable REQUEST from a follower; closing it", "sid", lr.sid, "err", err)
				return
			}
		case wire.PacketRevalidate:
			s.stats.revalidates.Add(1)
			l.revalidate(lr, &p)
		default:
			s.log.Warn("unexpected packet from a follower; closing it", "sid", lr.sid, "packet", wire.PacketName(p.Type))
			return
		}
	}
}

// newLeaderAck takes a learner's ACK of NEWLEADER: once the epoch serves,
// it is told it is up to date.
func (l *leader) newLeaderAck(lr *learner) {
	// The learner acks UPTODATE with the same zxid: that one is no news.
	if lr.synced.Swap(true) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endSyncLocked(lr)
	if !slices.Contains(l.newLeaderAcks, lr.sid) {
		l.newLeaderAcks = append(l.newLeaderAcks, lr.sid)
	}
	l.cond.Broadcast()
	if l.upToDate {
		lr.sendUpToDate()
	}
}

// request submits a learner's forwarded request to the applier.
func (l *leader) request(lr *learner, p *wire.QuorumPacket) error {
	fr, err := wire.DecodeForwardedRequest(p.Data)
	if err != nil {
		return err
	}
	r := newWriteReq()
	r.sess, r.xid, r.op, r.auth, r.from = fr.Session, fr.Cxid, fr.Op, p.AuthInfo, lr
	r.start = lr.pc.at // when the REQUEST came in
	if fr.Op == wire.OpSync {
		// Through the applier, behind the learner's earlier writes
		// (applier.prep), as ZooKeeper's leader takes a learner's sync in
		// its request pipeline.
		l.s.writes.submit(r)
		return nil
	}
	switch fr.Op {
	case wire.OpCreateSession:
		if len(fr.Body) < 4 {
			r.refuse = wire.ErrMarshallingError
			break
		}
		r.body = &wire.CreateSessionTxn{TimeOut: int32(binary.BigEndian.Uint32(fr.Body))}
	case wire.OpCloseSession:
	case wire.OpDeleteContainer:
		r.refuse = wire.ErrBadArguments
	case wire.OpReconfig:
		r.refuse = wire.ErrReconfigDisabled
	default:
		rec, ok := wire.RequestRecord(fr.Op)
		if !ok || !isWrite(fr.Op) {
			r.refuse = wire.ErrUnimplemented
			break
		}
		// p.Data is this packet's own and nothing changes it, so the
		// record may point into it, as a client's setData points into
		// its request's buffer: prep and the tree copy what they keep.
		if _, err := rec.Decode(fr.Body, wire.Alias); err != nil {
			r.refuse = wire.ErrMarshallingError
			break
		}
		r.body = rec
	}
	l.s.writes.submit(r)
	return nil
}

// answerSync answers a learner's sync once the newest txn proposed so
// far is committed, at once when none waits. Applier goroutine.
func (l *leader) answerSync(lr *learner) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.props == nil || l.learners[lr.sid] != lr {
		return // that connection is gone, and its follower with it
	}
	if l.props.Sync(lr.sid) {
		lr.sendCommit(wire.QuorumPacket{Type: wire.PacketSync})
	}
}

// revalidate answers a learner asking whether a session a client resumes
// on it is still open: the session id, then a boolean.
func (l *leader) revalidate(lr *learner, p *wire.QuorumPacket) {
	if len(p.Data) < 12 {
		return
	}
	id := int64(binary.BigEndian.Uint64(p.Data))
	timeout := int32(binary.BigEndian.Uint32(p.Data[8:]))
	se := l.s.sessions.get(id)
	valid := se != nil && !se.closing.Load()
	if valid {
		l.s.sessions.touchFor(se, timeout, l.s.mono())
		// The client is on lr now: what another server forwards for
		// it from here on fails with SESSIONMOVED.
		se.owner.Store(lr)
	}
	data := binary.BigEndian.AppendUint64(nil, uint64(id))
	if valid {
		data = append(data, 1)
	} else {
		data = append(data, 0)
	}
	l.mu.Lock()
	lr.send(wire.QuorumPacket{Type: wire.PacketRevalidate, Data: data})
	l.mu.Unlock()
}

// propose records the applier's new txn, whose request came at start,
// and sends it to every learner in broadcast, and returns it encoded, for
// the log too. Applier goroutine, before the txn goes to the log.
func (l *leader) propose(t *wal.Txn, start time.Time) (entry []byte, err error) {
	entry = wal.EncodeTxn(t)
	z := t.Header.Zxid
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.props.Propose(z); err != nil {
		return entry, err
	}
	l.s.stats.proposals.Add(1)
	l.propLast = len(entry)
	if l.propMin < 0 || len(entry) < l.propMin {
		l.propMin = len(entry)
	}
	l.propMax = max(l.propMax, len(entry))
	l.outstanding.Push(outProp{z, entry, start})
	for _, lr := range l.learners {
		if !lr.observer && lr.inBroadcast() {
			lr.send(wire.QuorumPacket{Type: wire.PacketProposal, Zxid: z, Data: entry})
		}
	}
	return entry, nil
}

// localAck is this server's own ACK: its log holds everything up to zxid.
func (l *leader) localAck(zxid int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.props == nil || zxid <= l.selfAcked {
		return
	}
	commits := l.commitBuf[:0]
	n := 0
	for n < len(l.undurable) && l.undurable[n].zxid <= zxid {
		// Committed by the learners' ACKs before this server's own.
		l.s.stats.proposalAckLat.addSince(l.undurable[n].start)
		n++
	}
	l.undurable = append(l.undurable[:0], l.undurable[n:]...)
	for _, o := range l.outstanding.Items() {
		if o.zxid > zxid {
			break
		}
		if o.zxid > l.selfAcked {
			l.s.stats.proposalAckLat.addSince(o.start)
			commits = append(commits, l.props.Ack(l.p.me.ID, o.zxid)...)
			if l.p.s.faults.ackBeforeQuorum {
				// The planted bug: every voter counted as having
				// acknowledged what only this server's disk holds.
				for _, v := range l.p.voters() {
					commits = append(commits, l.props.Ack(v, o.zxid)...)
				}
			}
		}
	}
	l.selfAcked = zxid
	l.committed(commits)
	clear(commits)
	l.commitBuf = commits[:0]
}

// ack is a learner's ACK of a proposal, counted only from its current
// connection (see zab.Proposals.Forget).
func (l *leader) ack(lr *learner, zxid int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.props == nil || l.learners[lr.sid] != lr {
		return
	}
	l.committed(l.props.Ack(lr.sid, zxid))
}

// committed sends COMMITs (and the SYNCs waiting on them) and lets the
// applier apply up to the newest commit. l.mu held.
func (l *leader) committed(commits []zab.Commit) {
	for _, c := range commits {
		var entry []byte
		if outs := l.outstanding.Items(); len(outs) > 0 && outs[0].zxid == c.Zxid {
			entry = outs[0].entry
		}
		for _, lr := range l.learners {
			switch {
			case !lr.inBroadcast():
			case lr.observer:
				lr.send(wire.QuorumPacket{Type: wire.PacketInform, Zxid: c.Zxid, Data: entry})
			default:
				lr.sendCommit(wire.QuorumPacket{Type: wire.PacketCommit, Zxid: c.Zxid})
			}
		}
		for _, sid := range c.Syncs {
			if lr := l.learners[sid]; lr != nil {
				lr.sendCommit(wire.QuorumPacket{Type: wire.PacketSync})
			}
		}
		l.lastCommitted = c.Zxid
		l.s.stats.commits.Add(1)
		l.committedLog = append(l.committedLog, c.Zxid)
		if n := len(l.committedLog); n > 2*l.p.ens.CommitLogCount {
			l.committedLog = append(l.committedLog[:0], l.committedLog[n-l.p.ens.CommitLogCount:]...)
		}
		if outs := l.outstanding.Items(); len(outs) > 0 && outs[0].zxid == c.Zxid {
			l.s.stats.quorumAckLat.addSince(outs[0].start)
			if c.Zxid > l.selfAcked {
				l.undurable = append(l.undurable, outs[0])
			}
			l.outstanding.Pop()
		}
	}
	// A quorum's disks hold what is committed: the applier applies it and
	// answers its clients whether or not this server's disk holds it yet,
	// as ZooKeeper's leader does. Its log has it queued; a snapshot or an
	// election waits for the log to make it durable.
	if a := l.s.writes; a.durable.Load() < l.lastCommitted {
		a.durable.Store(l.lastCommitted)
		a.signal()
	}
}

func (lr *learner) inBroadcast() bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.broadcast && !lr.closed
}

// forget takes lr off the leader and closes its connection. If the lead
// was established and the others left no longer make a quorum, the lead
// ends first (stepDown), so that the learner, seeing its connection
// close, is not told this server still leads: a learner's read times out
// on its own goroutine, as often before the broadcast loop's next look
// at the quorum as after it.
func (l *leader) forget(lr *learner) {
	l.mu.Lock()
	l.endSyncLocked(lr)
	gone := l.learners[lr.sid] == lr
	if gone {
		delete(l.learners, lr.sid)
	}
	lost := gone && l.upToDate && !l.p.quorumOf(l.aliveLocked(time.Now().UnixNano()))
	l.cond.Broadcast()
	l.mu.Unlock()
	if lost {
		l.stepDown(fmt.Errorf("lost the quorum: server %d went", lr.sid))
	}
	lr.close()
}

// aliveLocked lists this server, first, and the synced learners heard
// from within syncLimit at now (unix ns): the servers the lead counts on.
// l.mu held.
func (l *leader) aliveLocked(now int64) []int64 {
	alive := []int64{l.p.me.ID}
	for sid, lr := range l.learners {
		if lr.synced.Load() && l.heardWithin(lr, now) {
			alive = append(alive, sid)
		}
	}
	return alive
}

// heardWithin reports whether lr was heard from within syncLimit of now.
func (l *leader) heardWithin(lr *learner, now int64) bool {
	return now-lr.heard.Load() < int64(l.p.tick*time.Duration(l.p.ens.SyncLimit))
}

type leaderStats struct {
	learners, synced, observers, pendingSyncs int
	propLast, propMin, propMax                int // -1 before the first proposal
	uptime                                    time.Duration
}

// leaderStats are the leader's figures for mntr; ok false when this
// server does not lead.
func (p *peer) leaderStats() (st leaderStats, ok bool) {
	p.mu.Lock()
	l := p.lead
	p.mu.Unlock()
	if l == nil || role(p.role.Load()) != roleLeading {
		return st, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st.uptime = time.Since(l.started)
	st.propLast, st.propMin, st.propMax = l.propLast, l.propMin, l.propMax
	for _, lr := range l.learners {
		st.learners++
		switch {
		case !lr.synced.Load():
		case lr.observer:
			st.observers++
		default:
			st.synced++
		}
	}
	if l.props != nil {
		st.pendingSyncs = l.props.PendingSyncs()
	}
	return st, true
}
