package engine

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"zkd/wal"
	"zkd/wire"
	"zkd/zab"
)

// A follower's port for observers (observerMasterPort, ZooKeeper 3.6+).
// With the key set, an observer syncs from a follower instead of the
// leader, trying the voters' ports in turn; the leader opens none. While
// this server follows and serves, it takes observers on that port as a
// leader takes learners: discovery with the leader's epoch, a sync from
// what this server has committed, NEWLEADER, UPTODATE; then each commit
// from the leader is relayed as an INFORM, in order. An observer's
// requests, syncs and session revalidations go on to the leader through
// this server's own connection, and the answers come back the same way;
// the sessions its PINGs touch are reported in this server's.
//
// The leader tells a session's servers apart by the learner connection
// its requests come through: a request from a server the session has
// left fails with SESSIONMOVED, so that a write a client sent before it
// moved, held up on the way, cannot land after the writes it sent since.
// Through a follower, every observer's sessions come from that one
// follower; so the follower keeps the same watch over its own clients and
// its observers' (owner): a request an observer forwards for a session
// that has since resumed on another of them is turned into one the
// leader refuses with an error txn, which takes the request's place at
// every server, as the leader's SESSIONMOVED does, but never after a
// later write; and this server's own connection of a session that
// resumes on an observer is closed, so that nothing more is read from it.
//
// Relaying is done on the follower's goroutine as each commit is handed
// to the applier (executor ActApply), before it is applied: the view is
// then never ahead of the last commit relayed, which an observer's sync
// starts from. The commits relayed stay in a ring (at most
// observerMasterRingBytes) to sync observers from by DIFF; an observer
// further behind is sent a snapshot of the view.

type observerMaster struct {
	fo    *follower
	p     *peer
	s     *Server
	ln    net.Listener
	epoch int64
	stop  chan struct{}

	mu     sync.Mutex
	closed bool
	// last is the newest commit relayed, or where relaying began.
	last int64
	// ring are the commits relayed, oldest first; ringBytes their size
	// as ZooKeeper counts packets.
	ring      []omTxn
	ringBytes int64
	observers map[*omObserver]bool
	// touches are the sessions the observers' PINGs kept alive since
	// this server's last PING to the leader, with their timeouts.
	touches map[int64]int32
	// revals are the observers waiting for the leader's answer about a
	// session (REVALIDATE), by session.
	revals map[int64][]omReval
	// owner is, by session, the server id of the one its client last
	// resumed it on, of this server and its observers: set by their
	// REVALIDATEs, taken off as the session closes.
	owner map[int64]int64
}

type omTxn struct {
	zxid  int64
	entry []byte
}

type omReval struct {
	o       *omObserver
	timeout int32
}

// observerMasterRingBytes bounds the commits kept to sync observers from,
// as zookeeper.observerMaster.sizeLimit does ZooKeeper's (32 MB).
const observerMasterRingBytes = 32 << 20

// omObserver is one observer's connection to this server.
type omObserver struct {
	learnerOutbox
	om     *observerMaster
	sid    int64
	pc     *packetConn
	synced atomic.Bool // acked NEWLEADER
	// For the observers command: when it connected, and the packets
	// taken from it once synced, REQUESTs among them.
	established        time.Time
	received, requests atomic.Int64
}

// startObserverMaster opens the observer-master port of this follower,
// whose leader's epoch is epoch and whose last commit is last. A port it
// cannot open is logged, and the follower goes on without it: observers
// sync from the other voters.
func startObserverMaster(fo *follower, epoch, last int64) *observerMaster {
	p := fo.p
	host, _, _ := net.SplitHostPort(p.me.QuorumAddr)
	if p.ens.ListenOnAllIPs {
		host = ""
	}
	addr := net.JoinHostPort(host, fmt.Sprint(p.ens.ObserverMasterPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.s.log.Warn("cannot open the port for observers (observerMasterPort); they sync from the other voters", "addr", addr, "err", err)
		return nil
	}
	om := &observerMaster{fo: fo, p: p, s: p.s, ln: ln, epoch: epoch, stop: make(chan struct{}), last: last,
		observers: map[*omObserver]bool{}, touches: map[int64]int32{}, revals: map[int64][]omReval{},
		owner: map[int64]int64{}}
	fo.mu.Lock()
	fo.om = om
	fo.mu.Unlock()
	p.s.log.Info("taking observers (observerMasterPort)", "addr", ln.Addr().String())
	go om.acceptLoop()
	go om.pinger()
	return om
}

func (om *observerMaster) acceptLoop() {
	for {
		c, err := om.ln.Accept()
		if err != nil {
			return
		}
		go om.serve(c)
	}
}

// pinger pings the observers every half tick, as ZooKeeper's observer
// master does; their answers carry their sessions' touches.
func (om *observerMaster) pinger() {
	t := time.NewTicker(max(om.p.tick/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-om.stop:
			return
		case <-t.C:
		}
		om.mu.Lock()
		ping := wire.QuorumPacket{Type: wire.PacketPing, Zxid: om.last}
		for o := range om.observers {
			// Once told UPTODATE: a PING is no part of the sync.
			o.mu.Lock()
			if o.told {
				o.queueLocked(ping)
			}
			o.mu.Unlock()
		}
		om.mu.Unlock()
	}
}

// close shuts the port and every observer's connection: they look for
// another master.
func (om *observerMaster) close() {
	om.fo.mu.Lock()
	om.fo.om = nil
	om.fo.mu.Unlock()
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.closed {
		return
	}
	om.closed = true
	close(om.stop)
	om.ln.Close()
	for o := range om.observers {
		o.close()
	}
	om.ring = nil
}

// committed relays the commit of zxid, whose txn (with header hdr) the
// leader encoded as entry, to every observer, and keeps it to sync later
// ones from. Follower goroutine, before the txn goes to the applier.
func (om *observerMaster) committed(zxid int64, entry []byte, hdr *wire.TxnHeader) {
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.closed {
		return
	}
	if hdr.Type == wire.OpCloseSession {
		delete(om.owner, hdr.ClientID)
	}
	om.last = zxid
	om.ring = append(om.ring, omTxn{zxid, entry})
	om.ringBytes += 28 + int64(len(entry))
	n := 0
	for om.ringBytes > observerMasterRingBytes && n < len(om.ring)-1 {
		om.ringBytes -= 28 + int64(len(om.ring[n].entry))
		om.ring[n] = omTxn{}
		n++
	}
	if n > 0 {
		om.ring = om.ring[n:]
	}
	inform := wire.QuorumPacket{Type: wire.PacketInform, Zxid: zxid, Data: entry}
	for o := range om.observers {
		o.sendCommit(inform)
	}
}

// syncedCount is how many observers are synced with this server (mntr's
// zk_synced_observers on a follower).
func (om *observerMaster) syncedCount() int {
	om.mu.Lock()
	defer om.mu.Unlock()
	n := 0
	for o := range om.observers {
		if o.synced.Load() {
			n++
		}
	}
	return n
}

// info describes the synced observers for the AdminServer's observers
// command, as a leader describes its own.
func (om *observerMaster) info() []jsonObject {
	om.mu.Lock()
	defer om.mu.Unlock()
	var out []jsonObject
	for o := range om.observers {
		if !o.synced.Load() {
			continue
		}
		// An observer has all this server relayed.
		out = append(out, observerInfo(o.outbox, o.pc, o.sid, o.established, &o.received, &o.requests, om.last))
	}
	return out
}

// takeTouches returns the sessions the observers touched since the last
// call, for this server's PING to the leader.
func (om *observerMaster) takeTouches(ts []wire.SessionTouch) []wire.SessionTouch {
	om.mu.Lock()
	defer om.mu.Unlock()
	for id, to := range om.touches {
		ts = append(ts, wire.SessionTouch{Session: id, Timeout: to})
	}
	clear(om.touches)
	return ts
}

// revalidated passes the leader's answer about a session (REVALIDATE: the
// session, then whether it is open) to the observers that asked, and
// counts a session found open as touched. Follower goroutine.
func (om *observerMaster) revalidated(data []byte) {
	id := int64(binary.BigEndian.Uint64(data))
	om.mu.Lock()
	defer om.mu.Unlock()
	for _, r := range om.revals[id] {
		r.o.send(wire.QuorumPacket{Type: wire.PacketRevalidate, Data: data})
		if data[8] != 0 {
			om.touches[id] = r.timeout
		}
	}
	delete(om.revals, id)
}

// serve runs one observer's connection: discovery, sync, then its pings,
// requests and revalidations.
func (om *observerMaster) serve(raw net.Conn) {
	s, p := om.s, om.p
	initLimit := p.tick * time.Duration(p.ens.InitLimit)
	syncLimit := p.tick * time.Duration(p.ens.SyncLimit)
	from := raw.RemoteAddr().String()
	c, err := p.sec.Accept(raw, initLimit)
	if err != nil {
		s.log.Warn("observer port: refusing a connection", "from", from, "err", err)
		return
	}
	o := &omObserver{learnerOutbox: learnerOutbox{outbox: newOutbox(c)}, om: om, pc: newPacketConn(c), established: time.Now()}
	defer om.forget(o)
	c.SetDeadline(time.Now().Add(initLimit))
	if err := p.sec.Admit(o.pc.br, c, from); err != nil {
		s.log.Warn("observer port: refusing a server", "from", from, "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	oi, err := o.pc.read(initLimit)
	if err != nil {
		s.log.Warn("closing an observer-port connection whose first packet could not be read", "from", from, "err", err)
		return
	}
	if oi.Type != wire.PacketObserverInfo {
		s.log.Warn("only observers sync from a follower; closing a connection to the observer port that opened with "+
			wire.PacketName(oi.Type), "from", from)
		return
	}
	info, err := wire.LearnerInfoFrom(oi.Data)
	if err != nil {
		s.log.Warn("unreadable OBSERVERINFO; closing", "from", from, "err", err)
		return
	}
	o.sid = info.ServerID
	if m, ok := p.member(o.sid); !ok || !m.Observer {
		s.log.Warn("a server this ensemble's config does not have as an observer tried to sync from this follower; closing",
			"sid", o.sid, "from", from)
		return
	}
	o.qp = s.learnerQueue(o.sid) // mntr's learner_handler_qp_*, as a ZooKeeper follower's
	li := wire.QuorumPacket{Type: wire.PacketLeaderInfo, Zxid: om.epoch << 32, Data: binary.BigEndian.AppendUint32(nil, wire.ZabProtocolVersion)}
	if err := o.write(li, initLimit); err != nil {
		return
	}
	ack, err := o.pc.read(initLimit)
	if err != nil || ack.Type != wire.PacketAckEpoch || len(ack.Data) < 4 {
		return
	}
	if err := om.sync(o, ack.Zxid, initLimit); err != nil {
		s.log.Warn("syncing an observer failed", "sid", o.sid, "err", err)
		return
	}
	go o.run(syncLimit)
	om.read(o, initLimit, syncLimit)
}

// forget takes o off the observers and closes its connection.
func (om *observerMaster) forget(o *omObserver) {
	o.close()
	om.mu.Lock()
	delete(om.observers, o)
	om.mu.Unlock()
}

// sync registers o for the commits relayed from now on and writes its
// sync, up to the last commit relayed: the packet that opens it, the
// txns it lacks, NEWLEADER. What is relayed meanwhile waits in held.
func (om *observerMaster) sync(o *omObserver, peerLast int64, limit time.Duration) error {
	s := om.s
	slot := s.readers.NewSlot()
	defer slot.Close()
	slot.Enter()
	defer slot.Leave()
	var (
		plan  zab.SyncPlan
		txns  []omTxn
		point int64
		snapZ int64
	)
	v := s.view.Load()
	for deadline := time.Now().Add(limit); ; {
		om.mu.Lock()
		if om.closed {
			om.mu.Unlock()
			return fmt.Errorf("this server stopped following")
		}
		// Under om.mu the view is at or before om.last (commits are
		// relayed before they are applied). A snapshot of it reaches
		// om.last with the ring's txns after it, if the ring holds them
		// all; just after relaying began it may not yet.
		v = s.view.Load()
		point = om.last
		first := point + 1
		if len(om.ring) > 0 {
			first = om.ring[0].zxid
		}
		if v.Zxid() >= first-1 {
			zs := make([]int64, len(om.ring))
			for i, t := range om.ring {
				zs[i] = t.zxid
			}
			plan = zab.PlanSync(peerLast, zab.History{LastProcessed: point, Committed: zs, SnapshotSizeFactor: -1})
			txns = append([]omTxn(nil), om.ring...)
			om.observers[o] = true
			om.mu.Unlock()
			break
		}
		om.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("this server's tree did not reach %#x within %v", first-1, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	w := bufio.NewWriterSize(o.c, 64<<10)
	o.c.SetWriteDeadline(time.Now().Add(limit))
	put := func(p wire.QuorumPacket) error {
		_, err := w.Write(p.Append(nil))
		return err
	}
	sendTxns := func(after int64) error {
		for _, t := range txns {
			if t.zxid <= after {
				continue
			}
			if err := put(wire.QuorumPacket{Type: wire.PacketProposal, Zxid: t.zxid, Data: t.entry}); err != nil {
				return err
			}
			if err := put(wire.QuorumPacket{Type: wire.PacketCommit, Zxid: t.zxid}); err != nil {
				return err
			}
		}
		return nil
	}
	s.log.Info("syncing an observer", "sid", o.sid, "mode", plan.Mode.String(), "peerZxid", fmt.Sprintf("%#x", peerLast),
		"zxid", fmt.Sprintf("%#x", point))
	var err error
	switch plan.Mode {
	case zab.SyncSnap:
		snapZ = v.Zxid()
		if err = put(wire.QuorumPacket{Type: wire.PacketSnap, Zxid: snapZ}); err == nil {
			err = wal.WriteSnapBody(w, v)
		}
		slot.Leave()
		if err == nil {
			err = sendTxns(snapZ)
		}
	case zab.SyncTrunc:
		if err = put(wire.QuorumPacket{Type: wire.PacketTrunc, Zxid: plan.Zxid}); err == nil {
			err = sendTxns(plan.Zxid)
		}
	default:
		if err = put(wire.QuorumPacket{Type: wire.PacketDiff, Zxid: plan.Zxid}); err == nil && len(plan.Send) > 0 {
			err = sendTxns(plan.Send[0] - 1)
		}
	}
	if err == nil {
		err = put(wire.QuorumPacket{Type: wire.PacketNewLeader, Zxid: om.epoch << 32, Data: []byte(om.p.qcfg)})
	}
	if err == nil {
		err = w.Flush()
	}
	return err
}

// read takes a synced observer's packets until it goes.
func (om *observerMaster) read(o *omObserver, initLimit, syncLimit time.Duration) {
	s := om.s
	for {
		// Until it acks NEWLEADER it may still be taking in a snapshot.
		d := syncLimit
		if !o.synced.Load() {
			d = initLimit
		}
		p, err := o.pc.read(d)
		if err != nil {
			if !o.isClosed() {
				s.log.Info("an observer went", "sid", o.sid, "err", err)
			}
			return
		}
		if o.synced.Load() {
			o.received.Add(1)
		}
		switch p.Type {
		case wire.PacketAck:
			if p.Zxid == om.epoch<<32 {
				// NEWLEADER's; the ACK of UPTODATE repeats it.
				if !o.synced.Swap(true) {
					o.sendUpToDate()
				}
				continue
			}
			if p.Zxid&0xffffffff == 0 {
				continue
			}
			s.log.Warn("an observer acked a txn, which observers never do; closing it", "sid", o.sid, "zxid", fmt.Sprintf("%#x", p.Zxid))
			return
		case wire.PacketPing:
			touches, err := wire.DecodeTouches(p.Data)
			if err != nil {
				s.log.Warn("unreadable PING from an observer; closing it", "sid", o.sid, "err", err)
				return
			}
			if len(touches) > 0 {
				om.mu.Lock()
				for _, t := range touches {
					om.touches[t.Session] = t.Timeout
				}
				om.mu.Unlock()
			}
		case wire.PacketRequest:
			o.requests.Add(1)
			fr, err := wire.DecodeForwardedRequest(p.Data)
			if err != nil {
				s.log.Warn("unreadable REQUEST from an observer; closing it", "sid", o.sid, "err", err)
				return
			}
			if om.movedOn(o, &fr) {
				// A write its client sent before it resumed the
				// session elsewhere: the leader refuses this one.
				s.log.Info("an observer forwarded a write of a session that has resumed on another server since; "+
					"it is refused", "sid", o.sid, "session", fmt.Sprintf("0x%x", fr.Session), "cxid", fr.Cxid)
				p.Data = refusedRequest(fr.Session, fr.Cxid)
			}
			// On to the leader, as this server's own clients' go. A
			// sync's SYNC comes back to this server, which passes it on
			// once it has relayed every commit before it.
			if fr.Op == wire.OpSync {
				om.fo.sendSync(p, o)
			} else {
				om.fo.sendAfter(p, 0)
			}
		case wire.PacketRevalidate:
			if len(p.Data) < 12 {
				continue
			}
			id := int64(binary.BigEndian.Uint64(p.Data))
			om.mu.Lock()
			om.revals[id] = append(om.revals[id], omReval{o, int32(binary.BigEndian.Uint32(p.Data[8:]))})
			om.owner[id] = o.sid
			om.mu.Unlock()
			// Its connection here, if any, is stale now.
			if se := s.sessions.get(id); se != nil {
				if c := se.conn.Load(); c != nil {
					s.log.Info("closing a connection whose session resumed on an observer", "session", fmt.Sprintf("0x%x", id), "observer", o.sid)
					c.close("")
				}
			}
			om.fo.send(p)
		default:
			s.log.Warn("unexpected packet from an observer; closing it", "sid", o.sid, "packet", wire.PacketName(p.Type))
			return
		}
	}
}

// observerMasterStats is how many observers are synced with this
// follower, and whether it has a port for them open.
func (p *peer) observerMasterStats() (int, bool) {
	fo := p.learnerLink()
	if fo == nil {
		return 0, false
	}
	fo.mu.Lock()
	om := fo.om
	fo.mu.Unlock()
	if om == nil {
		return 0, false
	}
	return om.syncedCount(), true
}

// pickMaster is the voter an observer syncs from next when the ensemble
// has observer masters: each in turn, in an order shuffled once, as
// ZooKeeper's observers go through them. The leader opens no port for
// observers: trying it fails, and the observer looks again and moves on.
func (p *peer) pickMaster() int64 {
	if len(p.masters) == 0 {
		p.masters = slices.Clone(p.voters())
		rand.Shuffle(len(p.masters), func(i, j int) { p.masters[i], p.masters[j] = p.masters[j], p.masters[i] })
	}
	id := p.masters[p.nextMaster%len(p.masters)]
	p.nextMaster++
	return id
}

// movedOn reports whether fr, a write o forwards, is of a session whose
// client has resumed it on another server since, of this one and its
// observers.
func (om *observerMaster) movedOn(o *omObserver, fr *wire.ForwardedRequest) bool {
	switch fr.Op {
	case wire.OpCreateSession, wire.OpCloseSession, wire.OpSync:
		return false
	}
	om.mu.Lock()
	defer om.mu.Unlock()
	owner, ok := om.owner[fr.Session]
	return ok && owner != o.sid
}

// resumedHere notes that a client resumed session id on this server.
func (om *observerMaster) resumedHere(id int64) {
	om.mu.Lock()
	om.owner[id] = om.p.me.ID
	om.mu.Unlock()
}

// refusedRequest is the data of a REQUEST every leader refuses with an
// error txn of the session and cxid given (BADARGUMENTS: a delete of an
// empty path), so that the request's cxid is used up in order.
func refusedRequest(session int64, cxid int32) []byte {
	fr := wire.ForwardedRequest{Session: session, Cxid: cxid, Op: wire.OpDelete,
		Body: (&wire.DeleteRequest{Path: "", Version: -1}).Append(nil)}
	return fr.Append(nil)
}
