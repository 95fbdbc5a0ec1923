// Package electionport runs a server's election port: the connections to
// the other servers' election ports, as ZooKeeper 3.8 keeps them, carrying
// the notifications of zab/election, which decides.
//
// Between any two servers one connection survives, the one the higher id
// opened: a server dialing a higher id only says hello and hangs up, and
// the other dials back; a server answering a lower id's dial hangs up and
// dials back. Each peer has a send queue of one notification (a newer vote
// replaces an unsent older one), and the last notification sent is sent
// again when a connection comes back, as ZooKeeper does; duplicates are
// normal and harmless. Notification frames above 512 KB, hellos with an
// unknown protocol or a bad address length, and garbage close only the
// connection they came on.
package electionport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"zkd/internal/quorumsec"
	"zkd/wire"
	"zkd/zab/election"
	"zkd/zab/quorum"
)

// Peer is a server of the ensemble and its election address.
type Peer struct {
	ID   int64
	Addr string // host:port
}

// Config is a server's election port.
type Config struct {
	ID int64
	// Addr is where this server listens, and what its hellos announce.
	Addr string
	// ListenAddr, when set, is where it listens instead (":port" for
	// every address, as quorumListenOnAllIPs asks).
	ListenAddr string
	// Voters are the participants (this server among them, unless it is
	// an observer); Observers the others.
	Voters, Observers []Peer
	// Quorum says which sets of voters are quorums; nil: a majority.
	Quorum *quorum.Quorum
	// QuorumConfig is the committed config's text, sent in notifications.
	QuorumConfig string
	// ConnectTimeout bounds a dial (zookeeper.cnxTimeout: 5 s); HelloTimeout
	// the wait for an incoming connection's hello (tickTime × syncLimit).
	ConnectTimeout, HelloTimeout time.Duration
	// FinalizeWait is how long a vote a quorum holds must stand before
	// the server decides (election.Config's; 0 for ZooKeeper's 200 ms).
	FinalizeWait time.Duration
	// MinNotificationInterval and MaxNotificationInterval bound how long
	// the server waits for a notification before it sends its vote again
	// (fastleader.minNotificationInterval, fastleader.maxNotificationInterval);
	// 0 for ZooKeeper's 200 ms and 60 s.
	MinNotificationInterval, MaxNotificationInterval time.Duration
	// Security is the ensemble's TLS and SASL between servers; nil for
	// none.
	Security *quorumsec.Config
	Log      *slog.Logger
}

// Decision is an election's outcome.
type Decision struct {
	State wire.PeerState
	Vote  election.Vote
}

// Port is a running election port.
type Port struct {
	cfg   Config
	ln    net.Listener
	log   *slog.Logger
	start time.Time

	in   chan inbound  // notifications, to the loop
	do   chan func()   // work for the loop, which owns el
	done chan struct{} // closed by Close
	// dials is canceled by Close: a dial to a server that swallows
	// connection attempts would otherwise hold Close for ConnectTimeout.
	dials      context.Context
	cancelDial context.CancelFunc
	wg         sync.WaitGroup // every goroutine
	el         *election.Election
	wait       chan Decision // the Elect in progress; the loop's
	// looked is set by Look: the round it started, with the vote
	// lookedZxid and lookedEpoch, is the next Elect's if that Elect
	// votes the same; decided is that round's outcome once there is
	// one. The loop's.
	looked                  bool
	lookedZxid, lookedEpoch int64
	decided                 *Decision

	mu    sync.Mutex
	links map[int64]*link
}

type inbound struct {
	from int64
	n    wire.Notification
}

// Listen binds the election port and starts answering other servers;
// Elect runs an election.
func Listen(cfg Config) (*Port, error) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.HelloTimeout == 0 {
		cfg.HelloTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	listen := cfg.Addr
	if cfg.ListenAddr != "" {
		listen = cfg.ListenAddr
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("election port %s: %w", listen, err)
	}
	voters := make([]int64, 0, len(cfg.Voters))
	for _, v := range cfg.Voters {
		voters = append(voters, v.ID)
	}
	p := &Port{cfg: cfg, ln: ln, log: cfg.Log.With("myid", cfg.ID), start: time.Now(),
		in: make(chan inbound, 100), do: make(chan func()), done: make(chan struct{}),
		el: election.New(election.Config{ID: cfg.ID, Voters: voters, Quorum: cfg.Quorum, QuorumConfig: cfg.QuorumConfig, FinalizeWait: cfg.FinalizeWait,
			MinNotificationInterval: cfg.MinNotificationInterval, MaxNotificationInterval: cfg.MaxNotificationInterval}),
		links: map[int64]*link{}}
	p.dials, p.cancelDial = context.WithCancel(context.Background())
	for _, peer := range append(append([]Peer(nil), cfg.Voters...), cfg.Observers...) {
		if peer.ID != cfg.ID {
			p.links[peer.ID] = p.newLink(peer.ID, peer.Addr)
		}
	}
	p.wg.Add(2)
	go p.acceptLoop()
	go p.loop()
	return p, nil
}

// Addr is the address the port listens on.
func (p *Port) Addr() net.Addr { return p.ln.Addr() }

func (p *Port) now() time.Duration { return time.Since(p.start) }

// Elect runs an election with this server's log ending at lastZxid and its
// current epoch, and returns what it decided.
func (p *Port) Elect(ctx context.Context, lastZxid, currentEpoch int64) (Decision, error) {
	wait := make(chan Decision, 1)
	select {
	case p.do <- func() {
		if p.looked && lastZxid == p.lookedZxid && currentEpoch == p.lookedEpoch {
			// The round Look started goes on, with the same vote.
			// (A server whose log ended elsewhere than its vote
			// said, a stalled disk's, votes again in a new round:
			// a leader elected below its log would refuse it.)
			p.looked = false
			if d := p.decided; d != nil {
				p.decided = nil
				wait <- *d
				return
			}
			p.wait = wait
			return
		}
		p.looked, p.decided = false, nil
		p.wait = wait
		p.el.Start(p.now(), lastZxid, currentEpoch)
	}:
	case <-p.done:
		return Decision{}, net.ErrClosed
	}
	select {
	case d := <-wait:
		return d, nil
	case <-ctx.Done():
		return Decision{}, ctx.Err()
	case <-p.done:
		return Decision{}, net.ErrClosed
	}
}

// Look puts this server back to LOOKING at once, its vote the last zxid
// of its log and its current epoch, without waiting for a decision: a
// server that has left its role must not go on answering the others with
// the role it left while it gets ready to elect, or they may decide for a
// leader that no longer leads. The next Elect with the same vote takes
// this round over, and its outcome if it has one by then.
func (p *Port) Look(lastZxid, currentEpoch int64) {
	select {
	case p.do <- func() {
		p.looked, p.decided = true, nil
		p.lookedZxid, p.lookedEpoch = lastZxid, currentEpoch
		p.el.Start(p.now(), lastZxid, currentEpoch)
	}:
	case <-p.done:
	}
}

// SetPeerEpoch records the epoch this server synced to or established:
// LOOKING servers are told it from now on.
func (p *Port) SetPeerEpoch(epoch int64) {
	select {
	case p.do <- func() { p.el.SetPeerEpoch(epoch) }:
	case <-p.done:
	}
}

// Close stops the port and closes its connections.
func (p *Port) Close() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	close(p.done)
	p.cancelDial()
	err := p.ln.Close()
	p.mu.Lock()
	for _, l := range p.links {
		l.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// loop owns the election: every input and every timer goes through it.
func (p *Port) loop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-p.done:
			return
		case f := <-p.do:
			f()
		case m := <-p.in:
			p.el.Step(p.now(), m.from, m.n)
		case <-timer.C:
			p.el.Tick(p.now())
		}
		r := p.el.Ready()
		for _, m := range r.Messages {
			p.linkTo(m.To, "").send(m.N)
		}
		if r.Decided && p.wait != nil {
			p.wait <- Decision{State: r.State, Vote: r.Vote}
			p.wait = nil
		} else if r.Decided && p.looked && p.decided == nil {
			p.decided = &Decision{State: r.State, Vote: r.Vote}
		}
		wait := time.Hour
		if r.Deadline > 0 {
			wait = max(r.Deadline-p.now(), 0)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// linkTo returns the link to server id, made on first use; addr, when not
// empty, is where to dial it (from its hello).
func (p *Port) linkTo(id int64, addr string) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.links[id]
	if l == nil {
		l = p.newLink(id, addr)
		p.links[id] = l
	} else if addr != "" && l.addr == "" {
		l.addr = addr
	}
	return l
}

func (p *Port) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			p.log.Warn("election port: accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-p.done:
				return
			}
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.incoming(c)
		}()
	}
}

// incoming reads a connection's hello and keeps the connection if the
// server on the other end has the higher id.
func (p *Port) incoming(raw net.Conn) {
	from := raw.RemoteAddr().String()
	c, err := p.cfg.Security.Accept(raw, p.cfg.HelloTimeout)
	if err != nil {
		p.log.Warn("election port: refusing a connection", "peer", from, "err", err)
		return
	}
	c.SetDeadline(time.Now().Add(p.cfg.HelloTimeout))
	br := bufio.NewReaderSize(c, 4096)
	h, err := readHello(br)
	if err != nil {
		p.log.Warn("election port: closing a connection with a bad hello", "peer", from, "err", err)
		c.Close()
		return
	}
	if err := p.cfg.Security.Admit(br, c, from); err != nil {
		p.log.Warn("election port: refusing a server", "sid", h.ServerID, "peer", from, "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	switch {
	case h.ServerID == p.cfg.ID:
		p.log.Warn("election port: a connection claims this server's own id; check server.N lines", "peer", c.RemoteAddr().String())
		c.Close()
	case h.ServerID < p.cfg.ID:
		// The lower id hangs up after its hello; we call it back.
		c.Close()
		p.linkTo(h.ServerID, h.Addrs).dialBack()
	default:
		p.linkTo(h.ServerID, h.Addrs).adopt(c, br)
	}
}

// readHello reads a hello from r, refusing lengths ZooKeeper refuses.
func readHello(r *bufio.Reader) (wire.ElectionHello, error) {
	head := make([]byte, 20)
	if _, err := io.ReadFull(r, head[:8]); err != nil {
		return wire.ElectionHello{}, err
	}
	if v := int64(binary.BigEndian.Uint64(head)); v >= 0 {
		h, _, err := wire.DecodeElectionHello(head[:8])
		return h, err
	} else if v != wire.ElectionProtocolV1 && v != wire.ElectionProtocolV2 {
		_, _, err := wire.DecodeElectionHello(head[:8])
		return wire.ElectionHello{}, err // without waiting for more
	}
	if _, err := io.ReadFull(r, head[8:]); err != nil {
		return wire.ElectionHello{}, err
	}
	if _, _, err := wire.DecodeElectionHello(head); !errors.Is(err, wire.ErrShortRecord) {
		if err == nil {
			err = errors.New("hello with an empty address")
		}
		return wire.ElectionHello{}, err // the version or the length is wrong
	}
	b := make([]byte, 20+int(binary.BigEndian.Uint32(head[16:])))
	copy(b, head)
	if _, err := io.ReadFull(r, b[20:]); err != nil {
		return wire.ElectionHello{}, err
	}
	h, _, err := wire.DecodeElectionHello(b)
	return h, err
}

// readLoop hands the notifications a connection carries to the loop.
func (p *Port) readLoop(l *link, c net.Conn, r *bufio.Reader) {
	defer l.drop(c)
	var head [4]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		size := int32(binary.BigEndian.Uint32(head[:]))
		if size <= 0 || size > wire.MaxElectionMessage {
			p.log.Warn("election port: closing a connection sending a frame of bad length",
				"sid", l.id, "length", size)
			return
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		n, err := wire.DecodeNotification(b)
		if err != nil {
			p.log.Warn("election port: dropping a malformed notification", "sid", l.id, "err", err)
			continue // ZooKeeper skips it and reads on
		}
		select {
		case p.in <- inbound{from: l.id, n: n}:
		case <-p.done:
			return
		}
	}
}
