package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"syscall"
	"time"

	"zkd/internal/quorumsec"
	"zkd/wal"
	"zkd/wire"
	"zkd/zab"
	"zkd/ztree"
)

// A follower: discovery and sync with the leader through zab.Follower,
// whose actions it carries out in order (durable before acknowledged),
// then broadcast. Client writes go to the leader as REQUESTs; each comes
// back as a committed txn and is answered when applied here. A client's
// sync goes to the leader too, and is answered once the leader's SYNC
// comes back, after every commit before it.

// follower is the connection to the leader.
type follower struct {
	*outbox // its mu also guards waiting and revals
	p       *peer
	pc      *packetConn
	waiting []deferred // to go once the log is durable up to need
	// serving is set once the sync is over (UPTODATE): PINGs and
	// REQUESTs no longer wait behind waiting.
	serving bool
	// revals are the connections whose resumed session the leader is
	// asked about (REVALIDATE), by session.
	revals map[int64][]*conn
	// syncFrom says, for each sync forwarded and not answered, in
	// order, whose it is: an observer's, or nil for this server's own
	// clients' (the leader answers each with a SYNC, in order).
	syncFrom []*omObserver
	// om is the port for observers, while it is open.
	om *observerMaster
}

type deferred struct {
	need int64
	p    wire.QuorumPacket
	came time.Time // an ACK's proposal's arrival (proposal_ack_creation_latency)
}

// followState is the applier's side of following.
type followState struct {
	fo *follower
	// fwd are the requests forwarded, by session, oldest first; syncs
	// the client syncs waiting for the leader's SYNC.
	fwd   map[int64][]*writeReq
	syncs []*writeReq
	// lastFwd is each connection's newest request forwarded and not
	// answered: its later reads wait behind it.
	lastFwd map[*conn]*writeReq
	// ready are reads that wait for nothing forwarded.
	ready []*writeReq
	// remote are the committed txns and SYNCs from the leader, in order,
	// not applied yet; the follower goroutine adds to it under a.mu.
	remote []remoteItem
	// spare is the array of the remote items gather took last, for the
	// follower goroutine to fill next (applier goroutine).
	spare []remoteItem
}

type remoteItem struct {
	txn  wal.Txn
	sync bool
	// exact is set for a txn committed once the sync is over: the tree
	// it applies to is the leader's, and its digest must match the one
	// the leader logged. A ZooKeeper leader writes the snapshot it sends
	// (SNAP) while it applies txns, so until the sync ends the tree may
	// hold changes of txns that come after the one applied; ZooKeeper's
	// learners do not compare digests before then either.
	exact bool
	// reval is the leader's answer to a REVALIDATE (sync unset).
	reval []byte
}

func (p *peer) runFollower(ctx context.Context, leaderID int64, ep wal.Epochs, last int64, observer bool) error {
	s := p.s
	m, ok := p.member(leaderID)
	if !ok {
		return fmt.Errorf("the election chose server %d, which is not in this configuration", leaderID)
	}
	// What this server syncs from: the leader, or for an observer with
	// observerMasterPort, the next voter's port for observers.
	what, masterID, addr := "the leader", leaderID, m.QuorumAddr
	if observer && p.ens.ObserverMasterPort > 0 {
		masterID = p.pickMaster()
		mm, _ := p.member(masterID)
		host, _, _ := net.SplitHostPort(mm.QuorumAddr)
		what, addr = "the observer master", net.JoinHostPort(host, fmt.Sprint(p.ens.ObserverMasterPort))
	}
	p.masterID.Store(masterID)
	initLimit := p.tick * time.Duration(p.ens.InitLimit)
	syncLimit := p.tick * time.Duration(p.ens.SyncLimit)
	connectLimit := initLimit
	if p.ens.ConnectLimit > 0 {
		connectLimit = p.tick * time.Duration(p.ens.ConnectLimit)
	}
	// The leader opens its quorum port as it learns it leads, perhaps
	// a moment after this server learns it (its finalize wait may end
	// later): retry soon, then less often. The pause stays short, as a
	// failover waits on it. Dials that time out may take connectLimit
	// in all (connectToLearnerMasterLimit, by default initLimit), as
	// ZooKeeper's do; but a port that refuses for refusedLimit means the
	// election's answer is already stale (the leader died, or stopped
	// leading as this server decided), and the election is the way to
	// the leader that is: ZooKeeper's learner tries 5 times, 100 ms apart.
	var c net.Conn
	var err error
	pause := 5 * time.Millisecond
	refusedLimit := min(connectLimit, max(p.tick, time.Second))
	for start := time.Now(); ; {
		c, err = p.sec.Dial(ctx, addr, max(connectLimit-time.Since(start), time.Millisecond))
		waited := time.Since(start)
		if err == nil || waited > connectLimit || errors.Is(err, quorumsec.ErrRefused) ||
			waited > refusedLimit && errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 40*time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("cannot reach %s, server %d at %s: %w", what, masterID, addr, err)
	}
	fo := &follower{outbox: newOutbox(c), p: p, pc: newPacketConn(c)}
	defer fo.close()
	left := make(chan struct{})
	defer close(left)
	go func() {
		select {
		case <-ctx.Done():
			fo.close()
		case <-left:
		}
	}()

	// The quorum SASL exchange, when this server must authenticate, comes
	// before FOLLOWERINFO.
	c.SetDeadline(time.Now().Add(initLimit))
	if err := p.sec.Learn(c, addr); err != nil {
		return fmt.Errorf("authenticating to %s, server %d at %s: %w", what, masterID, addr, err)
	}
	c.SetDeadline(time.Time{})

	// Discovery.
	info := (&wire.LearnerInfo{ServerID: p.me.ID, ProtocolVersion: wire.ZabProtocolVersion}).Append(nil)
	hello, as := wire.PacketFollowerInfo, roleFollowing
	if observer {
		hello, as = wire.PacketObserverInfo, roleObserving
	}
	if err := fo.write(wire.QuorumPacket{Type: hello, Zxid: ep.Accepted << 32, Data: info}, initLimit); err != nil {
		return err
	}
	li, err := fo.pc.read(initLimit)
	if err != nil {
		return fmt.Errorf("waiting for LEADERINFO: %w", err)
	}
	if li.Type != wire.PacketLeaderInfo {
		return fmt.Errorf("the leader answered FOLLOWERINFO with %s", wire.PacketName(li.Type))
	}
	epoch := li.Zxid >> 32
	ack, persist, err := zab.LearnerLeaderInfo(epoch, ep.Accepted, ep.Current)
	if err != nil {
		return err
	}
	if persist {
		if err := wal.WriteEpoch(p.fs(), s.cfg.DataDir, wal.AcceptedEpochFile, epoch); err != nil {
			return &fatalError{err}
		}
	}
	if err := fo.write(wire.QuorumPacket{Type: wire.PacketAckEpoch, Zxid: last,
		Data: binary.BigEndian.AppendUint32(nil, uint32(int32(ack)))}, initLimit); err != nil {
		return err
	}

	s.digestReported.Store(false)
	syncStart := time.Now()
	fs := &followState{fo: fo, fwd: map[int64][]*writeReq{}, lastFwd: map[*conn]*writeReq{}}
	if !s.writes.do(func() { s.writes.follow = fs }) {
		return ctx.Err()
	}
	p.role.Store(int32(as))
	p.mu.Lock()
	p.fol = fo
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.fol = nil
		p.mu.Unlock()
	}()
	go fo.run(syncLimit)

	f := zab.NewFollower(epoch, last)
	if observer {
		f = zab.NewObserver(epoch, last)
	}
	x := &executor{fo: fo, s: s, entries: map[int64]*proposed{}, appended: last, as: as, current: ep.Current, syncStart: syncStart,
		epoch: epoch, committed: last}
	defer func() {
		if x.om != nil {
			x.om.close()
		}
	}()
	for {
		limit := initLimit
		if f.Serving() {
			limit = syncLimit
		}
		pkt, err := fo.pc.read(limit)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s, server %d: %w", what, masterID, err)
		}
		if pkt.Type == wire.PacketProposal || (observer && pkt.Type == wire.PacketInform) {
			// pkt.Data is this packet's own, and goes unchanged to the
			// log: the txn may point into it (the tree copies what it
			// keeps).
			txn, err := wal.DecodeTxnInPlace(pkt.Data)
			if err != nil {
				return fmt.Errorf("an unreadable %s %#x from the leader: %w", wire.PacketName(pkt.Type), pkt.Zxid, err)
			}
			x.entries[pkt.Zxid] = &proposed{txn: txn, entry: pkt.Data, at: fo.pc.at}
		}
		if f.Serving() {
			x.count(&pkt)
		}
		if pkt.Type == wire.PacketRevalidate {
			if len(pkt.Data) < 9 {
				continue
			}
			// After the commits before it: a session the leader calls
			// open was created by one of them.
			if x.om != nil {
				x.om.revalidated(pkt.Data)
			}
			s.writes.remote(remoteItem{reval: pkt.Data})
			continue
		}
		if !f.Serving() && (pkt.Type == wire.PacketDiff || pkt.Type == wire.PacketTrunc || pkt.Type == wire.PacketSnap) {
			s.log.Info("syncing with the leader", "leader", leaderID, "mode", wire.PacketName(pkt.Type),
				"zxid", fmt.Sprintf("%#x", last), "leaderZxid", fmt.Sprintf("%#x", pkt.Zxid))
		}
		acts, err := f.Step(&pkt)
		if err != nil {
			return err
		}
		for _, a := range acts {
			if err := x.do(a); err != nil {
				return err
			}
		}
	}
}

// proposed is a txn from a PROPOSAL or INFORM: decoded to apply, and as
// the leader encoded it, for the log.
type proposed struct {
	txn   wal.Txn
	entry []byte
	at    time.Time // when it came
}

// count is mntr's figures of a packet from the leader once this server
// serves, as ZooKeeper's learners count them (its packets during the sync
// are not): PROPOSALs and how long after the leader made their txn they
// came (wall clocks, as ZooKeeper's: skewed clocks make it wrong, and a
// negative figure is left out), and COMMITs. An observer's INFORM is its
// commit, taken as it comes.
func (x *executor) count(pkt *wire.QuorumPacket) {
	st := &x.s.stats
	switch pkt.Type {
	case wire.PacketProposal:
		st.learnerProposals.Add(1)
		// Timed from when the packet's bytes came in (packetConn.at):
		// a clock read per packet costs as much as the packet.
		if p := x.entries[pkt.Zxid]; p != nil {
			if ms := p.at.UnixMilli() - p.txn.Header.Time; ms >= 0 {
				st.proposalLat.add(ms)
			}
		}
	case wire.PacketCommit:
		st.learnerCommits.Add(1)
		if p := x.entries[pkt.Zxid]; p != nil {
			if ms := x.fo.pc.at.Sub(p.at).Milliseconds(); ms >= 0 {
				st.commitPropagateLat.add(ms)
			}
		}
	case wire.PacketInform:
		st.learnerCommits.Add(1)
		st.commitPropagateLat.add(0)
	}
}

// executor carries out a zab.Follower's actions.
type executor struct {
	fo       *follower
	s        *Server
	entries  map[int64]*proposed // not applied yet
	appended int64               // the newest txn handed to the log
	barrier  int64               // sends wait for the log up to here
	as       role                // following or observing
	current  int64               // the currentEpoch on disk
	serving  bool                // synced: its ACKs are timed for mntr
	// syncStart is when discovery ended and the sync began.
	syncStart time.Time
	epoch     int64 // the leader's
	// committed is the newest txn known committed: the log's end at the
	// start, the sync's TRUNC or SNAP, each commit since.
	committed int64
	om        *observerMaster // the port for observers, once serving
}

func (x *executor) do(a zab.Action) error {
	s := x.s
	switch a.Kind {
	case zab.ActTruncate:
		var err error
		if !s.writes.do(func() {
			err = s.reopen(func() error { return wal.TruncateLog(x.fo.p.fs(), s.cfg.DataDir, s.cfg.LogDir(), a.Zxid) })
		}) {
			return errStopping
		}
		if err != nil {
			return err
		}
		if z := s.tree.Load().Zxid(); z != a.Zxid {
			// The data directory cannot give the tree at a.Zxid: a
			// snapshot installed from an earlier leader (SNAP) held
			// txns that never committed, and the log from before it
			// was set aside (ZOOKEEPER-1549's case). Guessing would
			// serve another history.
			return &fatalError{fmt.Errorf("the leader's history ends at %#x, but after cutting the log there this server's data "+
				"directory %s recovers to %#x: a snapshot taken from an earlier leader held txns that were never committed. "+
				"Stop this server, move %s and %s aside, and start it again: it will copy the leader's state",
				a.Zxid, s.cfg.DataDir, z, filepath.Join(s.cfg.DataDir, "version-2"), filepath.Join(s.cfg.LogDir(), "version-2"))}
		}
		s.log.Info("truncated the log to the leader's history", "zxid", fmt.Sprintf("%#x", a.Zxid))
		x.appended, x.committed = a.Zxid, a.Zxid
	case zab.ActLoadSnapshot:
		t, err := wal.ReadSnapBody(x.fo.pc.br, a.Zxid, s.cfg.TreeOptions())
		if err != nil {
			return fmt.Errorf("reading the leader's snapshot: %w", err)
		}
		if !s.writes.do(func() {
			err = s.reopenWith(func() error {
				// Nothing after the snapshot may stay: it is another
				// history's.
				if err := wal.TruncateLog(x.fo.p.fs(), s.cfg.DataDir, s.cfg.LogDir(), a.Zxid); err != nil {
					return err
				}
				// Streamed: a ZooKeeper leader writes it while it
				// applies txns, so its digest is not the leader's
				// at its zxid until the txns after it are applied.
				if _, err := wal.WriteStreamedSnapshotFile(x.fo.p.fs(), filepath.Join(s.cfg.DataDir, "version-2"), t.Published(), s.cfg.SnapshotCompression); err != nil {
					return err
				}
				// Nor what came before it, once the snapshot is durable:
				// as leader this server would send it to learners.
				return wal.SetAsideLogs(x.fo.p.fs(), s.cfg.LogDir(), a.Zxid)
			}, t)
		}) {
			return errStopping
		}
		if err != nil {
			return err
		}
		s.log.Info("loaded the leader's snapshot", "zxid", fmt.Sprintf("%#x", a.Zxid), "znodes", t.Published().NodeCount())
		x.appended, x.committed = a.Zxid, a.Zxid
		// The data directory now holds the leader's history up to
		// a.Zxid, perhaps of an epoch after currentEpoch.
		if err := x.raiseEpoch(a.Zxid >> 32); err != nil {
			return err
		}
	case zab.ActTakeSnapshot:
		// What was applied since the SNAP or TRUNC went through the log
		// (see ActApply): once that is durable, so is the tree.
		if err := s.store.Load().Flush(); err != nil {
			return &fatalError{err}
		}
	case zab.ActLog:
		if err := x.log(a.Zxid); err != nil {
			return err
		}
	case zab.ActSyncLog:
		x.barrier = x.appended
	case zab.ActPersistCurrentEpoch:
		if err := s.store.Load().Flush(); err != nil {
			return &fatalError{err}
		}
		if err := wal.WriteEpoch(x.fo.p.fs(), s.cfg.DataDir, wal.CurrentEpochFile, a.Zxid); err != nil {
			return &fatalError{err}
		}
		x.current = a.Zxid
		x.fo.p.port.SetPeerEpoch(a.Zxid)
	case zab.ActSend:
		var came time.Time
		if p := x.entries[a.Packet.Zxid]; p != nil && a.Packet.Type == wire.PacketAck && x.serving {
			came = p.at
		}
		x.fo.sendAfterFrom(a.Packet, x.barrier, came)
	case zab.ActApply:
		if a.Zxid > x.appended {
			// A commit during a SNAP or TRUNC sync: logged here, so
			// that the tree never holds what the disk does not.
			if err := x.log(a.Zxid); err != nil {
				return err
			}
		}
		p := x.entries[a.Zxid]
		delete(x.entries, a.Zxid)
		if p == nil {
			return fmt.Errorf("the leader committed %#x, which it never proposed", a.Zxid)
		}
		x.committed = a.Zxid
		if x.om != nil {
			// Relayed before it is applied (see observerMaster).
			x.om.committed(a.Zxid, p.entry, &p.txn.Header)
		}
		s.writes.remote(remoteItem{txn: p.txn, exact: x.serving})
	case zab.ActServe:
		x.serving = true
		x.fo.mu.Lock()
		x.fo.serving = true
		x.fo.mu.Unlock()
		if x.as == roleObserving {
			s.stats.observerSync.addSince(x.syncStart)
		} else {
			s.stats.followerSync.addSince(x.syncStart)
		}
		x.fo.p.serve(x.as)
		if x.as == roleFollowing && x.fo.p.ens.ObserverMasterPort > 0 {
			x.om = startObserverMaster(x.fo, x.epoch, x.committed)
		}
	case zab.ActAnswerSync:
		// An observer's sync is answered once every commit before it
		// is relayed, as those before it were; this server's own
		// clients' go through the applier.
		if o := x.fo.syncAnswered(); o != nil {
			o.sendCommit(wire.QuorumPacket{Type: wire.PacketSync})
			break
		}
		s.writes.remote(remoteItem{sync: true})
	case zab.ActPong:
		// The sessions whose clients are here and kept them alive
		// within their timeout: a client that hangs with its
		// connection open stops being reported, and expires.
		var touches []wire.SessionTouch
		now := s.mono()
		for _, se := range s.sessions.all() {
			if se.conn.Load() != nil && se.deadline.Load() > now {
				touches = append(touches, wire.SessionTouch{Session: se.id, Timeout: se.timeout.Load()})
			}
		}
		if x.om != nil {
			// And those the observers synced from here kept alive.
			touches = x.om.takeTouches(touches)
		}
		x.fo.sendAfter(wire.QuorumPacket{Type: wire.PacketPing, Zxid: a.Zxid, Data: wire.AppendTouches(nil, touches)}, 0)
	}
	return nil
}

var errStopping = fmt.Errorf("the server is stopping")

// log hands the proposal zxid to the log.
func (x *executor) log(zxid int64) error {
	p := x.entries[zxid]
	if p == nil {
		return fmt.Errorf("the leader asked to log %#x, which it never proposed", zxid)
	}
	if zxid <= x.appended {
		return nil // a fuzzy snapshot's overlap: in the log already
	}
	// A txn of an epoch after currentEpoch, during the sync: what comes
	// before it in the log is the leader's history up to it. That goes
	// to disk first, then currentEpoch follows, then the txn, so that
	// the data directory never holds a log of a later epoch than its
	// currentEpoch (a server refuses to start on that, as ZooKeeper
	// does), and never a currentEpoch with less than the history it
	// stands for (ZOOKEEPER-4643).
	if err := x.raiseEpoch(zxid >> 32); err != nil {
		return err
	}
	// Its log takes 64 MB behind a disk that stalls; then this waits for
	// room, and meanwhile nothing from the leader is read: no PING is
	// answered and no session of its clients touched, so the leader
	// would expire those sessions, and drop this server only after
	// syncLimit. Once it serves, it leaves the leader instead when the
	// log stays full (fullLimit), and stops serving: its clients move to
	// servers that keep up, with their sessions, and it syncs again once
	// its disk goes on. (During the sync, initLimit bounds the wait.)
	var wait time.Duration
	if x.serving {
		wait = x.fo.p.fullLimit()
	}
	err := x.s.store.Load().AppendEncodedWithin(zxid, p.entry, nil, wait)
	if errors.Is(err, wal.ErrFull) {
		return fmt.Errorf("this server's txn log has been full for %v, its oldest txn waiting %v for the disk: leaving the leader, so that its clients move to servers that keep up", wait, x.s.store.Load().Lag(time.Now()).Round(time.Millisecond))
	}
	if err != nil {
		return &fatalError{fmt.Errorf("cannot log txn %#x: %w", zxid, err)}
	}
	x.appended = zxid
	return nil
}

// raiseEpoch makes currentEpoch at least epoch, once everything logged
// is durable.
func (x *executor) raiseEpoch(epoch int64) error {
	if epoch <= x.current {
		return nil
	}
	if err := x.s.store.Load().Flush(); err != nil {
		return &fatalError{err}
	}
	if err := wal.WriteEpoch(x.fo.p.fs(), x.s.cfg.DataDir, wal.CurrentEpochFile, epoch); err != nil {
		return &fatalError{err}
	}
	x.current = epoch
	return nil
}

// remote hands the applier a committed txn or the leader's SYNC.
func (a *applier) remote(it remoteItem) {
	a.mu.Lock()
	if a.follow != nil {
		a.follow.remote = append(a.follow.remote, it)
	}
	a.mu.Unlock()
	a.signal()
}

// forward sends a client's write or sync to the leader, or puts a read
// behind what its connection has forwarded. Applier goroutine.
func (a *applier) forward(r *writeReq) {
	f := a.follow
	if r.read && !r.sync {
		if w := f.lastFwd[r.c]; w != nil {
			w.after = append(w.after, r)
		} else {
			f.ready = append(f.ready, r)
		}
		return
	}
	fr := wire.ForwardedRequest{Session: r.sess, Cxid: r.xid, Op: r.op}
	switch {
	case r.sync:
		var hdr wire.RequestHeader
		n, err := hdr.Decode(r.raw, wire.Alias)
		if err != nil {
			a.drop(r)
			return
		}
		fr.Session, fr.Cxid, fr.Op, fr.Body = r.c.sid.Load(), hdr.Xid, wire.OpSync, r.raw[n:]
		r.sess, r.xid = fr.Session, hdr.Xid
	case r.op == wire.OpCreateSession:
		if ct, ok := r.body.(*wire.CreateSessionTxn); ok {
			fr.Body = binary.BigEndian.AppendUint32(nil, uint32(ct.TimeOut))
		}
	case r.op == wire.OpSetData && r.body == &r.set:
		fr.Body = r.raw
	case r.body != nil && r.refuse == wire.ErrOK:
		fr.Body = r.body.Append(nil)
	}
	data := fr.Append(make([]byte, 0, 16+len(fr.Body)))
	if r.sync {
		f.fo.sendSync(wire.QuorumPacket{Type: wire.PacketRequest, Data: data, AuthInfo: r.auth}, nil)
		f.syncs = append(f.syncs, r)
	} else {
		f.fo.sendAfter(wire.QuorumPacket{Type: wire.PacketRequest, Data: data, AuthInfo: r.auth}, 0)
		f.fwd[r.sess] = append(f.fwd[r.sess], r)
	}
	if r.c != nil {
		f.lastFwd[r.c] = r
	}
}

// gather moves the ready reads and the leader's commits into pending,
// each forwarded request in its commit's place with the reads behind it,
// and returns the zxid commit may apply up to.
//
// A commit is applied whether or not this server's disk holds the txn
// yet: a quorum's disks do, so the write may be answered, as ZooKeeper's
// followers answer it. The txn is in this server's log queue already
// (executor.log), so the tree holds nothing the log will not; what must
// be durable before it is used waits for the log: a snapshot (it flushes
// first), an election (lookingAgain flushes), this server's ACK. A
// follower whose disk stalls thus goes on serving its clients, and falls
// behind only once its log's queue is full.
func (a *applier) gather() int64 {
	f := a.follow
	s := a.s
	a.pending = append(a.pending, f.ready...)
	clear(f.ready)
	f.ready = f.ready[:0]
	a.mu.Lock()
	items := f.remote
	f.remote, f.spare = f.spare, nil
	a.mu.Unlock()
	defer func() {
		clear(items)
		f.spare = items[:0]
	}()
	take := func(r *writeReq) {
		a.pending = append(a.pending, r)
		a.pending = append(a.pending, r.after...)
		clear(r.after)
		r.after = r.after[:0]
		if r.c != nil && f.lastFwd[r.c] == r {
			delete(f.lastFwd, r.c)
		}
	}
	for _, it := range items {
		if it.reval != nil {
			for _, c := range f.fo.revalidated(it.reval) {
				r := newWriteReq()
				r.c, r.read, r.revalidated = c, true, -1
				if it.reval[8] != 0 {
					r.revalidated = 1
				}
				s.stats.outstanding.Add(1)
				a.pending = append(a.pending, r)
			}
			continue
		}
		if it.sync {
			if len(f.syncs) == 0 {
				continue
			}
			r := f.syncs[0]
			f.syncs[0] = nil
			f.syncs = f.syncs[1:]
			take(r)
			continue
		}
		hdr := it.txn.Header
		txn := ztree.Txn{Header: hdr, Record: it.txn.Record}
		if q := f.fwd[hdr.ClientID]; len(q) > 0 && q[0].xid == hdr.Cxid {
			r := q[0]
			if len(q) == 1 {
				delete(f.fwd, hdr.ClientID)
			} else {
				q[0] = nil
				f.fwd[hdr.ClientID] = q[1:]
			}
			r.txn = txn
			r.leaderDigest, r.checkDigest = leaderDigest(&it)
			take(r)
			continue
		}
		// Another server's client's txn, or the leader's own.
		r := newWriteReq()
		r.sess, r.xid, r.op, r.txn = hdr.ClientID, hdr.Cxid, hdr.Type, txn
		r.leaderDigest, r.checkDigest = leaderDigest(&it)
		s.stats.outstanding.Add(1)
		a.pending = append(a.pending, r)
	}
	return math.MaxInt64
}

// leaderDigest is the tree digest the leader logged with the item's txn,
// and whether this server is to compare its own with it: the txn came
// after the sync (exact), and the leader logged a digest of the kind this
// server computes.
func leaderDigest(it *remoteItem) (uint64, bool) {
	if d := it.txn.Digest; it.exact && d != nil && d.Version == ztree.DigestVersion {
		return uint64(d.TreeDigest), true
	}
	return 0, false
}

// digestMismatch counts a txn after which this learner's tree digest is
// not the one the leader logged, as ZooKeeper's learners count them
// (mntr's zk_digest_mismatches_count), and logs the first since this
// server began to follow its leader: the trees differ from there on, so
// every later txn would say so too.
func (s *Server) digestMismatch(zxid int64, ours, leaders uint64) {
	s.digestMismatches.Add(1)
	if s.digestReported.CompareAndSwap(false, true) {
		s.log.Error("after a txn from the leader this server's tree digest differs from the leader's: the trees differ",
			"zxid", fmt.Sprintf("%#x", zxid), "digest", fmt.Sprintf("%#x", ours), "leaderDigest", fmt.Sprintf("%#x", leaders))
	}
}

// durable is the follower's OnSync: the acks waiting for the disk go.
func (fo *follower) durable(zxid int64) {
	fo.mu.Lock()
	fo.release(zxid)
	fo.mu.Unlock()
}

// release moves the deferred packets whose txns are durable to the queue.
// fo.mu held.
func (fo *follower) release(durable int64) {
	n := 0
	for ; n < len(fo.waiting) && fo.waiting[n].need <= durable; n++ {
		fo.queueLocked(fo.waiting[n].p)
		if came := fo.waiting[n].came; !came.IsZero() {
			fo.p.s.stats.proposalAckLat.addSince(came)
		}
	}
	if n > 0 {
		fo.waiting = append(fo.waiting[:0], fo.waiting[n:]...)
	}
}

// revalidate asks the leader whether session id, which a client resumes
// on c, is still open (REVALIDATE: the session and its timeout), as
// ZooKeeper's learners ask: the leader alone knows whether it expired or
// is closing, and it counts the question as the session's activity. The
// answer comes to c's loop (itemRevalidated). False when the connection
// to the leader is gone.
func (fo *follower) revalidate(id int64, timeout int32, c *conn) bool {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if fo.closed {
		return false
	}
	if fo.om != nil {
		// Lock order: fo.mu, then om.mu.
		fo.om.resumedHere(id)
	}
	if fo.revals == nil {
		fo.revals = map[int64][]*conn{}
	}
	if len(fo.revals[id]) == 0 {
		data := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(id)), uint32(timeout))
		fo.queueLocked(wire.QuorumPacket{Type: wire.PacketRevalidate, Data: data})
	}
	fo.revals[id] = append(fo.revals[id], c)
	return true
}

// revalidated takes the leader's answer to a REVALIDATE (the session,
// then whether it is open) and returns the connections waiting for it.
func (fo *follower) revalidated(data []byte) []*conn {
	id := int64(binary.BigEndian.Uint64(data))
	fo.mu.Lock()
	defer fo.mu.Unlock()
	cs := fo.revals[id]
	delete(fo.revals, id)
	return cs
}

// sendAfter queues p for the leader once the log is durable up to need,
// after every packet queued before it; once the follower serves, a PING
// or a client's REQUEST goes at once, ahead of the ACKs that wait for the
// disk, as ZooKeeper's learners send them. Neither depends on anything
// being durable here, and a follower whose disk stalls must go on
// answering the leader's pings, or be dropped after syncLimit, and on
// forwarding its clients' writes, which a quorum of other disks commits.
// (During the sync nothing may pass the ACK of NEWLEADER: a leader
// expects that ACK next.)
func (fo *follower) sendAfter(p wire.QuorumPacket, need int64) {
	fo.sendAfterFrom(p, need, time.Time{})
}

// sendAfterFrom is sendAfter for an ACK of a proposal that came at came,
// whose sending is timed.
func (fo *follower) sendAfterFrom(p wire.QuorumPacket, need int64, came time.Time) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if fo.closed {
		return
	}
	if fo.serving && need == 0 && (p.Type == wire.PacketPing || p.Type == wire.PacketRequest) {
		fo.queueLocked(p)
		return
	}
	fo.waiting = append(fo.waiting, deferred{need, p, came})
	fo.release(fo.p.s.store.Load().Durable())
}

// sendSync forwards a sync REQUEST as sendAfter does, and notes whose it
// is: an observer's (o), or this server's own clients' (nil).
func (fo *follower) sendSync(p wire.QuorumPacket, o *omObserver) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if fo.closed {
		return
	}
	fo.syncFrom = append(fo.syncFrom, o)
	if fo.serving {
		fo.queueLocked(p)
		return
	}
	fo.waiting = append(fo.waiting, deferred{0, p, time.Time{}})
	fo.release(fo.p.s.store.Load().Durable())
}

// syncAnswered takes the oldest sync forwarded, which the leader's SYNC
// answers: the observer whose it is, or nil for this server's own.
func (fo *follower) syncAnswered() *omObserver {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if len(fo.syncFrom) == 0 {
		return nil
	}
	o := fo.syncFrom[0]
	fo.syncFrom[0] = nil
	fo.syncFrom = fo.syncFrom[1:]
	return o
}
