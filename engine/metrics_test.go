package engine_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// scrape fetches and parses url as Prometheus scrapes it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	var resp *http.Response
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err = http.Get(url); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s is not Prometheus text: %v", url, err)
	}
	return fams
}

// value is the single value of a gauge or counter family.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) float64 {
	t.Helper()
	f := fams[name]
	if f == nil || f.GetType() != typ || len(f.Metric) != 1 {
		t.Fatalf("metric %s: %v, want one %v", name, f, typ)
	}
	if typ == dto.MetricType_GAUGE {
		return f.Metric[0].GetGauge().GetValue()
	}
	return f.Metric[0].GetCounter().GetValue()
}

// With ZooKeeper's Prometheus provider named in zoo.cfg, zkd serves
// /metrics where ZooKeeper would, under ZooKeeper's metric names: the
// queries of ZooKeeper's own alerting example (its monitoring guide) find
// their series, and the figures are the ones mntr gives. Fsyncs and
// snapshots are measured, not reported as zero.
func TestPrometheusMetrics(t *testing.T) {
	port, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	z := zkdtest.Start(t, map[string]string{
		"metricsProvider.className": engine.PrometheusProvider,
		"metricsProvider.httpHost":  "127.0.0.1",
		"metricsProvider.httpPort":  strconv.Itoa(port),
		"4lw.commands.whitelist":    "*",
		"snapCount":                 "100",
	})
	c := connect(t, z.Addr)
	check(c.Create("/app", nil, 0, zk.WorldACL(zk.PermAll)))(t)
	for i := 0; i < 150; i++ {
		check(c.Create(fmt.Sprintf("/app/n%d", i), []byte("v"), 0, zk.WorldACL(zk.PermAll)))(t)
	}
	if _, _, _, err := c.GetW("/app"); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	// A snapshot is due after about 100 txns; it is written off the
	// write path.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, url)
		if f := fams["snapshottime"]; f != nil && len(f.Metric) == 1 && f.Metric[0].GetSummary().GetSampleCount() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot counted 20 s after 151 txns with snapCount=100: %v", fams["snapshottime"])
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The series ZooKeeper's alerting example queries (election_time
	// has no sample on a standalone server, as on ZooKeeper's).
	mntr, err := zkdtest.FourLetterWord(z.Addr, "mntr")
	if err != nil {
		t.Fatal(err)
	}
	figure := func(key string) float64 {
		_, rest, ok := strings.Cut(mntr, "zk_"+key+"\t")
		if !ok {
			t.Fatalf("mntr has no zk_%s:\n%s", key, mntr)
		}
		line, _, _ := strings.Cut(rest, "\n")
		f, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, g := range []string{"znode_count", "watch_count", "approximate_data_size", "ephemerals_count", "global_sessions"} {
		if got, want := value(t, fams, g, dto.MetricType_GAUGE), figure(g); got != want {
			t.Errorf("%s: %v on /metrics, %v in mntr", g, got, want)
		}
	}
	// mntr's own connection is one more than the client's.
	if v := value(t, fams, "num_alive_connections", dto.MetricType_GAUGE); v != 1 {
		t.Errorf("num_alive_connections %v with one client", v)
	}
	value(t, fams, "avg_latency", dto.MetricType_GAUGE)
	if v := value(t, fams, "open_file_descriptor_count", dto.MetricType_GAUGE); v <= 0 {
		t.Errorf("open_file_descriptor_count %v", v)
	}
	for _, s := range []string{"fsynctime", "snapshottime", "election_time", "readlatency", "updatelatency"} {
		f := fams[s]
		if f == nil || f.GetType() != dto.MetricType_SUMMARY || len(f.Metric) != 1 {
			t.Fatalf("summary %s: %v", s, f)
		}
	}
	// A summary with percentiles in mntr has ZooKeeper's three quantiles
	// here.
	up := fams["updatelatency"].Metric[0].GetSummary()
	var qs []float64
	for _, q := range up.GetQuantile() {
		qs = append(qs, q.GetQuantile())
		if v := q.GetValue(); v < figure("min_updatelatency") || v > figure("max_updatelatency") {
			t.Errorf("updatelatency{quantile=\"%v\"} is %v, outside mntr's min and max", q.GetQuantile(), v)
		}
	}
	if fmt.Sprint(qs) != "[0.5 0.9 0.99]" {
		t.Errorf("updatelatency has quantiles %v, want ZooKeeper's [0.5 0.9 0.99]", qs)
	}
	// The others have a median, as ZooKeeper's basic summaries have.
	fsync := fams["fsynctime"].Metric[0].GetSummary()
	if q := fsync.GetQuantile(); len(q) != 1 || q[0].GetQuantile() != 0.5 ||
		q[0].GetValue() < figure("min_fsynctime") || q[0].GetValue() > figure("max_fsynctime") {
		t.Errorf("fsynctime's quantiles %v: want a median, between mntr's min %v and max %v", q, figure("min_fsynctime"), figure("max_fsynctime"))
	}
	if n := fams["fsynctime"].Metric[0].GetSummary().GetSampleCount(); n == 0 {
		t.Errorf("no fsync counted after 151 txns")
	}
	// A summary kept per namespace, labelled as ZooKeeper labels it.
	ns := fams["write_per_namespace"]
	found := false
	for _, m := range ns.GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "key" && l.GetValue() == "app" && m.GetSummary().GetSampleCount() == uint64(figure("cnt_app_write_per_namespace")) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("write_per_namespace{key=\"app\"} is missing or differs from mntr: %v", ns)
	}
	// The Go runtime's figures, where ZooKeeper exports the JVM's.
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Errorf("no Go runtime or process metrics")
	}
}

// A client's requests move mntr's traffic figures as they move ZooKeeper's:
// the same session of reads, writes and a failing write adds the same
// bytes received (the connect request, and the word of the mntr that
// follows, included), reply bytes, connect requests and reads and writes
// counted. (How often each harness asked whether its server was up
// before is left out: the figures are compared as the session moved
// them.)
func TestClientTrafficFiguresAreZooKeepers(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, map[string]string{"4lw.commands.whitelist": "*"})
	keys := []string{"zk_packets_received", "zk_bytes_received_count", "zk_response_bytes", "zk_connection_request_count",
		"zk_cnt_readlatency", "zk_cnt_updatelatency"}
	mntr := func(addr string) map[string]int64 {
		figs := mntrFigures(t, addr)
		for _, k := range keys {
			if _, ok := figs[k]; !ok {
				t.Fatalf("mntr on %s lacks %s", addr, k)
			}
		}
		return figs
	}
	moved := func(addr string) string {
		before := mntr(addr)
		// Each request waits for its reply, and the session closes
		// within its first ping interval: no ping is counted.
		c, events, err := zk.Connect([]string{addr}, 30*time.Second, zk.WithLogger(quietLogger{}))
		if err != nil {
			t.Fatal(err)
		}
		waitConnected(t, events)
		check(c.Create("/traffic", []byte("xyz"), 0, zk.WorldACL(zk.PermAll)))(t)
		check2(c.Get("/traffic"))(t)
		check2(c.Children("/"))(t)
		check(c.Set("/traffic", []byte("q"), -1))(t)
		check2(c.Exists("/nope"))(t)
		if _, err := c.Create("/traffic", nil, 0, zk.WorldACL(zk.PermAll)); err != zk.ErrNodeExists {
			t.Fatalf("a second create of /traffic: %v", err)
		}
		c.Close()
		after := mntr(addr)
		// ZooKeeper adds a reply's bytes to response_bytes after it
		// has sent the reply, so the close's 16 can come a moment after
		// the client has gone. A four-letter word sends none, so the
		// figure is read until it holds still.
		for i := 0; i < 20; i++ {
			time.Sleep(50 * time.Millisecond)
			n := mntrFigures(t, addr)["zk_response_bytes"]
			if n == after["zk_response_bytes"] {
				break
			}
			after["zk_response_bytes"] = n
		}
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s +%d\n", k, after[k]-before[k])
		}
		return b.String()
	}
	got, want := moved(zkdAddr), moved(refAddr)
	compareLines(t, "what the session added to mntr's traffic figures", want, got)
}

// mntr's latency percentiles are measured, as ZooKeeper's are: with every
// txn log fsync taking 20 ms, writes show it from p50 up, a read that
// waited behind its session's write counts its wait (ZooKeeper counts a
// read from its arrival), reads that did not wait count 0, every figure
// lies between the summary's min and max, and srst starts them afresh.
func TestLatencyPercentilesAreMeasured(t *testing.T) {
	var syncs atomic.Int64
	s := startWithSlowFsync(t, &syncs, func(cfg *engine.Config) { cfg.FourLetterWords = "mntr,srst" })
	addr := s.Addr().String()
	mntr := func() map[string]int64 {
		t.Helper()
		out, err := zkdtest.FourLetterWord(addr, "mntr")
		if err != nil {
			t.Fatal(err)
		}
		figs := map[string]int64{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(line, "\t")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				figs[k] = n
			}
		}
		return figs
	}
	p := dialPipelined(t, addr)
	p.send(wire.OpCreate, &wire.CreateRequest{Path: "/p", ACL: openACL}, 0)
	p.waitReplies(1)
	const pairs, plain = 20, 60
	for i := 1; i <= pairs; i++ {
		p.send(wire.OpSetData, &wire.SetDataRequest{Path: "/p", Data: []byte(strconv.Itoa(i)), Version: -1}, uint64(i))
		p.send(wire.OpGetData, &wire.GetDataRequest{Path: "/p"}, uint64(i))
	}
	p.waitReplies(1 + 2*pairs)
	for i := 0; i < plain; i++ {
		p.send(wire.OpExists, &wire.ExistsRequest{Path: "/p"}, 0)
	}
	p.waitReplies(1 + 2*pairs + plain)

	figs := mntr()
	for _, name := range []string{"updatelatency", "readlatency"} {
		lo, hi := figs["zk_min_"+name], figs["zk_max_"+name]
		last := lo
		for _, q := range []string{"p50", "p95", "p99", "p999"} {
			v, ok := figs["zk_"+q+"_"+name]
			if !ok {
				t.Fatalf("mntr has no zk_%s_%s", q, name)
			}
			if v < last || v > hi {
				t.Errorf("zk_%s_%s is %d: not between the one before (%d) and zk_max_%s (%d)", q, name, v, last, name, hi)
			}
			last = v
		}
	}
	// The session's creation is a txn too.
	if got := figs["zk_cnt_updatelatency"]; got != 2+pairs {
		t.Errorf("zk_cnt_updatelatency %d after %d txns", got, 2+pairs)
	}
	if got := figs["zk_p50_updatelatency"]; got < 20 {
		t.Errorf("zk_p50_updatelatency %d ms with every write waiting for a 20 ms fsync", got)
	}
	if got := figs["zk_cnt_readlatency"]; got != pairs+plain {
		t.Errorf("zk_cnt_readlatency %d after %d reads", got, pairs+plain)
	}
	// 60 of the 80 reads waited for nothing; the 20 that waited for a
	// write are the top quarter.
	if got := figs["zk_p50_readlatency"]; got != 0 {
		t.Errorf("zk_p50_readlatency %d ms with three quarters of the reads answered at once", got)
	}
	if got := figs["zk_p95_readlatency"]; got < 20 {
		t.Errorf("zk_p95_readlatency %d ms: the reads that waited for a write's 20 ms fsync are not counted from their arrival", got)
	}
	if got := figs["zk_max_readlatency"]; got < 20 {
		t.Errorf("zk_max_readlatency %d ms: a read that waited for its session's write counted as answered at once", got)
	}

	if _, err := zkdtest.FourLetterWord(addr, "srst"); err != nil {
		t.Fatal(err)
	}
	figs = mntr()
	for _, k := range []string{"zk_cnt_updatelatency", "zk_p50_updatelatency", "zk_p999_updatelatency", "zk_p95_readlatency", "zk_max_readlatency"} {
		if figs[k] != 0 {
			t.Errorf("%s is %d after srst", k, figs[k])
		}
	}
}

// mntr counts connections and sessions as ZooKeeper's does: a connection
// past maxClientCnxns is rejected, a connect request that names a session
// revalidates it (with the right password or not), a session whose
// client went away expires, connections that never send a connect
// request are closed, and the txns replayed from the log at the next
// start are counted once. The same steps on both servers move the
// same figures.
func TestConnectionAndSessionFiguresAreZooKeepers(t *testing.T) {
	zkreftest.Need(t)
	const perIP = 10
	cfg := map[string]string{"4lw.commands.whitelist": "*", "tickTime": "200", "maxClientCnxns": fmt.Sprint(perIP),
		"nio.sessionlessCnxnTimeout": "3000"}
	// A client address of its own, whose connections reach the limit;
	// the others, from 127.0.0.1, stay far below it.
	const clientIP = "127.0.0.9"
	dialFrom := func(addr string) error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return err
	}
	// waitFor reads mntr until key has moved by want from before, for
	// at most 15 s, and returns the figures then.
	waitFor := func(addr string, before map[string]int64, key string, want int64) map[string]int64 {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			figs := mntrFigures(t, addr)
			if figs[key]-before[key] >= want || time.Now().After(deadline) {
				return figs
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	keys := []string{"zk_connection_rejected", "zk_connection_revalidate_count", "zk_stale_sessions_expired",
		"zk_sessionless_connections_expired"}
	// applied is the zxid srvr says the server has applied.
	applied := func(addr string) int64 { return srvrZxid(t, addr) }
	steps := func(addr string) string {
		before := mntrFigures(t, addr)
		zxid := applied(addr)
		// perIP connections from clientIP are allowed, one more not.
		// ZooKeeper counts a connection against the limit only once
		// its selector has taken it in, so the last is opened when cons
		// lists them all.
		for i := 0; i < perIP; i++ {
			if err := dialFrom(addr); err != nil {
				t.Fatalf("%s: connection %d of %d allowed from %s: %v", addr, i+1, perIP, clientIP, err)
			}
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			cons, err := zkdtest.FourLetterWord(addr, "cons")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(cons, "/"+clientIP+":") >= perIP {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: cons lists fewer than %d connections from %s 15 s on:\n%s", addr, perIP, clientIP, cons)
			}
		}
		// The server may close it before the dial returns: the dial
		// fails then (a reset), which is the refusal too.
		dialFrom(addr)
		waitFor(addr, before, "zk_connection_rejected", 1)
		// The perIP connections never sent a connect request: they are
		// closed 3 s on (nio.sessionlessCnxnTimeout), time enough to have
		// opened the one more. This is counted before any session is
		// made: ZooKeeper's connection expirer counts every connection
		// it closes, one with a session too, and a stalled server can
		// leave a closed session's connection for it (twice, even, when
		// a worker thread touches the connection after the expirer has
		// closed it).
		sessionless := waitFor(addr, before, "zk_sessionless_connections_expired", perIP)
		// Named with a wrong password, then resumed on a new
		// connection and closed: two revalidations, no expiry. (The
		// wrong password comes first: ZooKeeper would close the
		// session's connection on it, zkd does not.)
		a := zkreftest.Dial(t, addr, zkreftest.NewSession())
		a.Conn.Close()
		bad := zkreftest.Dial(t, addr, wire.ConnectRequest{TimeOut: 4000, SessionID: a.Session.SessionID, Passwd: make([]byte, 16)})
		if bad.Session.SessionID != 0 {
			t.Fatalf("%s: session 0x%x resumed with a wrong password", addr, a.Session.SessionID)
		}
		b := zkreftest.Dial(t, addr, wire.ConnectRequest{TimeOut: 4000, SessionID: a.Session.SessionID, Passwd: a.Session.Passwd})
		if b.Session.SessionID != a.Session.SessionID {
			t.Fatalf("%s: session 0x%x not resumed", addr, a.Session.SessionID)
		}
		b.OK(wire.OpCloseSession, nil)
		// A session left by its client: it expires (its timeout is
		// the least there is, two ticks).
		e := zkreftest.Dial(t, addr, wire.ConnectRequest{TimeOut: 400, Passwd: make([]byte, 16)})
		e.Conn.Close()
		after := waitFor(addr, before, "zk_stale_sessions_expired", 1)
		// The expiry is counted before its closeSession txn is logged
		// and applied; the server is killed next, and must have
		// written all four txns first (ZooKeeper once had three).
		for deadline := time.Now().Add(15 * time.Second); applied(addr) < zxid+4; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: applied zxid %#x 15 s after the expiry, want %#x: the steps' four txns", addr, applied(addr), zxid+4)
			}
		}
		var out strings.Builder
		for _, k := range keys {
			figs := after
			if k == "zk_sessionless_connections_expired" {
				figs = sessionless
			}
			fmt.Fprintf(&out, "%s +%d\n", k, figs[k]-before[k])
		}
		return out.String()
	}
	// What the next start replays: the two sessions' four txns, after
	// the snapshot each server wrote when it first started.
	restarted := func(addr string) string {
		figs := mntrFigures(t, addr)
		return fmt.Sprintf("zk_cnt_startup_txns_loaded %d\nzk_sum_startup_txns_loaded %d\nzk_cnt_startup_txns_load_time %d\n",
			figs["zk_cnt_startup_txns_loaded"], figs["zk_sum_startup_txns_loaded"], figs["zk_cnt_startup_txns_load_time"])
	}

	refOpts := zkref.Options{Config: cfg}
	ref := zkreftest.Start(t, refOpts)
	refSteps := steps(ref.Addr)
	if err := ref.Stop(); err != nil {
		t.Fatal(err)
	}
	ref, err := zkref.Start(ref.Dir, refOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Stop() })
	refStart := restarted(ref.Addr)

	z := zkdtest.Start(t, cfg)
	zkdSteps := steps(z.Addr)
	if err := z.Stop(); err != nil {
		t.Fatal(err)
	}
	z.Restart()
	zkdStart := restarted(z.Addr)

	compareLines(t, "what the steps added to mntr's connection and session figures", refSteps, zkdSteps)
	compareLines(t, "what mntr says the start replayed", refStart, zkdStart)
	if !strings.Contains(refStart, "zk_sum_startup_txns_loaded 4\n") {
		t.Errorf("ZooKeeper replayed other than the four txns of the steps:\n%s", refStart)
	}
}

// mntr's watch fan-out figures are ZooKeeper's: for each znode created,
// changed or deleted and each child list changed, how many sessions its
// watch registries found (a delete counts its data watchers and its child
// watchers apart). One-shot, persistent and recursive watches set by four
// sessions, then a create, a change and a delete, move the same figures
// on both servers.
func TestWatchFanoutFiguresAreZooKeepers(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, map[string]string{"4lw.commands.whitelist": "*"})
	names := []string{"node_created_watch_count", "node_changed_watch_count", "node_deleted_watch_count", "node_children_watch_count"}
	steps := func(addr string) string {
		dial := func() *zkreftest.Client { return zkreftest.Dial(t, addr, zkreftest.NewSession()) }
		s, a, b, c, d := dial(), dial(), dial(), dial(), dial()
		s.OK(wire.OpCreate, &wire.CreateRequest{Path: "/fan", ACL: openACL})
		before := mntrFigures(t, addr)
		watch := func(cl *zkreftest.Client, op wire.OpCode, path string) {
			t.Helper()
			if h, _ := cl.Call(op, &wire.PathWatchRequest{Path: path, Watch: true}); h.Err != wire.ErrOK && h.Err != wire.ErrNoNode {
				t.Fatalf("%s: %v on %s: %v", addr, op, path, h.Err)
			}
		}
		watch(a, wire.OpExists, "/fan/x")
		watch(b, wire.OpGetChildren, "/fan")
		c.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/fan/x", Mode: wire.AddWatchPersistent})
		d.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/fan", Mode: wire.AddWatchPersistentRecursive})
		s.OK(wire.OpCreate, &wire.CreateRequest{Path: "/fan/x", ACL: openACL})
		watch(a, wire.OpGetData, "/fan/x")
		s.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/fan/x", Data: []byte("v"), Version: -1})
		watch(a, wire.OpGetData, "/fan/x")
		watch(b, wire.OpGetChildren, "/fan/x")
		watch(b, wire.OpGetChildren, "/fan")
		s.OK(wire.OpDelete, &wire.DeleteRequest{Path: "/fan/x", Version: -1})
		// A change nobody watches adds nothing.
		s.OK(wire.OpCreate, &wire.CreateRequest{Path: "/quiet", ACL: openACL})
		after := mntrFigures(t, addr)
		var out strings.Builder
		for _, n := range names {
			for _, part := range []string{"cnt", "sum", "min", "max"} {
				k := "zk_" + part + "_" + n
				if part == "cnt" || part == "sum" {
					fmt.Fprintf(&out, "%s +%d\n", k, after[k]-before[k])
				} else {
					fmt.Fprintf(&out, "%s %d\n", k, after[k])
				}
			}
		}
		return out.String()
	}
	ref := steps(refAddr)
	t.Logf("ZooKeeper:\n%s", ref)
	compareLines(t, "what the watched changes added to mntr's watch fan-out figures", ref, steps(zkdAddr))
}
