package wal_test

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wal"
	"zkd/wal/vfs"
	"zkd/wire"
	"zkd/ztree"
)

// seen is a znode as a client sees it: data, Stat and ACL.
type seen struct {
	Data string
	Null bool // null data (length -1), not empty
	Stat wire.Stat
	ACL  []wire.ACL
}

// walkServer reads every znode of a running server through c.
func walkServer(c *zkreftest.Client) map[string]seen {
	out := map[string]seen{}
	var walk func(p string)
	walk = func(p string) {
		d := c.OK(wire.OpGetData, &wire.GetDataRequest{Path: p}).(*wire.GetDataResponse)
		a := c.OK(wire.OpGetACL, &wire.GetACLRequest{Path: p}).(*wire.GetACLResponse)
		out[p] = seen{Data: string(d.Data), Null: d.Data == nil, Stat: d.Stat, ACL: a.ACL}
		kids := c.OK(wire.OpGetChildren, &wire.GetChildrenRequest{Path: p}).(*wire.GetChildrenResponse)
		for _, k := range kids.Strings {
			if p == "/" {
				walk("/" + k)
			} else {
				walk(p + "/" + k)
			}
		}
	}
	walk("/")
	return out
}

// walkView reads every znode of a tree version the same way.
func walkView(v *ztree.View) map[string]seen {
	out := map[string]seen{}
	v.Walk(func(n ztree.Node) bool {
		out[n.Path] = seen{Data: n.Data, Null: ztree.IsNull(n.Data), Stat: n.Stat, ACL: n.ACL}
		return true
	})
	return out
}

func compareTrees(t *testing.T, got, want map[string]seen) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	bad := 0
	for _, p := range paths {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing", p)
		} else if fmt.Sprint(g) != fmt.Sprint(want[p]) {
			t.Errorf("%s:\n got %.300v\nwant %.300v", p, g, want[p])
		}
		if bad++; t.Failed() && bad > 20 {
			t.FailNow()
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: extra znode", p)
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d znodes compared", len(want))
	}
}

// serverZxid asks srvr for the server's last zxid.
func serverZxid(t *testing.T, addr string) int64 {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("srvr"))
	out, _ := io.ReadAll(c)
	m := regexp.MustCompile(`Zxid: 0x([0-9a-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("srvr said %q", out)
	}
	z, _ := strconv.ParseInt(string(m[1]), 16, 64)
	return z
}

// TestStartsFromZooKeepersDataDir has Apache ZooKeeper 3.8 write a data
// directory — many fuzzy snapshots (snapCount 10) and log files, open and
// closed sessions, ephemerals, sequentials, a container, digest ACLs, a
// multi, data up to 200 KB — then opens it with the wal: same znodes
// (data, Stat, ACL), same open sessions, same zxid. In each of
// ZooKeeper's snapshot formats.
func TestStartsFromZooKeepersDataDir(t *testing.T) {
	for _, method := range []string{"", "gz", "snappy"} {
		t.Run("snapshots="+method, func(t *testing.T) {
			opts := zkref.Options{SystemProperties: map[string]string{"zookeeper.snapCount": "10"}}
			if method != "" {
				opts.SystemProperties["zookeeper.snapshot.compression.method"] = method
				opts.ClassPath = []string{"/usr/share/java/snappy-java.jar"}
			}
			zk := zkreftest.Start(t, opts)
			c1 := zkreftest.Dial(t, zk.Addr, zkreftest.NewSession())
			req2 := zkreftest.NewSession()
			req2.TimeOut = 12000
			c2 := zkreftest.Dial(t, zk.Addr, req2)
			c3 := zkreftest.Dial(t, zk.Addr, zkreftest.NewSession())
			c1.CallXid(wire.XidAuth, wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("bob:secret")})
			open := ztree.OpenACL
			mk := func(c *zkreftest.Client, p string, data []byte, acl []wire.ACL, mode wire.CreateMode) {
				c.OK(wire.OpCreate, &wire.CreateRequest{Path: p, Data: data, ACL: acl, Flags: mode})
			}
			mk(c1, "/brokers", nil, open, wire.ModePersistent)
			mk(c1, "/brokers/ids", nil, open, wire.ModePersistent)
			mk(c1, "/brokers/ids/1", []byte(`{"host":"a","port":9092}`), open, wire.ModeEphemeral)
			mk(c2, "/brokers/ids/2", []byte(`{"host":"b","port":9092}`), open, wire.ModeEphemeral)
			mk(c3, "/brokers/ids/3", []byte(`{"host":"c","port":9092}`), open, wire.ModeEphemeral)
			mk(c1, "/secret", []byte("s"), []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "auth"}}}, wire.ModePersistent)
			mk(c1, "/queue", nil, open, wire.ModePersistent)
			for i := 0; i < 25; i++ {
				mk(c2, "/queue/item-", []byte(strings.Repeat("q", i)), open, wire.ModePersistentSequential)
			}
			for i := 0; i < 25; i += 3 {
				c1.OK(wire.OpDelete, &wire.DeleteRequest{Path: fmt.Sprintf("/queue/item-%010d", i), Version: -1})
			}
			mk(c1, "/locks", nil, open, wire.ModeContainer)
			mk(c1, "/locks/lock-", nil, open, wire.ModeEphemeralSequential)
			mk(c1, "/config", []byte("v0"), open, wire.ModePersistent)
			for i := 1; i <= 15; i++ {
				c1.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/config", Data: []byte(fmt.Sprintf("v%d", i)), Version: -1})
			}
			big := make([]byte, 200<<10)
			for i := range big {
				big[i] = byte(i * 7)
			}
			mk(c1, "/big", big, open, wire.ModePersistent)
			c1.OK(wire.OpSetACL, &wire.SetACLRequest{Path: "/config", ACL: ztree.ReadACL, Version: -1})
			c1.OK(wire.OpMulti, &wire.MultiRequest{Ops: []wire.MultiOp{
				{Type: wire.OpCreate, Path: "/m1", Data: []byte("1"), ACL: open},
				{Type: wire.OpCreate, Path: "/m1/m2", Data: []byte("2"), ACL: open},
				{Type: wire.OpSetData, Path: "/big", Data: big[:1000], Version: -1},
			}})
			c3.OK(wire.OpCloseSession, nil)
			want := walkServer(c1)
			zxid := serverZxid(t, zk.Addr)
			zk.Stop() // SIGKILL: what is on disk is what ZooKeeper fsynced

			dir := filepath.Join(zk.Dir, "data")
			names, _ := vfs.OS.List(filepath.Join(dir, "version-2"))
			snaps := 0
			for _, n := range names {
				if strings.HasPrefix(n, "snapshot.") {
					snaps++
				}
			}
			if snaps < 3 {
				t.Fatalf("ZooKeeper wrote %v; want several snapshots", names)
			}
			s, err := openStore(wal.Options{Dir: dir, Logger: quiet, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			v := treeOf(s).Published()
			compareTrees(t, walkView(v), want)
			if v.Zxid() != zxid {
				t.Errorf("zxid %#x, ZooKeeper's %#x", v.Zxid(), zxid)
			}
			sessions := map[int64]int32{}
			v.Sessions(func(x ztree.Session) bool { sessions[x.ID] = x.Timeout; return true })
			wantSessions := map[int64]int32{c1.Session.SessionID: c1.Session.TimeOut, c2.Session.SessionID: c2.Session.TimeOut}
			if fmt.Sprint(sessions) != fmt.Sprint(wantSessions) {
				t.Errorf("sessions %v, want %v", sessions, wantSessions)
			}
			t.Logf("%d znodes, %d sessions, zxid %#x, from %s (%d snapshots) with %d txns replayed",
				len(want), len(sessions), zxid, s.Recovery().Snapshot, snaps, s.Recovery().Replayed)
		})
	}
}

// TestZooKeeperStartsFromOurDataDir writes a data directory with the wal —
// random writes over sessions, ephemerals, containers, multis, ACLs; log
// rolls and a snapshot in the middle — and starts Apache ZooKeeper 3.8 on
// it: every znode must read back the same.
func TestZooKeeperStartsFromOurDataDir(t *testing.T) {
	for _, method := range []string{"", "gz"} {
		t.Run("snapshots="+method, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, wal.Options{Dir: dir, FS: vfs.OS, SnapCount: 300, Compression: method})
			w := newWriter(t, s, 42)
			for i := 0; i < 120; i++ {
				if err := w.batch(1 + i%7); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Snapshot(treeOf(s).Published()); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				if err := w.batch(3); err != nil {
					t.Fatal(err)
				}
			}
			want := walkView(w.tree.Published())
			zxid := w.zxid
			closeStore(t, s)

			zk := zkreftest.Start(t, zkref.Options{Config: map[string]string{"dataDir": dir}})
			c := zkreftest.Dial(t, zk.Addr, zkreftest.NewSession())
			start := time.Now()
			got := walkServer(c)
			if time.Since(start) > 8*time.Second {
				t.Logf("the walk took %v: short sessions may have expired meanwhile", time.Since(start))
			}
			compareTrees(t, got, want)
			// ZooKeeper goes on from our last zxid: its own session is the
			// next txn.
			if h, _ := c.Call(wire.OpExists, &wire.ExistsRequest{Path: "/"}); h.Zxid != zxid+1 {
				t.Errorf("ZooKeeper's zxid is %#x after our %#x and its createSession", h.Zxid, zxid)
			}
		})
	}
}
