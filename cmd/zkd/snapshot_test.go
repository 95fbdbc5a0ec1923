package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

type silent struct{}

func (silent) Printf(string, ...any) {}

// snapshotWorkload writes a tree with what a snapshot dump shows: nested
// znodes, a parent with enough children to grow its hash set, binary and
// empty data, ACLs, sequential and ephemeral znodes of a session that
// stays open while the snapshot is taken.
func snapshotWorkload(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatal(err)
	}
	acl := zk.WorldACL(zk.PermAll)
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create("/app", []byte("top"), 0, acl))
	for i := 0; i < 40; i++ {
		must(c.Create(fmt.Sprintf("/app/node-%d", i), []byte{byte(i), 0, 0xff}, 0, acl))
	}
	must(c.Create("/app/node-1/deep", nil, 0, zk.WorldACL(zk.PermRead|zk.PermCreate)))
	must(c.Create("/app/node-1/deep/er", []byte(`quote " and \ slash`), 0, acl))
	must(c.Create("/seq-", nil, zk.FlagSequence, acl))
	must(c.Create("/eph", []byte("e"), zk.FlagEphemeral, acl))
	if _, err := c.Set("/app", []byte("top, changed"), 0); err != nil {
		t.Fatal(err)
	}
	return c
}

// formatter runs ZooKeeper's SnapshotFormatter on file, in UTC; ok is
// false when it could not read the file.
func formatter(t *testing.T, args ...string) (out string, ok bool) {
	t.Helper()
	cmd := exec.Command("java", append([]string{"-cp", strings.Join(zkref.Jars, ":"), "org.apache.zookeeper.server.SnapshotFormatter"}, args...)...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stdout, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &errb
	if err := cmd.Run(); err != nil {
		t.Logf("SnapshotFormatter %v: %v\n%s", args, err, errb.String())
		return "", false
	}
	return stdout.String(), true
}

// zkdSnapshot runs zkd snapshot with args: its output, whether it read
// the file, and what it said on standard error.
func zkdSnapshot(args ...string) (out string, ok bool, stderr string) {
	var o, errb bytes.Buffer
	code := snapshotCmd(args, &o, &errb)
	return o.String(), code == 0, errb.String()
}

var jsonTimestamp = regexp.MustCompile(`"timestamp":[0-9]+`)

// zkd snapshot prints every snapshot, ZooKeeper's and zkd's, as
// ZooKeeper's SnapshotFormatter does, byte for byte: the znodes in its
// order, their Stats, data with -d, the sessions, the digest, the last
// zxid, and the -json tree.
func TestSnapshotDumpIsZooKeepers(t *testing.T) {
	zkreftest.Need(t)
	dumpZone = time.UTC // as ZooKeeper's tool runs, TZ=UTC
	defer func() { dumpZone = time.Local }()

	cfg := map[string]string{"snapCount": "20"}
	ref, err := zkref.Start(t.TempDir(), zkref.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	c := snapshotWorkload(t, ref.Addr)
	refDir := filepath.Join(ref.Dir, "data", "version-2")
	c.Close()
	if err := ref.Stop(); err != nil {
		t.Fatal(err)
	}

	z := zkdtest.Start(t, cfg)
	c = snapshotWorkload(t, z.Addr)
	zkdDir := filepath.Join(z.Dir, "data", "version-2")
	c.Close()
	if err := z.Stop(); err != nil {
		t.Fatal(err)
	}

	compared := map[string]int{}
	for who, dir := range map[string]string{"ZooKeeper": refDir, "zkd": zkdDir} {
		files, _ := filepath.Glob(filepath.Join(dir, "snapshot.*"))
		for _, f := range files {
			// A snapshot ZooKeeper was still writing when it was killed
			// is cut short: both must refuse it.
			for _, args := range [][]string{{f}, {"-d", f}} {
				want, wantOK := formatter(t, args...)
				got, gotOK, said := zkdSnapshot(append([]string{"dump"}, args...)...)
				if gotOK != wantOK || got != want {
					t.Errorf("%s's %s, %v (read by ZooKeeper %v, zkd %v; zkd said %q): %s", who, filepath.Base(f), args[:len(args)-1], wantOK, gotOK, said, lineDiff(got, want))
				}
			}
			want, _ := formatter(t, "-json", f)
			got, _, _ := zkdSnapshot("json", f)
			want = jsonTimestamp.ReplaceAllString(want, `"timestamp":0`)
			got = jsonTimestamp.ReplaceAllString(got, `"timestamp":0`)
			if got != want {
				t.Errorf("%s's %s, json: %s", who, filepath.Base(f), lineDiff(strings.ReplaceAll(got, "},", "},\n"), strings.ReplaceAll(want, "},", "},\n")))
			}
			compared[who]++
		}
	}
	// Each wrote at least one snapshot with the workload in it.
	if compared["ZooKeeper"] < 2 || compared["zkd"] < 2 {
		t.Fatalf("snapshots compared: %v", compared)
	}
	var errb bytes.Buffer
	if code := snapshotCmd([]string{"dump", filepath.Join(zkdDir, "no-such-snapshot")}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "no-such-snapshot") {
		t.Fatalf("a missing file: exit %d, %q", code, errb.String())
	}
}

// lineDiff shows where zkd's output first parts from ZooKeeper's.
func lineDiff(got, want string) string {
	n, gl, wl, differ := zkreftest.DifferingLine(got, want)
	if !differ {
		return "no difference"
	}
	w := strings.Split(want, "\n")
	from := max(0, n-4)
	return fmt.Sprintf("line %d differs:\nzkd:       %q\nZooKeeper: %q\n(ZooKeeper's lines %d to %d: %q)", n, gl, wl, from+1, n, w[from:min(n, len(w))])
}

// A snapshot ZooKeeper wrote while it applied txns (fuzzy) may hold a
// znode created after its ACL table was written, naming an ACL the table
// lacks; the txn log after the snapshot holds it. ZooKeeper's
// SnapshotFormatter prints such a snapshot, and so does zkd snapshot,
// the same way. (TestSnapshotDumpIsZooKeepers met one by chance, when
// ZooKeeper's snapshot thread ran late on a busy machine.)
func TestSnapshotDumpReadsAFuzzySnapshotAsZooKeeper(t *testing.T) {
	zkreftest.Need(t)
	dumpZone = time.UTC
	defer func() { dumpZone = time.Local }()

	var b []byte
	sum := adler32.New()
	put := func(p []byte) { b = append(b, p...); sum.Write(p) }
	i32 := func(v int32) { put(binary.BigEndian.AppendUint32(nil, uint32(v))) }
	i64 := func(v int64) { put(binary.BigEndian.AppendUint64(nil, uint64(v))) }
	str := func(v string) { i32(int32(len(v))); put([]byte(v)) }
	seal := func() { i64(int64(sum.Sum32())); str("/") }

	i32(0x5a4b534e) // "ZKSN"
	i32(2)
	i64(-1)
	i32(1) // sessions
	i64(0x1000001)
	i32(30000)
	i32(1) // the ACL table has 1 only
	i64(1)
	i32(1)
	put((&wire.ACL{Perms: wire.PermRead | wire.PermCreate, ID: wire.Id{Scheme: "world", ID: "anyone"}}).Append(nil))
	const ms = 1733390000000
	node := func(path string, data []byte, acl int64, st wire.StatPersisted) {
		str(path)
		if data == nil {
			i32(-1)
		} else {
			i32(int32(len(data)))
			put(data)
		}
		i64(acl)
		put(st.Append(nil))
	}
	node("", []byte{}, -1, wire.StatPersisted{Cversion: 2, Pzxid: 4})
	node("/zookeeper", []byte{}, -1, wire.StatPersisted{Cversion: 1})
	node("/zookeeper/quota", []byte{}, -1, wire.StatPersisted{})
	node("/kept", []byte("k"), 1, wire.StatPersisted{Czxid: 3, Mzxid: 3, Ctime: ms, Mtime: ms, Pzxid: 3})
	// Created by txn 4, after the snapshot of txn 3 had written its
	// table: ACL 2 is in the log only.
	node("/late", []byte("l"), 2, wire.StatPersisted{Czxid: 4, Mzxid: 4, Ctime: ms + 1, Mtime: ms + 1, Pzxid: 4})
	str("/")
	seal()

	file := filepath.Join(t.TempDir(), "snapshot.3")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{file}, {"-d", file}} {
		want, wantOK := formatter(t, args...)
		if !wantOK {
			t.Fatalf("ZooKeeper's SnapshotFormatter %v could not read the snapshot", args)
		}
		got, gotOK, said := zkdSnapshot(append([]string{"dump"}, args...)...)
		if !gotOK || got != want {
			t.Errorf("zkd snapshot dump %v (read it: %v; said %q): %s", args[:len(args)-1], gotOK, said, lineDiff(got, want))
		}
	}
	want, _ := formatter(t, "-json", file)
	got, _, said := zkdSnapshot("json", file)
	want = jsonTimestamp.ReplaceAllString(want, `"timestamp":0`)
	got = jsonTimestamp.ReplaceAllString(got, `"timestamp":0`)
	if got != want || !strings.Contains(got, `"late"`) {
		t.Errorf("zkd snapshot json (said %q): %s", said, lineDiff(got, want))
	}
}
