package engine_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// Differential tests: the same scenario against the reference Apache
// ZooKeeper 3.8 and against zkd, each on a fresh data directory, outputs
// normalized and compared line by line.

// bothServers starts zkd and the reference side by side.
func bothServers(t *testing.T, cfg map[string]string) (zkdAddr, refAddr string) {
	t.Helper()
	var ref *zkref.Server
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ref = zkreftest.Start(t, zkref.Options{Config: cfg}) }()
	srv := zkdtest.Start(t, cfg)
	wg.Wait()
	if ref == nil {
		t.FailNow()
	}
	return srv.Addr, ref.Addr
}

func compareLines(t *testing.T, what, ref, got string) {
	t.Helper()
	if i, rl, gl, differ := zkreftest.DifferingLine(ref, got); differ {
		t.Fatalf("%s: line %d differs\nZooKeeper: %q\nzkd:       %q\n\nZooKeeper's whole output:\n%s\n\nzkd's:\n%s", what, i, rl, gl, ref, got)
	}
}

// Kafka-style broker registration, a Dubbo-style registry, a lock and an
// election under contention, configuration pushed to watchers, and the
// error codes and Stat bookkeeping around them, through kazoo.
func TestDifferentialUsagePatterns(t *testing.T) {
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	zkdAddr, refAddr := bothServers(t, nil)
	var refOut, zkdOut string
	var refErr, zkdErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		refOut, refErr = run(t, 3*time.Minute, kazooPython, "testdata/clients/scenarios.py", refAddr)
	}()
	go func() {
		defer wg.Done()
		zkdOut, zkdErr = run(t, 3*time.Minute, kazooPython, "testdata/clients/scenarios.py", zkdAddr)
	}()
	wg.Wait()
	if refErr != nil || !strings.Contains(refOut, "== done") {
		t.Fatalf("the scenarios failed against ZooKeeper itself: %v\n%s", refErr, refOut)
	}
	if zkdErr != nil {
		t.Fatalf("the scenarios failed against zkd: %v\n%s", zkdErr, zkdOut)
	}
	compareLines(t, "scenarios.py", refOut, zkdOut)
}

var (
	cLogLine   = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d .*\n`)
	cSession   = regexp.MustCompile(`session id: 0x[0-9a-f]+`)
	cTime      = regexp.MustCompile(`time = \d+ msec`)
	cDate      = regexp.MustCompile(`(ctime|mtime) ?= ?.*`)
	cZxid      = regexp.MustCompile(`(czxid|mzxid)=[0-9a-f]+`)
	cChildLine = regexp.MustCompile(`(?m)^\t[^\t=\n]+$`)
)

// normalizeC takes out of cli_mt's output what differs between servers:
// log lines, session ids, times, zxids, the order of ls's children
// (ZooKeeper promises none), and where the session's connect lines fall:
// cli_mt's I/O thread prints them while its main thread prints the
// command, in whichever order the two threads happen to run.
func normalizeC(s string) string {
	s = cLogLine.ReplaceAllString(s, "")
	s = cSession.ReplaceAllString(s, "session id: SID")
	s = cTime.ReplaceAllString(s, "time = T msec")
	s = cDate.ReplaceAllString(s, "$1 = DATE")
	s = cZxid.ReplaceAllString(s, "$1=ZXID")
	var connect, rest []string
	for _, l := range strings.Split(s, "\n") {
		if l == "Watcher SESSION_EVENT state = CONNECTED_STATE" || strings.HasPrefix(l, "Got a new session id") {
			connect = append(connect, l)
		} else {
			rest = append(rest, l)
		}
	}
	lines := rest
	if len(connect) > 0 && len(rest) > 0 && strings.HasPrefix(rest[0], "Batch mode:") {
		lines = append(append([]string{rest[0]}, connect...), rest[1:]...)
	} else {
		lines = append(connect, rest...)
	}
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && cChildLine.MatchString(lines[j]) {
			j++
		}
		sort.Strings(lines[i:j])
		if j == i {
			j++
		}
		i = j
	}
	return strings.Join(lines, "\n")
}

// The C client's cli_mt, one command per run, as scripts use it. (exists
// is left out: in batch mode cli_mt sometimes never exits after it, with
// either server.)
func TestDifferentialCClient(t *testing.T) {
	need(t, "the C client (Debian zookeeper-bin)", cliMt)
	zkdAddr, refAddr := bothServers(t, nil)
	cmds := []string{"create /c", "create /c", "create /c/kid", "create +e /c/eph", "create +s /c/seq-",
		"get /c", "ls /c", "ls2 /c", "set /c abc", "get /c", "delete /c", "delete /c/kid",
		"get /c/kid", "create /c/kid/deeper", "sync /c", "delete /c/seq-0000000003",
		"ls /c", "delete /c", "ls /"}
	for _, cmd := range cmds {
		ref, _ := run(t, time.Minute, cliMt, "-h", refAddr, "-c", cmd)
		got, _ := run(t, time.Minute, cliMt, "-h", zkdAddr, "-c", cmd)
		compareLines(t, "cli_mt -c '"+cmd+"'", normalizeC(ref), normalizeC(got))
	}
}

// Every opcode, raw, with valid and invalid arguments: the reply header's
// error and the reply body must match ZooKeeper's byte for byte, Stats
// compared without their times. (check outside a multi is left out:
// ZooKeeper 3.8 never answers it; zkd answers it as 3.9 does.)
func TestDifferentialEveryOpcode(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, nil)
	acl := openACL
	digest := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: "u:" + "x"}}}
	type req struct {
		op   wire.OpCode
		body wire.Record
	}
	reqs := []req{
		{wire.OpCreate, &wire.CreateRequest{Path: "/d", Data: []byte("data"), ACL: acl}},
		{wire.OpCreate, &wire.CreateRequest{Path: "/d", ACL: acl}},
		{wire.OpCreate, &wire.CreateRequest{Path: "/d/", ACL: acl}},
		{wire.OpCreate, &wire.CreateRequest{Path: "d", ACL: acl}},
		{wire.OpCreate, &wire.CreateRequest{Path: "/d/e", ACL: nil}},
		{wire.OpCreate, &wire.CreateRequest{Path: "/d/s", ACL: acl, Flags: wire.ModeEphemeralSequential}},
		{wire.OpCreate, &wire.CreateRequest{Path: "/d/bad", ACL: acl, Flags: 77}},
		{wire.OpCreate2, &wire.CreateRequest{Path: "/d/c2", Data: []byte("x"), ACL: acl}},
		{wire.OpCreateContainer, &wire.CreateRequest{Path: "/box", ACL: acl, Flags: wire.ModeContainer}},
		{wire.OpCreateTTL, &wire.CreateTTLRequest{Path: "/ttl", ACL: acl, Flags: wire.ModePersistentWithTTL, TTL: 1000}},
		{wire.OpCreate, &wire.CreateRequest{Path: "/dg", ACL: digest}},
		{wire.OpGetData, &wire.GetDataRequest{Path: "/d"}},
		{wire.OpGetData, &wire.GetDataRequest{Path: "/missing"}},
		{wire.OpGetData, &wire.GetDataRequest{Path: "/dg"}},
		{wire.OpExists, &wire.ExistsRequest{Path: "/d/c2"}},
		{wire.OpExists, &wire.ExistsRequest{Path: "/nope", Watch: true}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/d", Data: []byte("v2"), Version: 0}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/d", Data: []byte("v3"), Version: 0}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/missing", Version: -1}},
		{wire.OpGetChildren, &wire.GetChildrenRequest{Path: "/d", Watch: true}},
		{wire.OpGetChildren2, &wire.GetChildren2Request{Path: "/d"}},
		{wire.OpGetChildren, &wire.GetChildrenRequest{Path: "/missing"}},
		{wire.OpGetACL, &wire.GetACLRequest{Path: "/d"}},
		{wire.OpGetACL, &wire.GetACLRequest{Path: "/zookeeper/config"}},
		{wire.OpSetACL, &wire.SetACLRequest{Path: "/d/c2", ACL: acl, Version: 0}},
		{wire.OpSetACL, &wire.SetACLRequest{Path: "/d/c2", ACL: acl, Version: 5}},
		{wire.OpSync, &wire.SyncRequest{Path: "/d"}},
		{wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: "/m", ACL: acl}, {Type: wire.OpSetData, Path: "/m", Data: []byte("z"), Version: 0},
			{Type: wire.OpCheck, Path: "/m", Version: 1}, {Type: wire.OpDelete, Path: "/m", Version: -1}}}},
		{wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: "/m2", ACL: acl}, {Type: wire.OpDelete, Path: "/nope", Version: -1}}}},
		{wire.OpMultiRead, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpGetData, Path: "/d"}, {Type: wire.OpGetChildren, Path: "/d"}, {Type: wire.OpGetData, Path: "/nope"}}}},
		{wire.OpGetEphemerals, &wire.GetEphemeralsRequest{Path: "/"}},
		{wire.OpGetAllChildrenNumber, &wire.GetAllChildrenNumberRequest{Path: "/d"}},
		{wire.OpGetAllChildrenNumber, &wire.GetAllChildrenNumberRequest{Path: "/nope"}},
		{wire.OpAddWatch, &wire.AddWatchRequest{Path: "/d", Mode: wire.AddWatchPersistentRecursive}},
		{wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: "/d", Type: wire.WatcherAny}},
		{wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/d", Type: wire.WatcherAny}},
		{wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: "/d", Type: wire.WatcherAny}},
		{wire.OpWhoAmI, nil},
		{wire.OpReconfig, &wire.ReconfigRequest{CurConfigID: -1}},
		{wire.OpSASL, &wire.GetSASLRequest{Token: []byte("tok")}},
		{wire.OpDelete, &wire.DeleteRequest{Path: "/d", Version: -1}},
		{wire.OpDelete, &wire.DeleteRequest{Path: "/d/c2", Version: 3}},
		{wire.OpDelete, &wire.DeleteRequest{Path: "/zookeeper", Version: -1}},
		{wire.OpDeleteContainer, &wire.DeleteContainerRequest{Path: "/box"}},
		{wire.OpSetData, &wire.SetDataRequest{Path: "/zookeeper/quota", Data: []byte("x"), Version: -1}},
		{wire.OpPing, nil},
		// Last: ZooKeeper closes the connection after answering an
		// unknown opcode; zkd keeps it (rule 5).
		{55, &wire.PathRequest{Path: "/"}},
	}
	trace := func(addr string) []string {
		c := zkreftest.Dial(t, addr, zkreftest.NewSession())
		var out []string
		for i, r := range reqs {
			hdr := (&wire.RequestHeader{Xid: int32(i + 1), Type: r.op})
			if r.op == wire.OpPing {
				hdr.Xid = wire.XidPing
			}
			p := hdr.Append(nil)
			if r.body != nil {
				p = r.body.Append(p)
			}
			c.Write(p)
			for {
				reply := c.Read()
				rh, n, err := wire.DecodeReplyHeader(reply)
				if err != nil {
					t.Fatal(err)
				}
				body := reply[n:]
				if rh.Xid == wire.XidNotification {
					out = append(out, fmt.Sprintf("event %x", body))
					continue
				}
				out = append(out, fmt.Sprintf("%v %v: %v %s", r.op, rh.Xid, rh.Err, describe(r.op, rh.Err, body)))
				break
			}
		}
		return out
	}
	ref, got := trace(refAddr), trace(zkdAddr)
	compareLines(t, "opcodes", strings.Join(ref, "\n"), strings.Join(got, "\n"))
}

// describe shows a reply body with the times of its Stats taken out.
func describe(op wire.OpCode, code wire.ErrCode, body []byte) string {
	if code != wire.ErrOK {
		return fmt.Sprintf("%x", body)
	}
	rec, ok := wire.ReplyRecord(op)
	if !ok || rec == nil {
		return fmt.Sprintf("%x", body)
	}
	if _, err := rec.Decode(body, wire.Copy); err != nil {
		return fmt.Sprintf("undecodable %x: %v", body, err)
	}
	clearTimes(rec)
	return fmt.Sprintf("%+v", rec)
}

func clearTimes(rec wire.Record) {
	fix := func(st *wire.Stat) { st.Ctime, st.Mtime = 0, 0 }
	switch r := rec.(type) {
	case *wire.GetDataResponse:
		fix(&r.Stat)
	case *wire.StatResponse:
		fix(&r.Stat)
	case *wire.Create2Response:
		fix(&r.Stat)
	case *wire.GetChildren2Response:
		sort.Strings(r.Children)
		fix(&r.Stat)
	case *wire.StringsResponse:
		sort.Strings(r.Strings)
	case *wire.GetACLResponse:
		fix(&r.Stat)
	case *wire.MultiResponse:
		for i := range r.Results {
			fix(&r.Results[i].Stat)
			sort.Strings(r.Results[i].Children)
		}
	}
}

// Four-letter words: the same keys and layout as ZooKeeper's answers.
func TestDifferentialFourLetterWords(t *testing.T) {
	zkdAddr, refAddr := bothServers(t, map[string]string{"4lw.commands.whitelist": "*"})
	keys := func(addr, word, sep string) []string {
		out, err := zkdtest.FourLetterWord(addr, word)
		if err != nil {
			t.Fatalf("%s on %s: %v", word, addr, err)
		}
		var ks []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, _, _ := strings.Cut(line, sep)
			ks = append(ks, k)
		}
		return ks
	}
	for _, c := range []struct{ word, sep string }{{"mntr", "\t"}, {"srvr", ":"}, {"conf", "="}, {"dirs", ":"}} {
		compareLines(t, c.word+" keys", strings.Join(keys(refAddr, c.word, c.sep), "\n"),
			strings.Join(keys(zkdAddr, c.word, c.sep), "\n"))
	}
	for _, w := range []string{"ruok", "isro", "wchs", "crst", "srst"} {
		ref, _ := zkdtest.FourLetterWord(refAddr, w)
		got, _ := zkdtest.FourLetterWord(zkdAddr, w)
		compareLines(t, w, ref, got)
	}
}
