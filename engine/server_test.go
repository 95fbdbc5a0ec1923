package engine_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// Acknowledged writes survive SIGKILL of the server process: each write's
// reply comes only after its txn is fsynced.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	for round := 0; round < 3; round++ {
		var stop atomic.Bool
		var wg sync.WaitGroup
		var writers []*pipelined
		for w := 0; w < 4; w++ {
			p := dialPipelined(t, srv.Addr)
			writers = append(writers, p)
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; !stop.Load() && i < 20000; i++ {
					path := fmt.Sprintf("/k-%d-%d-%d", round, w, i)
					if p.c.Send(wire.OpCreate, &wire.CreateRequest{Path: path, Data: []byte(path), ACL: openACL}, 0) != nil {
						return
					}
					for p.c.Outstanding() > 32 && !stop.Load() {
						time.Sleep(100 * time.Microsecond)
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(150+100*round) * time.Millisecond)
		srv.Kill()
		stop.Store(true)
		wg.Wait()
		// Every create answered before the kill is acknowledged.
		var acked []string
		for _, p := range writers {
			p.mu.Lock()
			for _, a := range p.seen {
				if !a.event && a.op == wire.OpCreate && a.err == wire.ErrOK {
					acked = append(acked, a.path)
				}
			}
			p.mu.Unlock()
		}
		if len(acked) == 0 {
			t.Fatalf("round %d: nothing was acknowledged before the kill", round)
		}
		srv.Restart()
		c := connect(t, srv.Addr)
		for _, path := range acked {
			d, _, err := c.Get(path)
			if err != nil || string(d) != path {
				t.Fatalf("round %d: %s was acknowledged before SIGKILL; after restart: %q %v", round, path, d, err)
			}
		}
		t.Logf("round %d: all %d acknowledged creates present after SIGKILL and restart", round, len(acked))
	}
}

// runZkd runs the zkd binary with args and returns its output.
func runZkd(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(zkdtest.Binary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("zkd %v did not finish in 30 s:\n%s", args, out.String())
		return "", nil
	}
}

func TestFourLetterWords(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"4lw.commands.whitelist": "*"})
	c := connect(t, srv.Addr)
	check(c.Create("/e", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)))(t)
	_, _, _, err := c.GetW("/e")
	if err != nil {
		t.Fatal(err)
	}
	word := func(w string) string {
		out, err := zkdtest.FourLetterWord(srv.Addr, w)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		return out
	}
	if got := word("ruok"); got != "imok" {
		t.Fatalf("ruok: %q", got)
	}
	srvr := word("srvr")
	for _, want := range []string{"Zookeeper version: 3.8.0", "Mode: standalone\n", "Node count: 6\n", "Connections: 2\n"} {
		if !strings.Contains(srvr, want) {
			t.Fatalf("srvr lacks %q:\n%s", want, srvr)
		}
	}
	if st := word("stat"); !strings.Contains(st, "Clients:\n /127.0.0.1:") || !strings.Contains(st, "Mode: standalone") {
		t.Fatalf("stat:\n%s", st)
	}
	mntr := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(word("mntr")), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("mntr line without a tab: %q", line)
		}
		mntr[k] = v
	}
	for k, want := range map[string]string{"zk_server_state": "standalone", "zk_znode_count": "6",
		"zk_ephemerals_count": "1", "zk_watch_count": "1", "zk_global_sessions": "1"} {
		if mntr[k] != want {
			t.Errorf("mntr %s = %q, want %q", k, mntr[k], want)
		}
	}
	if wchs := word("wchs"); wchs != "1 connections watching 1 paths\nTotal watches:1\n" {
		t.Fatalf("wchs: %q", wchs)
	}
	if wchp := word("wchp"); !strings.HasPrefix(wchp, "/e\n\t0x") {
		t.Fatalf("wchp: %q", wchp)
	}
	if conf := word("conf"); !strings.Contains(conf, fmt.Sprintf("clientPort=%d\n", srv.Port)) ||
		!strings.Contains(conf, "maxSessionTimeout=40000\n") {
		t.Fatalf("conf:\n%s", conf)
	}
	if dump := word("dump"); !strings.Contains(dump, fmt.Sprintf("0x%x:\n\t/e\n", c.SessionID())) {
		t.Fatalf("dump does not list the ephemeral:\n%s", dump)
	}
	if isro := word("isro"); isro != "rw" {
		t.Fatalf("isro: %q", isro)
	}
	for _, w := range []string{"cons", "crst", "srst", "envi", "wchc", "dirs", "gtmk"} {
		if out := word(w); out == "" {
			t.Errorf("%s answered nothing", w)
		}
	}
	// hash lists a digest every 128 txns, as ZooKeeper does: none yet.
	if out := word("hash"); out != "" {
		t.Errorf("hash after %d txns: %q", 2, out)
	}
}

// ZooKeeper's default whitelist is srvr alone; other words get its refusal.
func TestFourLetterWordWhitelist(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	out, err := zkdtest.FourLetterWord(srv.Addr, "ruok")
	if err != nil || out != "ruok is not executed because it is not in the whitelist.\n" {
		t.Fatalf("ruok with the default whitelist: %q %v", out, err)
	}
	if out, _ := zkdtest.FourLetterWord(srv.Addr, "srvr"); !strings.Contains(out, "Mode: standalone") {
		t.Fatalf("srvr: %q", out)
	}
}

// Bad input closes only the offending connection; other clients go on.
func TestBadInputHurtsNoOne(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"jute.maxbuffer": "10000"})
	good := connect(t, srv.Addr)
	check(good.Create("/ok", []byte("x"), 0, zk.WorldACL(zk.PermAll)))(t)

	closed := func(name string, payload []byte) {
		t.Helper()
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write(payload)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(nc); err != nil {
			t.Fatalf("%s: the server did not close the connection: %v", name, err)
		}
	}
	frame := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	closed("garbage", []byte("\x00\x00\x00\x05hello world, not a handshake"))
	closed("oversized frame", append(frame(10001), make([]byte, 64)...))
	closed("negative length", frame(0xfffffff0))
	// A truncated frame followed by a hang-up.
	nc, _ := net.Dial("tcp", srv.Addr)
	nc.Write(append(frame(44), 1, 2, 3))
	nc.Close()

	// A request frame in place of the handshake.
	req := zkreftest.NewSession()
	body := (&wire.RequestHeader{Xid: 1, Type: wire.OpGetData}).Append(nil)
	body = (&wire.GetDataRequest{Path: "/ok"}).Append(body)
	closed("request before handshake", wire.AppendFrame(nil, body))

	// A request over jute.maxbuffer from a live session closes that
	// session's connection only.
	c := zkreftest.Dial(t, srv.Addr, req)
	big := (&wire.RequestHeader{Xid: 1, Type: wire.OpSetData}).Append(nil)
	big = (&wire.SetDataRequest{Path: "/ok", Data: make([]byte, 20000), Version: -1}).Append(big)
	c.Write(big)
	if _, err := c.ReadErr(); err == nil {
		t.Fatal("a frame over jute.maxbuffer did not close the connection")
	}
	if d, _ := check2(good.Get("/ok"))(t); !bytes.Equal(d, []byte("x")) {
		t.Fatalf("the well-behaved client now reads %q", d)
	}
	if ok, _, _ := good.Exists("/ok"); !ok {
		t.Fatal("data lost")
	}
	if exited, err := srv.Exited(); exited {
		t.Fatalf("the server died: %v", err)
	}
}

// maxClientCnxns: connections past the limit from one address are closed
// with ZooKeeper's log line; those within it keep working.
func TestMaxClientCnxnsPerIP(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"maxClientCnxns": "5"})
	var conns []*zkreftest.Client
	for i := 0; i < 5; i++ {
		conns = append(conns, zkreftest.Dial(t, srv.Addr, zkreftest.NewSession()))
	}
	for i := 0; i < 10; i++ {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := nc.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Fatalf("connection %d past the limit was served", 6+i)
		}
		nc.Close()
	}
	for _, c := range conns {
		c.OK(wire.OpExists, &wire.ExistsRequest{Path: "/"})
	}
	if !strings.Contains(srv.Log(), "Too many connections from /127.0.0.1 - max is 5") {
		t.Fatalf("no log line names the limit:\n%s", srv.Log())
	}
}

func TestStatusAndCleanShutdown(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	out, err := runZkd(t, "status", filepath.Join(srv.Dir, "zoo.cfg"))
	if err != nil || !strings.Contains(out, "Mode: standalone\n") {
		t.Fatalf("zkd status: %v\n%s", err, out)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, srv.Log())
	}
	if !strings.Contains(srv.Log(), "shutting down") {
		t.Fatalf("no shutdown line:\n%s", srv.Log())
	}
	out, err = runZkd(t, "status", filepath.Join(srv.Dir, "zoo.cfg"))
	if err == nil || !strings.Contains(out, "probably not running") {
		t.Fatalf("zkd status on a stopped server: %v\n%s", err, out)
	}
}

// A client that shuts down its side of the connection once it has sent a
// four-letter word still gets the answer, as from ZooKeeper: Java's
// FourLetterWordMain (which zkServer.sh status runs) and nc -N do that.
func TestFourLetterWordAfterAHalfClose(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	for i := 0; i < 30; i++ {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write([]byte("srvr")); err != nil {
			t.Fatal(err)
		}
		nc.(*net.TCPConn).CloseWrite()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(nc)
		nc.Close()
		if err != nil || !strings.Contains(string(out), "Mode: standalone\n") {
			t.Fatalf("try %d: srvr after a half-close answered %q (%v)", i, out, err)
		}
	}
}

func TestBadConfigNamesFileLineAndKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zoo.cfg")
	os.WriteFile(cfg, []byte("dataDir="+dir+"\nclientPort=2999\n# comment\ntickTime=often\n"), 0o644)
	out, err := runZkd(t, cfg)
	if err == nil || !strings.Contains(out, cfg+":4: tickTime: \"often\" is not an integer") {
		t.Fatalf("zkd with a bad tickTime: %v\n%s", err, out)
	}
}

// Problems found only when the server starts name the file, line and key
// too; the client port is bound before the data directory is recovered,
// so a port clash fails at once and leaves the data directory alone.
func TestStartupConfigErrorsNameFileLineAndKey(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	notDir := filepath.Join(dir, "a-file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	data := filepath.Join(dir, "data")
	for _, c := range []struct{ text, want string }{
		{fmt.Sprintf("dataDir=%s\nclientPortAddress=127.0.0.1\nclientPort=%d\n", data, port),
			":3: clientPort: cannot listen on 127.0.0.1:%d: listen tcp 127.0.0.1:%[1]d: bind: address already in use"},
		{fmt.Sprintf("dataDir=%s\nclientPort=0\nclientPortAddress=no-such-host.invalid\n", data),
			":3: clientPortAddress: cannot listen on no-such-host.invalid:0"},
		{fmt.Sprintf("# the data\ndataDir=%s\nclientPort=0\n", notDir),
			":2: dataDir: " + notDir + " is not a directory"},
	} {
		cfg := filepath.Join(dir, "zoo.cfg")
		os.WriteFile(cfg, []byte(c.text), 0o644)
		want := c.want
		if strings.Contains(want, "%") {
			want = fmt.Sprintf(want, port)
		}
		out, err := runZkd(t, cfg)
		if err == nil || !strings.Contains(out, cfg+want) {
			t.Errorf("zkd with\n%s: %v\n%s\nwant %q", c.text, err, out, cfg+want)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("zkd with\n%s\nmade the data directory before failing", c.text)
		}
	}
}

// globalOutstandingLimit throttles reading; nothing is dropped.
func TestGlobalOutstandingLimitThrottlesWithoutDropping(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"globalOutstandingLimit": "8"})
	const n = 2000
	var ps []*pipelined
	for i := 0; i < 4; i++ {
		p := dialPipelined(t, srv.Addr)
		ps = append(ps, p)
		for j := 0; j < n; j++ {
			p.send(wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/g-%d-%d", i, j), ACL: openACL}, 0)
		}
	}
	for _, p := range ps {
		for _, a := range p.waitReplies(n) {
			if a.err != wire.ErrOK {
				t.Fatalf("a throttled write failed: %+v", a)
			}
		}
	}
	if !strings.Contains(srv.Log(), "globalOutstandingLimit reached") {
		t.Fatal("no log line names globalOutstandingLimit")
	}
}

// maxCnxns bounds the connections in all, whatever their address.
func TestMaxCnxns(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"maxCnxns": "3"})
	for i := 0; i < 3; i++ {
		zkreftest.Dial(t, srv.Addr, zkreftest.NewSession())
	}
	nc, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a fourth connection was served with maxCnxns=3")
	}
	if !strings.Contains(srv.Log(), "Too many connections - max is 3 (maxCnxns)") {
		t.Fatalf("no log line names maxCnxns:\n%s", srv.Log())
	}
}

// cons reports each connection's request latencies (last, min, mean, max,
// in ms), as ZooKeeper's does, and crst starts them afresh: a session
// that made large writes shows the largest latency the server saw, and
// nothing after the reset.
func TestConnectionLatencies(t *testing.T) {
	srv := zkdtest.Start(t, map[string]string{"4lw.commands.whitelist": "*"})
	c := connect(t, srv.Addr)
	word := func(w string) string {
		out, err := zkdtest.FourLetterWord(srv.Addr, w)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		return out
	}
	word("srst")
	check(c.Create("/big", nil, 0, zk.WorldACL(zk.PermAll)))(t)
	// Forty writes of 512 KB in flight at once: the later ones wait for
	// the earlier ones' log writes, so some take a millisecond or more.
	data := make([]byte, 512<<10)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Set("/big", data, -1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, _, err := c.Get("/big"); err != nil {
		t.Fatal(err)
	}
	mine := regexp.MustCompile(fmt.Sprintf(`sid=0x%x,[^\n]*llat=(\d+),minlat=(\d+),avglat=(\d+),maxlat=(\d+)\)`, c.SessionID()))
	figures := func() (last, min, avg, max int64) {
		cons := word("cons")
		m := mine.FindStringSubmatch(cons)
		if m == nil {
			t.Fatalf("cons has no line for session 0x%x:\n%s", c.SessionID(), cons)
		}
		n := make([]int64, 4)
		for i := range n {
			n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		return n[0], n[1], n[2], n[3]
	}
	last, min, avg, max := figures()
	var srvMin, srvMax int64
	var srvAvg float64
	if _, err := fmt.Sscanf(regexp.MustCompile(`Latency min/avg/max: \S+`).FindString(word("srvr")), "Latency min/avg/max: %d/%g/%d", &srvMin, &srvAvg, &srvMax); err != nil {
		t.Fatal(err)
	}
	if max < 1 || max != srvMax || min > avg || avg > max || last != 0 || min != 0 {
		t.Fatalf("cons: llat=%d minlat=%d avglat=%d maxlat=%d; srvr's max is %d (the read last answered at once: min and llat 0)", last, min, avg, max, srvMax)
	}
	word("crst")
	if last, min, avg, max := figures(); last|min|avg|max != 0 {
		t.Fatalf("after crst, cons: llat=%d minlat=%d avglat=%d maxlat=%d, want 0s", last, min, avg, max)
	}
}
