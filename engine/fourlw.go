package engine

import (
	_ "embed"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

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
	"srvr": func(c *conn) string { return c.s.srvr(false) },
	"stat": func(c *conn) string { return c.s.srvr(true) },
	"mntr": func(c *conn) string { return c.s.mntr() },
	"conf": func(c *conn) string { return c.s.conf() },
	"cons": func(c *conn) string { return c.s.cons() + "\n" },
	"crst": func(c *conn) string {
		for _, o := range c.s.connList() {
			o.received.Store(0)
			o.sent.Store(0)
		}
		return "Connection stats reset.\n"
	},
	"srst": func(c *conn) string { c.s.stats.reset(); return "Server stats reset.\n" },
	"dump": func(c *conn) string { return c.s.dump() },
	"envi": func(c *conn) string { return envi() },
	"wchs": func(c *conn) string {
		sessions, paths, watches := c.s.tree.WatchCounts()
		return fmt.Sprintf("%d connections watching %d paths\nTotal watches:%d\n", sessions, paths, watches)
	},
	"wchc": func(c *conn) string { return c.s.watchesBySession() },
	"wchp": func(c *conn) string { return c.s.watchesByPath() },
	"dirs": func(c *conn) string {
		return fmt.Sprintf("datadir_size: %d\nlogdir_size: %d\n", dirSize(c.s.cfg.DataDir), dirSize(c.s.cfg.LogDir()))
	},
	"isro": func(c *conn) string {
		if c.s.readOnly.Load() != nil {
			return "ro"
		}
		return "rw"
	},
	"hash": func(c *conn) string {
		v := c.s.view.Load()
		return fmt.Sprintf("Zxid: 0x%x, digest: %d\n", v.Zxid(), v.Digest())
	},
}

// zookeeperWords are the other four-letter words ZooKeeper 3.8 knows;
// they are answered with the whitelist refusal, never read as a length.
var zookeeperWords = map[string]bool{"gtmk": true, "stmk": true, "lsnp": true, "lead": true}

func isFourLetterWord(w string) bool { return fourLetterCommands[w] != nil || zookeeperWords[w] }

// FourLetterWord is the client side: it sends word to the server at addr
// and returns the whole answer, as `echo srvr | nc host port` would.
func FourLetterWord(addr, word string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(word)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// fourLetterWord answers a four-letter word sent in place of a handshake;
// the connection closes once the answer is written.
func (c *conn) fourLetterWord(w string) string {
	if c.s.fours[w] {
		return fourLetterCommands[w](c)
	}
	return w + " is not executed because it is not in the whitelist.\n"
}

// mode is the server's state as srvr and mntr name it: "read-only", as
// ZooKeeper's read-only server says, while a full disk keeps the log from
// taking txns.
func (s *Server) mode() string {
	if s.readOnly.Load() != nil {
		return "read-only"
	}
	return "standalone"
}

// srvr is the srvr answer, and with clients the stat answer.
func (s *Server) srvr(clients bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Zookeeper version: %s\n", Version)
	if clients {
		b.WriteString("Clients:\n")
		b.WriteString(s.cons())
		b.WriteString("\n")
	}
	v := s.view.Load()
	min, avg, max := s.stats.latencies()
	fmt.Fprintf(&b, "Latency min/avg/max: %d/%.1f/%d\n", min, avg, max)
	fmt.Fprintf(&b, "Received: %d\nSent: %d\nConnections: %d\nOutstanding: %d\nZxid: 0x%x\nMode: %s\nNode count: %d\n",
		s.stats.received.Load(), s.stats.sent.Load(), len(s.connList()), s.stats.outstanding.Load(),
		v.Zxid(), s.mode(), nodeCount(v))
	return b.String()
}

func (st *stats) latencies() (min int64, avg float64, max int64) {
	min, max = st.latMin.Load(), st.latMax.Load()
	if min < 0 {
		min = 0
	}
	if n := st.latCount.Load(); n > 0 {
		avg = float64(st.latSum.Load()) / float64(n)
	}
	return min, avg, max
}

// cons lists the connections as ZooKeeper's cons does.
func (s *Server) cons() string {
	var b strings.Builder
	conns := s.connList()
	sort.Slice(conns, func(i, j int) bool { return conns[i].created.Before(conns[j].created) })
	for _, c := range conns {
		c.mu.Lock()
		queued, sid := len(c.deferred)+c.inflight, c.sid
		c.mu.Unlock()
		fmt.Fprintf(&b, " %s[%d](queued=%d,recved=%d,sent=%d", remoteString(c), 1, queued, c.received.Load(), c.sent.Load())
		if sid != 0 {
			fmt.Fprintf(&b, ",sid=0x%x,lop=%s,est=%d,to=%d,lcxid=0x%x,lzxid=0x%x,lresp=%d,llat=0,minlat=0,avglat=0,maxlat=0",
				sid, opName(c.lastOp.Load()), c.created.UnixMilli(), c.timeout.Load(), c.lastXid.Load(),
				c.lastZxid.Load(), c.lastResponse.Load())
		}
		b.WriteString(")\n")
	}
	return b.String()
}

func remoteString(c *conn) string { return "/" + c.nc.RemoteAddr().String() }

// opName is ZooKeeper's short name of an op in cons (Request.op2String).
func opName(op int32) string {
	switch op {
	case -100:
		return "NA"
	case 1:
		return "CREA"
	case 2:
		return "DELE"
	case 3:
		return "EXIS"
	case 4:
		return "GETD"
	case 5:
		return "SETD"
	case 6:
		return "GETA"
	case 7:
		return "SETA"
	case 8:
		return "GETC"
	case 9:
		return "SYNC"
	case 11:
		return "PING"
	case 12:
		return "GET2"
	case 13:
		return "CHEC"
	case 14:
		return "MULT"
	case 15:
		return "CRE2"
	case 100:
		return "AUTH"
	case 101:
		return "SETW"
	case -11:
		return "CLOS"
	}
	return "UNKNOWN"
}

// conf prints the settings in force, as ZooKeeper's conf does.
func (s *Server) conf() string {
	var b strings.Builder
	data, _ := filepath.Abs(filepath.Join(s.cfg.DataDir, "version-2"))
	logs, _ := filepath.Abs(filepath.Join(s.cfg.LogDir(), "version-2"))
	fmt.Fprintf(&b, "clientPort=%d\nsecureClientPort=-1\ndataDir=%s\ndataDirSize=%d\ndataLogDir=%s\ndataLogSize=%d\n",
		s.cfg.ClientPort, data, dirSize(s.cfg.DataDir), logs, dirSize(s.cfg.LogDir()))
	fmt.Fprintf(&b, "tickTime=%d\nmaxClientCnxns=%d\nminSessionTimeout=%d\nmaxSessionTimeout=%d\nclientPortListenBacklog=-1\nserverId=0\n",
		s.cfg.TickTime, s.cfg.MaxClientCnxns, s.cfg.MinTimeout(), s.cfg.MaxTimeout())
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

// dump lists the sessions with their expiry and ephemerals.
func (s *Server) dump() string {
	var b strings.Builder
	sessions := s.sessions.all()
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].id < sessions[j].id })
	byDeadline := map[int64][]int64{}
	var deadlines []int64
	for _, se := range sessions {
		d := se.deadline.Load()
		if byDeadline[d] == nil {
			deadlines = append(deadlines, d)
		}
		byDeadline[d] = append(byDeadline[d], se.id)
	}
	sort.Slice(deadlines, func(i, j int) bool { return deadlines[i] < deadlines[j] })
	fmt.Fprintf(&b, "SessionTracker dump:\nSession Sets (%d)/(%d):\n", len(deadlines), len(sessions))
	for _, d := range deadlines {
		fmt.Fprintf(&b, "%d expire at %s:\n", len(byDeadline[d]), time.UnixMilli(d).UTC().Format("Mon Jan 02 15:04:05 MST 2006"))
		for _, id := range byDeadline[d] {
			fmt.Fprintf(&b, "\t0x%x\n", id)
		}
	}
	v := s.view.Load()
	var withEph []int64
	eph := map[int64][]string{}
	for _, se := range sessions {
		if paths := v.AppendEphemerals(nil, se.id, "/"); len(paths) > 0 {
			withEph = append(withEph, se.id)
			eph[se.id] = paths
		}
	}
	fmt.Fprintf(&b, "ephemeral nodes dump:\nSessions with Ephemerals (%d):\n", len(withEph))
	for _, id := range withEph {
		fmt.Fprintf(&b, "0x%x:\n", id)
		for _, p := range eph[id] {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	conns := s.connList()
	fmt.Fprintf(&b, "Connections dump:\nConnections Sets (%d)/(%d):\n", min(len(conns), 1), len(conns))
	if len(conns) > 0 {
		fmt.Fprintf(&b, "%d connections:\n", len(conns))
		for _, c := range conns {
			c.mu.Lock() // a handshake sets sid under it
			sid := c.sid
			c.mu.Unlock()
			fmt.Fprintf(&b, "\tip: %s sessionId: 0x%x\n", remoteString(c), sid)
		}
	}
	return b.String()
}

// envi describes the process's environment with ZooKeeper's keys where
// they have a meaning here.
func envi() string {
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	u, _ := user.Current()
	name, home := "", ""
	if u != nil {
		name, home = u.Username, u.HomeDir
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("Environment:\nzookeeper.version=%s\nhost.name=%s\ngo.version=%s\nos.name=%s\nos.arch=%s\nuser.name=%s\nuser.home=%s\nuser.dir=%s\nos.memory.total=%dMB\n",
		Version, host, runtime.Version(), runtime.GOOS, runtime.GOARCH, name, home, wd, ms.Sys>>20)
}

// watchesBySession is wchc: each session and the paths it watches.
func (s *Server) watchesBySession() string {
	var b strings.Builder
	sessions := s.sessions.all()
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].id < sessions[j].id })
	for _, se := range sessions {
		w := s.tree.SessionWatches(se.id)
		if len(w) == 0 {
			continue
		}
		fmt.Fprintf(&b, "0x%x\n", se.id)
		for _, p := range sortedKeys(w) {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// watchesByPath is wchp: each watched path and the sessions watching it.
func (s *Server) watchesByPath() string {
	byPath := map[string][]int64{}
	for _, se := range s.sessions.all() {
		for p := range s.tree.SessionWatches(se.id) {
			byPath[p] = append(byPath[p], se.id)
		}
	}
	var b strings.Builder
	for _, p := range sortedKeys(byPath) {
		ids := byPath[p]
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		fmt.Fprintf(&b, "%s\n", p)
		for _, id := range ids {
			fmt.Fprintf(&b, "\t0x%x\n", id)
		}
	}
	b.WriteString("\n")
	return b.String()
}

//go:embed testdata/mntr-keys-zookeeper-3.8.txt
var mntrKeys string

// mntr reports every key ZooKeeper 3.8's mntr reports, tab-separated, in
// its order: the ones this server measures with their values, the rest
// (metrics of ZooKeeper's own processors and JVM) as 0.
func (s *Server) mntr() string {
	v := s.view.Load()
	min, avg, max := s.stats.latencies()
	_, _, watches := s.tree.WatchCounts()
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
		"zk_last_client_response_size":   "-1",
		"zk_max_client_response_size":    "-1",
		"zk_min_client_response_size":    "-1",
	}
	var b strings.Builder
	for _, k := range strings.Split(strings.TrimSpace(mntrKeys), "\n") {
		val, ok := known[k]
		if !ok {
			val = "0"
			if strings.HasPrefix(k, "zk_avg_") {
				val = "0.0"
			}
		}
		fmt.Fprintf(&b, "%s\t%s\n", k, val)
	}
	return b.String()
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
