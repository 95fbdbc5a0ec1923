package engine

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/panjf2000/gnet/v2"

	"zkd/internal/sasl"
	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/wire"
	"zkd/ztree"
)

// Server is a standalone zkd server.
type Server struct {
	// faults are the bugs planted on purpose (ZKD_FAULTS), so that a
	// checker can be shown to find them. None in normal use.
	faults faults

	cfg   *Config
	log   *slog.Logger
	audit *auditor // nil unless audit.enable
	fours map[string]bool
	// saslUsers are the DIGEST-MD5 users of the JAAS file's server
	// context; nil when SASL is off.
	saslUsers map[string]string
	// enforcedAuth are the schemes a session must have authenticated
	// with before its other requests; nil for none.
	enforcedAuth []string
	// secure and secureLn are the secure client port's settings and
	// listener; nil without secureClientPort.
	secure   *secureSettings
	secureLn net.Listener
	now      func() time.Time

	store atomic.Pointer[wal.Store]  // replaced only while no client is connected
	tree  atomic.Pointer[ztree.Tree] // the applier's; replaced only while no client is connected
	// view is the version connections serve reads from. It moves forward
	// only after the watch events of the txns it adds are queued on their
	// connections, so no reply shows data before its watch event (rule 4).
	view atomic.Pointer[ztree.View]
	// readers is where every goroutine but the applier announces that it
	// reads through a View, so the tree knows when a replaced znode
	// record may be reused.
	readers *ztree.Readers
	// snapMu is held while a snapshot is written and while the log and
	// tree are replaced, so a snapshot is always of the tree of the log
	// it goes to. snapBusy is set while one is due or being written.
	snapMu   sync.Mutex
	snapBusy atomic.Bool
	// digestMismatches counts the txns from a leader after which this
	// server's tree digest differed from the one logged with them;
	// digestReported is set once one is logged.
	digestMismatches atomic.Int64
	digestReported   atomic.Bool

	sessions *sessionTable
	nextSID  atomic.Int64
	// peer runs this server's part in an ensemble; nil when standalone.
	peer   *peer
	writes *applier
	// readOnly holds why the log cannot take txns (the disk is full);
	// nil while it can. Once set it stays set until a restart: reads are
	// served, writes refused with NOTREADONLY (see applier.refuse).
	readOnly atomic.Pointer[error]
	// nsReads are the reads counted per namespace, merged in from the
	// connections at their flushes, for mntr.
	nsMu    sync.Mutex
	nsReads map[string]*ztree.NamespaceStat
	// traceMask is what gtmk reports and stmk sets. zkd has no trace
	// log; the mask is kept for the tools that read it back.
	traceMask atomic.Int64
	// lastSnap is the newest snapshot loaded or written, for the
	// last_snapshot command.
	lastSnap atomic.Pointer[snapInfo]
	// What mntr and the metrics endpoint report of elections, fsyncs of
	// the log and snapshots: how many, and how long they took (ms).
	electionTime, fsyncTime, snapshotTime summary

	opts Options
	mono func() int64 // the session clock: ms, monotonic
	// throttle is the connection throttle every connect request passes.
	throttle *connThrottle
	ln       net.Listener
	gnet     *gnet.Client
	loopMu   sync.Mutex
	loops    []*loop
	stalled  atomic.Int32 // connections whose input is held
	connMu   sync.Mutex
	conns    map[*conn]struct{}
	perIP    map[string]int
	started  time.Time
	stats    stats
	stopping chan struct{}
	stopOnce sync.Once
	stopErr  error
	wg       sync.WaitGroup
	done     chan struct{}
}

// Options are what a Server needs besides its Config.
type Options struct {
	Logger *slog.Logger
	// AuditLogger takes the audit events (audit.enable); default Logger.
	// zkd gives it a handler that keeps INFO whatever zkd.log.level
	// says, as ZooKeeper's audit logger has a level of its own.
	AuditLogger *slog.Logger
	FS          vfs.FS // default: the OS
	// EventLoops is how many gnet event loops serve the client port;
	// default: the CPUs the process may run on.
	EventLoops int
	// RecoveryGCPercent, when not 0, is the GOGC the server sets while it
	// recovers the data directory (and puts back after): recovery makes
	// garbage all along, and a tighter pace keeps its peak near the live
	// heap. The engine touches no other process-wide setting.
	RecoveryGCPercent int
	// Clock is the server's monotonic clock in milliseconds: session
	// deadlines, connection deadlines, and what cons and dump show.
	// Default: CLOCK_MONOTONIC, the clock ZooKeeper's own counts on.
	Clock func() int64
}

// New opens the data directory (recovering the tree from it) and returns a
// server ready to Start.
func New(cfg *Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Clock == nil {
		opts.Clock = monotonicMillis
	}
	s := &Server{
		cfg:      cfg,
		log:      opts.Logger,
		opts:     opts,
		mono:     opts.Clock,
		now:      time.Now,
		conns:    map[*conn]struct{}{},
		perIP:    map[string]int{},
		stopping: make(chan struct{}),
		readers:  ztree.NewReaders(),
		done:     make(chan struct{}),
	}
	s.throttle = newConnThrottle(cfg.ConnThrottle, s.mono())
	s.audit = newAuditor(cfg, cmp.Or(opts.AuditLogger, s.log))
	var unknownFaults []string
	s.faults, unknownFaults = parseFaults(os.Getenv("ZKD_FAULTS"))
	if s.faults != (faults{}) {
		s.log.Warn("ZKD_FAULTS: this server has bugs planted on purpose and must not hold data anyone needs", "faults", os.Getenv("ZKD_FAULTS"))
	}
	if len(unknownFaults) > 0 {
		s.log.Warn("ZKD_FAULTS names faults there are none of; ignored", "unknown", strings.Join(unknownFaults, ","))
	}
	if s.faults.disk {
		base := s.opts.FS
		if base == nil {
			base = vfs.OS
		}
		var slow time.Duration
		if s.faults.slowFsync {
			slow = slowFsyncDelay
		}
		s.opts.FS = newFaultFS(base, s.faults.fsyncLies, slow, s.log)
	}
	// The client port first: a port in use, or an address that does not
	// resolve, should stop the server before it spends time recovering.
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		key := "clientPort"
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			key = "clientPortAddress"
		}
		return nil, cfg.ErrorAt(key, "cannot listen on %s: %v", cfg.Addr(), err)
	}
	s.ln = ln
	for _, d := range []struct{ key, dir string }{{"dataDir", cfg.DataDir}, {"dataLogDir", cfg.DataLogDir}} {
		if st, err := os.Stat(d.dir); d.dir != "" && err == nil && !st.IsDir() {
			ln.Close()
			return nil, cfg.ErrorAt(d.key, "%s is not a directory", d.dir)
		}
	}
	if err := s.loadSASL(); err != nil {
		ln.Close()
		return nil, err
	}
	if s.enforcedAuth, err = cfg.EnforcedAuthSchemes(); err != nil {
		ln.Close()
		return nil, err
	}
	if err := s.listenSecure(); err != nil {
		ln.Close()
		return nil, err
	}
	var unknown []string
	s.fours, unknown = cfg.fourLetterWords()
	if len(unknown) > 0 {
		s.log.Warn("4lw.commands.whitelist names words this server does not have; they stay disabled", "words", unknown)
	}
	switch cfg.SkipACL {
	case "yes":
		s.log.Warn("skipACL=yes: ACLs are not checked; every client may read, change and delete every znode")
	case "", "no":
	default:
		s.log.Warn("skipACL is neither yes nor no; ACLs are checked, as ZooKeeper checks them for any value but yes", "skipACL", cfg.SkipACL)
	}
	wo := s.walOptions()
	start := time.Now()
	if opts.RecoveryGCPercent != 0 {
		gc := debug.SetGCPercent(opts.RecoveryGCPercent)
		st, t, err := wal.Open(wo)
		debug.SetGCPercent(gc)
		return s.opened(st, t, err, time.Since(start))
	}
	st, t, err := wal.Open(wo)
	return s.opened(st, t, err, time.Since(start))
}

// closeSecure closes the secure port's listener, if New opened one, for
// a New that fails after it.
func (s *Server) closeSecure() {
	if s.secureLn != nil {
		s.secureLn.Close()
	}
}

// loadSASL reads the SASL users from the JAAS file, if one is named. A
// file without the server's login context leaves SASL off, as ZooKeeper
// does (the file may be there for its clients); one that cannot be read,
// or asks for Kerberos, stops the server.
func (s *Server) loadSASL() error {
	cfg := s.cfg
	if cfg.JAASFile == "" {
		return nil
	}
	j, err := sasl.ReadJAAS(cfg.JAASFile)
	if err != nil {
		return cfg.ErrorAt("java.security.auth.login.config", "%v", err)
	}
	if _, ok := j[cfg.SASLLoginContext]; !ok {
		s.log.Info("SASL is off: the JAAS file has no login context for the server", "file", cfg.JAASFile, "context", cfg.SASLLoginContext)
		return nil
	}
	users, err := j.Users(cfg.SASLLoginContext)
	if err != nil {
		return cfg.ErrorAt("java.security.auth.login.config", "%s: %v", cfg.JAASFile, err)
	}
	s.saslUsers = users
	s.log.Info("SASL (DIGEST-MD5) on the client port", "file", cfg.JAASFile, "context", cfg.SASLLoginContext, "users", len(users))
	return nil
}

// walOptions are the log's options for this server.
func (s *Server) walOptions() wal.Options {
	wo := s.cfg.WalOptions()
	wo.FS = s.opts.FS
	if s.faults.smallLog {
		wo.MaxPending = smallLogPending
	}
	wo.Logger = s.log
	wo.Tree = s.cfg.TreeOptions()
	wo.OnSync = func(zxid int64) { s.writes.synced(zxid) }
	wo.OnFsync = func(took time.Duration, file string, size int64) {
		s.fsyncTime.add(took.Milliseconds())
		if took.Milliseconds() > int64(s.cfg.FsyncWarningThreshold) {
			s.stats.fsyncSlow.Add(1)
			s.log.Warn("an fsync of the txn log took longer than fsync.warningthresholdms; the writes it carried waited as long: is the log's disk slow or shared?",
				"took", took.Round(time.Millisecond), "thresholdMs", s.cfg.FsyncWarningThreshold, "file", file, "bytes", size)
		}
	}
	wo.OnSnapshotDue = s.snapshotInBackground
	wo.OnFatal = func(err error) {
		if errors.Is(err, wal.ErrDiskFull) {
			s.diskFull(err)
			return
		}
		s.fail(fmt.Errorf("the transaction log failed, stopping: %w", err))
	}
	return wo
}

// opened finishes New once the data directory is open; took is how long
// opening it took.
func (s *Server) opened(st *wal.Store, t *ztree.Tree, err error, took time.Duration) (*Server, error) {
	cfg, ln := s.cfg, s.ln
	if err != nil {
		ln.Close()
		s.closeSecure()
		return nil, err
	}
	s.store.Store(st)
	if err := st.Stopped(); err != nil {
		if !errors.Is(err, wal.ErrDiskFull) {
			st.Close()
			ln.Close()
			s.closeSecure()
			return nil, err
		}
		if cfg.Ensemble != nil {
			st.Close()
			ln.Close()
			s.closeSecure()
			return nil, fmt.Errorf("the transaction log's disk is full, and an ensemble member cannot serve without its log; free some space and start zkd again: %w", err)
		}
		s.readOnly.Store(&err)
		s.log.Error("the data directory was recovered, but its disk is full: serving reads only, refusing writes, until restarted with free space", "err", err)
	}
	t.AdoptReaders(s.readers)
	s.lastSnap.Store(&snapInfo{zxid: snapshotZxid(st.Recovery().Snapshot), at: s.now()})
	s.setConfigNode(t)
	s.tree.Store(t)
	t.Publish() // a version numbered for the readers
	s.view.Store(s.tree.Load().Published())
	s.tree.Load().Visible(s.view.Load())
	// Session deadlines are on the monotonic clock, as ZooKeeper's
	// session tracker's are: a wall-clock step neither expires nor keeps
	// sessions, and expiry buckets fall where ZooKeeper's fall.
	now := s.mono()
	s.sessions = newSessionTable(int64(cfg.TickTime), now)
	// Sessions recovered from disk get their full timeout to reconnect,
	// as ZooKeeper gives them.
	s.tree.Load().Published().Sessions(func(se ztree.Session) bool {
		s.sessions.add(se.ID, se.Timeout, now)
		return true
	})
	// ZooKeeperServer.initializeNextSessionId: the milliseconds of the
	// monotonic clock (Java's nanoTime) in the middle 40 bits, the server
	// id in the top byte: 1 for a standalone server, as ZooKeeper's
	// standalone session tracker uses.
	sid := int64(standaloneServerID)
	if e := cfg.Ensemble; e != nil {
		sid = e.MyID
	}
	s.nextSID.Store(int64(uint64(monotonicMillis()<<24)>>8) | sid<<56)
	s.stats.reset()
	s.stats.dbInit.add(took.Milliseconds())
	rec := st.Recovery()
	s.stats.snapLoad.add(rec.SnapshotLoad.Milliseconds())
	if rec.Replayed > 0 {
		// As ZooKeeper counts them: only when the log had txns after
		// the snapshot.
		s.stats.txnsLoaded.add(int64(rec.Replayed))
		s.stats.txnsLoadTime.add(rec.Replay.Milliseconds())
	}
	s.traceMask.Store(defaultTraceMask)
	s.writes = newApplier(s)
	if cfg.Ensemble != nil {
		if s.peer, err = newPeer(s, cfg.Ensemble); err != nil {
			st.Close()
			ln.Close()
			s.closeSecure()
			return nil, err
		}
		s.peer.untrusted.Store(st.Recovery().Untrusted)
	}
	if rec := st.Recovery(); st.Stopped() == nil && rec.Replayed > 0 && !rec.Unsettled {
		// Next time, start from here rather than replay again. (Not
		// from a leader's streamed tree the log has not settled: its
		// digest would be no logged one's.)
		s.snapshotInBackground()
	}
	return s, nil
}

// setConfigNode puts the ensemble's configuration in t's
// /zookeeper/config, as ZooKeeper's members do whenever they load their
// tree; a standalone server leaves it empty, as ZooKeeper's does.
func (s *Server) setConfigNode(t *ztree.Tree) {
	if e := s.cfg.Ensemble; e != nil {
		t.SetConfig([]byte(quorumConfigText(e)), e.ConfigVersion, s.now().UnixMilli())
	}
}

// snapshotInBackground writes a snapshot of the tree into the data
// directory, on a goroutine of its own, unless one is being written: the
// log calls it at its snapshot points. The snapshot is of the newest
// published version once the log holds it durably.
func (s *Server) snapshotInBackground() {
	if !s.snapBusy.CompareAndSwap(false, true) {
		s.log.Warn("too busy to snapshot, skipping: the previous snapshot is still being written")
		return
	}
	go func() {
		defer s.snapBusy.Store(false)
		s.snapMu.Lock()
		defer s.snapMu.Unlock()
		st := s.store.Load()
		// The walk reads znode records through the View for as long as
		// it takes; the tree must not reuse any of them meanwhile.
		slot := s.readers.NewSlot()
		slot.Enter()
		defer slot.Close()
		defer slot.Leave()
		v := s.tree.Load().Published()
		if v.Zxid() > st.Durable() {
			// A follower applies what the leader commits, which its
			// own disk may still be writing.
			if err := st.Flush(); err != nil {
				return
			}
		}
		start := time.Now()
		if _, err := st.Snapshot(v); err != nil {
			if !errors.Is(err, wal.ErrStopped) {
				s.log.Error("background snapshot failed; the txn log still holds every txn", "err", err)
			}
			return
		}
		s.snapshotTime.addSince(start)
		s.lastSnap.Store(&snapInfo{zxid: v.Zxid(), at: s.now()})
	}()
}

// snapInfo is a snapshot's zxid and when it was loaded or written.
type snapInfo struct {
	zxid int64
	at   time.Time
}

// snapshotZxid is the zxid a snapshot file's name gives; 0 for none.
func snapshotZxid(name string) int64 {
	hex, _ := strings.CutPrefix(filepath.Base(name), "snapshot.")
	hex, _, _ = strings.Cut(hex, ".")
	z, _ := strconv.ParseUint(hex, 16, 64)
	return int64(z)
}

// standaloneServerID is the server id a standalone ZooKeeper puts in its
// session ids.
const standaloneServerID = 1

// monotonicMillis is CLOCK_MONOTONIC in milliseconds, the clock Java's
// System.nanoTime reads on Linux: ZooKeeper starts its session ids from
// it and shows it as a connection's lresp. It is read from the kernel
// once; after that Go's own monotonic clock carries it on, without a
// system call on the paths that use it.
func monotonicMillis() int64 { return monoStartMs + time.Since(monoStart).Milliseconds() }

var monoStart, monoStartMs = func() (time.Time, int64) {
	now := time.Now()
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return now, now.UnixMilli() // not on Linux: any rising start will do
	}
	return now, ts.Sec*1000 + ts.Nsec/1e6
}()

// Start serves the client port New bound.
func (s *Server) Start() error {
	ln := s.ln
	s.started = s.now()
	if err := s.startLoops(); err != nil {
		return err
	}
	s.wg.Add(4)
	if s.peer != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.peer.run() }()
	}
	go func() { defer s.wg.Done(); s.writes.run() }()
	go func() { defer s.wg.Done(); s.tickLoop() }()
	go func() { defer s.wg.Done(); s.houseLoop() }()
	go func() { defer s.wg.Done(); s.acceptLoop() }()
	if s.secureLn != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.secureAcceptLoop() }()
		s.log.Info("serving TLS", "addr", s.secureLn.Addr().String())
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "dataDir", s.cfg.DataDir,
		"dataLogDir", s.cfg.LogDir(), "zxid", fmt.Sprintf("0x%x", s.tree.Load().Zxid()),
		"znodes", s.tree.Load().Published().NodeCount(), "sessions", s.sessions.count())
	s.audit.server("serverStart", "success")
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Done is closed when the server has stopped, by Close or by a failure.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is why the server stopped: nil after a clean Close.
func (s *Server) Err() error {
	<-s.done
	return s.stopErr
}

// Close stops the server: no new connections, every connection closed,
// the log closed after the txns already handed to it are durable. Sessions
// stay open, as ZooKeeper's do, to expire or be resumed after a restart.
func (s *Server) Close() error {
	s.audit.server("serverStop", "invoked")
	s.stop(nil)
	<-s.done
	return s.stopErr
}

// mergeReads adds a connection's per-namespace read counts to the
// server's and zeroes them.
func (s *Server) mergeReads(reads map[string]*ztree.NamespaceStat) {
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	for ns, st := range reads {
		if st.Count == 0 {
			continue
		}
		all := s.nsReads[ns]
		if all == nil {
			if s.nsReads == nil {
				s.nsReads = map[string]*ztree.NamespaceStat{}
			}
			all = &ztree.NamespaceStat{}
			s.nsReads[ns] = all
		}
		all.Merge(*st)
		*st = ztree.NamespaceStat{}
	}
}

// namespaceReads returns the reads counted per namespace so far.
func (s *Server) namespaceReads() map[string]ztree.NamespaceStat {
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	out := make(map[string]ztree.NamespaceStat, len(s.nsReads))
	for k, v := range s.nsReads {
		out[k] = *v
	}
	return out
}

// diskFull is the log's OnFatal for a full disk: nothing acknowledged was
// lost, so the server stays up for reads and refuses writes, rather than
// exit and leave its clients with nothing.
func (s *Server) diskFull(err error) {
	if s.cfg.Ensemble != nil {
		// An ensemble's writes need their leader, and a member that cannot
		// log cannot lead or follow: it goes, and the others (whose disks
		// have room) go on without it, as ZooKeeper's members give up
		// their role on a failed log.
		s.fail(fmt.Errorf("the transaction log's disk is full, and an ensemble member cannot serve without its log: stopping; free some space and restart zkd: %w", err))
		return
	}
	if s.readOnly.CompareAndSwap(nil, &err) {
		s.log.Error("the txn log's disk is full: serving reads only and refusing writes; free some space and restart zkd",
			"err", err)
		s.writes.signal()
	}
}

func (s *Server) fail(err error) {
	s.log.Error(err.Error())
	go s.stop(err)
}

func (s *Server) stop(err error) {
	s.stopOnce.Do(func() {
		s.stopErr = err
		close(s.stopping)
		if s.secureLn != nil {
			s.secureLn.Close()
		}
		if s.ln != nil {
			s.ln.Close()
		}
		s.wg.Wait()
		// The loops close every connection as they stop.
		if s.gnet != nil {
			if err := stopGnetClient(s.gnet); err != nil {
				s.log.Debug("stopping the event loops", "err", err)
			}
		}
		if cerr := s.store.Load().Close(); cerr != nil && s.stopErr == nil && !errors.Is(cerr, wal.ErrStopped) {
			s.stopErr = cerr
		}
		s.log.Info("stopped")
		close(s.done)
	})
}

// tickLoop expires sessions every tick and runs the container and TTL
// reaper on its interval.
func (s *Server) tickLoop() {
	tick := time.Duration(s.cfg.TickTime) * time.Millisecond
	if tick > 100*time.Millisecond {
		tick = 100 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	nextReap := s.now().Add(time.Duration(s.cfg.ContainerCheckInterval) * time.Millisecond)
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		now := s.now()
		if p := s.peer; p != nil && (role(p.role.Load()) != roleLeading || !p.serving.Load()) {
			// Only the leader expires sessions and reaps containers, and
			// only once a quorum holds its history (NEWLEADER), as
			// ZooKeeper's session tracker starts then: before, a
			// closeSession would be the epoch's first txn, logged while
			// currentEpoch is still the last one's. A read-only server
			// expires its own.
			if p.roServing.Load() {
				s.expireSessions()
			}
			continue
		}
		s.expireSessions()
		if now.After(nextReap) {
			nextReap = now.Add(time.Duration(s.cfg.ContainerCheckInterval) * time.Millisecond)
			s.reap(now)
		}
	}
}

// expireSessions closes the sessions whose deadline has passed on the
// server's clock (Options.Clock).
func (s *Server) expireSessions() {
	for _, se := range s.sessions.expired(s.mono()) {
		s.stats.sessionsExpired.Add(1)
		s.log.Info("session expired", "session", fmt.Sprintf("0x%x", se.id),
			"timeout", se.timeout.Load())
		s.closeSession(se, nil, 0)
	}
}

// closeSession hands a closeSession txn for se to the applier, from the
// client's own request (c, xid) or from expiry (c nil).
func (s *Server) closeSession(se *session, c *conn, xid int32) {
	if !se.closing.CompareAndSwap(false, true) && c == nil {
		return
	}
	r := &writeReq{c: c, sess: se.id, xid: xid, op: wire.OpCloseSession}
	if c != nil {
		c.submit(r) // on c's loop: it goes in order with the pass's batch
		return
	}
	s.writes.submit(r)
}

// reap deletes empty containers and expired TTL nodes through ordinary
// deleteContainer txns, at most maxPerMinute a minute (ContainerManager).
func (s *Server) reap(now time.Time) {
	// The candidates' paths are the index's; the search reads records.
	slot := s.readers.NewSlot()
	slot.Enter()
	defer slot.Close()
	defer slot.Leave()
	v := s.view.Load()
	limit := s.cfg.ContainerMaxPerMinute * s.cfg.ContainerCheckInterval / 60000
	if limit < 1 {
		limit = 1
	}
	for i, p := range v.Candidates(now.UnixMilli(), int64(s.cfg.ContainerMaxNeverUsed)) {
		if i >= limit {
			break
		}
		s.writes.submit(&writeReq{op: wire.OpDeleteContainer, body: &wire.DeleteContainerRequest{Path: p}})
	}
}

// acceptLoop accepts connections until the server stops. When accepting
// fails (out of file descriptors, most often), it backs off, doubling the
// pause up to a second, and logs once per acceptLogEvery with the count
// of failures since, instead of spinning and flooding the log: the
// connections that hold the descriptors close in their own time (the
// handshake timeout, the session timeout).
func (s *Server) acceptLoop() {
	serve := s.enroll
	if s.secure != nil && s.secure.unified {
		serve = s.enrollEither
	}
	s.accepting(s.ln, "accept", serve)
}

// enroll hands a plain connection to an event loop once it is admitted.
func (s *Server) enroll(nc net.Conn) error {
	ip := remoteIP(nc)
	if !s.admit(ip) {
		nc.Close()
		return nil
	}
	return s.enrollAdmitted(nc, ip)
}

// enrollAdmitted hands an admitted connection to an event loop.
func (s *Server) enrollAdmitted(nc net.Conn, ip string) error {
	// gnet takes a duplicate of the socket and closes nc: out of
	// descriptors, the duplicate fails as accept would.
	c := newConn(s, ip, nc.RemoteAddr().String())
	if _, err := s.gnet.EnrollContext(nc, c); err != nil {
		s.unadmit(ip)
		return fmt.Errorf("handing the connection to an event loop: %w", err)
	}
	return nil
}

// accepting accepts connections on ln and hands each to serve until the
// server stops. A failure to accept, or to serve, is logged now and then
// and backs off a little longer each time, until a connection goes
// through.
func (s *Server) accepting(ln net.Listener, what string, serve func(net.Conn) error) {
	var pause time.Duration
	var failures int
	var lastLog time.Time
	// failed logs a run of failures now and then, and waits a while
	// longer after each; false once the server is stopping.
	failed := func(err error) bool {
		failures++
		if now := time.Now(); now.Sub(lastLog) >= acceptLogEvery {
			msg := what + " failed; backing off"
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				msg = what + " failed: out of file descriptors; backing off until connections close (raise the open-file limit, or lower maxClientCnxns)"
			}
			s.log.Error(msg, "err", err, "failures", failures)
			lastLog, failures = now, 0
		}
		pause = min(max(2*pause, 5*time.Millisecond), time.Second)
		select {
		case <-s.stopping:
			return false
		case <-time.After(pause):
			return true
		}
	}
	stopping := func() bool {
		select {
		case <-s.stopping:
			return true
		default:
			return false
		}
	}
	for {
		nc, err := ln.Accept()
		if err == nil {
			err = serve(nc)
			if err == nil {
				pause = 0
				continue
			}
		} else {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !stopping() {
				continue
			}
		}
		if stopping() || !failed(err) {
			return
		}
	}
}

// acceptLogEvery is how often a run of accept failures is logged.
const acceptLogEvery = 5 * time.Second

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return nc.RemoteAddr().String()
}

// admit counts a new connection against maxCnxns and maxClientCnxns.
func (s *Server) admit(ip string) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if m := s.cfg.MaxCnxns; m > 0 && len(s.conns) >= m {
		s.log.Warn("Too many connections - max is "+fmt.Sprint(m)+" (maxCnxns)", "client", ip)
		s.stats.connRejected.Add(1)
		return false
	}
	if m := s.cfg.MaxClientCnxns; m > 0 && s.perIP[ip] >= m {
		s.log.Warn(fmt.Sprintf("Too many connections from /%s - max is %d (maxClientCnxns)", ip, m))
		s.stats.connRejected.Add(1)
		return false
	}
	s.perIP[ip]++
	return true
}

// unadmit takes back what admit counted for a connection that never
// opened.
func (s *Server) unadmit(ip string) {
	s.connMu.Lock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.connMu.Unlock()
}

func (s *Server) addConn(c *conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	select {
	case <-s.stopping:
		if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
			delete(s.perIP, c.ip)
		}
		return false
	default:
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) removeConn(c *conn) {
	s.connMu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
			delete(s.perIP, c.ip)
		}
	}
	s.connMu.Unlock()
}

func (s *Server) connList() []*conn {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// negotiate clamps a requested session timeout into
// [minSessionTimeout, maxSessionTimeout].
func (s *Server) negotiate(t int32) int32 {
	lo, hi := int32(s.cfg.MinTimeout()), int32(s.cfg.MaxTimeout())
	if t < lo {
		return lo
	}
	if t > hi {
		return hi
	}
	return t
}

// newSessionID is the next session id of this server.
func (s *Server) newSessionID() int64 {
	for {
		id := s.nextSID.Add(1) - 1
		if id != -1<<63 { // the ephemeral mask is never a session id
			return id
		}
	}
}

// stats are the counters srvr, stat and mntr report.
type stats struct {
	received, sent atomic.Int64
	lat            latencies
	outstanding    atomic.Int64 // requests handed to the applier, not replied yet
	// The last, smallest and largest reply or event sent to a client, in
	// bytes without the length prefix; -1 before the first.
	respLast, respMin, respMax atomic.Int64
	// lat split as ZooKeeper's readlatency and updatelatency split it:
	// requests without a txn, and those with one.
	readLat, updateLat pctLatencies
	// A leader's PROPOSALs and COMMITs (proposal_count, commit_count); a
	// learner's PROPOSALs and COMMITs received, an observer's INFORMs
	// counted as commits (learner_proposal_received_count and
	// learner_commit_received_count).
	proposals, commits                            atomic.Int64
	learnerProposals, learnerCommits              atomic.Int64
	quorumAckLat, proposalLat, commitPropagateLat summary
	// From a txn's proposal (a leader's: its request's arrival) to its
	// ACK, once the log has it.
	proposalAckLat summary
	// Elections begun (looking_count); learners a leader synced by SNAP
	// and otherwise (snap_count, diff_count); connect requests and the
	// bytes of every client packet (connection_request_count,
	// bytes_received_count).
	looking, snapSyncs, diffSyncs, connRequests, bytesReceived atomic.Int64
	// Connections refused by maxCnxns or maxClientCnxns
	// (connection_rejected); connect requests that resume a session
	// (connection_revalidate_count); sessions expired
	// (stale_sessions_expired); a leader's REVALIDATEs from its learners
	// (revalidate_count); connections closed for want of a handshake
	// (sessionless_connections_expired).
	connRejected, resumes, sessionsExpired, revalidates, sessionlessExpired atomic.Int64
	// fsyncs of the txn log that took longer than fsync.warningthresholdms
	// (the AdminServer's fsync_threshold_exceed_count); srst leaves it,
	// as ZooKeeper's does.
	fsyncSlow atomic.Int64
	// The txns replayed from the log after the snapshot at the start, and
	// how long that took (startup_txns_loaded, startup_txns_load_time).
	txnsLoaded, txnsLoadTime summary
	// The bytes of the replies to requests, without their length
	// prefixes (response_bytes): not the watch events, nor the answers
	// to connect, auth and sasl, as ZooKeeper's.
	responseBytes atomic.Int64
	// How long the server did not serve, from the start of an election
	// to serving in the role it chose, and how long that was for the
	// leaders among them (unavailable_time, leader_unavailable_time); how
	// long a learner's sync took (follower_sync_time, observer_sync_time);
	// from the leader's making a txn to this server's applying it, by
	// wall clocks (propagation_latency).
	unavailable, leaderUnavailable, followerSync, observerSync, propagationLat summary
	// How long the data directory took to recover at the start, and its
	// snapshot to load (dbinittime, startup_snap_load_time).
	dbInit, snapLoad summary
	// The tokens missing from the connection throttle's bucket after each
	// connect request it let through (connection_token_deficit).
	tokenDeficit summary
	// A leader's syncs in progress, each time their number changes, by
	// SNAP and by DIFF or TRUNC (inflight_snap_count,
	// inflight_diff_count; see leader.beginSync).
	inflightSyncs [2]summary
	// A leader's queues to its learners, by server id; kept, as
	// ZooKeeper keeps them, when a learner goes or the leader steps down.
	learnerQueuesMu sync.Mutex
	learnerQueues   map[int64]*learnerQueueStats
}

// learnerQueueIDs are the learners a leader here has sent to, by id.
func (s *Server) learnerQueueIDs() []int64 {
	st := &s.stats
	st.learnerQueuesMu.Lock()
	defer st.learnerQueuesMu.Unlock()
	var ids []int64
	for sid, q := range st.learnerQueues {
		if q.used.Load() {
			ids = append(ids, sid)
		}
	}
	slices.Sort(ids)
	return ids
}

// learnerQueue is the figures of a leader's queue to server sid.
func (s *Server) learnerQueue(sid int64) *learnerQueueStats {
	st := &s.stats
	st.learnerQueuesMu.Lock()
	defer st.learnerQueuesMu.Unlock()
	if st.learnerQueues == nil {
		st.learnerQueues = map[int64]*learnerQueueStats{}
	}
	q := st.learnerQueues[sid]
	if q == nil {
		q = &learnerQueueStats{}
		st.learnerQueues[sid] = q
	}
	return q
}

// latencies are request latencies in ms, from a request's arrival to its
// reply being queued: the server's for srvr and mntr, a connection's for
// cons. A read is answered as it arrives, in 0 ms.
type latencies struct {
	min        atomic.Int64 // -1 before the first request
	max, last  atomic.Int64
	sum, count atomic.Int64
}

func (l *latencies) reset() {
	l.min.Store(-1)
	l.max.Store(0)
	l.last.Store(0)
	l.sum.Store(0)
	l.count.Store(0)
}

// reads counts n requests answered at once.
func (l *latencies) reads(n int64) {
	l.count.Add(n)
	l.last.Store(0)
	for {
		m := l.min.Load()
		if m == 0 || l.min.CompareAndSwap(m, 0) {
			break
		}
	}
}

// add counts one request answered in ms.
func (l *latencies) add(ms int64) {
	l.sum.Add(ms)
	l.count.Add(1)
	l.last.Store(ms)
	l.spread(ms, ms)
}

// spread takes lo and hi into the least and the most.
func (l *latencies) spread(lo, hi int64) {
	for {
		m := l.min.Load()
		if (m >= 0 && m <= lo) || l.min.CompareAndSwap(m, lo) {
			break
		}
	}
	for {
		m := l.max.Load()
		if m >= hi || l.max.CompareAndSwap(m, hi) {
			break
		}
	}
}

// pctLatencies are latencies with percentiles.
type pctLatencies struct {
	latencies
	res reservoir
}

func (l *pctLatencies) reset() {
	l.latencies.reset()
	l.res.reset()
}

func (l *pctLatencies) reads(n int64) {
	l.latencies.reads(n)
	l.res.add(0, n)
}

func (l *pctLatencies) addAll(ms []int64) {
	l.latencies.addAll(ms)
	l.res.addEach(ms)
}

func (l *pctLatencies) add(ms int64) {
	l.latencies.add(ms)
	l.res.add(ms, 1)
}

// addAll counts requests answered in ms, the last one last.
func (l *latencies) addAll(ms []int64) {
	if len(ms) == 0 {
		return
	}
	sum, lo, hi := int64(0), ms[0], ms[0]
	for _, v := range ms {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	l.sum.Add(sum)
	l.count.Add(int64(len(ms)))
	l.last.Store(ms[len(ms)-1])
	l.spread(lo, hi)
}

// figures are the smallest, mean and largest latency, 0 before the
// first request.
func (l *latencies) figures() (min int64, avg float64, max int64) {
	min, max = l.min.Load(), l.max.Load()
	if min < 0 {
		min = 0
	}
	if n := l.count.Load(); n > 0 {
		avg = float64(l.sum.Load()) / float64(n)
	}
	return min, avg, max
}

// summary is l as one of ZooKeeper's summaries.
func (l *latencies) summary() ztree.NamespaceStat {
	st := ztree.NamespaceStat{Count: l.count.Load(), Sum: l.sum.Load(), Min: l.min.Load(), Max: l.max.Load()}
	if st.Min < 0 {
		st.Min = 0
	}
	return st
}

// perConnection are the figures as a connection reports them: the mean
// in whole ms, rounded down.
func (l *latencies) perConnection() (min, avg, max int64) {
	min, max = l.min.Load(), l.max.Load()
	if min < 0 {
		min = 0
	}
	if n := l.count.Load(); n > 0 {
		avg = l.sum.Load() / n
	}
	return min, avg, max
}

// responseSizes takes a flush's last, smallest and largest response.
func (st *stats) responseSizes(last, lo, hi int) {
	st.respLast.Store(int64(last))
	for {
		m := st.respMin.Load()
		if m >= 0 && m <= int64(lo) || st.respMin.CompareAndSwap(m, int64(lo)) {
			break
		}
	}
	for {
		m := st.respMax.Load()
		if m >= int64(hi) || st.respMax.CompareAndSwap(m, int64(hi)) {
			break
		}
	}
}

// resetStats is srst: as ZooKeeper's resets its server stats and every
// one of its metrics, the counters and every summary start again.
func (s *Server) resetStats() {
	s.stats.reset()
	// The summaries per namespace keep their namespaces, with nothing
	// counted, as ZooKeeper's summary sets do.
	s.tree.Load().ResetNamespaceWrites()
	s.tree.Load().ResetWatchFanout()
	s.nsMu.Lock()
	for _, st := range s.nsReads {
		*st = ztree.NamespaceStat{}
	}
	s.nsMu.Unlock()
	for _, e := range s.summaryTable() {
		e.x.reset()
	}
}

func (st *stats) reset() {
	st.received.Store(0)
	st.sent.Store(0)
	st.lat.reset()
	st.respLast.Store(-1)
	st.respMin.Store(-1)
	st.respMax.Store(-1)
	st.readLat.reset()
	st.updateLat.reset()
	st.proposals.Store(0)
	st.commits.Store(0)
	st.learnerProposals.Store(0)
	st.learnerCommits.Store(0)
	st.learnerQueuesMu.Lock()
	for _, q := range st.learnerQueues {
		q.size.reset()
		q.time.reset()
	}
	st.learnerQueuesMu.Unlock()
	for _, n := range []*atomic.Int64{&st.looking, &st.snapSyncs, &st.diffSyncs, &st.connRequests, &st.bytesReceived, &st.responseBytes,
		&st.connRejected, &st.resumes, &st.sessionsExpired, &st.revalidates, &st.sessionlessExpired} {
		n.Store(0)
	}
}
