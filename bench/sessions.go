package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"zkd/wire"
)

// The connection-count workloads: what a server pays for many mostly idle
// sessions (memory, goroutines or threads, ping latency), and whether one
// busy client can slow everyone else's pings. Each session speaks the
// raw protocol over its own socket, as a real client's connection would.

// SessionsConfig is a run of HoldSessions.
type SessionsConfig struct {
	Server   string        // host:port
	PID      int           // the server's process, for its memory; 0 when unknown
	Sessions int           // how many to open and hold
	Timeout  time.Duration // the session timeout asked for; each pings at a third of it
	Hold     time.Duration // how long to hold them all, pinging, before measuring
	// Sources spreads the connections over this many loopback source
	// addresses (127.0.0.1, 127.0.0.2, …): one address has about 28,000
	// ephemeral ports.
	Sources  int
	Root     string    // each session makes an ephemeral under it; created, and removed at the end
	Progress io.Writer // a live line per phase; nil for none
}

// SessionsResult is what HoldSessions measured.
type SessionsResult struct {
	Server     string        `json:"server"`
	Sessions   int           `json:"sessions"`
	ConnectFor time.Duration `json:"connect_ns"` // until every session had its ephemeral and watch
	// Resident memory before the sessions, and after holding them; 0
	// when the server's process is unknown.
	RSSBefore  int64 `json:"rss_before_bytes"`
	RSSHeld    int64 `json:"rss_held_bytes"`
	PerSession int64 `json:"rss_per_session_bytes"`
	// The pings' round trips while held.
	Pings                    uint64        `json:"pings"`
	PingP50, PingP99, PingMx time.Duration `json:"-"`
}

// ResidentMemory is a process's resident memory now (VmRSS), in bytes.
func ResidentMemory(pid int) int64 { return procMemory(pid, "VmRSS:") }

// HoldSessions opens cfg.Sessions sessions, each with one ephemeral znode
// and one exists watch, pings each at a third of its timeout, holds them
// for cfg.Hold, and measures the server's memory and the pings.
func HoldSessions(cfg SessionsConfig) (*SessionsResult, error) {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 10000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Sources <= 0 {
		cfg.Sources = 1
	}
	if cfg.Root == "" {
		cfg.Root = "/zkbench-sessions"
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	admin, err := dialSession(cfg.Server, nil, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	defer admin.close()
	if code, err := admin.call(wire.OpCreate, &wire.CreateRequest{Path: cfg.Root, ACL: openACL}); err != nil ||
		(code != wire.ErrOK && code != wire.ErrNodeExists) {
		return nil, fmt.Errorf("bench: creating %s: %v %v", cfg.Root, code, err)
	}
	res := &SessionsResult{Server: cfg.Server, Sessions: cfg.Sessions}
	if cfg.PID != 0 {
		time.Sleep(time.Second) // let the start-up's garbage settle
		res.RSSBefore = ResidentMemory(cfg.PID)
	}

	stop := make(chan struct{})
	var (
		wg        sync.WaitGroup
		connected atomic.Int64
		failed    atomic.Int64
		firstErr  atomic.Pointer[error]
		histMu    sync.Mutex
		hist      Histogram
	)
	start := time.Now()
	sem := make(chan struct{}, 64) // connections being opened at once
	for i := 0; i < cfg.Sessions; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local *net.TCPAddr
			if cfg.Sources > 1 {
				local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%cfg.Sources))}
			}
			s, err := dialSession(cfg.Server, local, cfg.Timeout)
			if err == nil {
				err = s.setUp(cfg.Root, i)
			}
			<-sem
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				if s != nil {
					s.close()
				}
				return
			}
			defer s.close()
			connected.Add(1)
			var h Histogram
			s.pingUntil(stop, cfg.Timeout/3, &h)
			histMu.Lock()
			hist.Merge(&h)
			histMu.Unlock()
		}()
		if i%500 == 0 {
			fmt.Fprintf(progress, "\rconnecting: %d/%d sessions", connected.Load(), cfg.Sessions)
		}
	}
	for connected.Load()+failed.Load() < int64(cfg.Sessions) {
		fmt.Fprintf(progress, "\rconnecting: %d/%d sessions", connected.Load(), cfg.Sessions)
		time.Sleep(100 * time.Millisecond)
	}
	res.ConnectFor = time.Since(start)
	if e := firstErr.Load(); e != nil {
		close(stop)
		wg.Wait()
		return nil, fmt.Errorf("bench: %d of %d sessions failed; the first: %w", failed.Load(), cfg.Sessions, *e)
	}
	held := time.Now()
	for time.Since(held) < cfg.Hold {
		fmt.Fprintf(progress, "\rholding %d sessions: %v/%v   ", cfg.Sessions, time.Since(held).Round(time.Second), cfg.Hold)
		time.Sleep(min(time.Second, cfg.Hold-time.Since(held)+time.Millisecond))
	}
	fmt.Fprintf(progress, "\r%60s\r", "")
	if cfg.PID != 0 {
		res.RSSHeld = ResidentMemory(cfg.PID)
		res.PerSession = (res.RSSHeld - res.RSSBefore) / int64(cfg.Sessions)
	}
	close(stop)
	wg.Wait()
	res.Pings = hist.Count()
	res.PingP50, res.PingP99, res.PingMx = hist.Quantile(0.5), hist.Quantile(0.99), hist.Max()
	// The ephemerals went with their sessions; the root goes too.
	admin.call(wire.OpDelete, &wire.DeleteRequest{Path: cfg.Root, Version: -1})
	return res, nil
}

// rawSession is one session over a blocking socket: a request, then its
// reply, skipping watch events.
type rawSession struct {
	nc  net.Conn
	xid int32
	buf []byte
}

func dialSession(addr string, local *net.TCPAddr, timeout time.Duration) (*rawSession, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &rawSession{nc: nc, buf: make([]byte, 0, 128)}
	req := wire.ConnectRequest{TimeOut: int32(timeout / time.Millisecond), Passwd: make([]byte, 16)}
	if err := s.send(req.Append(nil)); err != nil {
		nc.Close()
		return nil, err
	}
	body, err := s.frame()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	var resp wire.ConnectResponse
	if _, err := resp.Decode(body, wire.Copy); err != nil || resp.TimeOut <= 0 {
		nc.Close()
		return nil, fmt.Errorf("handshake refused (%v)", err)
	}
	return s, nil
}

// close ends the session, as a client's close does (its ephemerals go at
// once, not at its timeout), and the connection.
func (s *rawSession) close() {
	s.call(wire.OpCloseSession, nil)
	s.nc.Close()
}

func (s *rawSession) send(payload []byte) error {
	s.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := s.nc.Write(wire.AppendFrame(s.buf[:0], payload))
	return err
}

// frame reads one frame's payload.
func (s *rawSession) frame() ([]byte, error) {
	s.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(s.nc, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("a frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(s.nc, b)
	return b, err
}

// call sends one request and returns its reply's code.
func (s *rawSession) call(op wire.OpCode, body wire.Record) (wire.ErrCode, error) {
	s.xid++
	xid := s.xid
	if op == wire.OpPing {
		xid = wire.XidPing
	}
	p := (&wire.RequestHeader{Xid: xid, Type: op}).Append(nil)
	if body != nil {
		p = body.Append(p)
	}
	if err := s.send(p); err != nil {
		return 0, err
	}
	for {
		f, err := s.frame()
		if err != nil {
			return 0, err
		}
		var h wire.ReplyHeader
		if _, err := h.Decode(f, wire.Alias); err != nil {
			return 0, err
		}
		if h.Xid == wire.XidNotification {
			continue
		}
		if h.Xid != xid {
			return 0, fmt.Errorf("reply to xid %d, want %d", h.Xid, xid)
		}
		return h.Err, nil
	}
}

// setUp makes session i's ephemeral and sets its exists watch.
func (s *rawSession) setUp(root string, i int) error {
	code, err := s.call(wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("%s/e%d", root, i), ACL: openACL, Flags: 1})
	if err != nil || code != wire.ErrOK {
		return fmt.Errorf("create: %v %v", code, err)
	}
	code, err = s.call(wire.OpExists, &wire.PathWatchRequest{Path: fmt.Sprintf("%s/w%d", root, i), Watch: true})
	if err != nil || code != wire.ErrNoNode {
		return fmt.Errorf("exists: %v %v", code, err)
	}
	return nil
}

// pingUntil pings every interval (the first after a random part of it,
// so the sessions' pings spread out) until stop closes.
func (s *rawSession) pingUntil(stop <-chan struct{}, interval time.Duration, h *Histogram) {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(interval))))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		start := time.Now()
		if _, err := s.call(wire.OpPing, nil); err != nil {
			return
		}
		h.Record(time.Since(start))
		t.Reset(interval)
	}
}

// FairnessConfig is a run of Fairness.
type FairnessConfig struct {
	Server   string
	Pipeline int           // getData requests the busy client keeps in flight
	Others   int           // clients that only ping
	Every    time.Duration // how often each of them pings
	Duration time.Duration
	DataSize int
	Progress io.Writer
}

// FairnessResult is the others' ping round trips while the busy client
// pipelines, and how much it got done.
type FairnessResult struct {
	Server                   string        `json:"server"`
	Pings                    uint64        `json:"pings"`
	PingP50, PingP99, PingMx time.Duration `json:"-"`
	BusyOps                  float64       `json:"busy_ops_per_sec"`
}

// Fairness runs one client that keeps cfg.Pipeline getData requests in
// flight while cfg.Others clients ping, and measures their pings.
func Fairness(cfg FairnessConfig) (*FairnessResult, error) {
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = 10000
	}
	if cfg.Others <= 0 {
		cfg.Others = 100
	}
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Millisecond
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	const path = "/zkbench-fairness"
	admin, err := dialSession(cfg.Server, nil, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer admin.close()
	if code, err := admin.call(wire.OpCreate, &wire.CreateRequest{Path: path, Data: make([]byte, cfg.DataSize), ACL: openACL}); err != nil ||
		(code != wire.ErrOK && code != wire.ErrNodeExists) {
		return nil, fmt.Errorf("bench: creating %s: %v %v", path, code, err)
	}
	defer admin.call(wire.OpDelete, &wire.DeleteRequest{Path: path, Version: -1})

	busy, err := dialSession(cfg.Server, nil, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer busy.nc.Close() // its reader is still reading: no closeSession
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var done atomic.Int64
	var busyErr error
	wg.Add(2)
	// The busy client: a writer keeps Pipeline requests in flight, a
	// reader counts the replies.
	sent := make(chan struct{}, cfg.Pipeline)
	go func() {
		defer wg.Done()
		req := (&wire.RequestHeader{Xid: 1, Type: wire.OpGetData}).Append(nil)
		req = (&wire.PathWatchRequest{Path: path}).Append(req)
		frame := wire.AppendFrame(nil, req)
		batch := make([]byte, 0, 64*len(frame))
		for {
			batch = batch[:0]
			for len(batch) < cap(batch) {
				select {
				case sent <- struct{}{}:
					batch = append(batch, frame...)
					continue
				case <-stop:
					return
				default:
				}
				break
			}
			if len(batch) == 0 {
				select {
				case sent <- struct{}{}:
					batch = append(batch, frame...)
				case <-stop:
					return
				}
			}
			busy.nc.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := busy.nc.Write(batch); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1<<20)
		have := 0
		for {
			busy.nc.SetReadDeadline(time.Now().Add(time.Minute))
			n, err := busy.nc.Read(buf[have:])
			if err != nil {
				select {
				case <-stop:
				default:
					busyErr = err
				}
				return
			}
			have += n
			off := 0
			for have-off >= 4 {
				size := int(binary.BigEndian.Uint32(buf[off:]))
				if have-off < 4+size {
					break
				}
				off += 4 + size
				done.Add(1)
				<-sent
			}
			have = copy(buf, buf[off:have])
		}
	}()
	var histMu sync.Mutex
	var hist Histogram
	var others sync.WaitGroup
	for i := 0; i < cfg.Others; i++ {
		s, err := dialSession(cfg.Server, nil, 30*time.Second)
		if err != nil {
			close(stop)
			busy.nc.Close() // its reader is still reading: no closeSession
			wg.Wait()
			others.Wait()
			return nil, err
		}
		others.Add(1)
		go func() {
			defer others.Done()
			defer s.close()
			var h Histogram
			s.pingUntil(stop, cfg.Every, &h)
			histMu.Lock()
			hist.Merge(&h)
			histMu.Unlock()
		}()
	}
	start := time.Now()
	startOps := done.Load()
	for time.Since(start) < cfg.Duration {
		fmt.Fprintf(progress, "\rfairness: %v/%v, busy client %d ops   ", time.Since(start).Round(time.Second), cfg.Duration, done.Load()-startOps)
		time.Sleep(min(time.Second, cfg.Duration-time.Since(start)+time.Millisecond))
	}
	fmt.Fprintf(progress, "\r%60s\r", "")
	ops := done.Load() - startOps
	took := time.Since(start)
	close(stop)
	others.Wait()
	busy.nc.Close() // its reader is still reading: no closeSession
	wg.Wait()
	if busyErr != nil && !errors.Is(busyErr, net.ErrClosed) {
		return nil, fmt.Errorf("bench: the busy client: %w", busyErr)
	}
	return &FairnessResult{Server: cfg.Server, Pings: hist.Count(), PingP50: hist.Quantile(0.5),
		PingP99: hist.Quantile(0.99), PingMx: hist.Max(), BusyOps: float64(ops) / took.Seconds()}, nil
}
