package electionport

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"zkd/internal/quorumsec"
	"zkd/wire"
)

// link is this server's side of its connection to one other server.
type link struct {
	p  *Port
	id int64

	mu   sync.Mutex
	addr string   // where to dial it; from the config or its hello
	conn net.Conn // the surviving connection, if any
	// pending is the send queue: one notification, the newest. last is
	// the last one written, sent again when a connection comes back.
	pending, last *wire.Notification
	wantConn      bool // dial even with nothing to send (to call a lower id back)
	wake          chan struct{}
}

func (p *Port) newLink(id int64, addr string) *link {
	l := &link{p: p, id: id, addr: addr, wake: make(chan struct{}, 1)}
	select {
	case <-p.done:
		return l // the port is closed: a link that sends nothing
	default:
	}
	p.wg.Add(1)
	go l.sendLoop()
	return l
}

func (l *link) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// send queues n in place of whatever was not sent yet.
func (l *link) send(n wire.Notification) {
	l.mu.Lock()
	l.pending = &n
	l.mu.Unlock()
	l.kick()
}

// dialBack connects to a lower id that dialed us and hung up.
func (l *link) dialBack() {
	l.mu.Lock()
	l.wantConn = true
	l.mu.Unlock()
	l.kick()
}

// sendLoop writes the queue out, connecting first when there is no
// connection. A failed dial is not retried by itself: the election sends
// again on its own timer, and that retries.
func (l *link) sendLoop() {
	defer l.p.wg.Done()
	for {
		select {
		case <-l.wake:
		case <-l.p.done:
			return
		}
		l.mu.Lock()
		c, n, want := l.conn, l.pending, l.wantConn
		l.wantConn = false
		l.mu.Unlock()
		if c == nil && (n != nil || want) {
			c = l.dial()
		}
		if c == nil || n == nil {
			continue
		}
		frame := wire.AppendFrame(nil, n.Append(nil))
		c.SetWriteDeadline(time.Now().Add(l.p.cfg.ConnectTimeout))
		if _, err := c.Write(frame); err != nil {
			l.p.log.Debug("election port: write failed", "sid", l.id, "err", err)
			l.drop(c)
			continue
		}
		l.mu.Lock()
		if l.pending == n {
			l.pending = nil
		}
		l.last = n
		again := l.pending != nil
		l.mu.Unlock()
		if again {
			l.kick()
		}
	}
}

// dial opens a connection and says hello. To a higher id that is all: it
// hangs up and waits to be called back. To a lower id the connection
// stays and is returned.
func (l *link) dial() net.Conn {
	l.mu.Lock()
	addr := l.addr
	l.mu.Unlock()
	if addr == "" {
		l.p.log.Debug("election port: no address to dial", "sid", l.id)
		return nil
	}
	c, err := l.p.cfg.Security.Dial(l.p.dials, addr, l.p.cfg.ConnectTimeout)
	if err != nil {
		if errors.Is(err, quorumsec.ErrRefused) {
			l.p.log.Warn("election port: cannot connect securely", "sid", l.id, "addr", addr, "err", err)
		} else {
			l.p.log.Debug("election port: cannot connect", "sid", l.id, "addr", addr, "err", err)
		}
		return nil
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	hello := wire.ElectionHello{Protocol: wire.ElectionProtocolV1, ServerID: l.p.cfg.ID, Addrs: l.p.announce()}
	c.SetDeadline(time.Now().Add(l.p.cfg.ConnectTimeout))
	// One write: ZooKeeper reads the address with a single read.
	if _, err := c.Write(hello.Append(nil)); err != nil {
		c.Close()
		return nil
	}
	// The quorum SASL exchange follows the hello, whoever keeps the
	// connection.
	if err := l.p.cfg.Security.Learn(c, addr); err != nil {
		l.p.log.Warn("election port: quorum authentication failed", "sid", l.id, "addr", addr, "err", err)
		c.Close()
		return nil
	}
	if l.p.cfg.ID < l.id {
		c.Close()
		return nil
	}
	c.SetDeadline(time.Time{})
	l.adopt(c, bufio.NewReaderSize(c, 4096))
	return c
}

// announce is the election address this server's hellos give.
func (p *Port) announce() string {
	host, port, err := net.SplitHostPort(p.cfg.Addr)
	if err == nil && port == "0" {
		return net.JoinHostPort(host, strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port))
	}
	return p.cfg.Addr
}

// adopt makes c the link's connection, closing any other, and starts
// reading it. The last notification sent goes again if nothing newer
// waits.
func (l *link) adopt(c net.Conn, r *bufio.Reader) {
	l.mu.Lock()
	select {
	case <-l.p.done:
		// Close has closed (or is closing) every link's connection; a
		// connection made meanwhile must not outlive it.
		l.mu.Unlock()
		c.Close()
		return
	default:
	}
	old := l.conn
	l.conn = c
	if l.pending == nil {
		l.pending = l.last
	}
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	l.p.wg.Add(1)
	go func() {
		defer l.p.wg.Done()
		l.p.readLoop(l, c, r)
	}()
	l.kick()
}

// drop closes c, and forgets it if it is still the link's connection.
func (l *link) drop(c net.Conn) {
	l.mu.Lock()
	if l.conn == c {
		l.conn = nil
	}
	l.mu.Unlock()
	c.Close()
}

func (l *link) close() {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
