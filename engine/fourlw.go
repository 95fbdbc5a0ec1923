package engine

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"zkd/internal/java"
	"zkd/wire"
	"zkd/ztree"
)

// Version is what srvr, stat, envi and mntr report: the ZooKeeper release
// whose behaviour zkd follows, so tools that parse the version keep
// working, and zkd's own.
const Version = "3.8.0-zkd-0.1, built on 2026-11-23 00:00 UTC"

// fourLetterCommands are the four-letter words this server answers, by
// name. Each writes its whole answer; the connection closes after it.
var fourLetterCommands = map[string]func(c *conn) string{
	"ruok": func(*conn) string { return "imok" },
	"srvr": func(c *conn) string { return c.s.srvr(nil) },
	"stat": func(c *conn) string { return c.s.srvr(c) },
	"mntr": func(c *conn) string { return c.s.mntr() },
	"conf": func(c *conn) string { return c.s.conf() },
	"cons": func(c *conn) string { return c.s.cons(c) + "\n" },
	"crst": func(c *conn) string {
		for _, o := range c.s.connList() {
			o.resetStats()
		}
		return "Connection stats reset.\n"
	},
	"srst": func(c *conn) string { c.s.resetStats(); return "Server stats reset.\n" },
	"dump": func(c *conn) string { return c.s.dump() },
	"envi": func(c *conn) string { return envi() },
	"wchs": func(c *conn) string {
		sessions, paths, watches := c.s.tree.Load().WatchCounts()
		return fmt.Sprintf("%d connections watching %d paths\nTotal watches:%d\n", sessions, paths, watches)
	},
	"wchc": func(c *conn) string { return c.s.watchesBySession() },
	"wchp": func(c *conn) string { return c.s.watchesByPath() },
	"dirs": func(c *conn) string {
		return fmt.Sprintf("datadir_size: %d\nlogdir_size: %d\n", dirSize(c.s.cfg.DataDir), dirSize(c.s.cfg.LogDir()))
	},
	"isro": func(c *conn) string {
		if p := c.s.peer; p != nil && !p.takesClients() && !p.roServing.Load() {
			return "null" // as ZooKeeper answers with no server running
		}
		if c.s.readOnly.Load() != nil {
			return "ro"
		}
		return "rw"
	},
	"gtmk": func(c *conn) string { return strconv.FormatInt(c.s.traceMask.Load(), 10) + "\n" },
	// stmk reads its argument: see setTraceMask.
	"stmk": func(c *conn) string { return "" },
	"hash": func(c *conn) string {
		var b strings.Builder
		for _, d := range c.s.tree.Load().DigestLog() {
			fmt.Fprintf(&b, "%x: %d\n", d.Zxid, d.Digest)
		}
		return b.String()
	},
}

// zookeeperWords are the other four-letter words ZooKeeper 3.8 knows;
// they are answered with the whitelist refusal, never read as a length.
var zookeeperWords = map[string]bool{"lsnp": true, "lead": true}

// defaultTraceMask is ZooKeeper's default trace mask, which gtmk reports
// (ZooTrace's client request, client ping and server packet traces).
const defaultTraceMask = 306

func isFourLetterWord(w string) bool { return fourLetterCommands[w] != nil || zookeeperWords[w] }

// FourLetterWord is the client side: it sends word to the server at addr
// and returns the whole answer, as `echo srvr | nc host port` would.
func FourLetterWord(addr, word string) (string, error) {
	return FourLetterWordWithin(addr, word, 5*time.Second)
}

// FourLetterWordWithin is FourLetterWord with the whole exchange bounded
// by timeout instead of five seconds.
func FourLetterWordWithin(addr, word string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, min(3*time.Second, timeout))
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(word)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// fourLetterWord answers a four-letter word sent in place of a handshake;
// the connection closes once the answer is written.
func (c *conn) fourLetterWord(w string, rest []byte) string {
	if !c.s.fours[w] {
		return w + " is not executed because it is not in the whitelist.\n"
	}
	if w == "stmk" {
		return c.s.setTraceMask(rest)
	}
	if p := c.s.peer; p != nil && !p.takesClients() && !p.roServing.Load() && needsServing[w] {
		if w == "hash" {
			return strings.TrimSuffix(notServing, "\n") // ZooKeeper's hash ends no line here
		}
		return notServing
	}
	return fourLetterCommands[w](c)
}

// notServing is what ZooKeeper answers the words that need a running
// server while it has none (an ensemble member without a quorum).
const notServing = "This ZooKeeper instance is not currently serving requests\n"

var needsServing = map[string]bool{"srvr": true, "stat": true, "mntr": true, "cons": true, "crst": true,
	"dump": true, "wchs": true, "wchc": true, "wchp": true, "srst": true, "dirs": true, "hash": true, "conf": true}

// setTraceMask is stmk: the word is followed by the new mask, an 8-byte
// long, in the same packet; without it ZooKeeper fails the read and
// closes with nothing written.
func (s *Server) setTraceMask(arg []byte) string {
	if len(arg) < 8 {
		return ""
	}
	mask := int64(binary.BigEndian.Uint64(arg))
	s.traceMask.Store(mask)
	return strconv.FormatInt(mask, 10)
}

// mode is the server's state as srvr and mntr name it: "read-only", as
// ZooKeeper's read-only server says, while a full disk keeps the log from
// taking txns.
func (s *Server) mode() string {
	if s.readOnly.Load() != nil {
		return "read-only"
	}
	if s.peer != nil {
		return s.peer.mode()
	}
	return "standalone"
}

// srvr is the srvr answer, and, given the connection asking, the stat
// answer.
func (s *Server) srvr(asking *conn) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Zookeeper version: %s\n", Version)
	if asking != nil {
		b.WriteString("Clients:\n")
		b.WriteString(s.cons(asking))
		b.WriteString("\n")
	}
	v := s.view.Load()
	min, avg, max := s.stats.lat.figures()
	fmt.Fprintf(&b, "Latency min/avg/max: %d/%s/%d\n", min, java.Double(java.RoundHalfUp4(avg)), max)
	fmt.Fprintf(&b, "Received: %d\nSent: %d\nConnections: %d\nOutstanding: %d\nZxid: 0x%x\nMode: %s\nNode count: %d\n",
		s.stats.received.Load(), s.stats.sent.Load(), len(s.connList()), s.stats.outstanding.Load(),
		v.Zxid(), s.mode(), nodeCount(v))
	return b.String()
}

// cons lists the connections as ZooKeeper's cons does. The connection
// asking is in the middle of its four-letter word: ZooKeeper shows it
// with its one packet received and reading switched off ([0]).
func (s *Server) cons(asking *conn) string {
	var b strings.Builder
	conns := s.connList()
	sort.Slice(conns, func(i, j int) bool { return conns[i].created.Before(conns[j].created) })
	for _, c := range conns {
		if c == asking {
			fmt.Fprintf(&b, " %s[0](queued=0,recved=1,sent=0)\n", remoteString(c))
			continue
		}
		queued, sid := c.queued.Load(), c.sid.Load()
		fmt.Fprintf(&b, " %s[%d](queued=%d,recved=%d,sent=%d", remoteString(c), 1, queued, c.received.Load(), c.sent.Load())
		if sid != 0 {
			// ZooKeeper keeps the cxid as a long: a negative one prints
			// as its 64-bit two's complement.
			min, avg, max := c.lat.perConnection()
			fmt.Fprintf(&b, ",sid=0x%x,lop=%s,est=%d,to=%d,lcxid=0x%x,lzxid=0x%x,lresp=%d,llat=%d,minlat=%d,avglat=%d,maxlat=%d",
				sid, opName(c.lastOp.Load()), c.created.UnixMilli(), c.timeout.Load(), uint64(int64(c.lastXid.Load())),
				uint64(c.lastZxid.Load()), c.lastResponse.Load(), c.lat.last.Load(), min, avg, max)
		}
		b.WriteString(")\n")
	}
	return b.String()
}

func remoteString(c *conn) string { return "/" + c.remote }

// opNames are the names cons gives the last op of a connection, as
// ZooKeeper's FinalRequestProcessor sets them; an op it does not name,
// and a connection with none yet, is NA.
var opNames = map[wire.OpCode]string{
	wire.OpPing: "PING", wire.OpCreateSession: "SESS", wire.OpMulti: "MULT", wire.OpMultiRead: "MLTR",
	wire.OpCreate: "CREA", wire.OpCreate2: "CREA", wire.OpCreateTTL: "CREA", wire.OpCreateContainer: "CREA",
	wire.OpDelete: "DELE", wire.OpDeleteContainer: "DELE", wire.OpSetData: "SETD", wire.OpReconfig: "RECO",
	wire.OpSetACL: "SETA", wire.OpCloseSession: "CLOS", wire.OpSync: "SYNC", wire.OpCheck: "CHEC",
	wire.OpExists: "EXIS", wire.OpGetData: "GETD", wire.OpSetWatches: "SETW", wire.OpSetWatches2: "STW2",
	wire.OpAddWatch: "ADDW", wire.OpGetACL: "GETA", wire.OpGetChildren: "GETC", wire.OpGetChildren2: "GETC",
	wire.OpGetAllChildrenNumber: "GETACN", wire.OpCheckWatches: "CHKW", wire.OpRemoveWatches: "REMW",
	wire.OpWhoAmI: "HOMI", wire.OpGetEphemerals: "GETE",
}

// opName is the name cons shows for op.
func opName(op int32) string {
	if n, ok := opNames[wire.OpCode(op)]; ok {
		return n
	}
	return "NA"
}

// conf prints the settings in force, as ZooKeeper's conf does.
func (s *Server) conf() string {
	var b strings.Builder
	data, _ := filepath.Abs(filepath.Join(s.cfg.DataDir, "version-2"))
	logs, _ := filepath.Abs(filepath.Join(s.cfg.LogDir(), "version-2"))
	fmt.Fprintf(&b, "clientPort=%d\nsecureClientPort=-1\ndataDir=%s\ndataDirSize=%d\ndataLogDir=%s\ndataLogSize=%d\n",
		s.cfg.ClientPort, data, dirSize(s.cfg.DataDir), logs, dirSize(s.cfg.LogDir()))
	fmt.Fprintf(&b, "tickTime=%d\nmaxClientCnxns=%d\nminSessionTimeout=%d\nmaxSessionTimeout=%d\nclientPortListenBacklog=-1\nserverId=%d\n",
		s.cfg.TickTime, s.cfg.MaxClientCnxns, s.cfg.MinTimeout(), s.cfg.MaxTimeout(), s.serverID())
	e := s.cfg.Ensemble
	if e == nil {
		return b.String()
	}
	// An ensemble member's, as ZooKeeper's QuorumZooKeeperServer adds
	// them: the limits, the election algorithm (only 3, fast leader
	// election, is left), its ports, its type (0 participant, 1
	// observer) and the ensemble as /zookeeper/config holds it.
	me, _ := e.Me()
	peerType := 0
	if me.Observer {
		peerType = 1
	}
	fmt.Fprintf(&b, "initLimit=%d\nsyncLimit=%d\nelectionAlg=3\nelectionPort=%s\nquorumPort=%s\npeerType=%d\nmembership: \n%s",
		e.InitLimit, e.SyncLimit, portOf(me.ElectionAddr), portOf(me.QuorumAddr), peerType, quorumConfigText(e))
	return b.String()
}

// dirSize is the size of the files in dir's version-2 folder.
func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(filepath.Join(dir, "version-2"))
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !fi.IsDir() {
			n += fi.Size()
		}
	}
	return n
}

// sessionDump is what dump and the AdminServer's dump show of the
// sessions: their expiry buckets, sorted by deadline (on the session
// clock; wallMinusMono turns one into wall time), each with its sessions
// by id, and the ephemerals of each session that has any.
type sessionDump struct {
	deadlines     []int64
	byDeadline    map[int64][]int64
	sessions      int
	withEph       []int64
	eph           map[int64][]string
	wallMinusMono int64
}

func (s *Server) sessionDump() sessionDump {
	sessions := s.sessions.all()
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].id < sessions[j].id })
	// Every bucket a session has moved out of stays listed, empty, until
	// its time passes, as in ZooKeeper's expiry queue.
	now := s.mono()
	d := sessionDump{byDeadline: map[int64][]int64{}, sessions: len(sessions), eph: map[int64][]string{},
		deadlines: s.sessions.bucketTimes(now), wallMinusMono: time.Now().UnixMilli() - now}
	for _, dl := range d.deadlines {
		d.byDeadline[dl] = []int64{}
	}
	for _, se := range sessions {
		dl := se.deadline.Load()
		if _, ok := d.byDeadline[dl]; !ok {
			d.deadlines = append(d.deadlines, dl)
		}
		d.byDeadline[dl] = append(d.byDeadline[dl], se.id)
	}
	sort.Slice(d.deadlines, func(i, j int) bool { return d.deadlines[i] < d.deadlines[j] })
	v := s.view.Load()
	for _, se := range sessions {
		if paths := v.AppendEphemerals(nil, se.id, "/"); len(paths) > 0 {
			d.withEph = append(d.withEph, se.id)
			d.eph[se.id] = paths
		}
	}
	return d
}

// dump lists the sessions with their expiry and ephemerals.
func (s *Server) dump() string {
	var b strings.Builder
	d := s.sessionDump()
	fmt.Fprintf(&b, "SessionTracker dump:\nSession Sets (%d)/(%d):\n", len(d.deadlines), d.sessions)
	for _, dl := range d.deadlines {
		fmt.Fprintf(&b, "%d expire at %s:\n", len(d.byDeadline[dl]), java.Date(time.UnixMilli(d.wallMinusMono+dl)))
		for _, id := range d.byDeadline[dl] {
			fmt.Fprintf(&b, "\t0x%x\n", id)
		}
	}
	fmt.Fprintf(&b, "ephemeral nodes dump:\nSessions with Ephemerals (%d):\n", len(d.withEph))
	for _, id := range d.withEph {
		fmt.Fprintf(&b, "0x%x:\n", id)
		for _, p := range d.eph[id] {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	// ZooKeeper's connections expire in buckets as sessions do, on its
	// elapsed-time clock: a connection's last activity plus its session
	// timeout (nio.sessionlessCnxnTimeout before the handshake), rounded
	// up to the next multiple of nio.sessionlessCnxnTimeout.
	conns := s.connList()
	sort.Slice(conns, func(i, j int) bool { return conns[i].created.Before(conns[j].created) })
	interval := int64(s.cfg.SessionlessCnxnTimeout)
	buckets := map[int64][]*conn{}
	var ends []int64
	for _, c := range conns {
		timeout := int64(c.timeout.Load())
		if timeout <= 0 {
			timeout = interval
		}
		end := (c.lastActive.Load()+timeout)/interval*interval + interval
		if buckets[end] == nil {
			ends = append(ends, end)
		}
		buckets[end] = append(buckets[end], c)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
	fmt.Fprintf(&b, "Connections dump:\nConnections Sets (%d)/(%d):\n", len(ends), len(conns))
	for _, end := range ends {
		fmt.Fprintf(&b, "%d expire at %s:\n", len(buckets[end]), java.Date(time.UnixMilli(d.wallMinusMono+end)))
		for _, c := range buckets[end] {
			sid := c.sid.Load()
			fmt.Fprintf(&b, "\tip: %s sessionId: 0x%x\n", remoteString(c), sid)
		}
	}
	return b.String()
}

// envi describes the process's environment with ZooKeeper's keys where
// they have a meaning here.
func envi() string {
	var b strings.Builder
	b.WriteString("Environment:\n")
	for _, kv := range environment() {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return b.String()
}

// watchesBySession is wchc: each session with data watches and their
// paths. ZooKeeper lists the sessions in the order of its connection
// objects' identity hashes, which is arbitrary; zkd orders them by their
// ids' hashes. Each session's paths come in ZooKeeper's order (see
// java.Order).
func (s *Server) watchesBySession() string {
	_, sessOrder, pathOrder := s.tree.Load().DataWatchOrder()
	ids := make([]int64, 0, len(sessOrder))
	for id := range sessOrder {
		ids = append(ids, id)
	}
	var b strings.Builder
	for _, id := range java.Order(ids, java.LongHash, sessOrder, java.GrownCap(len(ids), 16)) {
		fmt.Fprintf(&b, "0x%x\n", id)
		paths := make([]string, 0, len(pathOrder[id]))
		for p := range pathOrder[id] {
			paths = append(paths, p)
		}
		// A HashSet grown one path at a time.
		for _, p := range java.Order(paths, java.StringHash, pathOrder[id], java.GrownCap(len(paths), 16)) {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// watchesByPath is wchp: each path with data watches and the sessions
// watching it, in the order ZooKeeper's hash maps give.
func (s *Server) watchesByPath() string {
	pathOrder, _, sessPaths := s.tree.Load().DataWatchOrder()
	byPath := map[string][]int64{}
	seqs := map[string]map[int64]uint64{}
	for id, ps := range sessPaths {
		for p, q := range ps {
			byPath[p] = append(byPath[p], id)
			if seqs[p] == nil {
				seqs[p] = map[int64]uint64{}
			}
			seqs[p][id] = q
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	var b strings.Builder
	for _, p := range java.Order(paths, java.StringHash, pathOrder, java.GrownCap(len(paths), 16)) {
		ids := byPath[p]
		fmt.Fprintf(&b, "%s\n", p)
		// new HashSet<>(n), then n adds: it grows from java.TableSizeFor(n).
		for _, id := range java.Order(ids, java.LongHash, seqs[p], java.GrownCap(len(ids), java.TableSizeFor(len(ids)))) {
			fmt.Fprintf(&b, "\t0x%x\n", id)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// mntrKeys are the keys ZooKeeper 3.8's mntr gives before its summary
// sets, in its order, taken from an ensemble's leader with an observer's
// one key put in its place: every role's keys are the ones it has, in
// this order.
//
//go:embed testdata/mntr-keys-zookeeper-3.8.txt
var mntrKeys string

// roleKeys are the keys of mntrKeys that only some roles report.
var roleKeys = []string{"zk_peer_state", "zk_observer_master_id", "zk_quorum_size", "zk_learners",
	"zk_synced_followers", "zk_synced_non_voting_followers", "zk_synced_observers", "zk_pending_syncs",
	"zk_leader_uptime", "zk_last_proposal_size", "zk_min_proposal_size", "zk_max_proposal_size"}

// monitorValue is one of mntr's figures: its key and its value as mntr
// prints it.
type monitorValue struct{ key, value string }

// mntr reports every key ZooKeeper 3.8's mntr reports, tab-separated, in
// its order.
func (s *Server) mntr() string {
	var b strings.Builder
	for _, mv := range s.monitorValues() {
		b.WriteString(mv.key)
		b.WriteByte('\t')
		b.WriteString(mv.value)
		b.WriteByte('\n')
	}
	return b.String()
}

// monitorValues are mntr's figures, which the AdminServer's monitor
// command and the Prometheus endpoint give too: the ones this server
// measures with their values, the rest (metrics of ZooKeeper's own
// processors and JVM) as 0.
func (s *Server) monitorValues() []monitorValue {
	v := s.view.Load()
	min, avg, max := s.stats.lat.figures()
	watches := s.tree.Load().WatchTotal()
	ephemerals := 0
	for _, se := range s.sessions.all() {
		ephemerals += len(v.AppendEphemerals(nil, se.id, "/"))
	}
	known := map[string]string{
		"zk_version":                     Version,
		"zk_server_state":                s.mode(),
		"zk_ephemerals_count":            fmt.Sprint(ephemerals),
		"zk_num_alive_connections":       fmt.Sprint(len(s.connList())),
		"zk_avg_latency":                 fmt.Sprintf("%.1f", avg),
		"zk_min_latency":                 fmt.Sprint(min),
		"zk_max_latency":                 fmt.Sprint(max),
		"zk_outstanding_requests":        fmt.Sprint(s.stats.outstanding.Load()),
		"zk_znode_count":                 fmt.Sprint(nodeCount(v)),
		"zk_global_sessions":             fmt.Sprint(s.sessions.count()),
		"zk_packets_sent":                fmt.Sprint(s.stats.sent.Load()),
		"zk_packets_received":            fmt.Sprint(s.stats.received.Load()),
		"zk_watch_count":                 fmt.Sprint(watches),
		"zk_approximate_data_size":       fmt.Sprint(v.ApproximateDataSize()),
		"zk_uptime":                      fmt.Sprint(time.Since(s.started).Milliseconds()),
		"zk_open_file_descriptor_count":  fmt.Sprint(openFDs()),
		"zk_max_file_descriptor_count":   fmt.Sprint(maxFDs()),
		"zk_connection_drop_probability": "0.0",
		"zk_digest_mismatches_count":     fmt.Sprint(s.digestMismatches.Load()),
		"zk_last_client_response_size":   fmt.Sprint(s.stats.respLast.Load()),
		"zk_max_client_response_size":    fmt.Sprint(s.stats.respMax.Load()),
		"zk_min_client_response_size":    fmt.Sprint(s.stats.respMin.Load()),
		"zk_connection_request_count":    fmt.Sprint(s.stats.connRequests.Load()),
		"zk_bytes_received_count":        fmt.Sprint(s.stats.bytesReceived.Load()),
		"zk_response_bytes":              fmt.Sprint(s.stats.responseBytes.Load()),
		// An ensemble's traffic: 0 on a standalone server, as on
		// ZooKeeper's.
		"zk_proposal_count":                  fmt.Sprint(s.stats.proposals.Load()),
		"zk_commit_count":                    fmt.Sprint(s.stats.commits.Load()),
		"zk_learner_proposal_received_count": fmt.Sprint(s.stats.learnerProposals.Load()),
		"zk_learner_commit_received_count":   fmt.Sprint(s.stats.learnerCommits.Load()),
		"zk_looking_count":                   fmt.Sprint(s.stats.looking.Load()),
		"zk_snap_count":                      fmt.Sprint(s.stats.snapSyncs.Load()),
		"zk_diff_count":                      fmt.Sprint(s.stats.diffSyncs.Load()),
		"zk_connection_rejected":             fmt.Sprint(s.stats.connRejected.Load()),
		"zk_connection_revalidate_count":     fmt.Sprint(s.stats.resumes.Load()),
		"zk_stale_sessions_expired":          fmt.Sprint(s.stats.sessionsExpired.Load()),
		"zk_revalidate_count":                fmt.Sprint(s.stats.revalidates.Load()),
		"zk_sessionless_connections_expired": fmt.Sprint(s.stats.sessionlessExpired.Load()),
	}
	for _, n := range s.summaries() {
		for _, mv := range summaryFigures(n.name, n.st) {
			known[mv.key] = mv.value
		}
		if n.pct {
			for _, mv := range n.res.percentileFigures(n.name) {
				known[mv.key] = mv.value
			}
		}
	}
	// Keys only some roles have: an ensemble member's, an observer's,
	// the leader's. The rest every server reports.
	only := map[string]bool{}
	if p := s.peer; p != nil {
		known["zk_quorum_size"] = fmt.Sprint(len(p.voters()))
		known["zk_peer_state"] = p.detailedState()
		if p.mode() == "observer" {
			known["zk_observer_master_id"] = fmt.Sprint(p.masterID.Load())
		}
		if n, ok := p.observerMasterStats(); ok {
			// A follower with a port for observers, as ZooKeeper's.
			known["zk_synced_observers"] = fmt.Sprint(n)
		}
		if st, ok := p.leaderStats(); ok {
			for k, v := range map[string]string{
				"zk_learners": fmt.Sprint(st.learners), "zk_synced_followers": fmt.Sprint(st.synced),
				"zk_synced_non_voting_followers": "0", "zk_synced_observers": fmt.Sprint(st.observers),
				"zk_pending_syncs": fmt.Sprint(st.pendingSyncs), "zk_leader_uptime": fmt.Sprint(st.uptime.Milliseconds()),
				"zk_last_proposal_size": fmt.Sprint(st.propLast), "zk_min_proposal_size": fmt.Sprint(st.propMin),
				"zk_max_proposal_size": fmt.Sprint(st.propMax),
			} {
				known[k] = v
			}
		}
	}
	for _, k := range roleKeys {
		if _, ok := known[k]; !ok {
			only[k] = true // not this server's role
		}
	}
	var out []monitorValue
	for _, k := range strings.Split(strings.TrimSpace(mntrKeys), "\n") {
		if only[k] {
			continue
		}
		val, ok := known[k]
		if !ok {
			val = "0"
			if strings.HasPrefix(k, "zk_avg_") {
				val = "0.0"
			}
		}
		out = append(out, monitorValue{k, val})
	}
	// Then ZooKeeper's summary sets, each a hash map of them by name and
	// each set's members in the order of its own hash map: the leader's
	// queue sizes per learner and the reads and writes per namespace;
	// last, the leader's queue times per learner, which have percentiles.
	// The leader's queues to its learners: every learner any leader
	// here has sent to since the start, as ZooKeeper keeps a summary
	// set's keys (it shows them as a follower too, once it has led).
	learners := map[string]ztree.NamespaceStat{}
	learnerTimes := map[string]*learnerQueueStats{}
	sids := s.learnerQueueIDs()
	for _, sid := range sids {
		q := s.learnerQueue(sid)
		learners[fmt.Sprint(sid)] = q.size.get()
		learnerTimes[fmt.Sprint(sid)] = q
	}
	sets := map[string]map[string]ztree.NamespaceStat{
		"read_per_namespace":  s.namespaceReads(),
		"write_per_namespace": s.tree.Load().NamespaceWrites(),
	}
	if len(sids) > 0 {
		sets["learner_handler_qp_size"] = learners
	}
	for _, name := range java.Order(slices.Collect(maps.Keys(sets)), java.StringHash, nil, 16) {
		set := sets[name]
		for _, k := range java.Order(slices.Collect(maps.Keys(set)), java.StringHash, nil, java.GrownCap(len(set), 16)) {
			out = append(out, summaryFigures(k+"_"+name, set[k])...)
		}
	}
	for _, k := range java.Order(slices.Collect(maps.Keys(learners)), java.StringHash, nil, java.GrownCap(len(learners), 16)) {
		q := learnerTimes[k]
		out = append(out, summaryFigures(k+"_learner_handler_qp_time_ms", q.time.get())...)
		out = append(out, q.time.res.percentileFigures(k+"_learner_handler_qp_time_ms")...)
	}
	return out
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

func maxFDs() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	return r.Cur
}

// nodeCount is the node count ZooKeeper reports: its DataTree holds the
// root under both "" and "/", so it counts one more than there are znodes.
func nodeCount(v *ztree.View) int { return v.NodeCount() + 1 }
