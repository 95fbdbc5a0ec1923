package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// With audit.enable=true, the same clients' writes against ZooKeeper and
// zkd give the same audit events: the server's start, each create,
// delete, setData, setAcl, multi and reconfig that succeeded or failed,
// with its session, users, address, znode, type and ACL, and the
// ephemerals a closed session loses. zkd logs its stop too.
func TestDifferentialAuditLog(t *testing.T) {
	cfg := map[string]string{"audit.enable": "true"}
	var ref *zkref.Server
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ref = zkreftest.Start(t, zkref.Options{Config: cfg, Log: true}) }()
	srv := zkdtest.Start(t, cfg)
	wg.Wait()
	if ref == nil {
		t.FailNow()
	}
	run := func(addr string) {
		a := zkreftest.Dial(t, addr, zkreftest.NewSession())
		a.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("owner:pw")})
		mine := []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: "owner:" + ownerDigest}}}
		a.OK(wire.OpCreate, &wire.CreateRequest{Path: "/a", Data: []byte("x"), ACL: openACL})
		a.Call(wire.OpCreate, &wire.CreateRequest{Path: "/a", ACL: openACL})
		a.Call(wire.OpCreate2, &wire.CreateRequest{Path: "/none/b", ACL: openACL})
		a.OK(wire.OpCreate, &wire.CreateRequest{Path: "/a/seq-", ACL: openACL, Flags: wire.ModePersistentSequential})
		a.OK(wire.OpCreateContainer, &wire.CreateRequest{Path: "/c", ACL: openACL, Flags: wire.ModeContainer})
		a.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("y"), Version: -1})
		a.Call(wire.OpSetData, &wire.SetDataRequest{Path: "/a", Data: []byte("z"), Version: 7})
		a.OK(wire.OpSetACL, &wire.SetACLRequest{Path: "/c", ACL: append(append([]wire.ACL(nil), openACL...), mine...), Version: -1})
		a.Call(wire.OpSetACL, &wire.SetACLRequest{Path: "/missing", ACL: openACL, Version: -1})
		a.Call(wire.OpDelete, &wire.DeleteRequest{Path: "/missing", Version: -1})
		a.Call(wire.OpDeleteContainer, &wire.DeleteRequest{Path: "/c"})
		a.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpCreate, Path: "/m", ACL: openACL},
			{Type: wire.OpCreate, Path: "/m/e-", ACL: openACL, Flags: wire.ModeEphemeralSequential},
			{Type: wire.OpCheck, Path: "/m", Version: 0},
			{Type: wire.OpSetData, Path: "/m", Data: []byte("m"), Version: -1},
			{Type: wire.OpCreate, Path: "/n", ACL: openACL, Flags: wire.ModeEphemeral},
			{Type: wire.OpDelete, Path: "/n", Version: -1},
		}})
		a.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
			{Type: wire.OpSetData, Path: "/m", Data: []byte("n"), Version: -1},
			{Type: wire.OpDelete, Path: "/missing", Version: -1},
		}})
		a.Call(wire.OpReconfig, &wire.ReconfigRequest{CurConfigID: -1})
		// A session whose ephemerals go with it.
		b := zkreftest.Dial(t, addr, zkreftest.NewSession())
		b.OK(wire.OpCreate, &wire.CreateRequest{Path: "/b1", ACL: openACL, Flags: wire.ModeEphemeral})
		b.OK(wire.OpCreate, &wire.CreateRequest{Path: "/a/b2", ACL: openACL, Flags: wire.ModeEphemeral})
		b.Call(wire.OpCloseSession, nil)
		// Reads are not audited; this one only waits for the close.
		a.OK(wire.OpSync, &wire.SyncRequest{Path: "/"})
		a.Call(wire.OpExists, &wire.ExistsRequest{Path: "/b1"})
	}
	run(ref.Addr)
	run(srv.Addr)
	zkLog := func() string {
		b, _ := os.ReadFile(filepath.Join(ref.Dir, "zookeeper.out"))
		return string(b)
	}
	want := auditEvents(t, "ZooKeeper", zkLog())
	got := auditEvents(t, "zkd", srv.Log())
	compareLines(t, "audit events", want, got)
	if n := strings.Count(want, "\n"); n < 20 {
		t.Fatalf("ZooKeeper logged only %d audit events:\n%s", n, want)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	last := auditEvents(t, "zkd", srv.Log())
	if !strings.HasSuffix(last, "INFO user=U operation=serverStop result=invoked\n") {
		t.Fatalf("zkd's audit events after its stop end:\n%s", last)
	}
}

var (
	zkAuditLine  = regexp.MustCompile(`(?m)^\[[^\]]*\] (\w+) org\.apache\.zookeeper\.audit\.Slf4jAuditLogger - (.*)$`)
	zkdAuditLine = regexp.MustCompile(`(?m)^time=\S+ level=(\w+) msg=audit (.*)$`)
	auditField   = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)
	auditSession = regexp.MustCompile(`^0x[0-9a-f]+$`)
)

// auditEvents are the audit events of a server's log, one a line: the
// level and the fields in their order, sessions numbered in the order
// they appear and the server's own user as U.
func auditEvents(t *testing.T, who, log string) string {
	t.Helper()
	re, sep := zkdAuditLine, " "
	if who == "ZooKeeper" {
		re, sep = zkAuditLine, "\t"
	}
	sessions := map[string]string{}
	var lines []string
	// A closed session's ephemerals are deleted in the order its txn
	// lists them: ZooKeeper's hash order, zkd's path order
	// (compatibility.md). Each run of them is sorted here.
	run := 0
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		var b strings.Builder
		b.WriteString(m[1])
		fields := strings.Split(m[2], sep)
		if who != "ZooKeeper" {
			fields = auditField.FindAllString(m[2], -1)
		}
		server := strings.Contains(m[2], "operation=server") || strings.Contains(m[2], "operation=ephemeralZNode")
		for _, f := range fields {
			k, v, _ := strings.Cut(f, "=")
			v = strings.Trim(v, `"`)
			switch {
			case k == "session" && auditSession.MatchString(v):
				if sessions[v] == "" {
					sessions[v] = fmt.Sprintf("S%d", len(sessions)+1)
				}
				v = sessions[v]
			case k == "user" && server:
				v = "U"
			}
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
		lines = append(lines, b.String())
		if !strings.Contains(m[2], "operation=ephemeralZNode") {
			run = len(lines)
		}
		slices.Sort(lines[run:])
	}
	return strings.Join(lines, "\n") + "\n"
}

// In an ensemble a client's writes are audited on the server it is
// connected to, and only there; the deletes of a closed session's
// ephemerals on every server, as in ZooKeeper.
func TestEnsembleAuditLogsWhereTheClientIs(t *testing.T) {
	e := zkdtest.StartEnsemble(t, 3, map[string]string{"audit.enable": "true"})
	f := e.Follower()
	c := zkreftest.Dial(t, e.Addr(f), zkreftest.NewSession())
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/audited", ACL: openACL})
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/audited/e", ACL: openACL, Flags: wire.ModeEphemeral})
	c.Call(wire.OpSetData, &wire.SetDataRequest{Path: "/audited", Version: 5})
	c.Call(wire.OpCloseSession, nil)
	want := map[bool]string{
		true: "INFO user=U operation=serverStart result=success\n" +
			"INFO session=S1 user=127.0.0.1 ip=127.0.0.1 operation=create znode=/audited znode_type=persistent result=success\n" +
			"INFO session=S1 user=127.0.0.1 ip=127.0.0.1 operation=create znode=/audited/e znode_type=ephemeral result=success\n" +
			"ERROR session=S1 user=127.0.0.1 ip=127.0.0.1 operation=setData znode=/audited result=failure\n" +
			"INFO session=S1 user=U operation=ephemeralZNodeDeletionOnSessionCloseOrExpire znode=/audited/e result=success\n",
		false: "INFO user=U operation=serverStart result=success\n" +
			"INFO session=S1 user=U operation=ephemeralZNodeDeletionOnSessionCloseOrExpire znode=/audited/e result=success\n",
	}
	for id, s := range e.Servers {
		// Every server applies the close in its own time.
		var got string
		for i := 0; i < 400; i++ {
			if got = auditEvents(t, "zkd", s.Log()); strings.Contains(got, "ephemeralZNode") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != want[id == f] {
			t.Errorf("server %d (%s) audit events:\n%s\nwant:\n%s", id, s.Mode(), got, want[id == f])
		}
	}
}
