// Package zkclient is a small ZooKeeper client for zkd's own tools: one
// session over the wire package's records, with every request ZooKeeper
// 3.8 serves (getEphemerals, whoAmI, addWatch and removeWatches among
// them), every watch event handed to one function, as a Java client's
// default watcher gets them, and the session carried to another server of
// the list when its connection breaks.
//
// Requests may be made from several goroutines; each waits for its reply.
// A request whose connection breaks before its reply fails with
// wire.ErrConnectionLoss; once the session has expired every request fails
// with wire.ErrSessionExpired.
package zkclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"zkd/wire"
)

// Event is a watch event or a change of the session's state, as a Java
// client's watcher sees them: Type EventNone for the session's own.
type Event struct {
	Type  wire.EventType
	State wire.KeeperState
	Path  string // "" for the session's own events
	// After is how many replies the session had received when a watch
	// event came (Pending.Seq counts the same): it came after those.
	After uint64
	// Conn is the number of the connection a watch event came on,
	// counted from 1 for the session's first (Pending.Conn counts the
	// same): a server sends the events of its own connection only.
	Conn uint64
}

// ErrNotConnected is the error of a request made while the session has
// no connection: it was not sent, so it did not happen. It is a
// wire.ErrConnectionLoss too.
var ErrNotConnected = fmt.Errorf("zkclient: not connected, nothing sent: %w", wire.ErrConnectionLoss)

// StateClosed is the state of an Event that says the client closed the
// session (ZooKeeper 3.6+'s KeeperState.Closed).
const StateClosed wire.KeeperState = 7

// Conn is one session.
type Conn struct {
	servers []string
	timeout time.Duration // requested session timeout
	onEvent func(Event)

	mu       sync.Mutex
	nc       net.Conn // nil while disconnected
	server   int      // index in servers of the one connected or last tried
	xid      int32
	pending  map[int32]*call
	sid      int64
	passwd   []byte
	negot    time.Duration // negotiated session timeout
	lastZxid int64
	state    wire.KeeperState
	closed   bool
	closing  bool   // closeSession sent
	replies  uint64 // replies received
	conns    uint64 // connections made, the current one's number
	auth     []wire.AuthPacket
	watches  [5]map[string]bool // by kind, for setWatches after a reconnect
	writeMu  sync.Mutex
	done     chan struct{} // closed by Close
}

type call struct {
	op   wire.OpCode
	req  wire.Record
	resp wire.Record
	err  error
	zxid int64
	seq  uint64 // the reply's place among the session's
	conn uint64 // the connection it was sent on
	done chan struct{}
}

// Watch kinds, in SetWatches2's order.
const (
	watchData = iota
	watchExist
	watchChild
	watchPersistent
	watchRecursive
)

// Dial opens a session with the first server of servers (host:port) that
// accepts one, trying each in turn until timeout has passed, and returns
// once the session is established. onEvent, if not nil, is called for
// every watch event and change of the session's state, one at a time.
func Dial(servers []string, timeout time.Duration, onEvent func(Event)) (*Conn, error) {
	if len(servers) == 0 {
		return nil, errors.New("zkclient: no server to connect to")
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	c := &Conn{servers: servers, timeout: timeout, onEvent: onEvent, pending: map[int32]*call{},
		state: wire.StateDisconnected, done: make(chan struct{})}
	for i := range c.watches {
		c.watches[i] = map[string]bool{}
	}
	if err := c.connect(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	return c, nil
}

// SessionID is the session's id.
func (c *Conn) SessionID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid
}

// State is the session's state: SyncConnected, Disconnected while it
// looks for a server, Expired, AuthFailed or StateClosed.
func (c *Conn) State() wire.KeeperState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Server is the address of the server the session is on; while it has
// none, the one it was on last or, after a Hop, the one it tries next.
func (c *Conn) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[c.server]
}

// Hop drops the session's connection, as a fault of the network would,
// and carries the session to the next server of the list, as a client
// does whose server went away. The requests in flight fail with
// ErrConnectionLoss; the server left behind may still make the writes
// among them. Hop does nothing while the session has no connection, or
// when the list has one server.
func (c *Conn) Hop() {
	c.mu.Lock()
	nc := c.nc
	if nc == nil || c.closed || c.closing || len(c.servers) < 2 {
		c.mu.Unlock()
		return
	}
	c.server = (c.server + 1) % len(c.servers) // where connect starts
	c.mu.Unlock()
	nc.Close()
}

// connect finds a server that takes the session (a new one if there is
// none yet) before the deadline, then starts reading from it.
func (c *Conn) connect(deadline time.Time) error {
	var last error
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return wire.ErrConnectionLoss
		}
		i := (c.server + attempt) % len(c.servers)
		if attempt == 0 && c.nc == nil && c.sid == 0 {
			i = 0
		}
		req := wire.ConnectRequest{LastZxidSeen: c.lastZxid, TimeOut: int32(c.timeout.Milliseconds()),
			SessionID: c.sid, Passwd: c.passwd, HasReadOnly: true}
		if req.Passwd == nil {
			req.Passwd = make([]byte, 16)
		}
		c.mu.Unlock()
		// Each server gets its share of the time, as a Java client's
		// connect timeout: a paused one must not keep the session from
		// the others.
		try := time.Now().Add(max(time.Second, c.timeout/time.Duration(len(c.servers))))
		if try.After(deadline) {
			try = deadline
		}
		nc, resp, err := handshake(c.servers[i], &req, try)
		if err == nil && resp.TimeOut <= 0 {
			nc.Close()
			c.setState(wire.StateExpired)
			return wire.ErrSessionExpired
		}
		if err == nil {
			// The auth and the watches go out first: no request may
			// overtake them, or a read could see a change before the
			// watch that should have announced it is set again.
			c.writeMu.Lock()
			c.mu.Lock()
			c.nc, c.server = nc, i
			c.conns++
			c.sid, c.passwd = resp.SessionID, resp.Passwd
			c.negot = time.Duration(resp.TimeOut) * time.Millisecond
			c.mu.Unlock()
			c.restore(nc)
			c.writeMu.Unlock()
			go c.read(nc)
			c.setState(wire.StateSyncConnected)
			go c.ping(nc)
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("zkclient: no session with %v: %w", c.servers, last)
		}
		if (attempt+1)%len(c.servers) == 0 {
			select { // a round of every server failed: a pause before the next
			case <-time.After(200 * time.Millisecond):
			case <-c.done:
				return wire.ErrConnectionLoss
			}
		}
	}
}

// handshake connects to addr and exchanges the connect request and
// response.
func handshake(addr string, req *wire.ConnectRequest, deadline time.Time) (net.Conn, *wire.ConnectResponse, error) {
	d := net.Dialer{Deadline: deadline}
	if t := time.Until(deadline); t < time.Second {
		d.Deadline = time.Now().Add(time.Second)
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(d.Deadline)
	if _, err := nc.Write(frame(req.Append(make([]byte, 4, 64)))); err != nil {
		nc.Close()
		return nil, nil, err
	}
	body, err := readFrame(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	var resp wire.ConnectResponse
	if _, err := resp.Decode(body, wire.Copy); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("zkclient: %s answered the connect request with %w", addr, err)
	}
	nc.SetDeadline(time.Time{})
	return nc, &resp, nil
}

// frame fills in the length prefix of b, whose first 4 bytes are for it.
func frame(b []byte) []byte {
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(n[:]))
	if size < 0 || size > 64<<20 {
		return nil, fmt.Errorf("zkclient: a frame of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

// restore sends, on a new connection of a session, the auth it had and
// the watches it had set. The caller holds writeMu.
func (c *Conn) restore(nc net.Conn) {
	c.mu.Lock()
	auth := append([]wire.AuthPacket(nil), c.auth...)
	// Empty lists, never null ones, as the Java client sends: Apache
	// ZooKeeper 3.8.0 fails a setWatches with a null list
	// (NullPointerException) and sets none of its watches.
	sw := wire.SetWatches2{RelativeZxid: c.lastZxid, DataWatches: []string{}, ExistWatches: []string{},
		ChildWatches: []string{}, PersistentWatches: []string{}, PersistentRecursiveWatches: []string{}}
	lists := []*[]string{&sw.DataWatches, &sw.ExistWatches, &sw.ChildWatches, &sw.PersistentWatches, &sw.PersistentRecursiveWatches}
	any := false
	for kind, set := range c.watches {
		for p := range set {
			*lists[kind] = append(*lists[kind], p)
			any = true
		}
	}
	c.mu.Unlock()
	for i := range auth {
		c.write(nc, wire.XidAuth, wire.OpAuth, &auth[i])
	}
	switch {
	case len(sw.PersistentWatches)+len(sw.PersistentRecursiveWatches) > 0:
		c.write(nc, wire.XidSetWatches, wire.OpSetWatches2, &sw)
	case any:
		c.write(nc, wire.XidSetWatches, wire.OpSetWatches, &wire.SetWatches{RelativeZxid: sw.RelativeZxid,
			DataWatches: sw.DataWatches, ExistWatches: sw.ExistWatches, ChildWatches: sw.ChildWatches})
	}
}

func (c *Conn) send(nc net.Conn, xid int32, op wire.OpCode, req wire.Record) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.write(nc, xid, op, req)
}

// write sends one request; the caller holds writeMu.
func (c *Conn) write(nc net.Conn, xid int32, op wire.OpCode, req wire.Record) error {
	b := make([]byte, 4, 128)
	hdr := wire.RequestHeader{Xid: xid, Type: op}
	b = hdr.Append(b)
	if req != nil {
		b = req.Append(b)
	}
	_, err := nc.Write(frame(b))
	return err
}

// ping keeps the session alive: a ping a third of the negotiated timeout
// after the last, for as long as nc is the session's connection.
func (c *Conn) ping(nc net.Conn) {
	for {
		c.mu.Lock()
		every := c.negot / 3
		c.mu.Unlock()
		select {
		case <-time.After(every):
		case <-c.done:
			return
		}
		c.mu.Lock()
		current := c.nc == nc
		c.mu.Unlock()
		if !current || c.send(nc, wire.XidPing, wire.OpPing, nil) != nil {
			return
		}
	}
}

// read reads nc's replies and events until it breaks, then looks for
// another server for the session.
func (c *Conn) read(nc net.Conn) {
	var err error
loop:
	for {
		// No word from the server for two thirds of the timeout means
		// it is gone (pings go out every third).
		c.mu.Lock()
		nc.SetReadDeadline(time.Now().Add(c.negot * 2 / 3))
		c.mu.Unlock()
		var body []byte
		if body, err = readFrame(nc); err != nil {
			break
		}
		var hdr wire.ReplyHeader
		n, derr := hdr.Decode(body, wire.Copy)
		if derr != nil {
			err = derr
			break
		}
		body = body[n:]
		if hdr.Zxid > 0 {
			c.mu.Lock()
			if hdr.Zxid > c.lastZxid {
				c.lastZxid = hdr.Zxid
			}
			c.mu.Unlock()
		}
		switch hdr.Xid {
		case wire.XidPing, wire.XidSetWatches:
			continue
		case wire.XidAuth:
			if hdr.Err == wire.ErrAuthFailed {
				c.setState(wire.StateAuthFailed)
				err = wire.ErrAuthFailed
			}
			continue
		case wire.XidNotification:
			var ev wire.WatcherEvent
			if _, derr := ev.Decode(body, wire.Copy); derr != nil {
				err = derr
				break loop
			}
			c.fired(ev)
			continue
		}
		c.mu.Lock()
		cl := c.pending[hdr.Xid]
		delete(c.pending, hdr.Xid)
		c.replies++
		seq := c.replies
		c.mu.Unlock()
		if cl == nil {
			err = fmt.Errorf("zkclient: a reply for xid %d, which is not waiting", hdr.Xid)
			break
		}
		cl.zxid, cl.seq = hdr.Zxid, seq
		if hdr.Err != wire.ErrOK {
			cl.err = hdr.Err
		} else if cl.resp != nil {
			if _, derr := cl.resp.Decode(body, wire.Copy); derr != nil {
				cl.err = derr
			}
		}
		// The watch is noted before anyone hears of the reply, and
		// before this goroutine could reconnect: a new connection must
		// set it again.
		if cl.err == nil || (cl.op == wire.OpExists && cl.err == wire.ErrNoNode) {
			c.noteWatch(cl.op, cl.req, cl.err == nil)
		}
		close(cl.done)
	}
	nc.Close()
	c.mu.Lock()
	if c.nc != nc {
		c.mu.Unlock()
		return
	}
	c.nc = nil
	failed := c.pending
	c.pending = map[int32]*call{}
	closed := c.closed || c.closing
	negot := c.negot
	c.mu.Unlock()
	for _, cl := range failed {
		cl.err = wire.ErrConnectionLoss
		close(cl.done)
	}
	if closed || errors.Is(err, wire.ErrAuthFailed) {
		return
	}
	c.setState(wire.StateDisconnected)
	// The session lives for its timeout after the last word from the
	// server; past that another server would call it expired.
	if err := c.connect(time.Now().Add(negot)); err != nil && !errors.Is(err, wire.ErrSessionExpired) {
		c.setState(wire.StateExpired)
	}
}

// fired hands a watch event on, forgetting the one-shot watches it ends.
func (c *Conn) fired(ev wire.WatcherEvent) {
	c.mu.Lock()
	switch ev.Type {
	case wire.EventNodeCreated, wire.EventNodeDataChanged:
		delete(c.watches[watchData], ev.Path)
		delete(c.watches[watchExist], ev.Path)
	case wire.EventNodeDeleted:
		delete(c.watches[watchData], ev.Path)
		delete(c.watches[watchExist], ev.Path)
		delete(c.watches[watchChild], ev.Path)
	case wire.EventNodeChildrenChanged:
		delete(c.watches[watchChild], ev.Path)
	}
	after, conn := c.replies, c.conns
	c.mu.Unlock()
	c.onEvent(Event{Type: ev.Type, State: ev.State, Path: ev.Path, After: after, Conn: conn})
}

func (c *Conn) setState(s wire.KeeperState) {
	c.mu.Lock()
	if c.state == s || ((c.closed || c.closing) && s != StateClosed) {
		c.mu.Unlock()
		return
	}
	c.state = s
	c.mu.Unlock()
	c.onEvent(Event{Type: wire.EventNone, State: s})
}

// Close closes the session and the connection. It returns nil when the
// server acknowledged the session's close (its ephemerals are gone then),
// an error when it could not be asked or did not answer.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return wire.ErrConnectionLoss
	}
	nc := c.nc
	c.mu.Unlock()
	err := error(ErrNotConnected)
	if nc != nil {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		err = c.Call(wire.OpCloseSession, nil, nil)
	}
	c.mu.Lock()
	c.closed = true
	nc = c.nc
	c.mu.Unlock()
	close(c.done)
	if nc != nil {
		nc.Close()
	}
	c.setState(StateClosed)
	return err
}

// Call sends a request of type op with body req (nil for none) and waits
// for its reply, decoded into resp (nil for none). A refusal comes back
// as a wire.ErrCode.
func (c *Conn) Call(op wire.OpCode, req, resp wire.Record) error {
	_, err := c.CallZxid(op, req, resp)
	return err
}

// CallZxid is Call that also returns the zxid of the reply's header.
func (c *Conn) CallZxid(op wire.OpCode, req, resp wire.Record) (int64, error) {
	p, err := c.Send(op, req, resp)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// Pending is a request sent and not answered yet.
type Pending struct{ cl *call }

// Send sends a request without waiting for its reply: a session's
// requests are sent in the order of the calls to Send, and the server
// answers them in that order. The error is that of a request that could
// not be sent (ErrNotConnected, ErrSessionExpired, ErrAuthFailed).
func (c *Conn) Send(op wire.OpCode, req, resp wire.Record) (*Pending, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	switch {
	case c.state == wire.StateExpired:
		c.mu.Unlock()
		return nil, wire.ErrSessionExpired
	case c.state == wire.StateAuthFailed:
		c.mu.Unlock()
		return nil, wire.ErrAuthFailed
	case c.closed || c.nc == nil:
		c.mu.Unlock()
		return nil, ErrNotConnected
	}
	c.xid++
	if c.xid <= 0 {
		c.xid = 1
	}
	xid, nc := c.xid, c.nc
	cl := &call{op: op, req: req, resp: resp, conn: c.conns, done: make(chan struct{})}
	c.pending[xid] = cl
	c.mu.Unlock()
	if err := c.write(nc, xid, op, req); err != nil {
		nc.Close() // the reader fails the call and reconnects
	}
	return &Pending{cl: cl}, nil
}

// Wait waits for the reply and returns its header's zxid and the error:
// a wire.ErrCode for a refusal, wire.ErrConnectionLoss when the
// connection broke first.
func (p *Pending) Wait() (int64, error) {
	<-p.cl.done
	return p.cl.zxid, p.cl.err
}

// Seq is the reply's place among the session's replies, counted from 1
// since the session began (0 for a request its connection failed): a
// session's replies arrive in the order of their requests.
func (p *Pending) Seq() uint64 {
	<-p.cl.done
	return p.cl.seq
}

// Conn is the number of the connection the request was sent on, counted
// from 1 for the session's first: its reply, if any, came on it.
func (p *Pending) Conn() uint64 { return p.cl.conn }

// noteWatch remembers the watch a successful request set, to set it again
// on another server. An exists that found its znode set a data watch
// there, and is remembered as one, as the Java client remembers it: sent
// again as an exist watch, the next server would answer it with a
// NodeCreated event for a znode that was there all along, and keep no
// watch.
func (c *Conn) noteWatch(op wire.OpCode, req wire.Record, found bool) {
	kind := -1
	path := ""
	switch r := req.(type) {
	case *wire.PathWatchRequest:
		if !r.Watch {
			return
		}
		path = r.Path
		switch op {
		case wire.OpGetData:
			kind = watchData
		case wire.OpExists:
			kind = watchExist
			if found {
				kind = watchData
			}
		case wire.OpGetChildren, wire.OpGetChildren2:
			kind = watchChild
		}
	case *wire.AddWatchRequest:
		path, kind = r.Path, watchPersistent
		if r.Mode == wire.AddWatchPersistentRecursive {
			kind = watchRecursive
		}
	case *wire.AuthPacket:
		c.mu.Lock()
		c.auth = append(c.auth, *r)
		c.mu.Unlock()
		return
	}
	if kind < 0 {
		return
	}
	c.mu.Lock()
	c.watches[kind][path] = true
	c.mu.Unlock()
}

// AddAuth sends an auth packet and waits until the server has taken it.
// A refused one fails the session, as ZooKeeper closes it.
func (c *Conn) AddAuth(scheme string, auth []byte) error {
	pkt := wire.AuthPacket{Scheme: scheme, Auth: auth}
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc == nil {
		return wire.ErrConnectionLoss
	}
	if err := c.send(nc, wire.XidAuth, wire.OpAuth, &pkt); err != nil {
		return wire.ErrConnectionLoss
	}
	c.noteWatch(wire.OpAuth, &pkt, true)
	// The server answers in order: a reply to a later request means
	// the auth was taken; an AuthFailed state means it was not.
	err := c.Call(wire.OpExists, &wire.PathWatchRequest{Path: "/"}, &wire.StatResponse{})
	if c.State() == wire.StateAuthFailed {
		return wire.ErrAuthFailed
	}
	return err
}
