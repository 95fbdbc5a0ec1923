package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zkd/engine/electionport"
	"zkd/internal/java"
	"zkd/internal/quorumsec"
	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/wire"
	"zkd/zab/quorum"
	"zkd/ztree"
)

// An ensemble member. The peer goroutine goes round election, then leading
// or following, then election again when the role fails: the leader loses
// its quorum, the follower its leader. Between roles the server serves no
// client: every connection is closed as it goes LOOKING, and handshakes are
// refused until it serves again, as ZooKeeper refuses them.
//
// What is durable where (shared/reference/zab-protocol.md): the leader
// commits a write once a quorum has the txn on disk (its own disk counts,
// but the followers' may make the quorum without it), and a follower
// acknowledges a proposal only once it is on its disk. Every server
// applies and answers a committed txn whether or not its own disk holds it
// yet: its log has it queued, and a snapshot or an election waits until
// the log has made it durable. Between roles the tree is brought up to
// everything the log holds, so the vote a server casts (its last logged
// zxid) is the history it would lead with.

// errNotServing closes a client's connection while the server has no
// quorum, as ZooKeeper closes it.
var errNotServing = errors.New("not serving: this server is not in a quorum right now (ZooKeeperServer not running)")

// errLeaderTakesNoClients closes a client's connection to a leader whose
// leaderServes is no, as ZooKeeper's leader closes it.
var errLeaderTakesNoClients = errors.New("this server leads, and leaderServes=no keeps clients off it: the client must use another server")

type role int32

const (
	roleLooking role = iota
	roleFollowing
	roleLeading
	roleObserving
)

type peer struct {
	s      *Server
	ens    *Ensemble
	me     Member
	port   *electionport.Port
	qcfg   string         // the quorum config text of notifications and NEWLEADER
	quorum *quorum.Quorum // which sets of participants are quorums
	// untrusted is set while the data directory is one with neither
	// snapshot nor log that zookeeper.db.autocreate=false does not
	// trust: the server votes zxid -1, which the others pass over, and
	// it takes no LOOKING vote into account, so it can only follow a
	// leader the others elected. Serving, once synced, clears it.
	untrusted atomic.Bool

	role     atomic.Int32
	leaderID atomic.Int64
	// masterID is the server an observer syncs from: the leader, or
	// with observerMasterPort a follower (nextMaster's).
	masterID atomic.Int64
	// masters are the voters in the order an observer tries their
	// observer-master ports (shuffled once, as ZooKeeper's observers
	// shuffle them), and nextMaster the next to try. peer.run's.
	masters    []int64
	nextMaster int
	serving    atomic.Bool
	// unavailableSince is when the election began that this server has
	// not served since (unix ns; 0 while it serves), for mntr.
	unavailableSince atomic.Int64
	// roEnabled is readonlymode.enabled: without a quorum, after a
	// while, the server serves reads to clients that accept a read-only
	// server (roServing), as ZooKeeper's read-only mode does.
	roEnabled bool
	roMu      sync.Mutex
	roServing atomic.Bool

	mu   sync.Mutex // guards lead and fol, read by synced and the four-letter words
	lead *leader
	fol  *follower

	tick time.Duration
	// sec secures the connections to the other servers; nil for none.
	sec *quorumsec.Config
}

func newPeer(s *Server, e *Ensemble) (*peer, error) {
	me, _ := e.Me()
	p := &peer{s: s, ens: e, me: me, qcfg: quorumConfigText(e), quorum: e.quorum(), tick: time.Duration(s.cfg.TickTime) * time.Millisecond}
	p.roEnabled = s.cfg.ReadOnlyMode
	sec, err := s.quorumSecurity()
	if err != nil {
		return nil, err
	}
	p.sec = sec
	var voters, observers []electionport.Peer
	for _, m := range e.Members {
		ep := electionport.Peer{ID: m.ID, Addr: m.ElectionAddr}
		if m.Observer {
			observers = append(observers, ep)
		} else {
			voters = append(voters, ep)
		}
	}
	ecfg := electionport.Config{ID: me.ID, Addr: me.ElectionAddr, Voters: voters, Quorum: p.quorum,
		Observers: observers, QuorumConfig: p.qcfg, HelloTimeout: p.tick * time.Duration(e.SyncLimit),
		ConnectTimeout: e.ConnectTimeout, FinalizeWait: e.FinalizeWait, Security: sec, Log: s.log,
		MinNotificationInterval: e.MinNotificationInterval, MaxNotificationInterval: e.MaxNotificationInterval}
	if e.ListenOnAllIPs {
		ecfg.ListenAddr = ":" + portOf(me.ElectionAddr)
	}
	// ZooKeeper tries to bind the election port electionPortBindRetry
	// times, a second apart, before it gives up.
	var port *electionport.Port
	for try := 0; ; try++ {
		if port, err = electionport.Listen(ecfg); err == nil || try >= e.BindRetry {
			break
		}
		s.log.Warn("cannot bind the election port; retrying in a second", "err", err, "retry", try+1, "of", e.BindRetry)
		time.Sleep(time.Second)
	}
	if err != nil {
		return nil, &ConfigError{File: s.cfg.File, Line: me.Line, Key: fmt.Sprintf("server.%d", me.ID), Msg: err.Error()}
	}
	p.port = port
	return p, nil
}

// quorumConfigText is the ensemble as ZooKeeper's QuorumVerifier prints
// it, which is what goes in election notifications and NEWLEADER, and in
// /zookeeper/config: a line
// server.N=host:quorumPort:electionPort:participant|observer, with
// ;clientHost:clientPort when the server.N line gives one, per member in
// the order of Java's HashMap of the ids, then version=, the version in
// hex (0 for a static configuration, the dynamic config file's otherwise).
func quorumConfigText(e *Ensemble) string {
	ids := make([]int64, len(e.Members))
	byID := map[int64]Member{}
	order := map[int64]uint64{}
	for i, m := range e.Members {
		ids[i] = m.ID
		byID[m.ID] = m
		order[m.ID] = uint64(i)
	}
	var b strings.Builder
	for _, id := range java.Order(ids, java.LongHash, order, java.GrownCap(len(ids), 16)) {
		m := byID[id]
		kind := "participant"
		if m.Observer {
			kind = "observer"
		}
		// The host as given, an IPv6 one in brackets, as ZooKeeper
		// prints it.
		fmt.Fprintf(&b, "server.%d=%s:%s:%s", id, m.QuorumAddr, portOf(m.ElectionAddr), kind)
		if m.ClientAddr != "" {
			b.WriteString(";" + m.ClientAddr)
		}
		b.WriteByte('\n')
	}
	if q := e.Quorum; q != nil && q.Hierarchical() {
		// Then, as ZooKeeper's QuorumHierarchical prints them, a
		// group.G=id:id line per group and a weight.N line per server
		// with a weight, each in the order of Java's HashMaps.
		hashOrder := func(ids []int64) []int64 {
			slices.Sort(ids)
			order := map[int64]uint64{}
			for i, id := range ids {
				order[id] = uint64(i)
			}
			return java.Order(ids, java.LongHash, order, java.GrownCap(len(ids), 16))
		}
		groups := q.Groups()
		groupOf := map[int64]int64{}
		for gid, members := range groups {
			for _, sid := range members {
				groupOf[sid] = gid
			}
		}
		lists := map[int64][]string{}
		var gids []int64
		for _, sid := range hashOrder(slices.Collect(maps.Keys(groupOf))) {
			gid := groupOf[sid]
			if lists[gid] == nil {
				gids = append(gids, gid)
			}
			lists[gid] = append(lists[gid], strconv.FormatInt(sid, 10))
		}
		order := map[int64]uint64{}
		for i, gid := range gids {
			order[gid] = uint64(i)
		}
		for _, gid := range java.Order(gids, java.LongHash, order, java.GrownCap(len(gids), 16)) {
			fmt.Fprintf(&b, "group.%d=%s\n", gid, strings.Join(lists[gid], ":"))
		}
		weights := q.Weights()
		for _, sid := range hashOrder(slices.Collect(maps.Keys(weights))) {
			fmt.Fprintf(&b, "weight.%d=%d\n", sid, weights[sid])
		}
	}
	fmt.Fprintf(&b, "version=%x", e.ConfigVersion)
	return b.String()
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func (p *peer) voters() []int64 { return p.quorum.Voters() }

func (p *peer) member(id int64) (Member, bool) {
	for _, m := range p.ens.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// mode is what srvr and mntr call the server's state.
func (p *peer) mode() string {
	switch role(p.role.Load()) {
	case roleLeading:
		return "leader"
	case roleFollowing:
		return "follower"
	case roleObserving:
		return "observer"
	}
	return "looking"
}

// synced is the log's OnSync in an ensemble.
func (p *peer) synced(zxid int64) {
	p.mu.Lock()
	l, f := p.lead, p.fol
	p.mu.Unlock()
	switch {
	case l != nil:
		l.localAck(zxid)
	case f != nil:
		f.durable(zxid)
	}
	p.s.writes.signal()
}

// run is the peer goroutine.
func (p *peer) run() {
	s := p.s
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.stopping
		cancel()
	}()
	defer p.port.Close()
	for ctx.Err() == nil {
		if err := p.lookingAgain(); err != nil {
			s.fail(err)
			return
		}
		last := s.store.Load().Durable()
		ep, err := wal.LoadEpochs(p.fs(), s.cfg.DataDir, last)
		if err != nil {
			s.fail(err)
			return
		}
		start := time.Now()
		s.stats.looking.Add(1)
		p.unavailableSince.CompareAndSwap(0, start.UnixNano())
		s.log.Info("looking for a leader", "myid", p.me.ID, "zxid", fmt.Sprintf("%#x", last), "currentEpoch", ep.Current)
		var ro *time.Timer
		if p.roEnabled {
			// ZooKeeper waits this long before it serves read-only.
			ro = time.AfterFunc(max(2*time.Second, p.tick), p.enterReadOnly)
		}
		vote := last
		if p.untrusted.Load() {
			s.log.Warn("this server's data directory has neither snapshot nor log, and zookeeper.db.autocreate=false: "+
				"it votes zxid -1 and waits to follow a leader the others elect (an initialize file in the log directory "+
				"makes an empty directory trusted, as zkServer-initialize.sh leaves one)", "dataLogDir", s.cfg.LogDir())
			vote = -1
		}
		d, err := p.port.Elect(ctx, vote, ep.Current)
		if ro != nil {
			ro.Stop()
			p.leaveReadOnly()
		}
		if err != nil {
			return // stopping
		}
		p.leaderID.Store(d.Vote.Leader)
		s.electionTime.addSince(start)
		s.log.Info("election done", "leader", d.Vote.Leader, "zxid", fmt.Sprintf("%#x", d.Vote.Zxid),
			"took", time.Since(start).Round(time.Millisecond))
		if d.Vote.Leader == p.me.ID {
			err = p.runLeader(ctx, ep, last)
		} else {
			err = p.runFollower(ctx, d.Vote.Leader, ep, last, p.me.Observer)
		}
		if ctx.Err() != nil {
			return
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			s.fail(fatal.err)
			return
		}
		s.log.Warn("leaving the role, back to election", "role", p.mode(), "err", err)
		if d.Vote.Leader != p.me.ID {
			// A leader went LOOKING as it stepped down (stepDown).
			p.lookNow()
		}
		if p.me.Observer && p.ens.ObserverElectionDelay > 0 {
			// As ZooKeeper's observers do, a random pause first, so
			// that observers the leader turned away, or lost together,
			// do not all come back at once.
			select {
			case <-ctx.Done():
				return
			case <-time.After(rand.N(p.ens.ObserverElectionDelay)):
			}
		}
	}
}

// fullLimit is how long a server that serves lets its txn log stay full
// (64 MB waiting for the disk, while its applier or its reader of the
// leader waits for room) before it leaves its role: a tick, or a second
// when that is longer, since a healthy disk under a burst may take most
// of a second to write 64 MB. A disk that stalls holds it full for as
// long as the stall lasts.
func (p *peer) fullLimit() time.Duration { return max(p.tick, time.Second) }

// lookNow puts the election port back to LOOKING at once, with its vote:
// getting ready to elect (lookingAgain) waits for the log, which a
// stalled disk holds up, and until then the others would be answered
// with the role this server left.
//
// The vote is the last zxid the log will hold once it has written what
// is queued, as ZooKeeper's vote is its log after the flush, and as this
// server will report when it syncs: a leader elected below that would
// refuse it as ahead of the leader, and without it might not make a
// quorum until initLimit ran out. It acts on the outcome only after that
// flush (lookingAgain). But a disk that has held a txn for a tick or more
// may be stalled: then the vote is what the disk holds, all this server
// acknowledged, so that the others do not elect a server that cannot
// lead until its disk goes on. (Elect starts a new round if the log then
// ends elsewhere.)
func (p *peer) lookNow() {
	st := p.s.store.Load()
	last := st.Durable()
	if st.Lag(time.Now()) < p.tick {
		last = st.Last()
	}
	if p.untrusted.Load() {
		last = -1
	}
	if ep, err := wal.LoadEpochs(p.fs(), p.s.cfg.DataDir, last); err == nil {
		p.port.Look(last, ep.Current)
	}
}

// fatalError is a failure the server cannot go on after (the disk).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

func (p *peer) fs() vfs.FS {
	if p.s.opts.FS != nil {
		return p.s.opts.FS
	}
	return vfs.OS
}

// lookingAgain stops serving, closes every client connection, clears the
// applier's role, and brings the tree up to the end of the log.
func (p *peer) lookingAgain() error {
	s := p.s
	p.serving.Store(false)
	p.role.Store(int32(roleLooking))
	for _, c := range s.connList() {
		c.close("")
	}
	var err error
	if !s.writes.do(func() {
		s.writes.dropAll()
		err = s.catchUp()
	}) {
		return nil
	}
	return err
}

// dropAll forgets every request in the applier: their connections are
// closed (lookingAgain), and their clients will retry elsewhere.
func (a *applier) dropAll() {
	a.mu.Lock()
	in := a.incoming
	a.incoming = nil
	a.mu.Unlock()
	for _, r := range in {
		a.drop(r)
	}
	for _, r := range a.pending {
		a.drop(r)
	}
	a.pending = a.pending[:0]
	if f := a.follow; f != nil {
		for _, q := range f.fwd {
			for _, r := range q {
				a.drop(r)
			}
		}
		for _, r := range f.syncs {
			a.drop(r)
		}
		for _, r := range f.ready {
			a.drop(r)
		}
	}
	clear(a.prepOpened)
	clear(a.prepClosed)
	a.follow, a.lead = nil, nil
	a.s.stats.outstanding.Store(0)
}

func (a *applier) drop(r *writeReq) {
	if r == nil {
		return
	}
	for _, w := range r.after {
		a.drop(w)
	}
	if r.c != nil {
		r.c.close("")
	}
	release(r)
}

// catchUp applies to the tree every txn the log holds past it: proposals
// this server logged and never saw committed. They are its history as
// far as the ensemble knows (its vote says so); a leader without them
// will have it cut back (TRUNC) or replaced (SNAP). Applier goroutine.
func (s *Server) catchUp() error {
	st := s.store.Load()
	if err := st.Flush(); err != nil {
		return &fatalError{err}
	}
	t := s.tree.Load()
	from := t.Zxid()
	n := 0
	err := wal.ReadTxns(s.fsys(), s.cfg.LogDir(), from, st.Durable(), func(txn *wal.Txn, _ []byte) error {
		t.Apply(&txn.Header, txn.Record)
		n++
		return nil
	})
	if err != nil {
		return &fatalError{fmt.Errorf("bringing the tree up to the log: %w", err)}
	}
	if n > 0 {
		t.Publish()
		v := t.Published()
		s.view.Store(v)
		t.Visible(v)
		s.writes.nextZxid = t.Zxid() + 1
		s.log.Info("applied the txns logged and not committed before", "from", fmt.Sprintf("%#x", from), "txns", n)
	}
	s.resetSessions()
	return nil
}

func (s *Server) fsys() vfs.FS {
	if s.opts.FS != nil {
		return s.opts.FS
	}
	return vfs.OS
}

// resetSessions tracks exactly the sessions the tree holds, each with a
// full timeout from now, as a new leader gives them.
func (s *Server) resetSessions() {
	var list []ztree.Session
	s.tree.Load().Published().Sessions(func(se ztree.Session) bool {
		list = append(list, se)
		return true
	})
	s.sessions.reset(list, s.mono())
}

// reopen closes the log, runs change on the data directory, and opens it
// again: the tree is what the directory now holds. Applier goroutine,
// while no client is connected.
func (s *Server) reopen(change func() error) error { return s.reopenWith(change, nil) }

// reopenWith is reopen for a change that wrote installed as the newest
// snapshot: the log opens on that tree without reading it back.
func (s *Server) reopenWith(change func() error, installed *ztree.Tree) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	old := s.store.Load()
	if err := old.Close(); err != nil && !errors.Is(err, wal.ErrStopped) {
		return &fatalError{fmt.Errorf("closing the log: %w", err)}
	}
	if err := change(); err != nil {
		return &fatalError{err}
	}
	wo := s.walOptions()
	wo.Installed = installed
	st, t, err := wal.Open(wo)
	if err != nil {
		return &fatalError{err}
	}
	t.AdoptReaders(s.readers)
	s.setConfigNode(t)
	t.Publish() // a version numbered after what the readers have seen
	s.store.Store(st)
	s.tree.Store(t)
	v := t.Published()
	s.view.Store(v)
	t.Visible(v)
	s.writes.nextZxid = t.Zxid() + 1
	s.resetSessions()
	if rec := st.Recovery(); rec.Replayed > 0 && !rec.Unsettled {
		s.snapshotInBackground()
	}
	return nil
}

// learnerLink is the connection to the leader while this server follows
// or observes it, nil otherwise.
func (p *peer) learnerLink() *follower {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fol
}

// serve lets clients in.
func (p *peer) serve(r role) {
	p.untrusted.Store(false)
	p.role.Store(int32(r))
	p.serving.Store(true)
	if since := p.unavailableSince.Swap(0); since != 0 {
		ms := time.Since(time.Unix(0, since)).Milliseconds()
		p.s.stats.unavailable.add(ms)
		if r == roleLeading {
			p.s.stats.leaderUnavailable.add(ms)
		}
	}
	p.s.log.Info("serving", "mode", p.mode(), "zxid", fmt.Sprintf("%#x", p.s.view.Load().Zxid()))
}

// takesClients reports whether clients may connect and the client port's
// four-letter words answer for the server: while it serves, unless it
// leads and leaderServes is no. serve sets the role before serving, and
// lookingAgain clears serving first, so the two never disagree here.
func (p *peer) takesClients() bool {
	return p.serving.Load() && (role(p.role.Load()) != roleLeading || p.s.cfg.LeaderServes)
}

// quorumOf reports whether ids include a quorum of the voters.
func (p *peer) quorumOf(ids []int64) bool { return p.quorum.ContainsIDs(ids) }

// packetConn reads quorum packets off one connection, through a buffer
// that holds the largest packet allowed, so that a SNAP's tree can be read
// from the same stream (wal.ReadSnapBody) between two packets.
type packetConn struct {
	c        net.Conn
	br       *bufio.Reader
	max      int
	deadline time.Time // the read deadline last set on c
	// at is when read last got bytes from c: when the bytes of the
	// packet it returned arrived, give or take one read from the
	// socket (a packet read from the buffer came in that read).
	at time.Time
	// slab is where read copies packets' data, many packets to one
	// allocation (see keep).
	slab []byte
}

// slabSize is the size of packetConn's slabs; data larger than a quarter
// of one gets an allocation of its own.
const slabSize = 64 << 10

// maxQuorumData bounds a quorum packet's data: ZooKeeper's jute.maxbuffer
// and its extra allowance for the packet around a txn.
const maxQuorumData = 4 << 20

func newPacketConn(c net.Conn) *packetConn {
	return &packetConn{c: c, br: bufio.NewReaderSize(c, maxQuorumData+64<<10), max: maxQuorumData}
}

// read returns the next packet, waiting at least d for it and at most an
// eighth more. A packet whose bytes are buffered already is returned
// without reading the clock: under load a read from the socket brings
// many, and the clock costs as much as the packet. Before a read from
// the socket, a deadline already within that span stays: setting one
// costs a timer update.
func (q *packetConn) read(d time.Duration) (wire.QuorumPacket, error) {
	var p wire.QuorumPacket
	for {
		if n := q.br.Buffered(); n > 0 {
			b, _ := q.br.Peek(n)
			used, err := wire.ReadQuorumPacket(&p, b, wire.Alias, q.max)
			if err != nil {
				return p, err
			}
			if used > 0 {
				// The packet points into the reader's buffer, which the
				// next read overwrites: it gets its own copy.
				p.Data = q.keep(p.Data)
				for i := range p.AuthInfo {
					p.AuthInfo[i].Scheme = strings.Clone(p.AuthInfo[i].Scheme)
					p.AuthInfo[i].ID = strings.Clone(p.AuthInfo[i].ID)
				}
				q.br.Discard(used)
				if q.at.IsZero() {
					// Bytes another reader of br took in (the quorum
					// authentication's): they came about now.
					q.at = time.Now()
				}
				return p, nil
			}
		}
		if want := time.Now().Add(d); q.deadline.Before(want) || q.deadline.After(want.Add(d/8)) {
			q.deadline = want.Add(d / 16)
			q.c.SetReadDeadline(q.deadline)
		}
		if _, err := q.br.Peek(q.br.Buffered() + 1); err != nil {
			return p, err
		}
		q.at = time.Now()
	}
}

// keep returns a copy of b in the connection's slab. A txn's data is
// copied once more by the log and the tree, and is soon garbage: one
// allocation for many packets costs the collector less than one each.
// The slab stays alive while any copy in it does; the copies of a
// connection die in about the order they were made.
func (q *packetConn) keep(b []byte) []byte {
	switch {
	case b == nil:
		return nil
	case len(b) == 0:
		return []byte{}
	case len(b) > slabSize/4:
		return bytes.Clone(b)
	}
	if cap(q.slab)-len(q.slab) < len(b) {
		q.slab = make([]byte, 0, slabSize)
	}
	n := len(q.slab)
	q.slab = append(q.slab, b...)
	return q.slab[n:len(q.slab):len(q.slab)]
}

// errNotReadOnlyClient closes a client that does not accept a read-only
// server, while this one is.
var errNotReadOnlyClient = errors.New("refusing a client that does not accept a read-only server: no quorum (readonlymode.enabled)")

// errNoQuorum is why a server in read-only mode refuses writes.
var errNoQuorum = errors.New("no quorum: serving reads only (readonlymode.enabled)")

// enterReadOnly starts serving reads while the election goes on.
func (p *peer) enterReadOnly() {
	p.roMu.Lock()
	defer p.roMu.Unlock()
	if role(p.role.Load()) != roleLooking || p.roServing.Load() {
		return
	}
	err := errNoQuorum
	if !p.s.readOnly.CompareAndSwap(nil, &err) {
		return // read-only already, for a full disk
	}
	p.roServing.Store(true)
	p.s.log.Warn("no quorum: serving reads only to clients that accept a read-only server (readonlymode.enabled)")
}

// leaveReadOnly ends read-only mode: its clients and their sessions, which
// were this server's own, go.
func (p *peer) leaveReadOnly() {
	p.roMu.Lock()
	defer p.roMu.Unlock()
	if !p.roServing.Load() {
		return
	}
	p.roServing.Store(false)
	if e := p.s.readOnly.Load(); e != nil && *e == errNoQuorum {
		p.s.readOnly.CompareAndSwap(e, nil)
	}
	for _, c := range p.s.connList() {
		c.close("")
	}
	p.s.writes.do(func() { p.s.resetSessions() })
	p.s.log.Info("leaving read-only mode")
}

// outbox is the sending side of a quorum-port connection: packets queued
// from any goroutine go out in order from one sender goroutine (run), a
// batch per write.
type outbox struct {
	c      net.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []wire.QuorumPacket
	closed bool
	// A leader's figures of the queue to one learner (nil elsewhere),
	// as ZooKeeper's LearnerHandler keeps them: the queue's size at
	// each packet the sender takes, and the time every 1,000th packet
	// queued waited (learner_handler_qp_size, _qp_time_ms); the bytes
	// queued and the packets sent (the observers command).
	qp          *learnerQueueStats
	queuedBytes int64
	queuedN     uint64
	markers     []time.Time // when the packets marked in queue were queued
	sent        atomic.Int64
}

// learnerQueueStats are a leader's summaries of its queue to one learner.
type learnerQueueStats struct {
	size summary
	time summary
	used atomic.Bool // a batch has gone out: mntr shows the learner
}

// markEvery is how often ZooKeeper's LearnerHandler marks a packet it
// queues, to time its wait in the queue: the first, then every 1,000th.
const markEvery = 1000

// queuedSize is a packet's size as ZooKeeper's LearnerHandler counts what
// it has queued: a fixed 28 bytes and the data.
func queuedSize(p *wire.QuorumPacket) int64 { return 28 + int64(len(p.Data)) }

func newOutbox(c net.Conn) *outbox {
	o := &outbox{c: c}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// send queues p for the sender.
func (o *outbox) send(p wire.QuorumPacket) {
	o.mu.Lock()
	o.queueLocked(p)
	o.mu.Unlock()
}

// queueLocked is send with o.mu held.
func (o *outbox) queueLocked(p wire.QuorumPacket) {
	if !o.closed {
		if o.qp != nil {
			if o.queuedN%markEvery == 0 {
				o.markers = append(o.markers, time.Now())
			}
			o.queuedN++
			o.queuedBytes += queuedSize(&p)
		}
		o.queue = append(o.queue, p)
		o.cond.Signal()
	}
}

// write sends p at once, before the sender runs (discovery), waiting at
// most d.
func (o *outbox) write(p wire.QuorumPacket, d time.Duration) error {
	o.c.SetWriteDeadline(time.Now().Add(d))
	_, err := o.c.Write(p.Append(nil))
	return err
}

// run is the sender: it writes what is queued, a batch at a time, each
// write bounded by limit, until the outbox closes or a write fails.
func (o *outbox) run(limit time.Duration) {
	var buf []byte
	var batch []wire.QuorumPacket
	for {
		o.mu.Lock()
		for len(o.queue) == 0 && !o.closed {
			o.cond.Wait()
		}
		if o.closed {
			o.mu.Unlock()
			return
		}
		batch, o.queue = o.queue, batch[:0]
		if o.qp != nil {
			// The sender takes the queue at once, where ZooKeeper's
			// takes a packet (or a marker) at a time and counts the
			// queue left behind it: n-1, n-2, … 0.
			n := int64(len(batch) + len(o.markers))
			o.qp.size.merge(ztree.NamespaceStat{Count: n, Sum: n * (n - 1) / 2, Min: 0, Max: n - 1})
			o.qp.size.res.put(n, func(i int64) int64 { return n - 1 - i })
			for _, at := range o.markers {
				o.qp.time.addSince(at)
			}
			o.markers = o.markers[:0]
			o.queuedBytes = 0
			o.qp.used.Store(true)
		}
		o.mu.Unlock()
		buf = buf[:0]
		for i := range batch {
			buf = batch[i].Append(buf)
			batch[i] = wire.QuorumPacket{}
		}
		o.c.SetWriteDeadline(time.Now().Add(limit))
		if _, err := o.c.Write(buf); err != nil {
			o.close()
			return
		}
		o.sent.Add(int64(len(batch)))
	}
}

// queued is what waits in the queue: packets, and bytes as ZooKeeper
// counts them (kept only for a leader's learners).
func (o *outbox) queued() (n int, bytes int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue), o.queuedBytes
}

// close closes the connection; what is queued is dropped.
func (o *outbox) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		o.c.Close()
		o.cond.Broadcast()
	}
	o.mu.Unlock()
}

func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}
