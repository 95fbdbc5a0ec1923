package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
	"zkd/ztree"
)

// smallDisk mounts a tmpfs of the given size for the test and returns it.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: mounting a small file system needs root (make test runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: cannot mount a %s tmpfs here: %v %s", size, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("filling the disk: %v", err)
			}
			return name
		}
	}
	t.Fatal("the disk never filled")
	return ""
}

// outcome sends a setData and says what became of it: "ok", "refused"
// (NOTREADONLY) or "closed" (the connection went: outcome unknown).
func outcome(t *testing.T, c *zkreftest.Client, path string, data []byte) string {
	t.Helper()
	c.Xid++
	p := (&wire.RequestHeader{Xid: c.Xid, Type: wire.OpSetData}).Append(nil)
	p = (&wire.SetDataRequest{Path: path, Data: data, Version: -1}).Append(p)
	if _, err := c.Conn.Write(wire.AppendFrame(nil, p)); err != nil {
		return "closed"
	}
	reply, err := c.ReadErr()
	if err != nil {
		return "closed"
	}
	h, _, _, err := wire.DecodeReply(reply, wire.OpSetData)
	switch {
	case err != nil:
		t.Fatalf("setData reply: %v", err)
	case h.Err == wire.ErrOK:
		return "ok"
	case h.Err == wire.ErrNotReadOnly:
		return "refused"
	}
	t.Fatalf("setData: %v, want OK or NOTREADONLY", h.Err)
	return ""
}

func resume(t *testing.T, addr string, s wire.ConnectResponse) *zkreftest.Client {
	t.Helper()
	c := zkreftest.Dial(t, addr, wire.ConnectRequest{TimeOut: 30000, SessionID: s.SessionID, Passwd: s.Passwd})
	if c.Session.SessionID != s.SessionID {
		t.Fatalf("session 0x%x was not resumed (got 0x%x)", s.SessionID, c.Session.SessionID)
	}
	return c
}

func getData(t *testing.T, c *zkreftest.Client, path string) string {
	t.Helper()
	return string(c.OK(wire.OpGetData, &wire.GetDataRequest{Path: path}).(*wire.GetDataResponse).Data)
}

// On a 24 MB disk the default 64 MB log preallocation must not stop the
// server. Once the disk is full, the server stays up: it serves reads,
// refuses writes with NOTREADONLY (never acknowledging one it could not
// make durable), restarts on the full disk and serves reads again, and
// takes writes after a restart with room.
func TestFullDiskServesReadsAndRefusesWrites(t *testing.T) {
	disk := smallDisk(t, "24m")
	srv := zkdtest.Start(t, map[string]string{"dataDir": filepath.Join(disk, "data")})
	c := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/kept", Data: []byte("v0"), ACL: ztree.OpenACL})
	for i := 0; i < 50; i++ {
		c.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/kept", Data: []byte("v1"), Version: -1})
	}
	filler := fill(t, disk)

	// Writes go on while the log's last page has room, then stop.
	acked, last := "v1", ""
	for i := 0; i < 2000 && last != "refused" && last != "closed"; i++ {
		v := strings.Repeat("x", 1000) + string(rune('a'+i%26))
		if last = outcome(t, c, "/kept", []byte(v)); last == "ok" {
			acked = v
		}
	}
	if last != "refused" && last != "closed" {
		t.Fatal("2000 writes of 1 KB were acknowledged on a full disk")
	}
	if exited, err := srv.Exited(); exited {
		t.Fatalf("zkd exited on a full disk (%v):\n%s", err, srv.Log())
	}
	out, err := zkdtest.FourLetterWord(srv.Addr, "srvr")
	if err != nil || !strings.Contains(out, "Mode: read-only") {
		t.Fatalf("srvr on a full disk: %v\n%s", err, out)
	}
	check := func(stage string) {
		t.Helper()
		r := resume(t, srv.Addr, c.Session)
		if got := getData(t, r, "/kept"); got != acked && !(last == "closed" && len(got) == len(acked)) {
			t.Fatalf("%s: /kept holds %.8q…, the last acknowledged write was %.8q…", stage, got, acked)
		}
		// The first write after a restart meets the full disk in flight
		// and loses its connection; after that, writes are refused.
		res := outcome(t, r, "/kept", []byte("refused"))
		if res == "closed" {
			r = resume(t, srv.Addr, c.Session)
			res = outcome(t, r, "/kept", []byte("refused"))
		}
		if res != "refused" {
			t.Fatalf("%s: a write on the full disk was %s, want refused", stage, res)
		}
		// A new client gets a session and reads.
		n := zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
		getData(t, n, "/kept")
		acked = getData(t, r, "/kept")
	}
	check("full disk")
	srv.Stop()
	srv.Restart()
	check("restarted on the full disk")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Restart()
	r := resume(t, srv.Addr, c.Session)
	if got := getData(t, r, "/kept"); got != acked {
		t.Fatalf("after freeing the disk /kept holds %.8q…, want %.8q…", got, acked)
	}
	r.OK(wire.OpSetData, &wire.SetDataRequest{Path: "/kept", Data: []byte("room again"), Version: -1})
}
