package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
)

// adminJars are what ZooKeeper's AdminServer needs on the class path
// besides the server's own jars (Debian's jetty9 and jackson2 packages,
// which the zookeeper package depends on).
var adminJars = []string{
	"/usr/share/java/jetty9-server.jar", "/usr/share/java/jetty9-util.jar",
	"/usr/share/java/jetty9-http.jar", "/usr/share/java/jetty9-io.jar",
	"/usr/share/java/jetty9-servlet.jar", "/usr/share/java/jetty9-security.jar",
	"/usr/share/java/servlet-api.jar", "/usr/share/java/jackson-core.jar",
	"/usr/share/java/jackson-databind.jar", "/usr/share/java/jackson-annotations.jar",
}

// adminConfig turns the AdminServer on, on a free port of addr's host.
func adminConfig(t *testing.T, host string) (map[string]string, string) {
	t.Helper()
	port, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"admin.enableServer": "true", "admin.serverAddress": host,
		"admin.serverPort": strconv.Itoa(port), "4lw.commands.whitelist": "*"}, fmt.Sprintf("http://%s:%d/commands", host, port)
}

// adminGet fetches base/name and decodes the JSON answer, waiting up to
// 30 s for the server to listen.
func adminGet(t *testing.T, base, name string) (int, map[string]any, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/" + name)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr != nil {
				t.Fatalf("%s/%s: %v", base, name, rerr)
			}
			var m map[string]any
			if name != "" {
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("%s/%s is not JSON: %v\n%s", base, name, err, b)
				}
			}
			return resp.StatusCode, m, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: %v", base, name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dataKey is an object key that is data, not a field name: a session id,
// a path, a time, a server id.
var dataKey = regexp.MustCompile(`^(-?[0-9]+|/.*)$`)

var serverInName = regexp.MustCompile(`_[0-9]+_`)

// shape describes a decoded JSON value without its data: objects by
// their field names and the shapes of their values (keys that are data
// folded into one "*"), arrays by their first element, scalars by type.
// flat says the object's own keys are data too (environment,
// system_properties).
func shape(v any, flat bool) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		if len(x) == 0 {
			return "[]"
		}
		return "[" + shape(x[0], false) + "]"
	case map[string]any:
		fields := map[string]map[string]bool{}
		for k, val := range x {
			if flat || dataKey.MatchString(k) {
				k = "*"
			}
			// A server id inside a name: the leader's summaries per
			// learner (avg_2_learner_handler_qp_size, say).
			k = serverInName.ReplaceAllString(k, "_*_")
			if fields[k] == nil {
				fields[k] = map[string]bool{}
			}
			fields[k][shape(val, false)] = true
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for _, k := range keys {
			// An empty list beside full ones says nothing of their
			// shape: ZooKeeper's dump keeps an expiry bucket a session
			// just left, empty, until its expirer passes it.
			if len(fields[k]) > 1 {
				delete(fields[k], "[]")
			}
			var shapes []string
			for s := range fields[k] {
				shapes = append(shapes, s)
			}
			sort.Strings(shapes)
			fmt.Fprintf(&b, "%s:%s;", k, strings.Join(shapes, "|"))
		}
		b.WriteString("}")
		return b.String()
	}
	return fmt.Sprintf("%T", v)
}

// shapeDiff names the fields of two object shapes that differ: those
// only ZooKeeper's has, and those only zkd's has.
func shapeDiff(ref, zkd string) string {
	fields := func(s string) []string {
		return strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}"), ";")
	}
	var onlyRef, onlyZkd []string
	r, z := fields(ref), fields(zkd)
	for _, f := range r {
		if !slices.Contains(z, f) {
			onlyRef = append(onlyRef, f)
		}
	}
	for _, f := range z {
		if !slices.Contains(r, f) {
			onlyZkd = append(onlyZkd, f)
		}
	}
	return fmt.Sprintf("\nonly ZooKeeper's: %s\nonly zkd's:       %s", strings.Join(onlyRef, "; "), strings.Join(onlyZkd, "; "))
}

// The AdminServer of a standalone zkd answers every command ZooKeeper
// 3.8's does, under the same names and aliases, with answers of the same
// shape (field names and value types, nested objects and lists alike),
// given the same tree, sessions, ephemerals and watches; figures that
// must agree do.
func TestAdminServerAnswersAsZooKeeper(t *testing.T) {
	zkreftest.Need(t)
	refCfg, refBase := adminConfig(t, "127.0.0.1")
	ref, err := zkref.Start(t.TempDir(), zkref.Options{Config: refCfg, ClassPath: adminJars})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Stop() })
	zkdCfg, zkdBase := adminConfig(t, "127.0.0.1")
	z := zkdtest.Start(t, zkdCfg)

	// The same state on both: a session with an ephemeral and watches
	// of each kind.
	for _, addr := range []string{ref.Addr, z.Addr} {
		c := connect(t, addr)
		check(c.Create("/a", []byte("a"), 0, zk.WorldACL(zk.PermAll)))(t)
		check(c.Create("/a/b", nil, 0, zk.WorldACL(zk.PermAll)))(t)
		check(c.Create("/eph", []byte("e"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
		if _, _, _, err := c.GetW("/a"); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.ExistsW("/a/b"); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.ChildrenW("/a"); err != nil {
			t.Fatal(err)
		}
	}

	// The list of commands.
	_, _, refList := adminGet(t, refBase, "")
	_, _, zkdList := adminGet(t, zkdBase, "")
	link := regexp.MustCompile(`commands/([a-z_]+)"`)
	names := func(page string) []string {
		var out []string
		for _, m := range link.FindAllStringSubmatch(page, -1) {
			out = append(out, m[1])
		}
		sort.Strings(out)
		return out
	}
	if r, z := names(refList), names(zkdList); !slices.Equal(r, z) || len(r) < 20 {
		t.Fatalf("commands listed: ZooKeeper %v, zkd %v", r, z)
	}

	aliases := []string{"crst", "conf", "cons", "env", "envi", "gtmk", "icfg", "isro", "lsnp", "lead",
		"mntr", "orst", "stmk", "srvr", "stat", "srst", "obsr", "sysp", "wchc", "wchp", "wchs"}
	for _, name := range append(names(refList), aliases...) {
		_, refAns, refText := adminGet(t, refBase, name)
		status, zkdAns, zkdText := adminGet(t, zkdBase, name)
		if status != http.StatusOK {
			t.Errorf("%s: status %d", name, status)
		}
		flat := name == "environment" || name == "env" || name == "envi" || name == "system_properties" || name == "sysp"
		if rs, zs := shape(refAns, flat), shape(zkdAns, flat); rs != zs {
			t.Errorf("%s: the answers differ in shape: %s", name, shapeDiff(rs, zs))
			t.Logf("ZooKeeper's answer to %s:\n%s\nzkd's:\n%s", name, refText, zkdText)
			continue
		}
		if refAns["command"] != zkdAns["command"] || refAns["error"] != zkdAns["error"] {
			t.Errorf("%s: command %v error %v, ZooKeeper's %v and %v", name, zkdAns["command"], zkdAns["error"], refAns["command"], refAns["error"])
		}
	}

	// Answers without figures are the same to the byte, as Jackson
	// prints them.
	for _, name := range []string{"ruok", "is_read_only", "zabstate", "observers", "leader"} {
		_, _, refText := adminGet(t, refBase, name)
		_, _, zkdText := adminGet(t, zkdBase, name)
		if refText != zkdText {
			t.Errorf("%s: zkd answers\n%q\nZooKeeper\n%q", name, zkdText, refText)
		}
	}

	// Figures that agree, given the same tree and sessions.
	_, refMon, _ := adminGet(t, refBase, "monitor")
	_, zkdMon, _ := adminGet(t, zkdBase, "monitor")
	for _, k := range []string{"server_state", "znode_count", "ephemerals_count", "watch_count", "num_alive_connections", "global_sessions"} {
		if refMon[k] != zkdMon[k] {
			t.Errorf("monitor %s: zkd %v, ZooKeeper %v", k, zkdMon[k], refMon[k])
		}
	}
	_, refWchs, _ := adminGet(t, refBase, "watch_summary")
	_, zkdWchs, _ := adminGet(t, zkdBase, "watch_summary")
	for _, k := range []string{"num_connections", "num_paths", "num_total_watches"} {
		if refWchs[k] != zkdWchs[k] {
			t.Errorf("watch_summary %s: zkd %v, ZooKeeper %v", k, zkdWchs[k], refWchs[k])
		}
	}
	_, refWp, _ := adminGet(t, refBase, "watches_by_path")
	_, zkdWp, _ := adminGet(t, zkdBase, "watches_by_path")
	paths := func(m map[string]any) []string {
		var out []string
		for p := range m["path_to_session_ids"].(map[string]any) {
			out = append(out, p)
		}
		sort.Strings(out)
		return out
	}
	if r, z := paths(refWp), paths(zkdWp); !slices.Equal(r, z) {
		t.Errorf("watches_by_path: zkd %v, ZooKeeper %v", z, r)
	}

	// Arguments, and what is refused.
	_, ans, _ := adminGet(t, zkdBase, "set_trace_mask?traceMask=42")
	if ans["tracemask"] != float64(42) || ans["error"] != nil {
		t.Errorf("set_trace_mask?traceMask=42: %v", ans)
	}
	if _, ans, _ := adminGet(t, zkdBase, "get_trace_mask"); ans["tracemask"] != float64(42) {
		t.Errorf("get_trace_mask after setting 42: %v", ans)
	}
	_, refAns, _ := adminGet(t, refBase, "no_such_command")
	status, zkdAns, _ := adminGet(t, zkdBase, "no_such_command")
	if status != http.StatusNotFound || zkdAns["error"] != refAns["error"] || zkdAns["command"] != "no_such_command" {
		t.Errorf("an unknown command: status %d, %v; ZooKeeper's %v", status, zkdAns, refAns)
	}
}

// In an ensemble, the commands about it (leader, zabstate, voting_view,
// observers, and the leader's own figures) answer in ZooKeeper's shape
// too: a zkd follower beside a ZooKeeper follower of a ZooKeeper leader,
// then a zkd leader, once the ZooKeeper leader is killed, against what
// that leader answered. A zkd observer is synced all along.
func TestAdminServerInAnEnsemble(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 4, nil)
	e.Observers = 1
	bases := map[int64]string{}
	var refs []*zkref.Server
	startZK := func(id int64) {
		cfg := e.MemberConfig(id)
		adm, base := adminConfig(t, fmt.Sprintf("127.0.0.%d", id))
		for k, v := range adm {
			cfg[k] = v
		}
		bases[id] = base
		ref, err := zkref.Start(t.TempDir(), zkref.Options{MyID: id, Config: cfg, ClassPath: adminJars})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		t.Cleanup(func() { ref.Stop() })
	}
	startZK(3)
	startZK(1)
	// ZooKeeper 3 and 1 are a quorum of the three participants: let
	// them elect 3 before zkd 2 starts, or zkd 2 and whichever
	// ZooKeeper's JVM is up first may elect 2.
	for _, r := range refs {
		if err := r.WaitServing(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{2, 4} {
		adm, base := adminConfig(t, fmt.Sprintf("127.0.0.%d", id))
		if e.Member == nil {
			e.Member = map[int64]map[string]string{}
		}
		e.Member[id] = adm
		bases[id] = base
		e.Start(t, id)
	}
	e.WaitServing(t, 60*time.Second)
	for _, r := range refs {
		if err := r.WaitServing(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if m := refs[0].Mode(); m != "leader" {
		t.Fatalf("ZooKeeper 3 is %q, want leader", m)
	}
	check(connect(t, e.Addr(2)).Create("/x", nil, 0, zk.WorldACL(zk.PermAll)))(t)

	commands := []string{"leader", "zabstate", "voting_view", "observers", "server_stats", "monitor", "configuration"}
	compare := func(when string, refID, zkdID int64, ref map[string]map[string]any) {
		t.Helper()
		for _, name := range commands {
			_, zkdAns, zkdText := adminGet(t, bases[zkdID], name)
			if rs, zs := shape(ref[name], false), shape(zkdAns, false); rs != zs {
				t.Errorf("%s, %s: the answers differ in shape: %s", when, name, shapeDiff(rs, zs))
				refText, _ := json.MarshalIndent(ref[name], "", "  ")
				t.Logf("ZooKeeper %d's answer to %s (decoded):\n%s\nzkd %d's:\n%s", refID, name, refText, zkdID, zkdText)
			}
		}
	}
	answers := func(id int64) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, name := range commands {
			_, out[name], _ = adminGet(t, bases[id], name)
		}
		return out
	}
	compare("followers", 1, 2, answers(1))
	leader := answers(3)
	if leader["leader"]["is_leader"] != true || leader["leader"]["leader_id"] != float64(3) {
		t.Fatalf("ZooKeeper 3's leader answer: %v", leader["leader"])
	}
	if n := leader["observers"]["synced_observers"]; n != float64(1) {
		t.Fatalf("ZooKeeper 3 has %v synced observers, want 1", n)
	}
	_, follower, _ := adminGet(t, bases[2], "leader")
	for _, k := range []string{"is_leader", "leader_id", "leader_ip"} {
		if _, ref, _ := adminGet(t, bases[1], "leader"); follower[k] != ref[k] {
			t.Errorf("leader %s: zkd follower says %v, ZooKeeper follower %v", k, follower[k], ref[k])
		}
	}

	if err := refs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.Servers[2].Mode() != "leader" {
		if time.Now().After(deadline) {
			t.Fatal("zkd 2 does not lead 30 s after ZooKeeper 3's kill")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, obs, _ := adminGet(t, bases[2], "observers")
		if obs["synced_observers"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zkd 2 has no synced observer 30 s on: %v", obs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	compare("leaders", 3, 2, leader)

	// zkd 2 counts its traffic with each learner as ZooKeeper's leader
	// does: writes through the observer are REQUESTs it received, and
	// each comes back to it as an INFORM; the queues' sizes and times
	// are in mntr per learner (the first packet queued is timed).
	before := map[string]float64{}
	if _, obs, _ := adminGet(t, bases[2], "observers"); len(obs["observers"].([]any)) == 1 {
		for k, v := range obs["observers"].([]any)[0].(map[string]any) {
			if f, ok := v.(float64); ok {
				before[k] = f
			}
		}
	} else {
		t.Fatalf("zkd 2's observers: %v", obs)
	}
	oc := connect(t, e.Addr(4))
	const writes = 20
	for i := 0; i < writes; i++ {
		check(oc.Create(fmt.Sprintf("/via-observer-%d", i), nil, 0, zk.WorldACL(zk.PermAll)))(t)
	}
	_, obs, _ := adminGet(t, bases[2], "observers")
	info := obs["observers"].([]any)[0].(map[string]any)
	for _, k := range []string{"requests", "packets_received", "packets_sent"} {
		if got := info[k].(float64) - before[k]; got < writes {
			t.Errorf("observers: %s moved by %v over %d writes through the observer", k, got, writes)
		}
	}
	mntr, err := zkdtest.FourLetterWord(e.Addr(2), "mntr")
	if err != nil {
		t.Fatal(err)
	}
	figs := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(mntr), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			figs[k] = f
		}
	}
	for _, sid := range []string{"1", "4"} {
		if n := figs["zk_cnt_"+sid+"_learner_handler_qp_size"]; n < writes {
			t.Errorf("zkd 2's mntr: zk_cnt_%s_learner_handler_qp_size %v after %d writes", sid, n, writes)
		}
		qt := "_" + sid + "_learner_handler_qp_time_ms"
		if n := figs["zk_cnt"+qt]; n < 1 {
			t.Errorf("zkd 2's mntr: zk_cnt%s %v: its first packet queued was not timed", qt, n)
		}
		if p50, p999, max := figs["zk_p50"+qt], figs["zk_p999"+qt], figs["zk_max"+qt]; p50 > p999 || p999 > max {
			t.Errorf("zkd 2's mntr: %s's p50 %v, p999 %v, max %v", qt, p50, p999, max)
		}
	}
	// zkd 2 went through at least two elections: at the start and
	// after the kill.
	if _, mon, _ := adminGet(t, bases[2], "monitor"); mon["cnt_election_time"].(float64) < 2 {
		t.Errorf("zkd 2 counted %v elections, want 2 or more", mon["cnt_election_time"])
	}
	if _, ans, _ := adminGet(t, bases[2], "leader"); ans["is_leader"] != true || ans["leader_id"] != float64(2) || ans["leader_ip"] != "127.0.0.2" {
		t.Errorf("zkd 2's leader answer: %v", ans)
	}
}

// admin.commandURL moves the commands; a port the AdminServer cannot bind
// leaves the server serving clients without it, with a warning that says
// which keys to change, as ZooKeeper goes on without its AdminServer.
func TestAdminServerSettings(t *testing.T) {
	cfg, base := adminConfig(t, "127.0.0.1")
	cfg["admin.commandURL"] = "/zk/cmds"
	z := zkdtest.Start(t, cfg)
	moved := strings.TrimSuffix(base, "/commands") + "/zk/cmds"
	if status, ans, _ := adminGet(t, moved, "ruok"); status != http.StatusOK || ans["command"] != "ruok" {
		t.Fatalf("%s/ruok: %d %v", moved, status, ans)
	}
	if resp, err := http.Get(base + "/ruok"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%s/ruok after the commands moved: %v %v", base, resp, err)
	}
	if _, _, page := adminGet(t, moved, ""); !strings.Contains(page, `href="/zk/cmds/monitor"`) {
		t.Fatalf("the list of commands at %s:\n%s", moved, page)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg, _ = adminConfig(t, "127.0.0.1")
	cfg["admin.serverPort"] = strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	z = zkdtest.Start(t, cfg)
	if out, err := zkdtest.FourLetterWord(z.Addr, "ruok"); err != nil || out != "imok" {
		t.Fatalf("ruok with the AdminServer's port taken: %q %v", out, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(z.Log(), "the AdminServer cannot listen and is off") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning that the AdminServer is off:\n%s", z.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An fsync of the txn log slower than fsync.warningthresholdms is logged,
// naming the log file, and counted in the AdminServer's stats
// (server_stats.fsync_threshold_exceed_count), as ZooKeeper's are; under
// the threshold (1000 ms by default) it is neither. Every fsync of the
// log here takes half a second more (ZKD_FAULTS=slow-fsync).
func TestSlowFsyncsAreLoggedAndCounted(t *testing.T) {
	for _, c := range []struct {
		threshold string
		slow      bool
	}{{"", false}, {"200", true}} {
		cfg, base := adminConfig(t, "127.0.0.1")
		if c.threshold != "" {
			cfg["fsync.warningthresholdms"] = c.threshold
		}
		srv := zkdtest.StartWith(t, cfg, zkdtest.Options{Env: []string{"ZKD_FAULTS=slow-fsync"}})
		zc := connect(t, srv.Addr)
		for i := 0; i < 3; i++ {
			// One at a time: each waits for an fsync of its own.
			if _, err := zc.Create(fmt.Sprintf("/slow-%d", i), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
				t.Fatal(err)
			}
		}
		_, stats, body := adminGet(t, base, "stats")
		ss, _ := stats["server_stats"].(map[string]any)
		n, ok := ss["fsync_threshold_exceed_count"].(float64)
		if !ok {
			t.Fatalf("stats has no server_stats.fsync_threshold_exceed_count:\n%s", body)
		}
		var warned []string
		for _, l := range strings.Split(srv.Log(), "\n") {
			if strings.Contains(l, "fsync.warningthresholdms") {
				warned = append(warned, l)
			}
		}
		if !c.slow {
			if n != 0 || len(warned) != 0 {
				t.Fatalf("fsyncs of half a second, under the default threshold of 1000 ms: counted %v, logged %q", n, warned)
			}
			continue
		}
		if n < 3 || int(n) != len(warned) {
			t.Fatalf("three writes, each fsync over 500 ms against a threshold of 200: counted %v, logged %d times: %q", n, len(warned), warned)
		}
		if !strings.Contains(warned[0], "version-2/log.") || !strings.Contains(warned[0], "thresholdMs=200") {
			t.Fatalf("the warning names neither the log file nor the threshold: %s", warned[0])
		}
	}
}
