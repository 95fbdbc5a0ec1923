package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/internal/zkclient"
	"zkd/wal"
	"zkd/wire"
)

// Mixed ensembles of zkd and Apache ZooKeeper 3.8 (Debian's), as real
// processes on loopback.

// mixedMember is one server of a mixed ensemble: zkd (z) or ZooKeeper
// (ref), behind one face.
type mixedMember struct {
	id    int64
	e     *zkdtest.Ensemble
	z     *zkdtest.Server
	ref   *zkref.Server
	dir   string
	opts  zkref.Options
	isZK  bool
	addr  string
	label string
}

// startMixed starts member id of e as ZooKeeper when isZK, else as zkd,
// without waiting for it to serve. props are the JVM system properties a
// ZooKeeper member gets, classPath jars it adds to its class path.
func startMixed(t *testing.T, e *zkdtest.Ensemble, id int64, isZK bool, props map[string]string, classPath ...string) *mixedMember {
	t.Helper()
	m := &mixedMember{id: id, e: e, isZK: isZK, addr: e.Addr(id), label: fmt.Sprintf("zkd %d", id)}
	if isZK {
		m.label = fmt.Sprintf("ZooKeeper %d", id)
		m.dir = t.TempDir()
		cfg := e.MemberConfig(id)
		if id > int64(e.N-e.Observers) {
			cfg["peerType"] = "observer" // ZooKeeper's observers say so
		}
		m.opts = zkref.Options{MyID: id, Config: cfg, SystemProperties: props, ClassPath: classPath}
		m.launch(t)
		return m
	}
	e.Start(t, id)
	m.z = e.Servers[id]
	return m
}

func (m *mixedMember) launch(t *testing.T) {
	t.Helper()
	if !m.isZK {
		m.z.Launch()
		return
	}
	m.opts.Log = true
	ref, err := zkref.Start(m.dir, m.opts)
	if err != nil {
		t.Fatal(err)
	}
	m.ref = ref
	t.Cleanup(func() { ref.Stop() })
	// Runs before the Stop above: on a failure, whether this ZooKeeper
	// had already exited, and the end of its log.
	t.Cleanup(func() {
		if !t.Failed() || ref != m.ref {
			return
		}
		exited, how := ref.Exited()
		out, _ := os.ReadFile(filepath.Join(m.dir, "zookeeper.out"))
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		lines = lines[max(0, len(lines)-80):]
		t.Logf("%s (exited before the end: %v %v), the end of its log:\n%s", m.label, exited, how, strings.Join(lines, "\n"))
	})
}

// stop ends the member: SIGTERM for zkd, SIGKILL for ZooKeeper (whose
// log is durable at every acknowledgement, as zkd's is).
func (m *mixedMember) stop(t *testing.T) {
	t.Helper()
	var err error
	if m.isZK {
		err = m.ref.Stop()
	} else {
		err = m.z.Stop()
	}
	if err != nil {
		t.Fatalf("%s: %v", m.label, err)
	}
}

// dataDir is the member's dataDir, which holds version-2.
func (m *mixedMember) dataDir() string {
	if m.isZK {
		return filepath.Join(m.dir, "data")
	}
	return filepath.Join(m.z.Dir, "data")
}

func (m *mixedMember) mode() string {
	if m.isZK {
		return m.ref.Mode()
	}
	return m.z.Mode()
}

func (m *mixedMember) waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for m.mode() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve after 60 s", m.label)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mntr is the member's mntr answer as a map.
func (m *mixedMember) mntr(t *testing.T) map[string]string {
	t.Helper()
	out, err := zkdtest.FourLetterWord(m.addr, "mntr")
	if err != nil {
		t.Fatalf("mntr on %s: %v", m.label, err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			kv[k] = v
		}
	}
	return kv
}

// everyTxnKind makes, under root, one txn of every kind a client can
// cause: creates of every mode (TTL and container included), setData,
// delete, setACL, a multi of every sub-op, a failed multi and failed
// writes (error txns), quota znodes, a session that closes with
// ephemerals, and one that stays with its own.
func everyTxnKind(t *testing.T, c *zk.Conn, addr, root string) {
	t.Helper()
	acl := zk.WorldACL(zk.PermAll)
	check(c.Create(root, []byte("root"), 0, acl))(t)
	// Quotas are znodes under /zookeeper/quota, as zkCli's setquota
	// makes them. They come first: creating the stats node counts the
	// subtree as it is on each server, and a TTL znode expiring just then
	// would be counted by some and not others.
	q := "/zookeeper/quota" + root
	check(c.Create(q, nil, 0, acl))(t)
	check(c.Create(q+"/zookeeper_limits", []byte("count=100,bytes=10000"), 0, acl))(t)
	check(c.Create(q+"/zookeeper_stats", []byte("count=1,bytes=4"), 0, acl))(t)
	check(c.Create(root+"/seq-", []byte("s"), zk.FlagSequence, acl))(t)
	check(c.Create(root+"/seq-", nil, zk.FlagSequence, acl))(t)
	check(c.Create(root+"/eph", []byte("mine"), zk.FlagEphemeral, acl))(t)
	check(c.Create(root+"/ephseq-", nil, zk.FlagEphemeral|zk.FlagSequence, acl))(t)
	check(c.CreateContainer(root+"/cont", nil, zk.FlagContainer, acl))(t)
	check(c.Create(root+"/cont/kid", []byte("k"), 0, acl))(t)
	check(c.Create(root+"/cont2", nil, 0, acl))(t)
	check(c.CreateContainer(root+"/cont2/emptied", nil, zk.FlagContainer, acl))(t)
	check(c.Create(root+"/cont2/emptied/gone", nil, 0, acl))(t)
	if err := c.Delete(root+"/cont2/emptied/gone", -1); err != nil {
		t.Fatal(err)
	}
	check(c.CreateTTL(root+"/ttl-kept", []byte("t"), zk.FlagTTL, acl, time.Hour))(t)
	check(c.CreateTTL(root+"/ttl-gone", []byte("t"), zk.FlagTTL, acl, 100*time.Millisecond))(t)
	check(c.Set(root, []byte("root, changed"), 0))(t)
	if _, err := c.Set(root, []byte("stale"), 0); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("setData with a stale version: %v", err)
	}
	if _, err := c.Create(root+"/seq-0000000000", nil, 0, acl); !errors.Is(err, zk.ErrNodeExists) {
		t.Fatalf("create of an existing znode: %v", err)
	}
	if err := c.Delete(root+"/seq-0000000000", -1); err != nil {
		t.Fatal(err)
	}
	check(c.Create(root+"/acl", nil, 0, acl))(t)
	check(c.SetACL(root+"/acl", zk.WorldACL(zk.PermRead|zk.PermWrite), -1))(t)
	check(c.Multi(
		&zk.CreateRequest{Path: root + "/m", Data: []byte("m"), Acl: acl},
		&zk.SetDataRequest{Path: root + "/m", Data: []byte("m2"), Version: 0},
		&zk.CheckVersionRequest{Path: root + "/m", Version: 1},
		&zk.CreateRequest{Path: root + "/m/kid", Acl: acl, Flags: zk.FlagEphemeral},
		&zk.DeleteRequest{Path: root + "/seq-0000000001", Version: -1},
	))(t)
	if _, err := c.Multi(
		&zk.CreateRequest{Path: root + "/never", Acl: acl},
		&zk.CheckVersionRequest{Path: root + "/m", Version: 7},
	); err == nil {
		t.Fatal("a multi with a failing check succeeded")
	}
	check(c.Create(root+"/under-quota", []byte("counted"), 0, acl))(t)

	// A session that closes with ephemerals: its closeSession removes them.
	other := connect(t, addr)
	check(other.Create(root+"/other-eph", []byte("o"), zk.FlagEphemeral, acl))(t)
	check(other.Create(root+"/other-ephseq-", nil, zk.FlagEphemeral|zk.FlagSequence, acl))(t)
	other.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, _, err := c.Exists(root + "/other-eph"); err == nil && !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed session's ephemeral is still there after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// treeDump lists every znode on the server at addr after a sync: path,
// data, Stat and ACL, one line each, sorted. Equal dumps are equal trees.
func treeDump(t *testing.T, addr string) string {
	t.Helper()
	c := connect(t, addr)
	defer c.Close()
	if _, err := c.Sync("/"); err != nil {
		t.Fatalf("sync on %s: %v", addr, err)
	}
	var lines []string
	var walk func(p string)
	walk = func(p string) {
		data, st, err := c.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			return
		}
		if err != nil {
			t.Fatalf("get %s on %s: %v", p, addr, err)
		}
		acl, _, err := c.GetACL(p)
		if errors.Is(err, zk.ErrNoNode) {
			return
		}
		if err != nil {
			t.Fatalf("getACL %s on %s: %v", p, addr, err)
		}
		if p == "/zookeeper/config" {
			// Each member stamps it with its own clock when it loads
			// its tree, ZooKeeper's as zkd's.
			st.Mtime = 0
		}
		lines = append(lines, fmt.Sprintf("%s %q %+v %v", p, data, *st, acl))
		kids, _, err := c.Children(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("children of %s on %s: %v", p, addr, err)
		}
		for _, k := range kids {
			walk(path.Join(p, k))
		}
	}
	walk("/")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// requireSameEverywhere fails the test unless the server at each of addrs
// has every acknowledged child of path in acked, and, within 10 s, the
// same tree as the first: recipes' containers are reaped and their
// sessions closed on the leader's clock, so a tree may still change
// between two servers' dumps.
func requireSameEverywhere(t *testing.T, addrs []string, path string, acked []string) {
	t.Helper()
	for _, addr := range addrs {
		have := map[string]bool{}
		for _, k := range childrenOn(t, addr, path) {
			have[k] = true
		}
		for _, k := range acked {
			if !have[k] {
				t.Fatalf("the server at %s lacks acknowledged write %s/%s (of %d)", addr, path, k, len(acked))
			}
		}
	}
	var differs string
	for try := 0; try < 20; try++ {
		want := treeDump(t, addrs[0])
		differs = ""
		for _, addr := range addrs[1:] {
			if got := treeDump(t, addr); got != want {
				differs = fmt.Sprintf("the server at %s has another tree than the one at %s, %s", addr, addrs[0], firstDifference(got, want))
				break
			}
		}
		if differs == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal(differs)
}

// firstDifference says where two dumps first differ.
func firstDifference(a, b string) string {
	n, x, y, _ := zkreftest.DifferingLine(a, b)
	return fmt.Sprintf("line %d:\n  %s\n  %s", n, x, y)
}

// A learner of one implementation syncs from a leader of the other by
// DIFF and by SNAP, both ways: it takes every kind of txn live and while
// it was down, and ends with the same tree as every other server, znode
// for znode (data, Stat, ACL), with no digest mismatch counted by any
// learner (ZooKeeper's learners check the digest the leader logs with
// each txn against their own tree, as zkd's do).
func TestMixedSync(t *testing.T) {
	zkreftest.Need(t)
	snap := map[string]string{"commitLogCount": "1", "snapshotSizeFactor": "-1"}
	for _, c := range []struct {
		name     string
		zkLeads  bool
		mode     string
		cfg      map[string]string
		observer bool // the learner that falls behind is an observer
		// noPaths sets closeSessionTxn.enabled=false everywhere: the
		// leader logs closeSession txns without the session's
		// ephemerals, and each learner finds them in its own tree.
		noPaths bool
	}{
		{"ZooKeeper leads, zkd syncs by DIFF", true, "DIFF", nil, false, false},
		{"ZooKeeper leads, zkd syncs by SNAP", true, "SNAP", snap, false, false},
		{"zkd leads, ZooKeeper syncs by DIFF", false, "DIFF", nil, false, false},
		{"zkd leads, ZooKeeper syncs by SNAP", false, "SNAP", snap, false, false},
		{"ZooKeeper leads, a zkd observer syncs by DIFF", true, "DIFF", nil, true, false},
		{"ZooKeeper leads, a zkd observer syncs by SNAP", true, "SNAP", snap, true, false},
		{"zkd leads, a ZooKeeper observer syncs by DIFF", false, "DIFF", nil, true, false},
		{"zkd leads, a ZooKeeper observer syncs by SNAP", false, "SNAP", snap, true, false},
		{"ZooKeeper leads without closeSession paths, zkd syncs by DIFF", true, "DIFF", nil, false, true},
		{"zkd leads without closeSession paths, ZooKeeper syncs by DIFF", false, "DIFF", nil, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// maxSessionTimeout lets the test's clients keep the 10 s
			// they ask for, not the 4 s tickTime 200 allows: once a
			// ZooKeeper learner was silent that long, on a machine busy
			// with other tests, and the leader expired the session the
			// tree was being read through.
			cfg := map[string]string{"extendedTypesEnabled": "true", "znode.container.checkIntervalMs": "100",
				"maxSessionTimeout": "10000"}
			for k, v := range c.cfg {
				cfg[k] = v
			}
			// ZooKeeper reads these from system properties only.
			props := map[string]string{"zookeeper.extendedTypesEnabled": "true", "znode.container.checkIntervalMs": "100"}
			if c.noPaths {
				cfg["closeSessionTxn.enabled"] = "false"
				props["zookeeper.closeSessionTxn.enabled"] = "false"
			}
			// Server 3, the leader, is of one implementation and the
			// learner that falls behind (1, or the observer 4) of the
			// other; the rest are zkd. 2 and 3 start first, so 3 (the
			// higher id at equal zxids) leads.
			n, learnerID, learnerMode := 3, int64(1), "follower"
			if c.observer {
				n, learnerID, learnerMode = 4, 4, "observer"
			}
			e := zkdtest.NewEnsemble(t, n, cfg)
			if c.observer {
				e.Observers = 1
			}
			leader := startMixed(t, e, 3, c.zkLeads, props)
			middle := startMixed(t, e, 2, false, props)
			leader.waitServing(t)
			middle.waitServing(t)
			others := []*mixedMember{middle}
			if c.observer {
				voter := startMixed(t, e, 1, false, props)
				voter.waitServing(t)
				others = append(others, voter)
			}
			learner := startMixed(t, e, learnerID, !c.zkLeads, props)
			learner.waitServing(t)
			for _, m := range append([]*mixedMember{learner, leader}, others...) {
				want := "follower"
				switch m {
				case leader:
					want = "leader"
				case learner:
					want = learnerMode
				}
				if got := m.mode(); got != want {
					t.Fatalf("%s is %q, want %s", m.label, got, want)
				}
			}

			cl := connect(t, leader.addr)
			everyTxnKind(t, cl, leader.addr, "/live")
			learner.stop(t)
			everyTxnKind(t, cl, leader.addr, "/behind")
			// Through the other follower too: forwarded to the leader.
			everyTxnKind(t, connect(t, middle.addr), middle.addr, "/forwarded")
			learner.launch(t)
			learner.waitServing(t)
			if got := learner.mode(); got != learnerMode {
				t.Fatalf("%s came back as %q", learner.label, got)
			}
			if c.zkLeads {
				if l := learner.z.Log(); !strings.Contains(l, fmt.Sprintf(`msg="syncing with the leader" leader=3 mode=%s`, c.mode)) {
					t.Fatalf("%s was not synced by %s:\n%s", learner.label, c.mode, l)
				}
			} else {
				if l := leader.z.Log(); !strings.Contains(l, fmt.Sprintf(`msg="syncing a follower" sid=%d mode=%s`, learnerID, c.mode)) {
					t.Fatalf("%s was not synced by %s:\n%s", learner.label, c.mode, l)
				}
			}
			// The TTL node and the emptied container go by the leader's
			// deleteTTL and deleteContainer txns. The trees are compared
			// once they have gone: a removal still in flight shows in
			// one server's dump and not in another's (the quota stats
			// nodes' counts included).
			deadline := time.Now().Add(30 * time.Second)
			var gone []string
			for _, root := range []string{"/live", "/behind", "/forwarded"} {
				gone = append(gone, root+"/ttl-gone", root+"/cont2/emptied")
			}
			for _, p := range gone {
				for {
					if ok, _, err := cl.Exists(p); err == nil && !ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s is still there 30 s on", p)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			// One more write after the learner is back, so it takes a
			// broadcast txn on top of what it was synced with.
			check(cl.Create("/after", []byte("a"), 0, zk.WorldACL(zk.PermAll)))(t)

			want := treeDump(t, leader.addr)
			for _, m := range append([]*mixedMember{learner}, others...) {
				if got := treeDump(t, m.addr); got != want {
					t.Fatalf("%s's tree differs from the leader's (%s), %s", m.label, leader.label, firstDifference(got, want))
				}
			}
			for _, m := range append([]*mixedMember{learner}, others...) {
				if n := m.mntr(t)["zk_digest_mismatches_count"]; n != "0" {
					t.Fatalf("%s counted %s digest mismatches", m.label, n)
				}
			}
		})
	}
}

// A learner whose tree differs from its leader's says so: after each txn
// from the leader it compares its own tree digest with the one the leader
// logged, counts a difference in mntr's zk_digest_mismatches_count and
// logs it, as ZooKeeper's learners do. Here a follower's data directory is
// given a znode the others do not have, at the same zxid, while it is
// down.
func TestLearnerCountsDigestMismatches(t *testing.T) {
	e := zkdtest.StartEnsemble(t, 3, nil)
	leader := e.Leader()
	tampered, other := int64(1), int64(2)
	if leader == 1 {
		tampered = 3
	} else if leader == 2 {
		other = 3
	}
	cl := connect(t, e.Addr(leader))
	check(cl.Create("/a", []byte("a"), 0, zk.WorldACL(zk.PermAll)))(t)
	if err := e.Servers[tampered].Stop(); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(e.Servers[tampered].Dir, "data")
	st, tree, err := wal.Open(wal.Options{Dir: dataDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tree.Published().Get("/")
	z := tree.Zxid()
	tree.Apply(&wire.TxnHeader{Zxid: z, Time: time.Now().UnixMilli(), Type: wire.OpCreate},
		&wire.CreateTxn{Path: "/tampered", Data: []byte("x"), ACL: []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}, ParentCVersion: root.Stat.Cversion + 1})
	tree.Publish()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := wal.WriteSnapshotFile(nil, filepath.Join(dataDir, "version-2"), tree.Published(), ""); err != nil {
		t.Fatal(err)
	}
	e.Servers[tampered].Launch()
	e.WaitServing(t, 30*time.Second)
	mismatches := func(id int64) string {
		out, err := zkdtest.FourLetterWord(e.Addr(id), "mntr")
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(out, "zk_digest_mismatches_count\t")
		n, _, _ := strings.Cut(rest, "\n")
		return n
	}
	if n := mismatches(tampered); n != "0" {
		t.Fatalf("the tampered follower counted %s mismatches before any txn", n)
	}
	check(cl.Create("/b", []byte("b"), 0, zk.WorldACL(zk.PermAll)))(t)
	check(cl.Set("/a", []byte("a2"), -1))(t)
	if _, err := connect(t, e.Addr(tampered)).Sync("/"); err != nil {
		t.Fatal(err)
	}
	// Every txn from here on: the two writes and the syncing client's
	// createSession.
	if n := mismatches(tampered); n != "3" {
		t.Fatalf("the tampered follower counted %s mismatches after three txns, want 3", n)
	}
	if !strings.Contains(e.Servers[tampered].Log(), "tree digest differs from the leader's") {
		t.Fatalf("the tampered follower logged no mismatch:\n%s", e.Servers[tampered].Log())
	}
	if _, err := connect(t, e.Addr(other)).Sync("/"); err != nil {
		t.Fatal(err)
	}
	if n := mismatches(other); n != "0" {
		t.Fatalf("the intact follower counted %s mismatches", n)
	}
}

// A zkd learner synced by SNAP from a ZooKeeper leader under writes counts
// no digest mismatch and ends with the leader's znodes. ZooKeeper writes
// the snapshot it sends while it applies txns, and sends again the txns
// from where it began to forward them to the learner: until the sync ends
// the learner's tree holds changes of txns after the one it applies, and
// is not the leader's at any one zxid. ZooKeeper's learners compare no
// digest before the sync ends; zkd's compared from the first txn after the
// snapshot, and in a fault run logged "the trees differ" (and counted
// mismatches in mntr) after each of four such syncs.
func TestZkdLearnerSyncedBySnapUnderWritesCountsNoDigestMismatch(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 3, map[string]string{"commitLogCount": "1", "snapshotSizeFactor": "-1", "maxSessionTimeout": "10000"})
	leader := startMixed(t, e, 3, true, nil)
	middle := startMixed(t, e, 2, false, nil)
	leader.waitServing(t)
	middle.waitServing(t)
	cl := connect(t, leader.addr)
	check(cl.Create("/fuzzy", nil, 0, zk.WorldACL(zk.PermAll)))(t)
	const znodes = 5000
	name := func(i int) string { return fmt.Sprintf("/fuzzy/n%05d", i) }
	for i := 0; i < znodes; i += 1000 {
		var ops []any
		for j := i; j < i+1000; j++ {
			ops = append(ops, &zk.CreateRequest{Path: name(j), Data: bytes.Repeat([]byte("v"), 100), Acl: zk.WorldACL(zk.PermAll)})
		}
		check(cl.Multi(ops...))(t)
	}

	// Writers on the leader, over every znode, while the learner syncs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	failed := make(chan error, 8)
	for w := 0; w < 8; w++ {
		c := connect(t, leader.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 8 {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Set(name(i*7919%znodes), []byte(fmt.Sprintf("w%d-%d", w, i)), -1); err != nil {
					failed <- err
					return
				}
				writes.Add(1)
			}
		}()
	}
	learner := startMixed(t, e, 1, false, nil)
	learner.waitServing(t)
	// A few hundred writes more, taken in broadcast.
	for at := writes.Load(); writes.Load() < at+300; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-failed:
			t.Fatal(err)
		default:
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	if l := learner.z.Log(); !strings.Contains(l, `msg="syncing with the leader" leader=3 mode=SNAP`) {
		t.Fatalf("%s was not synced by SNAP:\n%s", learner.label, l)
	}
	t.Logf("%d writes during the test", writes.Load())

	// Every znode as the leader has it: data and Stat.
	lc := connect(t, learner.addr)
	check(lc.Sync("/fuzzy"))(t)
	var diff atomic.Value
	var rg sync.WaitGroup
	for w := 0; w < 8; w++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for i := w; i < znodes && diff.Load() == nil; i += 8 {
				want, wst, err := cl.Get(name(i))
				if err != nil {
					diff.Store(err.Error())
					return
				}
				got, gst, err := lc.Get(name(i))
				if err != nil {
					diff.Store(err.Error())
					return
				}
				if !bytes.Equal(got, want) || *gst != *wst {
					diff.Store(fmt.Sprintf("%s is %q %+v on %s, %q %+v on the leader", name(i), got, *gst, learner.label, want, *wst))
				}
			}
		}()
	}
	rg.Wait()
	if d := diff.Load(); d != nil {
		t.Fatal(d)
	}
	if n := learner.mntr(t)["zk_digest_mismatches_count"]; n != "0" {
		t.Fatalf("%s counted %s digest mismatches:\n%s", learner.label, n, learner.z.Log())
	}
	if l := learner.z.Log(); strings.Contains(l, "tree digest differs") {
		t.Fatalf("%s logged a digest mismatch:\n%s", learner.label, l)
	}
}

// A leader of one implementation that logged a txn nobody else has, and
// died, comes back as a learner of a leader of the other and is cut back
// to the ensemble's history (TRUNC), both ways; so does an observer of
// its implementation whose log holds the same txn.
func TestMixedTruncate(t *testing.T) {
	zkreftest.Need(t)
	needIptables(t)
	for _, c := range []struct {
		name    string
		zkLeads bool // ZooKeeper is the new leader, zkd the old one and the observer
	}{
		{"ZooKeeper truncates zkd", true},
		{"zkd truncates ZooKeeper", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := zkdtest.NewEnsemble(t, 4, nil)
			e.Observers = 1
			// 3, the old leader, is of one implementation; 2, the next
			// leader (the higher id of the two left), of the other; 4 is
			// an observer of the old leader's implementation.
			old := startMixed(t, e, 3, !c.zkLeads, nil)
			next := startMixed(t, e, 2, c.zkLeads, nil)
			old.waitServing(t)
			next.waitServing(t)
			third := startMixed(t, e, 1, false, nil)
			third.waitServing(t)
			if m := old.mode(); m != "leader" {
				t.Fatalf("%s is %q, want leader", old.label, m)
			}
			obs := startMixed(t, e, 4, !c.zkLeads, nil)
			obs.waitServing(t)
			// The client starts on the old leader and moves on when it
			// dies: were its session to expire, the new leader would log
			// a closeSession, and a learner whose log ends in an older
			// epoch than the leader's next txn is sent a SNAP, not a
			// TRUNC, by either implementation.
			cl, events, err := zk.Connect([]string{old.addr, next.addr, third.addr}, 4*time.Second,
				zk.WithLogger(quietLogger{}), zk.WithHostProvider(&inOrder{}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			waitConnected(t, events)
			check(cl.Create("/div", nil, 0, zk.WorldACL(zk.PermAll)))(t)
			check(cl.Create("/div/kept", nil, 0, zk.WorldACL(zk.PermAll)))(t)

			unblock := dropQuorumSends(t, e, 3)
			go cl.Create("/div/lost", nil, 0, zk.WorldACL(zk.PermAll)) // never answered
			deadline := time.Now().Add(10 * time.Second)
			for !loggedCreate(old.dataDir(), "/div/lost") {
				if time.Now().After(deadline) {
					t.Fatalf("%s did not log the create within 10 s", old.label)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if old.isZK {
				old.stop(t) // SIGKILL
			} else {
				old.z.Kill()
			}
			deadline = time.Now().Add(30 * time.Second)
			for next.mode() != "leader" {
				if time.Now().After(deadline) {
					t.Fatalf("%s does not lead 30 s after the old leader's kill", next.label)
				}
				time.Sleep(50 * time.Millisecond)
			}
			unblock()
			// An observer takes only committed txns, so it is cut back
			// only when it holds a txn no quorum took. It is given one
			// here the way an operator seeds a new server: its version-2
			// is replaced by a copy of the old leader's, /div/lost and all.
			obs.stop(t)
			copyVersion2(t, old.dataDir(), obs.dataDir())
			obs.launch(t)
			old.launch(t)
			old.waitServing(t)
			obs.waitServing(t)
			if got := old.mode(); got != "follower" {
				t.Fatalf("%s came back as %q", old.label, got)
			}
			if got := obs.mode(); got != "observer" {
				t.Fatalf("%s came back as %q", obs.label, got)
			}
			for _, m := range []*mixedMember{old, obs} {
				if c.zkLeads {
					if l := m.z.Log(); !strings.Contains(l, `msg="syncing with the leader" leader=2 mode=TRUNC`) {
						t.Fatalf("%s was not truncated:\n%s", m.label, l)
					}
				} else {
					if l := next.z.Log(); !strings.Contains(l, fmt.Sprintf(`msg="syncing a follower" sid=%d mode=TRUNC`, m.id)) {
						t.Fatalf("%s was not truncated:\n%s", m.label, l)
					}
				}
			}
			check(connect(t, next.addr).Create("/div/after", nil, 0, zk.WorldACL(zk.PermAll)))(t)
			want := treeDump(t, next.addr)
			for _, m := range []*mixedMember{old, third, obs} {
				if got := treeDump(t, m.addr); got != want {
					t.Fatalf("%s's tree differs from the leader's (%s), %s", m.label, next.label, firstDifference(got, want))
				}
				if got := strings.Join(childrenOn(t, m.addr, "/div"), ","); got != "after,kept" {
					t.Fatalf("%s has /div children %s, want after,kept", m.label, got)
				}
				if n := m.mntr(t)["zk_digest_mismatches_count"]; n != "0" {
					t.Fatalf("%s counted %s digest mismatches", m.label, n)
				}
			}
		})
	}
}

// copyVersion2 replaces to's version-2 (txn logs, snapshots, epochs) by a
// copy of from's.
func copyVersion2(t *testing.T, from, to string) {
	t.Helper()
	src, dst := filepath.Join(from, "version-2"), filepath.Join(to, "version-2")
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
}

// inOrder is a go-zookeeper HostProvider that tries its servers in the
// order given, so a test knows which server a client is on.
type inOrder struct {
	servers []string
	next    int
	tried   int
}

func (p *inOrder) Init(servers []string) error { p.servers = servers; return nil }
func (p *inOrder) Len() int                    { return len(p.servers) }
func (p *inOrder) Connected()                  { p.tried = 0 }
func (p *inOrder) Next() (string, bool) {
	s := p.servers[p.next%len(p.servers)]
	p.next++
	p.tried++
	return s, p.tried > len(p.servers)
}

// A session moves between implementations: a client on a follower of one
// kind whose server is killed resumes its session on a follower of the
// other kind, with its ephemeral still there and its watch still set (the
// client sets it again on the new server, as every ZooKeeper client does).
func TestMixedSessionMovesBetweenImplementations(t *testing.T) {
	zkreftest.Need(t)
	for _, c := range []struct {
		name   string
		fromZK bool
	}{
		{"from ZooKeeper to zkd", true},
		{"from zkd to ZooKeeper", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := zkdtest.NewEnsemble(t, 3, nil)
			// 3 (zkd) leads; 1 is ZooKeeper, 2 zkd, both followers.
			lead := startMixed(t, e, 3, false, nil)
			zkd := startMixed(t, e, 2, false, nil)
			lead.waitServing(t)
			zkd.waitServing(t)
			ref := startMixed(t, e, 1, true, nil)
			ref.waitServing(t)
			from, to := zkd, ref
			if c.fromZK {
				from, to = ref, zkd
			}
			conn, events, err := zk.Connect([]string{from.addr, to.addr}, 4*time.Second,
				zk.WithLogger(quietLogger{}), zk.WithHostProvider(&inOrder{}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(conn.Close)
			waitConnected(t, events)
			check(conn.Create("/moved", []byte("v1"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
			check(connect(t, lead.addr).Create("/watched", []byte("w1"), 0, zk.WorldACL(zk.PermAll)))(t)
			// Written through another session on the leader: the
			// client's follower has it once a sync says so.
			if _, err := conn.Sync("/watched"); err != nil {
				t.Fatal(err)
			}
			_, _, watch, err := conn.GetW("/watched")
			if err != nil {
				t.Fatal(err)
			}
			session := conn.SessionID()

			if from.isZK {
				from.stop(t) // SIGKILL
			} else {
				from.z.Kill()
			}
			// The client finds the other server and resumes its session.
			deadline := time.Now().Add(30 * time.Second)
			for conn.Server() != to.addr || conn.State() != zk.StateHasSession {
				if time.Now().After(deadline) {
					t.Fatalf("the client is on %q (%v) 30 s after %s died, want %s", conn.Server(), conn.State(), from.label, to.label)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if conn.SessionID() != session {
				t.Fatalf("the client has session %#x on %s, had %#x", conn.SessionID(), to.label, session)
			}
			// The watch first, and no request on conn until it fires:
			// go-zookeeper v1.0.4 reads its last zxid for setWatches on
			// one goroutine while its receiver writes it on another for
			// every reply, a data race the race detector reported when
			// a reply came in before setWatches was sent. The event can
			// only follow the client's setWatches.
			check(connect(t, lead.addr).Set("/watched", []byte("w2"), -1))(t)
			select {
			case ev := <-watch:
				if ev.Type != zk.EventNodeDataChanged || ev.Path != "/watched" {
					t.Fatalf("the watch fired %+v", ev)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no watch event on %s within 10 s of the change", to.label)
			}
			data, st, err := conn.Get("/moved")
			if err != nil || string(data) != "v1" || st.EphemeralOwner != session {
				t.Fatalf("on %s the ephemeral reads %q %+v (%v), want v1 owned by %#x", to.label, data, st, err, session)
			}
			// And the ephemeral is the session's: it goes when the
			// session closes.
			conn.Close()
			lc := connect(t, lead.addr)
			deadline = time.Now().Add(10 * time.Second)
			for {
				if ok, _, err := lc.Exists("/moved"); err == nil && !ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the moved session's ephemeral outlived the session's close by 10 s")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// startRecipes starts a client program that runs recipes until its
// standard input closes, and returns what closes it and checks that its
// output says ok: it fails the test otherwise, and logs the output.
func startRecipes(t *testing.T, cmd *exec.Cmd) func(ok string) {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return func(ok string) {
		t.Helper()
		in.Close()
		select {
		case err := <-done:
			if err != nil || !strings.Contains(out.String(), ok) {
				t.Fatalf("%s: %v\n%s", cmd.Args[0], err, out.String())
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("%s did not stop within 90 s:\n%s", cmd.Args[0], out.String())
		}
		t.Logf("%s", strings.TrimSpace(out.String()))
	}
}

// progress records when each write of a prober was acknowledged.
type progress struct {
	mu    sync.Mutex
	times []time.Time
	stop  chan struct{}
	done  chan struct{}
}

// probe creates sequential znodes under root through c, one at a time,
// until stopped, recording each acknowledgement.
func probe(c *zk.Conn, root string) *progress {
	p := &progress{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			if _, err := c.Create(root+"/p-", nil, zk.FlagSequence, zk.WorldACL(zk.PermAll)); err != nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			p.mu.Lock()
			p.times = append(p.times, time.Now())
			p.mu.Unlock()
		}
	}()
	return p
}

// longestPause is the longest time without an acknowledgement between
// from and to.
func (p *progress) longestPause(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	last := from
	for _, at := range p.times {
		if at.Before(from) || at.After(to) {
			continue
		}
		longest = max(longest, at.Sub(last))
		last = at
	}
	return max(longest, to.Sub(last))
}

// An Apache ZooKeeper 3.8 ensemble under write load, with kazoo's and
// Curator's lock and election recipes running, has each server in turn replaced by zkd on
// the same data directory, zoo.cfg and ports, and then each put back to
// ZooKeeper: no acknowledged write is lost, the clients' session never
// expires and keeps its ephemeral, every change to a watched znode is
// seen, the recipes never see two holders at once, and at the end every
// server has the same tree.
// Each step's longest pause in acknowledgements is logged.
func TestRollingReplacementOfZooKeeperByZkd(t *testing.T) {
	zkreftest.Need(t)
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	// Sessions get up to 12 s, not the 4 s tickTime 200 allows: on a
	// machine whose cores are busy, a client cut off by a roll may take
	// longer than 4 s to reach the next server, and its session expiring
	// is a property of the machine, not of the roll (Curator saw one
	// LOST session in two of several loaded runs).
	e := zkdtest.NewEnsemble(t, 3, map[string]string{"maxSessionTimeout": "12000"})
	dirs := map[int64]string{}
	refs := map[int64]*zkref.Server{}
	zkds := map[int64]*zkdtest.Server{}
	startZK := func(id int64) {
		ref, err := zkref.Start(dirs[id], zkref.Options{MyID: id, Config: e.MemberConfig(id)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ref.Stop() })
		refs[id] = ref
	}
	for id := int64(1); id <= 3; id++ {
		dirs[id] = t.TempDir()
		startZK(id)
	}
	for id := int64(1); id <= 3; id++ {
		if err := refs[id].WaitServing(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	addrs := e.Addrs()
	c, events := connectAll(t, addrs, 10*time.Second)
	waitConnected(t, events)
	var expired atomic.Bool
	go func() {
		for ev := range events {
			if ev.State == zk.StateExpired {
				expired.Store(true)
			}
		}
	}()
	session := c.SessionID()
	check(c.Create("/roll", nil, 0, zk.WorldACL(zk.PermAll)))(t)
	check(c.Create("/roll/mine", []byte("e"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
	check(c.Create("/roll/watched", []byte("0"), 0, zk.WorldACL(zk.PermAll)))(t)
	load := newWriteLoad("/roll")
	clients := []*zk.Conn{c}
	for i := 0; i < 3; i++ {
		lc, _ := connectAll(t, addrs, 10*time.Second)
		load.run(lc)
		clients = append(clients, lc)
	}
	pc, _ := connectAll(t, addrs, 10*time.Second)
	clients = append(clients, pc)
	prober := probe(pc, "/roll")
	watcher, _ := connectAll(t, addrs, 10*time.Second)
	// kazoo's Lock and Election recipes, and Curator's with a Java-client
	// writer, run throughout, each holder checking that nobody else holds
	// at the same time.
	hosts := strings.Join(addrs, ",")
	kazoo := startRecipes(t, exec.Command(kazooPython, "testdata/clients/kazoo_rolling.py", hosts))
	curator := startRecipes(t, exec.Command("java", "-cp", curatorProgram(t), "CuratorRolling", hosts))

	changes := 0
	// change sets /roll/watched through c and waits for the watch set on
	// the watcher's session to fire.
	change := func(when string) {
		t.Helper()
		_, _, w, err := watcher.GetW("/roll/watched")
		for try := 0; err != nil && try < 100; try++ {
			time.Sleep(50 * time.Millisecond)
			_, _, w, err = watcher.GetW("/roll/watched")
		}
		if err != nil {
			t.Fatalf("%s: setting the watch: %v", when, err)
		}
		changes++
		for try := 0; ; try++ {
			if _, err := c.Set("/roll/watched", []byte(fmt.Sprint(changes)), -1); err == nil {
				break
			} else if try == 100 {
				t.Fatalf("%s: setData: %v", when, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case ev := <-w:
			if ev.Type != zk.EventNodeDataChanged {
				t.Fatalf("%s: the watch fired %+v", when, ev)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no watch event within 20 s of change %d", when, changes)
		}
	}

	type step struct {
		id    int64
		toZkd bool
	}
	var steps []step
	for id := int64(1); id <= 3; id++ {
		steps = append(steps, step{id, true})
	}
	for id := int64(1); id <= 3; id++ {
		steps = append(steps, step{id, false})
	}
	for _, st := range steps {
		what := fmt.Sprintf("server %d from ZooKeeper to zkd", st.id)
		if !st.toZkd {
			what = fmt.Sprintf("server %d from zkd back to ZooKeeper", st.id)
		}
		began := time.Now()
		if st.toZkd {
			if err := refs[st.id].Stop(); err != nil {
				t.Fatal(err)
			}
			zkds[st.id] = zkdtest.OnDir(t, dirs[st.id], e.Addr(st.id))
			zkds[st.id].Launch()
			deadline := time.Now().Add(60 * time.Second)
			for !zkds[st.id].Serving() {
				if time.Now().After(deadline) {
					t.Fatalf("%s: zkd does not serve after 60 s:\n%s", what, zkds[st.id].Log())
				}
				time.Sleep(20 * time.Millisecond)
			}
		} else {
			if err := zkds[st.id].Stop(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			startZK(st.id)
			if err := refs[st.id].WaitServing(60 * time.Second); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		load.waitMore(t, 100, 60*time.Second, "after "+what)
		change(what)
		t.Logf("%s: serving again after %v; longest pause in acknowledged writes %v",
			what, time.Since(began).Round(time.Millisecond), prober.longestPause(began, time.Now()).Round(time.Millisecond))
	}
	close(prober.stop)
	<-prober.done
	kazoo("kazoo rolling ok")
	curator("curator rolling ok")
	acked, unexpected := load.halt()
	if unexpected != nil {
		t.Fatalf("a writer got %v", unexpected)
	}
	if expired.Load() || c.SessionID() != session {
		t.Fatalf("the session expired or changed (%#x, was %#x)", c.SessionID(), session)
	}
	if _, st, err := c.Get("/roll/mine"); err != nil || st.EphemeralOwner != session {
		t.Fatalf("the session's ephemeral: %+v, %v", st, err)
	}
	requireSameEverywhere(t, e.Addrs(), "/roll", acked)
	t.Logf("%d writes acknowledged, %d watched changes seen", len(acked), changes)
	// Closed while the servers are up: after them, each would wait out
	// its session's timeout for an answer.
	for _, cl := range clients {
		cl.Close()
	}
}

// Five servers, two of them Apache ZooKeeper (4 and 5) and three zkd,
// taking writes between failovers: ZooKeeper 5 leads; once it is killed
// the highest id of the first quorum to agree leads, their zxids being
// equal: ZooKeeper 4, or zkd 3 when the three zkd servers agree before
// ZooKeeper 4 takes part. Once ZooKeeper 4 is killed too, zkd 3 leads the
// three left, a bare quorum, and the two ZooKeeper servers come back as
// its followers. Two observers, zkd 6 and ZooKeeper 7, observe each
// leader in turn, so every role pairing is in a five-voter ensemble too.
// Every acknowledged write is on every server, and every server has the
// same tree.
func TestMixedFiveServers(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 7, nil)
	e.Observers = 2
	members := map[int64]*mixedMember{}
	members[5] = startMixed(t, e, 5, true, nil)
	members[4] = startMixed(t, e, 4, true, nil)
	members[3] = startMixed(t, e, 3, false, nil)
	for _, id := range []int64{5, 4, 3} {
		members[id].waitServing(t)
	}
	members[2] = startMixed(t, e, 2, false, nil)
	members[1] = startMixed(t, e, 1, false, nil)
	members[6] = startMixed(t, e, 6, false, nil)
	members[7] = startMixed(t, e, 7, true, nil)
	for _, id := range []int64{2, 1, 6, 7} {
		members[id].waitServing(t)
	}
	for _, id := range []int64{6, 7} {
		if m := members[id].mode(); m != "observer" {
			t.Fatalf("%s is %q, want observer", members[id].label, m)
		}
	}
	down := map[int64]bool{}
	// leaderIs waits until one of want, and no other server, leads, and
	// returns it.
	leaderIs := func(when string, want ...int64) int64 {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			modes := map[int64]string{}
			var leaders []int64
			for id, m := range members {
				if down[id] {
					continue
				}
				modes[id] = m.mode()
				if modes[id] == "leader" {
					leaders = append(leaders, id)
				}
			}
			if len(leaders) == 1 && slices.Contains(want, leaders[0]) {
				return leaders[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: modes %v, want one of %v leading", when, modes, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// writes runs a write load through the zkd servers until n more are
	// acknowledged, and waits until every running server has them all.
	var acked []string
	writes := func(n int, when string) {
		t.Helper()
		var addrs []string
		for id := int64(1); id <= 3; id++ {
			if !down[id] {
				addrs = append(addrs, e.Addr(id))
			}
		}
		load := newWriteLoad("/five")
		for i := 0; i < 3; i++ {
			lc, _ := connectAll(t, addrs, 10*time.Second)
			load.run(lc)
		}
		load.waitMore(t, n, 60*time.Second, when)
		got, unexpected := load.halt()
		if unexpected != nil {
			t.Fatalf("%s: a writer got %v", when, unexpected)
		}
		acked = append(acked, got...)
		deadline := time.Now().Add(30 * time.Second)
		for {
			zxids := map[string]bool{}
			for id := range members {
				if !down[id] {
					out, _ := zkdtest.FourLetterWord(e.Addr(id), "srvr")
					_, z, _ := strings.Cut(out, "Zxid: ")
					z, _, _ = strings.Cut(z, "\n")
					zxids[z] = true
				}
			}
			if len(zxids) == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the servers' zxids still differ after 30 s: %v", when, zxids)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	leaderIs("at the start", 5)
	check(connect(t, e.Addr(1)).Create("/five", nil, 0, zk.WorldACL(zk.PermAll)))(t)
	writes(200, "at the start")
	// ZooKeeper's mntr order for each role, taken before any leader
	// change: a ZooKeeper server that goes through one registers some
	// figures again, and they move within its hash map.
	zkKeys := map[string][]string{"leader": mntrKeyOrder(t, members[5]),
		"follower": mntrKeyOrder(t, members[4]), "observer": mntrKeyOrder(t, members[7])}
	zkLeader := members[5].mntr(t)
	for _, step := range []struct {
		kill int64
		next []int64
	}{{5, []int64{4, 3}}, {4, []int64{3}}} {
		members[step.kill].stop(t) // SIGKILL
		down[step.kill] = true
		when := fmt.Sprintf("after ZooKeeper %d's kill", step.kill)
		t.Logf("%s server %d leads", when, leaderIs(when, step.next...))
		writes(200, when)
	}
	for _, id := range []int64{4, 5} {
		members[id].launch(t)
		down[id] = false
		members[id].waitServing(t)
		if m := members[id].mode(); m != "follower" {
			t.Fatalf("ZooKeeper %d came back as %q", id, m)
		}
	}
	leaderIs("after the ZooKeeper servers came back", 3)
	writes(200, "with every server back")
	requireSameEverywhere(t, e.Addrs(), "/five", acked)
	for id := int64(1); id <= 7; id++ {
		if n := members[id].mntr(t)["zk_digest_mismatches_count"]; n != "0" {
			t.Fatalf("server %d counted %s digest mismatches", id, n)
		}
	}
	// Each role's mntr has the keys ZooKeeper's has in that role, in its
	// order: zkd 3 now leads (ZooKeeper 5 led at the start), zkd 1
	// follows, zkd 6 observes.
	for role, id := range map[string]int64{"leader": 3, "follower": 1, "observer": 6} {
		got := mntrKeyOrder(t, members[id])
		if n, a, b, differ := zkreftest.DifferingLine(strings.Join(got, "\n"), strings.Join(zkKeys[role], "\n")); differ {
			t.Errorf("mntr of zkd %d, a %s, differs from ZooKeeper's %s at key %d: %q, ZooKeeper %q", id, role, role, n, a, b)
		}
	}
	// The figures of the ensemble's traffic that each role counts, which
	// the role's other figures leave at 0: ZooKeeper 5 led the first 200
	// writes, ZooKeeper 4 followed (restarted) and 7 observed the last;
	// zkd 3, 1 and 6 hold those roles now.
	counted := map[string][]string{
		"leader": {"zk_proposal_count", "zk_commit_count", "zk_cnt_quorum_ack_latency", "zk_last_proposal_size",
			"zk_min_proposal_size", "zk_max_proposal_size", "zk_cnt_proposal_ack_creation_latency", "zk_diff_count",
			"zk_cnt_inflight_diff_count", "zk_cnt_leader_unavailable_time"},
		"follower": {"zk_learner_proposal_received_count", "zk_learner_commit_received_count",
			"zk_cnt_proposal_latency", "zk_cnt_commit_propagation_latency", "zk_cnt_proposal_ack_creation_latency",
			"zk_cnt_follower_sync_time"},
		"observer": {"zk_learner_commit_received_count", "zk_cnt_commit_propagation_latency", "zk_cnt_observer_sync_time"},
	}
	for role := range counted {
		counted[role] = append(counted[role], "zk_looking_count", "zk_cnt_unavailable_time", "zk_cnt_propagation_latency",
			"zk_cnt_dbinittime", "zk_cnt_startup_snap_load_time")
	}
	for _, c := range []struct {
		role     string
		zk, zkd  map[string]string
		zkdLabel string
	}{
		{"leader", zkLeader, members[3].mntr(t), members[3].label},
		{"follower", members[4].mntr(t), members[1].mntr(t), members[1].label},
		{"observer", members[7].mntr(t), members[6].mntr(t), members[6].label},
	} {
		for _, k := range counted[c.role] {
			zkN, err1 := strconv.ParseInt(c.zk[k], 10, 64)
			zkdN, err2 := strconv.ParseInt(c.zkd[k], 10, 64)
			if err1 != nil || err2 != nil || zkN <= 0 || zkdN <= 0 {
				t.Errorf("%s: ZooKeeper's %s has %q, %s has %q; want both above 0", k, c.role, c.zk[k], c.zkdLabel, c.zkd[k])
			}
		}
	}
	if zk, zkd := members[7].mntr(t)["zk_learner_proposal_received_count"], members[6].mntr(t)["zk_learner_proposal_received_count"]; zk != "0" || zkd != "0" {
		t.Errorf("observers received PROPOSALs: ZooKeeper's counts %s, zkd's %s", zk, zkd)
	}
	t.Logf("%d writes acknowledged", len(acked))
}

// mntrKeyOrder is the member's mntr keys in the order it gives them, up
// to its summary sets (whose members, learners and namespaces, differ
// with what each server saw).
func mntrKeyOrder(t *testing.T, m *mixedMember) []string {
	t.Helper()
	out, err := zkdtest.FourLetterWord(m.addr, "mntr")
	if err != nil {
		t.Fatalf("mntr on %s: %v", m.label, err)
	}
	var keys []string
	for _, line := range strings.Split(out, "\n") {
		k, _, _ := strings.Cut(line, "\t")
		keys = append(keys, k)
		if k == "zk_p999_write_commitproc_time_ms" {
			return keys
		}
	}
	t.Fatalf("mntr on %s has no zk_p999_write_commitproc_time_ms:\n%s", m.label, out)
	return nil
}

// A ZooKeeper follower of a zkd leader answers a session that pipelines
// writes and syncs, in order. The follower matches the leader's COMMITs
// and SYNCs against one queue of the requests it forwarded, in the order
// it sent them: a SYNC that overtook the COMMIT of a write forwarded
// before it stayed at the head of that queue, the follower took that
// write's COMMIT for another server's write, and its clients' later
// writes were never answered (the fifo failure of a mixed zkbench check
// run, docs/reliability.md).
func TestZooKeeperFollowerPipelinesSyncsThroughAZkdLeader(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 3, nil)
	// 3 (zkd) leads; 2 (zkd) and 1 (ZooKeeper) follow.
	lead := startMixed(t, e, 3, false, nil)
	other := startMixed(t, e, 2, false, nil)
	lead.waitServing(t)
	other.waitServing(t)
	ref := startMixed(t, e, 1, true, nil)
	ref.waitServing(t)

	c, err := zkclient.Dial([]string{ref.addr}, 4*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create("/pipe", []byte("0"), openACL, wire.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	type sent struct {
		p    *zkclient.Pending
		op   wire.OpCode
		want int // a read's value: the last write sent before it
		get  *wire.GetDataResponse
	}
	last := 0
	for batch := 0; batch < 200; batch++ {
		var out []sent
		for k := 0; k < 4; k++ {
			last++
			p, err := c.Send(wire.OpSetData, &wire.SetDataRequest{Path: "/pipe", Data: []byte(strconv.Itoa(last)), Version: -1}, &wire.StatResponse{})
			if err != nil {
				t.Fatalf("batch %d: %v", batch, err)
			}
			out = append(out, sent{p: p, op: wire.OpSetData})
			if p, err = c.Send(wire.OpSync, &wire.PathRequest{Path: "/pipe"}, &wire.PathRequest{}); err != nil {
				t.Fatalf("batch %d: %v", batch, err)
			}
			out = append(out, sent{p: p, op: wire.OpSync})
			get := &wire.GetDataResponse{}
			if p, err = c.Send(wire.OpGetData, &wire.PathWatchRequest{Path: "/pipe"}, get); err != nil {
				t.Fatalf("batch %d: %v", batch, err)
			}
			out = append(out, sent{p: p, op: wire.OpGetData, want: last, get: get})
		}
		for i, s := range out {
			if _, err := s.p.Wait(); err != nil {
				t.Fatalf("batch %d, request %d (%v) through ZooKeeper's follower of a zkd leader: %v", batch, i, s.op, err)
			}
			if s.get != nil && string(s.get.Data) != strconv.Itoa(s.want) {
				t.Fatalf("batch %d: a read after the write of %d (and a sync) returned %q", batch, s.want, s.get.Data)
			}
		}
	}
}

// Members whose zoo.cfg names a dynamic config file (as ZooKeeper leaves
// it once reconfiguration has been on) form one ensemble, two zkd and one
// ZooKeeper: none takes its zoo.cfg, which has no server.N line, for a
// standalone server's; a write through zkd reaches ZooKeeper; and every
// member's /zookeeper/config is the same, with the version the file's name
// gives.
func TestMixedDynamicConfigFile(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 3, map[string]string{"reconfigEnabled": "false"})
	e.DynamicConfigFile = filepath.Join(t.TempDir(), "zoo.cfg.dynamic.100000000")
	e.WriteDynamicConfig(t)
	members := []*mixedMember{startMixed(t, e, 1, false, nil), startMixed(t, e, 2, false, nil), startMixed(t, e, 3, true, nil)}
	modes := map[string]int{}
	for _, m := range members {
		m.waitServing(t)
		modes[m.mode()]++
	}
	if modes["leader"] != 1 || modes["follower"] != 2 {
		t.Fatalf("modes %v, want one leader and two followers", modes)
	}
	w := zkreftest.Dial(t, members[0].addr, zkreftest.NewSession())
	w.OK(wire.OpCreate, &wire.CreateRequest{Path: "/dynamic", Data: []byte("d"), ACL: openACL})
	var config string
	for _, m := range members {
		c := zkreftest.Dial(t, m.addr, zkreftest.NewSession())
		c.OK(wire.OpSync, &wire.SyncRequest{Path: "/dynamic"})
		if r := c.OK(wire.OpGetData, &wire.GetDataRequest{Path: "/dynamic"}).(*wire.GetDataResponse); string(r.Data) != "d" {
			t.Fatalf("%s has /dynamic = %q", m.label, r.Data)
		}
		r := c.OK(wire.OpGetData, &wire.GetDataRequest{Path: "/zookeeper/config"}).(*wire.GetDataResponse)
		if config == "" {
			config = string(r.Data)
			if !strings.HasSuffix(config, "\nversion=100000000") {
				t.Fatalf("%s's /zookeeper/config:\n%s", m.label, config)
			}
		} else if string(r.Data) != config {
			t.Fatalf("%s's /zookeeper/config:\n%s\nzkd 1's:\n%s", m.label, r.Data, config)
		}
	}
	// conf shows the member's id and place as ZooKeeper's members show
	// theirs: the same lines, differing only in the member's own values.
	conf := func(m *mixedMember) string {
		out, err := zkdtest.FourLetterWord(m.addr, "conf")
		if err != nil {
			t.Fatal(err)
		}
		out = regexp.MustCompile(`(?m)^(dataDir|dataLogDir)=.*\n`).ReplaceAllString(out, "")
		out = regexp.MustCompile(`(?m)^(dataDirSize|dataLogSize)=\d+$`).ReplaceAllString(out, "$1=N")
		return strings.ReplaceAll(out, fmt.Sprintf("serverId=%d\n", m.id), "serverId=ME\n")
	}
	ref := conf(members[2])
	if !strings.Contains(ref, "serverId=ME\n") || !strings.HasSuffix(ref, "membership: \n"+config) {
		t.Fatalf("ZooKeeper's conf:\n%s", ref)
	}
	compareLines(t, "conf", ref, conf(members[0]))
}

// Hierarchical quorums (group.N, weight.N) across a ZooKeeper member
// (server 1) and two zkd members: server 1 weighs 2 in group 1 (1 and 2),
// server 3 is group 2, so a quorum needs server 1 and server 3. The ensemble forms
// and every member's /zookeeper/config is the same, group and weight
// lines included; without server 2 it goes on; without server 1 it stops,
// though servers 2 and 3 are a majority; with server 1 back it serves
// again.
func TestMixedHierarchicalQuorums(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 3, map[string]string{"group.1": "1:2", "group.2": "3", "weight.1": "2"})
	// ZooKeeper is server 1, so that without it the two zkd members
	// must refuse to make a majority a quorum.
	members := []*mixedMember{startMixed(t, e, 1, true, nil), startMixed(t, e, 2, false, nil), startMixed(t, e, 3, false, nil)}
	for _, m := range members {
		m.waitServing(t)
	}
	var config string
	for _, m := range members {
		c := zkreftest.Dial(t, m.addr, zkreftest.NewSession())
		r := c.OK(wire.OpGetData, &wire.GetDataRequest{Path: "/zookeeper/config"}).(*wire.GetDataResponse)
		if config == "" {
			config = string(r.Data)
		}
		if string(r.Data) != config || !strings.Contains(config, "\ngroup.1=1:2\ngroup.2=3\nweight.1=2\nweight.2=1\nweight.3=1\nversion=0") {
			t.Fatalf("%s's /zookeeper/config:\n%s\nthe first member's:\n%s", m.label, r.Data, config)
		}
	}
	write := func(via *mixedMember, path string) {
		t.Helper()
		writeThrough(t, via.addr, path)
	}
	write(members[0], "/all")
	members[1].stop(t)
	write(members[2], "/without-2")
	members[1].launch(t)
	members[1].waitServing(t)
	members[0].stop(t)
	// Servers 2 and 3 are a majority and not a quorum: once the leader
	// has noticed that server 1 is gone, neither serves, for twenty
	// election timeouts (tickTime 200 ms).
	for deadline := time.Now().Add(30 * time.Second); members[1].mode() != "" || members[2].mode() != ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after server 1 stopped, %s is %q and %s is %q", members[1].label, members[1].mode(), members[2].label, members[2].mode())
		}
	}
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, m := range members[1:] {
			if mode := m.mode(); mode != "" {
				t.Fatalf("without server 1, %s serves as %s", m.label, mode)
			}
		}
	}
	members[0].launch(t)
	write(members[1], "/back")
	for _, m := range members {
		m.waitServing(t)
		c := zkreftest.Dial(t, m.addr, zkreftest.NewSession())
		c.OK(wire.OpSync, &wire.SyncRequest{Path: "/"})
		for _, p := range []string{"/all", "/without-2", "/back"} {
			c.OK(wire.OpExists, &wire.ExistsRequest{Path: p})
		}
	}
}

// db.autocreate=false across implementations: ZooKeeper 1 holds the
// data; zkd 2 and 3, set to trust no empty data directory, are wiped. Each
// implementation passes over the other's zxid -1 votes, so nobody is
// elected, with ZooKeeper back or not, until an initialize file trusts
// zkd 2; then ZooKeeper, which has the data, leads, and all three hold it.
func TestMixedEmptyMembersDoNotOutvoteTheData(t *testing.T) {
	zkreftest.Need(t)
	e := zkdtest.NewEnsemble(t, 3, nil)
	e.Member = map[int64]map[string]string{}
	logDirs := map[int64]string{}
	for _, id := range []int64{2, 3} {
		logDirs[id] = t.TempDir()
		initialize(t, logDirs[id])
		e.Member[id] = map[string]string{"dataLogDir": logDirs[id], "db.autocreate": "false"}
	}
	members := []*mixedMember{startMixed(t, e, 1, true, nil), startMixed(t, e, 2, false, nil), startMixed(t, e, 3, false, nil)}
	for _, m := range members {
		m.waitServing(t)
	}
	c := zkreftest.Dial(t, members[1].addr, zkreftest.NewSession())
	for i := 0; i < 20; i++ {
		c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/kept-" + strconv.Itoa(i), ACL: openACL})
	}
	// A write taken with zkd 3 stopped needs ZooKeeper 1's ACK, which
	// it gives once its log holds that write and every one before.
	members[2].stop(t)
	writeThrough(t, members[0].addr, "/kept-last")
	for _, m := range members[:2] {
		m.stop(t)
	}
	for _, id := range []int64{2, 3} {
		for _, d := range []string{filepath.Join(members[id-1].dataDir(), "version-2"), filepath.Join(logDirs[id], "version-2")} {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	quiet := func(what string, ms ...*mixedMember) {
		t.Helper()
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, m := range ms {
				if mode := m.mode(); mode != "" {
					t.Fatalf("%s: %s serves as %s", what, m.label, mode)
				}
			}
		}
	}
	members[1].launch(t)
	members[2].launch(t)
	quiet("the two wiped zkd members alone", members[1], members[2])
	members[0].launch(t)
	quiet("ZooKeeper, with the data, back", members...)
	members[1].stop(t)
	initialize(t, logDirs[2])
	members[1].launch(t)
	for _, m := range members {
		m.waitServing(t)
		r := zkreftest.Dial(t, m.addr, zkreftest.NewSession())
		r.OK(wire.OpSync, &wire.SyncRequest{Path: "/"})
		if h, _ := r.Call(wire.OpExists, &wire.ExistsRequest{Path: "/kept-last"}); h.Err != wire.ErrOK {
			t.Fatalf("%s lacks the data: %v", m.label, h.Err)
		}
	}
	if mode := members[0].mode(); mode != "leader" {
		t.Fatalf("ZooKeeper, which holds the data, is %q", mode)
	}
}

// writeThrough creates path through the server at addr, trying again
// for up to 60 s while the ensemble settles (a member just stopped).
func writeThrough(t *testing.T, addr, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := zkclient.Dial([]string{addr}, 5*time.Second, nil)
		if err == nil {
			_, err = c.Create(path, nil, openACL, wire.ModePersistent, 0)
			c.Close()
			if err == nil || errors.Is(err, wire.ErrNodeExists) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("create %s through %s: %v", path, addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
