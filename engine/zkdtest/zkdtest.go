// Package zkdtest runs the real zkd binary for tests: it builds cmd/zkd
// once per test binary, starts it on a free loopback port with a zoo.cfg
// of the test's choosing, and stops, kills or restarts it.
package zkdtest

import (
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

// Binary builds cmd/zkd (once) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zkdtest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "zkd")
		out, err := exec.Command("go", "build", "-o", binPath, "zkd/cmd/zkd").CombinedOutput()
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
		"clientPort": strconv.Itoa(port), "clientPortAddress": "127.0.0.1"}
	for k, v := range cfg {
		all[k] = v
	}
	s := &Server{t: t, Dir: dir, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), Cfg: all, Prefix: opts.Prefix}
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

// Restart starts the process again on the same directory and port.
func (s *Server) Restart() {
	s.t.Helper()
	log, err := os.OpenFile(filepath.Join(s.Dir, "zkd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.log = log
	args := append(append([]string(nil), s.Prefix...), Binary(s.t), filepath.Join(s.Dir, "zoo.cfg"))
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.Env = append(os.Environ(), "ZKD_LOG_LEVEL=debug")
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
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("zkd exited at start-up (%v):\n%s", s.err, s.Log())
		default:
		}
		if out, err := FourLetterWord(s.Addr, "srvr"); err == nil && strings.Contains(out, "Mode:") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("zkd did not start serving within 30 s:\n%s", s.Log())
}

// Pid is the process id of the running server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM)
}

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
