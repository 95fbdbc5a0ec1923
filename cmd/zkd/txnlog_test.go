package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
)

// txnlogWorkload causes a txn of every kind: creates of each mode (a
// container and a TTL znode among them), setData, setACL, delete, a multi
// with a check, a failed multi and a failed create (error txns), and a
// session closing with its ephemerals.
func txnlogWorkload(t *testing.T, addr string) {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acl := zk.WorldACL(zk.PermAll)
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create("/t", []byte("data, with % and }"), 0, acl))
	must(c.Create("/t/seq-", nil, zk.FlagSequence, acl))
	must(c.Create("/t/eph", []byte{0xe2, 0x82, 'x', 0xff}, zk.FlagEphemeral, acl))
	must(c.CreateContainer("/t/box", nil, zk.FlagContainer, acl))
	must(c.CreateTTL("/t/ttl", []byte("t"), zk.FlagTTL, acl, time.Hour))
	if _, err := c.Set("/t", []byte("changed"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetACL("/t/seq-0000000000", append(zk.WorldACL(zk.PermRead), zk.DigestACL(zk.PermAll, "u", "p")...), -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("/t/seq-0000000000", -1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Multi(&zk.CreateRequest{Path: "/t/m", Data: []byte("m"), Acl: acl},
		&zk.CheckVersionRequest{Path: "/t", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Multi(&zk.CreateRequest{Path: "/t/never", Acl: acl},
		&zk.CheckVersionRequest{Path: "/t", Version: 9}); err == nil {
		t.Fatal("a multi with a failing check succeeded")
	}
	if _, err := c.Create("/t", nil, 0, acl); !errors.Is(err, zk.ErrNodeExists) {
		t.Fatalf("create of an existing znode: %v", err)
	}
}

// toolkit runs ZooKeeper's TxnLogToolkit on file, in UTC.
func toolkit(t *testing.T, file string) string {
	t.Helper()
	cmd := exec.Command("java", "-cp", strings.Join(zkref.Jars, ":"), "org.apache.zookeeper.server.persistence.TxnLogToolkit", file)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("TxnLogToolkit %s: %v\n%s", file, err, errb.String())
	}
	return out.String()
}

// zkd txnlog dump prints every txn log, ZooKeeper's and zkd's, as
// ZooKeeper's TxnLogToolkit does, line for line, every kind of txn
// included; an entry whose checksum is wrong is shown as the toolkit
// shows it, and zkd exits with 1.
func TestTxnLogDumpIsZooKeepers(t *testing.T) {
	zkreftest.Need(t)
	dumpZone = time.UTC // as ZooKeeper's tool runs, TZ=UTC
	defer func() { dumpZone = time.Local }()

	ref, err := zkref.Start(t.TempDir(), zkref.Options{Config: map[string]string{"extendedTypesEnabled": "true"},
		SystemProperties: map[string]string{"zookeeper.extendedTypesEnabled": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	txnlogWorkload(t, ref.Addr)
	if err := ref.Stop(); err != nil {
		t.Fatal(err)
	}
	z := zkdtest.Start(t, map[string]string{"extendedTypesEnabled": "true"})
	txnlogWorkload(t, z.Addr)
	if err := z.Stop(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"ZooKeeper": filepath.Join(ref.Dir, "data", "version-2"), "zkd": filepath.Join(z.Dir, "data", "version-2")}
	for who, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "log.*"))
		if len(files) == 0 {
			t.Fatalf("%s wrote no txn log in %s", who, dir)
		}
		for _, f := range files {
			want := toolkit(t, f)
			var out, errb bytes.Buffer
			if code := txnlogCmd([]string{"dump", f}, &out, &errb); code != 0 {
				t.Fatalf("zkd txnlog dump %s: exit %d: %s", f, code, errb.String())
			}
			if got := out.String(); got != want {
				t.Errorf("%s's %s: %s", who, filepath.Base(f), lineDiff(got, want))
			}
			for _, kind := range []string{" createTtl ", " createContainer ", " setACL ", " multi ", " error ", " closeSession v{'/t/eph}"} {
				if !strings.Contains(want, kind) {
					t.Errorf("%s's %s has no %q txn:\n%s", who, filepath.Base(f), kind, want)
				}
			}
		}
	}

	// A wrong checksum: the third entry's, in a copy of zkd's log.
	files, _ := filepath.Glob(filepath.Join(dirs["zkd"], "log.*"))
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	off := 16
	for i := 0; i < 2; i++ {
		n := int(b[off+8])<<24 | int(b[off+9])<<16 | int(b[off+10])<<8 | int(b[off+11])
		off += 12 + n + 1
	}
	b[off+7] ^= 0xff
	damaged := filepath.Join(t.TempDir(), filepath.Base(files[0]))
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := toolkit(t, damaged)
	var out, errb bytes.Buffer
	if code := txnlogCmd([]string{"dump", damaged}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "1 txns with a wrong checksum") {
		t.Fatalf("a wrong checksum: exit %d, %q", code, errb.String())
	}
	if got := out.String(); got != want || !strings.Contains(got, "CRC ERROR - ") {
		t.Errorf("a wrong checksum: %s", lineDiff(got, want))
	}
}
