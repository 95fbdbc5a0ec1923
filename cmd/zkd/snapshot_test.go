package main

import (
	"bytes"
	"fmt"
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

func zkdSnapshot(args ...string) (string, bool) {
	var out, errb bytes.Buffer
	code := snapshotCmd(args, &out, &errb)
	return out.String(), code == 0
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
				got, gotOK := zkdSnapshot(append([]string{"dump"}, args...)...)
				if gotOK != wantOK || got != want {
					t.Errorf("%s's %s, %v (read by ZooKeeper %v, zkd %v): %s", who, filepath.Base(f), args[:len(args)-1], wantOK, gotOK, lineDiff(got, want))
				}
			}
			want, _ := formatter(t, "-json", f)
			got, _ := zkdSnapshot("json", f)
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
