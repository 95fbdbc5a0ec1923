// Package zkdtest runs the real zkd binary for tests: it builds cmd/zkd
// once per test binary, starts it on a free loopback port with a zoo.cfg
// of the test's choosing, and stops, kills or restarts it.
package zkdtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/engine"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/zkd (once) and returns its path. With ZKDTEST_RACE=1
// in the environment the server is built with the race detector.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zkdtest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "zkd")
		// ZKDTEST_RACE=1 builds the server with the race detector.
		args := []string{"build", "-o", binPath}
		if os.Getenv("ZKDTEST_RACE") == "1" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "zkd/cmd/zkd")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build zkd/cmd/zkd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Server is a running zkd process.
type Server struct {
	t    testing.TB
	Dir  string // holds zoo.cfg, data/ and zkd.log
	Addr string // 127.0.0.1:port
	Port int
	Cfg  map[string]string

	// Prefix runs the binary under another command (prlimit, say).
	Prefix []string
	// Env is added to the process's environment.
	Env []string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	log    *os.File
}

// Options change how Start runs the binary.
type Options struct {
	// Prefix is a command line the zkd command is appended to, as in
	// prlimit --nofile=64:64 --.
	Prefix []string
	// Env is added to the process's environment.
	Env []string
}

// Start runs zkd on a fresh directory with tickTime 2000, a free port and
// cfg on top. It returns once the server answers srvr, and stops it when
// the test ends.
func Start(t testing.TB, cfg map[string]string) *Server {
	t.Helper()
	return StartWith(t, cfg, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, cfg map[string]string, opts Options) *Server {
	t.Helper()
	port, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	all := map[string]string{"tickTime": "2000", "dataDir": filepath.Join(dir, "data"),
		"clientPort": strconv.Itoa(port), "clientPortAddress": "127.0.0.1",
		// Every test server would otherwise try port 8080; a test of the
		// AdminServer turns it on with a port of its own.
		"admin.enableServer": "false"}
	for k, v := range cfg {
		all[k] = v
	}
	s := &Server{t: t, Dir: dir, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), Cfg: all, Prefix: opts.Prefix, Env: opts.Env}
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(zkref.RenderConfig(all)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	t.Cleanup(func() {
		// Every test ends with a clean SIGTERM shutdown, clients still
		// connected or not.
		if err := s.Stop(); err != nil {
			t.Errorf("zkd did not shut down cleanly on SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("zkd log:\n%s", s.Log())
		}
	})
	return s
}

// OnDir is a zkd server, not started, for a directory that already holds
// its zoo.cfg (an Apache ZooKeeper server's, say, whose place it takes),
// serving clients at addr. Launch starts it; it is stopped (SIGTERM)
// when the test ends.
func OnDir(t testing.TB, dir, addr string) *Server {
	s := &Server{t: t, Dir: dir, Addr: addr}
	t.Cleanup(func() {
		if s.cmd == nil {
			return
		}
		if err := s.Stop(); err != nil {
			t.Errorf("zkd on %s did not shut down cleanly on SIGTERM: %v", dir, err)
		}
		if t.Failed() {
			t.Logf("zkd on %s log:\n%s", dir, s.Log())
		}
	})
	return s
}

// Restart starts the process again on the same directory and port, and
// returns once it serves.
func (s *Server) Restart() {
	s.t.Helper()
	s.Launch()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s.Serving() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("zkd did not start serving within 30 s:\n%s", s.Log())
}

// Serving reports whether the server answers srvr with its mode; it fails
// the test if the process has exited.
func (s *Server) Serving() bool {
	s.t.Helper()
	select {
	case <-s.exited:
		s.t.Fatalf("zkd exited (%v):\n%s", s.err, s.Log())
	default:
	}
	out, err := FourLetterWord(s.Addr, "srvr")
	return err == nil && strings.Contains(out, "Mode:")
}

// Mode is the Mode srvr reports ("leader", "follower", "standalone"), or
// "" while the server does not serve.
func (s *Server) Mode() string {
	out, err := FourLetterWord(s.Addr, "srvr")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(l, "Mode: "); ok {
			return m
		}
	}
	return ""
}

// Launch starts the process again on the same directory and port, and
// returns at once.
func (s *Server) Launch() {
	s.t.Helper()
	log, err := os.OpenFile(filepath.Join(s.Dir, "zkd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.log = log
	args := append(append([]string(nil), s.Prefix...), Binary(s.t), filepath.Join(s.Dir, "zoo.cfg"))
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.Env = append(append(os.Environ(), "ZKD_LOG_LEVEL=debug"), s.Env...)
	// If the test binary dies (a timeout panic, say), the server dies too
	// instead of holding its port.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		s.err = cmd.Wait()
		log.Close()
		close(done)
	}(s.cmd, s.exited)
}

// Pid is the process id of the running server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM)
}

// Pause stops the process (SIGSTOP) without ending it, and returns once
// every thread of it has stopped (at most 2 s; a signal is delivered
// after kill returns, later on a busy machine); Resume (SIGCONT) lets it
// go on.
func (s *Server) Pause() {
	s.cmd.Process.Signal(syscall.SIGSTOP)
	tasks := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		ids, err := os.ReadDir(tasks)
		if err != nil {
			return
		}
		stopped := true
		for _, id := range ids {
			b, err := os.ReadFile(filepath.Join(tasks, id.Name(), "stat"))
			// The state follows the command name in parentheses.
			if i := bytes.LastIndexByte(b, ')'); err == nil && i >= 0 && i+2 < len(b) && b[i+2] != 'T' && b[i+2] != 't' {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
	}
}

// Resume continues a paused process.
func (s *Server) Resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill sends SIGKILL and waits for the process to die.
func (s *Server) Kill() {
	s.signal(syscall.SIGKILL)
}

// signal sends sig and waits for the exit, returning how the process
// ended; nil when it had ended before.
func (s *Server) signal(sig syscall.Signal) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("zkd did not exit within 30 s of %v", sig)
	}
	return s.err
}

// Exited reports whether the process has ended, and how.
func (s *Server) Exited() (bool, error) {
	select {
	case <-s.exited:
		return true, s.err
	default:
		return false, nil
	}
}

// Log is everything the process has logged.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "zkd.log"))
	return string(b)
}

// FourLetterWord sends a four-letter word and returns the whole answer.
func FourLetterWord(addr, word string) (string, error) { return engine.FourLetterWord(addr, word) }

// Ensemble is an ensemble on loopback: server N binds 127.0.0.N, each on
// the same client, quorum and election ports, so that faults can cut the
// links between two of them. Servers holds the members zkd runs; the
// others (Apache ZooKeeper, say) the test starts from MemberConfig.
type Ensemble struct {
	N int
	// Observers are how many of the N are observers: the last ones.
	Observers                            int
	ClientPort, QuorumPort, ElectionPort int
	Servers                              map[int64]*Server
	// Member holds keys for one member's zoo.cfg only, over the rest.
	Member map[int64]map[string]string
	// Env is added to the environment of every member Start runs.
	Env []string
	// DynamicConfigFile, when set, is where the members' zoo.cfg say the
	// server.N lines are (dynamicConfigFile), instead of holding them;
	// WriteDynamicConfig writes it.
	DynamicConfigFile string
	cfg               map[string]string
}

// StartEnsemble starts n zkd servers as one ensemble (tickTime 200 ms,
// initLimit 20 and syncLimit 10 ticks, every four-letter word allowed,
// cfg on top), and returns once every one serves.
func StartEnsemble(t testing.TB, n int, cfg map[string]string) *Ensemble {
	t.Helper()
	return StartEnsembleObservers(t, n, 0, cfg)
}

// StartEnsembleObservers is StartEnsemble with the last observers of the n
// servers observers.
func StartEnsembleObservers(t testing.TB, n, observers int, cfg map[string]string) *Ensemble {
	t.Helper()
	e := NewEnsemble(t, n, cfg)
	e.Observers = observers
	var ids []int64
	for id := int64(1); id <= int64(n); id++ {
		ids = append(ids, id)
	}
	e.Start(t, ids...)
	e.WaitServing(t, 30*time.Second)
	return e
}

// NewEnsemble picks the ports of an n-server ensemble; Start runs members.
func NewEnsemble(t testing.TB, n int, cfg map[string]string) *Ensemble {
	t.Helper()
	ports := map[int]bool{}
	for len(ports) < 3 {
		p, err := zkref.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[p] = true
	}
	var ps []int
	for p := range ports {
		ps = append(ps, p)
	}
	return &Ensemble{N: n, ClientPort: ps[0], QuorumPort: ps[1], ElectionPort: ps[2], Servers: map[int64]*Server{}, cfg: cfg}
}

// MemberConfig is member id's zoo.cfg, without dataDir.
func (e *Ensemble) MemberConfig(id int64) map[string]string {
	all := map[string]string{"tickTime": "200", "initLimit": "20", "syncLimit": "10",
		"clientPort": strconv.Itoa(e.ClientPort), "clientPortAddress": fmt.Sprintf("127.0.0.%d", id),
		"4lw.commands.whitelist": "*", "admin.enableServer": "false"}
	if e.DynamicConfigFile != "" {
		all["dynamicConfigFile"] = e.DynamicConfigFile
	} else {
		for k, v := range e.serverLines() {
			all[k] = v
		}
	}
	for k, v := range e.cfg {
		all[k] = v
	}
	for k, v := range e.Member[id] {
		all[k] = v
	}
	return all
}

func (e *Ensemble) serverLines() map[string]string {
	lines := map[string]string{}
	for m := 1; m <= e.N; m++ {
		lines[fmt.Sprintf("server.%d", m)] = fmt.Sprintf("127.0.0.%d:%d:%d", m, e.QuorumPort, e.ElectionPort)
		if m > e.N-e.Observers {
			lines[fmt.Sprintf("server.%d", m)] += ":observer"
		}
	}
	return lines
}

// WriteDynamicConfig writes the server.N lines, as ZooKeeper writes them
// in a dynamic config file, to e.DynamicConfigFile.
func (e *Ensemble) WriteDynamicConfig(t testing.TB) {
	t.Helper()
	var b strings.Builder
	for m := 1; m <= e.N; m++ {
		kind := "participant"
		if m > e.N-e.Observers {
			kind = "observer"
		}
		fmt.Fprintf(&b, "server.%d=127.0.0.%d:%d:%d:%s;127.0.0.%d:%d\n", m, m, e.QuorumPort, e.ElectionPort, kind, m, e.ClientPort)
	}
	if err := os.WriteFile(e.DynamicConfigFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Addr is member id's client address.
func (e *Ensemble) Addr(id int64) string { return fmt.Sprintf("127.0.0.%d:%d", id, e.ClientPort) }

// Start runs members ids as zkd processes, without waiting for them to
// serve; each is stopped (SIGTERM) when the test ends.
func (e *Ensemble) Start(t testing.TB, ids ...int64) {
	t.Helper()
	root := t.TempDir()
	for _, id := range ids {
		dir := filepath.Join(root, strconv.FormatInt(id, 10))
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(fmt.Sprintf("%d\n", id)), 0o644); err != nil {
			t.Fatal(err)
		}
		all := e.MemberConfig(id)
		all["dataDir"] = data
		s := &Server{t: t, Dir: dir, Port: e.ClientPort, Addr: e.Addr(id), Cfg: all, Env: e.Env}
		if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(zkref.RenderConfig(all)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.Servers[id] = s
		s.Launch()
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Errorf("zkd server %d did not shut down cleanly on SIGTERM: %v", id, err)
			}
			if t.Failed() {
				t.Logf("zkd server %d log:\n%s", id, s.Log())
			}
		})
	}
}

// WaitServing waits until every running server serves.
func (e *Ensemble) WaitServing(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for id, s := range e.Servers {
		if gone, _ := s.Exited(); gone {
			continue
		}
		for !s.Serving() {
			if time.Now().After(deadline) {
				t.Fatalf("server %d does not serve after %v:\n%s", id, d, s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Leader returns the id of the server that says it leads, or 0.
func (e *Ensemble) Leader() int64 {
	for id, s := range e.Servers {
		if gone, _ := s.Exited(); !gone && s.Mode() == "leader" {
			return id
		}
	}
	return 0
}

// Follower is the lowest-numbered member that serves as a follower. A
// member may be slow to answer on a busy machine: it asks again for up
// to 10 s, then fails the test.
func (e *Ensemble) Follower() int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for id := int64(1); id <= int64(e.N); id++ {
			if s := e.Servers[id]; s != nil {
				if gone, _ := s.Exited(); !gone && s.Mode() == "follower" {
					return id
				}
			}
		}
		if time.Now().After(deadline) {
			s := e.Servers[1]
			s.t.Helper()
			s.t.Fatalf("no member of the %d-server ensemble serves as a follower", e.N)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addrs are the client addresses of every member.
func (e *Ensemble) Addrs() []string {
	var out []string
	for id := int64(1); id <= int64(e.N); id++ {
		out = append(out, e.Addr(id))
	}
	return out
}
