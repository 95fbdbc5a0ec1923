package engine_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
	"zkd/ztree"
)

// fourLetters sends a word, with extra bytes after it in the same packet.
func fourLetters(t *testing.T, addr, word string, extra []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(append([]byte(word), extra...))
	b, _ := io.ReadAll(c)
	return string(b)
}

var (
	hexIDs  = regexp.MustCompile(`0x[0-9a-f]{10,}`)
	ports   = regexp.MustCompile(`/127\.0\.0\.1:\d+`)
	dates   = regexp.MustCompile(`expire at [A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \w+ \d{4}`)
	timings = regexp.MustCompile(`(est|lresp|llat|minlat|avglat|maxlat)=\d+`)
	digests = regexp.MustCompile(`(?m)^([0-9a-f]+): \d+$`)
)

// normalize hides what differs between any two servers or runs: session
// ids, ports, dates and timings.
func normalize(s string) string {
	s = hexIDs.ReplaceAllString(s, "SESSION")
	s = ports.ReplaceAllString(s, "/127.0.0.1:PORT")
	s = dates.ReplaceAllString(s, "expire at DATE")
	s = timings.ReplaceAllString(s, "$1=T")
	return digests.ReplaceAllString(s, "$1: DIGEST")
}

var (
	bucketLines = regexp.MustCompile(`(?m)^\d+ expire at DATE:\n`)
	setCounts   = regexp.MustCompile(`Sets \(\d+\)/`)
)

// withoutBuckets drops the expiry bucket lines of a dump and their count:
// which sessions and connections share a bucket depends on where the tick
// (or 10 s) boundaries fell while each server ran the scenario, which
// differs between the two servers and between runs. What is left is the
// sessions, connections and ephemerals listed; the bucket rules have tests
// that do not race the clock (the emptied bucket below, and the session
// table's own).
func withoutBuckets(s string) string {
	return setCounts.ReplaceAllString(bucketLines.ReplaceAllString(s, ""), "Sets (N)/")
}

// sortedLines sorts the lines of each block that starts with a line not
// starting with a tab or a space: the order ZooKeeper lists connections
// and sessions in is that of a Java hash set.
func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// The four-letter words that show connections, sessions and digests, and
// the trace mask words, against ZooKeeper 3.8: the same lines once what
// must differ (ids, ports, times) is hidden.
func TestDifferentialFourLetterWordsInDetail(t *testing.T) {
	cfg := map[string]string{"4lw.commands.whitelist": "*"}
	zkdAddr, refAddr := bothServers(t, cfg)
	// The same steps on both servers, interleaved, so that both fall into
	// the same expiry buckets.
	var cls [2][]*zkreftest.Client
	for i := 0; i < 3; i++ {
		for k, addr := range []string{refAddr, zkdAddr} {
			req := zkreftest.NewSession()
			req.TimeOut = int32(10000 * (i + 1))
			cls[k] = append(cls[k], zkreftest.Dial(t, addr, req))
		}
	}
	for k := range cls {
		a, b := cls[k][0], cls[k][1]
		a.OK(wire.OpCreate, &wire.CreateRequest{Path: "/x", Data: []byte("1"), ACL: ztree.OpenACL})
		a.OK(wire.OpCreate, &wire.CreateRequest{Path: "/x/e", ACL: ztree.OpenACL, Flags: wire.ModeEphemeral})
		a.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: "/x", Mode: 1})
		// An addauth does not count as the last op, and a ping does.
		a.CallXid(wire.XidAuth, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("u:p")})
		b.CallXid(wire.XidPing, wire.OpPing, nil)
		for i := 0; i < 300; i++ { // past two digest log points
			a.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/x", Data: []byte(fmt.Sprint(i)), Version: -1})
		}
	}
	for _, w := range []string{"cons", "dump", "hash", "gtmk"} {
		var ref, got string
		for attempt := 0; attempt < 3; attempt++ { // a bucket boundary may fall between the two
			ref = normalize(fourLetters(t, refAddr, w, nil))
			got = normalize(fourLetters(t, zkdAddr, w, nil))
			if w == "dump" {
				ref, got = withoutBuckets(ref), withoutBuckets(got)
			}
			if w == "cons" || w == "dump" {
				ref, got = sortedLines(ref), sortedLines(got)
			}
			if ref == got {
				break
			}
		}
		compareLines(t, w, ref, got)
	}
	// mntr's client response sizes: the same replies and events, so the
	// same last, smallest and largest.
	sizes := func(addr string) string {
		var b strings.Builder
		for _, line := range strings.Split(fourLetters(t, addr, "mntr", nil), "\n") {
			if strings.HasSuffix(strings.SplitN(line, "\t", 2)[0], "client_response_size") {
				b.WriteString(line + "\n")
			}
		}
		return b.String()
	}
	if ref, got := sizes(refAddr), sizes(zkdAddr); ref != got || !strings.Contains(ref, "\t84\n") {
		t.Fatalf("mntr response sizes:\nZooKeeper:\n%s\nzkd:\n%s", ref, got)
	}
	// A session touched a tick after its last touch moves to a later
	// bucket, and the one it left is still listed, empty, on both.
	time.Sleep(2100 * time.Millisecond) // tickTime is 2000
	for k, addr := range []string{refAddr, zkdAddr} {
		cls[k][2].CallXid(wire.XidPing, wire.OpPing, nil)
		if out := fourLetters(t, addr, "dump", nil); !strings.Contains(normalize(out), "\n0 expire at DATE:\n") {
			t.Fatalf("%s lists no empty session bucket after a session moved:\n%s", []string{"ZooKeeper", "zkd"}[k], out)
		}
	}
	var mask [8]byte
	binary.BigEndian.PutUint64(mask[:], 0x1f3)
	for _, step := range []struct {
		word  string
		extra []byte
	}{{"stmk", mask[:]}, {"gtmk", nil}, {"stmk", nil}, {"gtmk", nil}} {
		ref := fourLetters(t, refAddr, step.word, step.extra)
		got := fourLetters(t, zkdAddr, step.word, step.extra)
		compareLines(t, fmt.Sprintf("%s %x", step.word, step.extra), ref, got)
	}
}

// wchs, wchc and wchp count and list data watches only, as ZooKeeper's do
// (getData and exists watches, and persistent ones; not child watches),
// in the order of ZooKeeper's hash maps; mntr's watch_count counts both.
func TestDifferentialWatchWords(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, map[string]string{"4lw.commands.whitelist": "*"})
	for _, addr := range []string{refAddr, zkdAddr} {
		setup := zkreftest.Dial(t, addr, zkreftest.NewSession())
		for i := 0; i < 20; i++ {
			setup.OK(wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/w%d", i), ACL: ztree.OpenACL})
		}
		for s := 0; s < 5; s++ {
			c := zkreftest.Dial(t, addr, zkreftest.NewSession())
			for i := s; i < 20; i += s + 1 {
				p := fmt.Sprintf("/w%d", i)
				switch i % 4 {
				case 0:
					c.OK(wire.OpGetData, &wire.GetDataRequest{Path: p, Watch: true})
				case 1:
					c.OK(wire.OpExists, &wire.ExistsRequest{Path: p, Watch: true})
				case 2:
					c.OK(wire.OpGetChildren, &wire.GetChildrenRequest{Path: p, Watch: true}) // not a data watch
				case 3:
					c.OK(wire.OpAddWatch, &wire.AddWatchRequest{Path: p, Mode: wire.AddWatchMode(s % 2)})
				}
			}
			c.Call(wire.OpExists, &wire.ExistsRequest{Path: fmt.Sprintf("/missing%d", s), Watch: true})
		}
		// A session whose only watch has fired.
		fired := zkreftest.Dial(t, addr, zkreftest.NewSession())
		fired.Call(wire.OpExists, &wire.ExistsRequest{Path: "/fired", Watch: true})
		setup.OK(wire.OpCreate, &wire.CreateRequest{Path: "/fired", ACL: ztree.OpenACL})
		for len(fired.Events) == 0 {
			fired.Call(wire.OpExists, &wire.ExistsRequest{Path: "/"})
		}
	}
	for _, w := range []string{"wchs", "wchp"} {
		compareLines(t, w, normalize(fourLetters(t, refAddr, w, nil)), normalize(fourLetters(t, zkdAddr, w, nil)))
	}
	// mntr's watch_count counts data and child watches alike: a
	// persistent watch, of either mode, is in both of ZooKeeper's
	// registries.
	if ref, got := mntrFigures(t, refAddr)["zk_watch_count"], mntrFigures(t, zkdAddr)["zk_watch_count"]; ref != got {
		t.Errorf("zk_watch_count: ZooKeeper %d, zkd %d", ref, got)
	}
	// wchc lists sessions in the order of ZooKeeper's connection objects'
	// identity hashes, which nothing can reproduce: compare each
	// session's paths, in order.
	blocks := func(out string) (ids []string, paths []string) {
		for _, blk := range strings.Split(strings.TrimSpace(out), "\n0x") {
			id, rest, _ := strings.Cut(strings.TrimPrefix(blk, "0x"), "\n")
			ids = append(ids, id)
			paths = append(paths, rest)
		}
		return ids, paths
	}
	refIDs, refPaths := blocks(fourLetters(t, refAddr, "wchc", nil))
	gotIDs, gotPaths := blocks(fourLetters(t, zkdAddr, "wchc", nil))
	sort.Strings(refPaths)
	sort.Strings(gotPaths)
	compareLines(t, "wchc paths", strings.Join(refPaths, "\n--\n"), strings.Join(gotPaths, "\n--\n"))
	if len(refIDs) != len(gotIDs) {
		t.Fatalf("wchc lists %d sessions on ZooKeeper, %d on zkd", len(refIDs), len(gotIDs))
	}
}

// mntr's per-namespace read and write figures, against ZooKeeper's: the
// same requests give the same keys, in the same order, with the same sums.
func TestDifferentialNamespaceMetrics(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, map[string]string{"4lw.commands.whitelist": "*"})
	run := func(addr string) string {
		c := zkreftest.Dial(t, addr, zkreftest.NewSession())
		for _, ns := range []string{"/app", "/brokers", "/config"} {
			c.OK(wire.OpCreate, &wire.CreateRequest{Path: ns, Data: []byte("x"), ACL: ztree.OpenACL})
			for i := 0; i < 5; i++ {
				p := fmt.Sprintf("%s/n%d", ns, i)
				c.OK(wire.OpCreate, &wire.CreateRequest{Path: p, Data: make([]byte, 10*i), ACL: ztree.OpenACL})
				c.OK(wire.OpSetData, &wire.SetDataRequest{Path: p, Data: []byte("changed"), Version: -1})
				c.OK(wire.OpGetData, &wire.GetDataRequest{Path: p})
				c.OK(wire.OpExists, &wire.ExistsRequest{Path: p})
			}
			c.OK(wire.OpGetChildren, &wire.GetChildrenRequest{Path: ns})
			c.OK(wire.OpGetChildren2, &wire.GetChildren2Request{Path: ns})
			c.Call(wire.OpGetData, &wire.GetDataRequest{Path: ns + "/missing"}) // not counted
		}
		c.OK(wire.OpMultiRead, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpGetData, Path: "/app/n1"}, {Type: wire.OpGetChildren, Path: "/brokers"}}})
		var b strings.Builder
		for _, line := range strings.Split(fourLetters(t, addr, "mntr", nil), "\n") {
			if strings.Contains(line, "_per_namespace") {
				b.WriteString(line + "\n")
			}
		}
		return b.String()
	}
	ref, got := run(refAddr), run(zkdAddr)
	if !strings.Contains(ref, "zk_sum_brokers_read_per_namespace") {
		t.Fatalf("ZooKeeper reports no per-namespace figures:\n%s", ref)
	}
	compareLines(t, "per-namespace mntr", ref, got)
}

// ZooKeeper always lets srvr through the four-letter-word whitelist
// (zkServer.sh status asks it), and isro too when read-only mode is on,
// which ZooKeeper takes only from the JVM flag -Dreadonlymode.enabled=true
// (SERVER_JVMFLAGS). zkd did neither: with a whitelist of its own,
// zkServer.sh status said a zkd server was not running.
func TestDifferentialFourLetterWordWhitelist(t *testing.T) {
	cfg := map[string]string{"4lw.commands.whitelist": "stat, ruok"}
	for _, ro := range []bool{false, true} {
		var props map[string]string
		var env []string
		if ro {
			props = map[string]string{"readonlymode.enabled": "true"}
			env = []string{"SERVER_JVMFLAGS=-Xmx512m -Dreadonlymode.enabled=true"}
		}
		ref := zkreftest.Start(t, zkref.Options{Config: cfg, SystemProperties: props})
		srv := zkdtest.StartWith(t, cfg, zkdtest.Options{Env: env})
		answers := func(addr string) string {
			var b strings.Builder
			for _, w := range []string{"srvr", "isro", "ruok", "conf"} {
				out, err := zkdtest.FourLetterWord(addr, w)
				if err != nil {
					t.Fatalf("%s on %s: %v", w, addr, err)
				}
				if w == "srvr" {
					out, _, _ = strings.Cut(out, "-") // the version line, up to the build
				}
				fmt.Fprintf(&b, "%s: %q\n", w, out)
			}
			return b.String()
		}
		want, got := answers(ref.Addr), answers(srv.Addr)
		compareLines(t, fmt.Sprintf("whitelisted words, read-only mode %v", ro), want, got)
		if !strings.Contains(got, "srvr: \"Zookeeper version: 3.8") || strings.Contains(got, "isro: \"rw\"") != ro {
			t.Fatalf("zkd, read-only mode %v:\n%s", ro, got)
		}
	}
}
