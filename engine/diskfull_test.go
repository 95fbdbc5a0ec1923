package engine_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
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

// In an ensemble a leader whose log's disk fills cannot lead: the other
// members' disks take the writes it cannot, and only a leader orders
// them. It stops, as a follower whose log fails does and as ZooKeeper's
// leader gives up leading on a failed log, and the others elect a leader
// and go on taking writes. It used to stay leader in read-only mode,
// refusing every write of the ensemble, and its tree could go without the
// txns its followers had committed from the proposals already out.
func TestEnsembleLeaderOnAFullDiskStepsAside(t *testing.T) {
	e := zkdtest.NewEnsemble(t, 3, nil)
	e.Member = map[int64]map[string]string{}
	disks := map[int64]string{}
	for id := int64(1); id <= 3; id++ {
		disks[id] = smallDisk(t, "24m")
		e.Member[id] = map[string]string{"dataLogDir": filepath.Join(disks[id], "log")}
	}
	e.Start(t, 1, 2, 3)
	e.WaitServing(t, 30*time.Second)
	leader, follower := e.Leader(), e.Follower()
	c := zkreftest.Dial(t, e.Addr(follower), zkreftest.NewSession())
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/kept", Data: []byte("v0"), ACL: ztree.OpenACL})
	fill(t, disks[leader])

	// Writes through the follower: taken while the leader's log has
	// room, then refused or cut off until the leader has gone and the
	// others have elected one, then taken again.
	acked, refused, after := "", 0, false
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline) && !after; i++ {
		gone, _ := e.Servers[leader].Exited()
		v := fmt.Sprintf("%d-%s", i, strings.Repeat("x", 1000))
		switch outcome(t, c, "/kept", []byte(v)) {
		case "ok":
			acked, after = v, gone
		case "refused":
			refused++
			time.Sleep(10 * time.Millisecond)
		case "closed":
			c = resumeOnceServing(t, e.Addr(follower), c.Session)
		}
	}
	if gone, _ := e.Servers[leader].Exited(); !gone {
		t.Fatalf("the leader (%d) on a full disk is still running 60 s on; %d writes refused meanwhile", leader, refused)
	}
	if !after {
		t.Fatalf("no write was taken within 60 s of the leader's disk filling; %d refused", refused)
	}
	if !strings.Contains(e.Servers[leader].Log(), filepath.Join(disks[leader], "log")) {
		t.Errorf("the stopped leader's log does not name its full log directory:\n%s", e.Servers[leader].Log())
	}
	// Every server left agrees on /kept: the last acknowledged write.
	for id := range e.Servers {
		if id == leader {
			continue
		}
		r := zkreftest.Dial(t, e.Addr(id), zkreftest.NewSession())
		r.OK(wire.OpSync, &wire.SyncRequest{Path: "/kept"})
		if got := getData(t, r, "/kept"); got != acked {
			t.Fatalf("server %d: /kept holds %.8q…, the last acknowledged write was %.8q…", id, got, acked)
		}
	}
	// Started again on the full disk, it does not join: it says why.
	full := e.Servers[leader]
	full.Launch()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if gone, _ := full.Exited(); gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member started on a full disk is still running:\n%s", full.Log())
		}
	}
	if log := full.Log(); !strings.Contains(log, "free some space and start zkd again") {
		t.Fatalf("the member started on a full disk exited without saying so:\n%s", log)
	}
}

// resumeOnceServing resumes session s on addr once that server serves
// again (an election may be under way), within 30 s.
func resumeOnceServing(t *testing.T, addr string, s wire.ConnectResponse) *zkreftest.Client {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		req := wire.ConnectRequest{TimeOut: 30000, SessionID: s.SessionID, Passwd: s.Passwd}
		_, err = nc.Write(wire.AppendFrame(nil, req.Append(nil)))
		var r wire.ConnectResponse
		if err == nil {
			r, err = readConnectResponse(nc, 5*time.Second)
		}
		nc.Close()
		if err == nil && r.SessionID == s.SessionID {
			return resume(t, addr, s)
		}
	}
	t.Fatalf("session 0x%x could not be resumed on %s within 30 s", s.SessionID, addr)
	return nil
}

// A leader whose disk stalls (every fsync hangs, as an overloaded or
// failing disk's may for seconds) goes on answering writes, as Apache
// ZooKeeper's leader does: the followers' disks, a quorum, hold them. It
// used to apply only what its own disk held, so every write through it
// waited for the disk. It gives up the lead once a txn has waited
// syncLimit for its disk, since its log takes only 64 MB behind a stalled
// disk before the whole ensemble's writes would wait for it. The
// followers' disks keep up; they elect one of them, which takes the
// writes. Once the disk goes on, the old leader follows, and every server
// holds the last acknowledged write.
func TestEnsembleLeaderWhoseDiskStallsStepsAside(t *testing.T) {
	e, leader, follower, c := diskFaultEnsemble(t)
	other := 6 - leader - follower
	lead := e.Servers[leader]
	cl := zkreftest.Dial(t, e.Addr(leader), zkreftest.NewSession())
	stallDisk(t, lead)

	// For half of syncLimit (2 s), writes through the leader are
	// answered and read back there, long before its disk goes on.
	stalled := time.Now()
	for i := 0; time.Since(stalled) < time.Second; i++ {
		v := fmt.Sprintf("leader-%d", i)
		if got := outcome(t, cl, "/kept", []byte(v)); got != "ok" {
			t.Fatalf("%v into the stall of server %d's disk, write %d through it: %s, want it answered", time.Since(stalled).Round(time.Millisecond), leader, i, got)
		}
		if took := time.Since(stalled); took > 2*time.Second {
			t.Fatalf("write %d through leader %d, its disk stalled, was answered only %v into the stall", i, leader, took.Round(time.Millisecond))
		}
		if got := getData(t, cl, "/kept"); got != v {
			t.Fatalf("leader %d, its disk stalled, reads %q after its client's write of %q", leader, got, v)
		}
	}

	// Writes through the follower, until one is taken after another
	// server leads.
	acked, moved := "v0", false
	start := time.Now()
	checked := start
	for i := 0; !moved || acked == "v0"; i++ {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("30 s after server %d's disk stalled, another server leads: %v; last write taken: %.8q", leader, moved, acked)
		}
		if !moved && time.Since(checked) > 100*time.Millisecond {
			checked = time.Now()
			if e.Servers[follower].Mode() == "leader" || e.Servers[other].Mode() == "leader" {
				moved, acked = true, "v0"
			}
		}
		v := fmt.Sprintf("%d-%s", i, strings.Repeat("x", 1000))
		switch outcome(t, c, "/kept", []byte(v)) {
		case "ok":
			acked = v
		case "closed":
			c = resumeOnceServing(t, e.Addr(follower), c.Session)
		default:
			t.Fatal("a write was refused")
		}
	}
	if !strings.Contains(lead.Log(), "giving up the lead") {
		t.Fatalf("server %d, its disk stalled, did not say why it stopped leading:\n%s", leader, lead.Log())
	}
	for i := 0; i < 20; i++ {
		v := fmt.Sprintf("after-%d", i)
		if outcome(t, c, "/kept", []byte(v)) != "ok" {
			t.Fatalf("write %d after the new leader was elected was not taken", i)
		}
		acked = v
	}

	endStallAndRequireKept(t, e, leader, acked)
}

// diskFaultEnsemble starts three servers with zkd's disk fault hook
// (ZKD_FAULTS=disk) and returns them, their leader, a follower, and a
// session on that follower that has created /kept.
func diskFaultEnsemble(t *testing.T) (e *zkdtest.Ensemble, leader, follower int64, c *zkreftest.Client) {
	t.Helper()
	return diskFaultEnsembleWith(t, "disk", nil)
}

// diskFaultEnsembleWith is diskFaultEnsemble with ZKD_FAULTS=faults and
// cfg on top of the servers' zoo.cfg.
func diskFaultEnsembleWith(t *testing.T, faults string, cfg map[string]string) (e *zkdtest.Ensemble, leader, follower int64, c *zkreftest.Client) {
	t.Helper()
	e = zkdtest.NewEnsemble(t, 3, cfg)
	e.Env = []string{"ZKD_FAULTS=" + faults}
	e.Start(t, 1, 2, 3)
	e.WaitServing(t, 30*time.Second)
	leader, follower = e.Leader(), e.Follower()
	c = zkreftest.Dial(t, e.Addr(follower), zkreftest.NewSession())
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/kept", Data: []byte("v0"), ACL: ztree.OpenACL})
	return e, leader, follower, c
}

// signalDisk sends srv's disk fault hook sig and waits until its log says
// says.
func signalDisk(t *testing.T, srv *zkdtest.Server, sig syscall.Signal, says string) {
	t.Helper()
	if err := syscall.Kill(srv.Pid(), sig); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srv.Log(), says); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take %v within 10 s:\n%s", srv.Addr, sig, srv.Log())
		}
	}
}

// stallDisk makes every fsync of srv wait, until signalDisk lets them go
// (SIGTTOU) or the test ends.
func stallDisk(t *testing.T, srv *zkdtest.Server) {
	t.Helper()
	signalDisk(t, srv, syscall.SIGTTIN, "every fsync waits")
	t.Cleanup(func() { syscall.Kill(srv.Pid(), syscall.SIGTTOU) })
}

// endStallAndRequireKept lets server id's stalled disk go on, waits for
// it to follow, and requires every server to hold acked in /kept.
func endStallAndRequireKept(t *testing.T, e *zkdtest.Ensemble, id int64, acked string) {
	t.Helper()
	srv := e.Servers[id]
	signalDisk(t, srv, syscall.SIGTTOU, "the disk stall is over")
	for deadline := time.Now().Add(30 * time.Second); srv.Mode() != "follower"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("server %d is not a follower 30 s after its disk went on", id)
		}
	}
	requireKeptEverywhere(t, e, acked)
}

// bigWrite sets /kept to write i's 1 MB value through c, and says how it
// ended (outcome) and how long it took.
func bigWrite(t *testing.T, c *zkreftest.Client, i int) (v, got string, took time.Duration) {
	t.Helper()
	v = fmt.Sprintf("%d-%s", i, strings.Repeat("x", 1_000_000))
	began := time.Now()
	got = outcome(t, c, "/kept", []byte(v))
	return v, got, time.Since(began)
}

// requireKeptEverywhere: every server of e, after a sync, holds want in
// /kept.
func requireKeptEverywhere(t *testing.T, e *zkdtest.Ensemble, want string) {
	t.Helper()
	for id := range e.Servers {
		r := zkreftest.Dial(t, e.Addr(id), zkreftest.NewSession())
		r.OK(wire.OpSync, &wire.SyncRequest{Path: "/kept"})
		if got := getData(t, r, "/kept"); got != want {
			t.Fatalf("server %d: /kept holds %.12q…, want the last acknowledged write %.12q…", id, got, want)
		}
	}
}

// A follower whose disk stalls goes on serving its clients, as Apache
// ZooKeeper's followers do: it forwards their writes and answers them once
// the leader commits them (a quorum of other disks holds them), and it
// goes on answering the leader's pings, so the leader keeps it. It used to
// answer a write only once its own disk held it, and to send its pings
// and forwarded writes behind the ACKs waiting for that disk: its clients
// waited for the disk, and after syncLimit the leader dropped it. Its own
// ACKs still wait for its disk, and once the disk goes on it holds
// everything.
func TestEnsembleFollowerWhoseDiskStallsKeepsServing(t *testing.T) {
	e, leader, follower, c := diskFaultEnsemble(t)
	stalled := e.Servers[follower]
	stallDisk(t, stalled)

	// Three times syncLimit (2 s) of writes through the stalled
	// follower, each read back there.
	acked := "v0"
	start := time.Now()
	for i := 0; time.Since(start) < 6*time.Second || i < 100; i++ {
		v := fmt.Sprintf("%d-%s", i, strings.Repeat("x", 100))
		switch outcome(t, c, "/kept", []byte(v)) {
		case "ok":
			acked = v
		case "closed":
			t.Fatalf("%v into the stall of server %d's disk, write %d through it was not answered within 10 s, or its connection closed",
				time.Since(start).Round(time.Millisecond), follower, i)
		default:
			t.Fatal("a write was refused")
		}
		if i%10 == 0 {
			if got := getData(t, c, "/kept"); got != acked {
				t.Fatalf("server %d, its disk stalled, reads %.12q… after its client's write of %.12q…", follower, got, acked)
			}
		}
	}
	if m := stalled.Mode(); m != "follower" {
		t.Fatalf("server %d, its disk stalled, is %q, want still a follower", follower, m)
	}
	if l := e.Servers[leader].Log(); strings.Contains(l, fmt.Sprintf(`"closing a follower that went quiet" sid=%d`, follower)) {
		t.Fatalf("leader %d dropped server %d, whose disk stalled but who answered its pings:\n%s", leader, follower, l)
	}

	signalDisk(t, stalled, syscall.SIGTTOU, "the disk stall is over")
	if outcome(t, c, "/kept", []byte("after")) != "ok" {
		t.Fatal("a write after the stall was not taken")
	}
	requireKeptEverywhere(t, e, "after")
}

// A leader whose disk stalls under heavy writes gives up the lead a
// second after its log fills (64 MB waiting for the disk; 4 MB here,
// ZKD_FAULTS=small-log, to spare the test time), not syncLimit after the
// stall began: from the moment it is full its applier waits for the
// disk, and with it every write of the ensemble. Here syncLimit is 20 s,
// and 1 MB writes fill the log at once; before, the writes stopped from
// then until syncLimit.
func TestEnsembleLeaderWhoseLogFillsBehindAStalledDiskStepsAside(t *testing.T) {
	e, leader, follower, c := diskFaultEnsembleWith(t, "disk,small-log", map[string]string{"syncLimit": "100"})
	other := 6 - leader - follower
	lead := e.Servers[leader]
	stallDisk(t, lead)

	// Writes of 1 MB through the follower, until 10 have been taken
	// since another server leads: none waits more than 5 s.
	stalled := time.Now()
	acked, after := "v0", -1
	var longest time.Duration
	for i := 0; after < 10; i++ {
		if time.Since(stalled) > 40*time.Second {
			t.Fatalf("40 s after server %d's disk stalled, %d writes taken since another server leads", leader, max(after, 0))
		}
		if after < 0 && (e.Servers[follower].Mode() == "leader" || e.Servers[other].Mode() == "leader") {
			after = 0
		}
		v, got, took := bigWrite(t, c, i)
		switch got {
		case "ok":
			acked = v
			if after >= 0 {
				after++
			}
		case "closed":
			c = resumeOnceServing(t, e.Addr(follower), c.Session)
		default:
			t.Fatal("a write was refused")
		}
		if took > 5*time.Second {
			t.Fatalf("write %d, ended %v into the stall of leader %d's disk, took %v", i, time.Since(stalled).Round(time.Millisecond), leader, took.Round(time.Millisecond))
		}
		longest = max(longest, took)
	}
	t.Logf("the longest write took %v", longest.Round(time.Millisecond))
	if !strings.Contains(lead.Log(), "txn log has been full") {
		t.Fatalf("server %d, its disk stalled and its log full, did not say why it stopped leading:\n%s", leader, lead.Log())
	}
	endStallAndRequireKept(t, e, leader, acked)
}

// A follower whose disk stalls under heavy writes leaves the leader a
// second after its log fills (4 MB here, as above), and its clients move
// to another server with their sessions. Before, it waited for room in its log without reading
// from the leader: its clients' writes waited, their sessions' touches
// stopped reaching the leader, which expired them (4 s here), and it
// dropped the follower only after syncLimit (20 s here).
func TestEnsembleFollowerWhoseLogFillsBehindAStalledDiskLetsItsClientsGo(t *testing.T) {
	e, leader, follower, c := diskFaultEnsembleWith(t, "disk,small-log", map[string]string{"syncLimit": "100"})
	other := 6 - leader - follower
	c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/mine", ACL: ztree.OpenACL, Flags: wire.ModeEphemeral})
	stalled := e.Servers[follower]
	stallDisk(t, stalled)

	// Writes of 1 MB through the follower, then through the server its
	// client moves to, until 10 are taken there: none waits 3 s.
	began := time.Now()
	acked, moved, after := "v0", false, 0
	var longest time.Duration
	for i := 0; after < 10; i++ {
		if time.Since(began) > 40*time.Second {
			t.Fatalf("40 s after server %d's disk stalled, its client moved: %v, %d writes taken since", follower, moved, after)
		}
		v, got, took := bigWrite(t, c, i)
		switch got {
		case "ok":
			acked = v
			if moved {
				after++
			}
		case "closed":
			if moved {
				t.Fatalf("write %d: server %d closed the connection its client moved to", i, other)
			}
			c, moved = resumeOnceServing(t, e.Addr(other), c.Session), true
		default:
			t.Fatal("a write was refused")
		}
		if took > 3*time.Second {
			t.Fatalf("write %d, ended %v into the stall of follower %d's disk, took %v", i, time.Since(began).Round(time.Millisecond), follower, took.Round(time.Millisecond))
		}
		longest = max(longest, took)
	}
	t.Logf("the longest write took %v", longest.Round(time.Millisecond))
	if !strings.Contains(stalled.Log(), "txn log has been full") {
		t.Fatalf("server %d, its disk stalled and its log full, did not say why it left the leader:\n%s", follower, stalled.Log())
	}
	// The session, moved, kept its ephemeral.
	c.OK(wire.OpExists, &wire.PathWatchRequest{Path: "/mine"})

	endStallAndRequireKept(t, e, follower, acked)
}
