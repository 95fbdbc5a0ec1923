package zkref

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Jars is the classpath of the Debian package, as its documentation gives
// it for ZooKeeperServerMain.
var Jars = []string{
	"/usr/share/java/zookeeper.jar",
	"/usr/share/java/zookeeper-jute.jar",
	"/usr/share/java/slf4j-api.jar",
	slf4jNop,
	"/usr/share/java/netty-all.jar",
	"/usr/share/java/metrics-core.jar",
}

// slf4jNop is the logging binding of Jars: none.
const slf4jNop = "/usr/share/java/slf4j-nop.jar"

// ErrNotInstalled means Java or the zookeeper package is missing.
var ErrNotInstalled = errors.New("zkref: Apache ZooKeeper (Debian package zookeeper) or java is not installed")

// Available reports whether the reference server can be started here.
func Available() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	for _, j := range Jars {
		if _, err := os.Stat(j); err != nil {
			return fmt.Errorf("%w: %v", ErrNotInstalled, err)
		}
	}
	return nil
}

// Options adjust the server. The zero value is ZooKeeper's defaults with
// tickTime 2000 and the AdminServer off.
type Options struct {
	// Config adds or overrides zoo.cfg keys.
	Config map[string]string
	// SystemProperties are passed to the JVM as -Dkey=value (ZooKeeper
	// reads several settings, such as zookeeper.extendedTypesEnabled,
	// only from there).
	SystemProperties map[string]string
	// ClassPath adds jars to the server's class path (snappy-java for
	// snappy snapshots, say).
	ClassPath []string
	// StartTimeout bounds the wait for the server to serve; default 60 s.
	StartTimeout time.Duration
	// MyID, when not zero, starts an ensemble member (QuorumPeerMain)
	// with this id, written to dataDir/myid; Config holds the server.N
	// lines (and clientPortAddress, when not 127.0.0.1). Start returns
	// once the client port opens, without waiting for the member to
	// serve, which takes a quorum: see WaitServing and Mode.
	MyID int64
	// StartProcess, when set, starts the JVM's command instead of
	// cmd.Start (to start it on chosen CPUs, say).
	StartProcess func(cmd *exec.Cmd) error
	// Log, when set, has the server log (INFO and up, through
	// slf4j-simple) into zookeeper.out instead of nowhere, for a test to
	// show when it fails. Benchmarks leave it off: logging costs.
	Log bool
}

// Server is a running reference server.
type Server struct {
	Addr string // host:port of the client port
	Dir  string // its working directory (zoo.cfg, data, log)
	cmd  *exec.Cmd
	done chan error
}

// Start runs a standalone server in dir (created if needed) on a free
// loopback port and waits until it serves requests.
func Start(dir string, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	cfg := map[string]string{
		"tickTime":           "2000",
		"dataDir":            filepath.Join(dir, "data"),
		"clientPort":         fmt.Sprint(port),
		"clientPortAddress":  "127.0.0.1",
		"admin.enableServer": "false",
	}
	for k, v := range opts.Config {
		cfg[k] = v
	}
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(renderConfig(cfg)), 0o644); err != nil {
		return nil, err
	}
	args := []string{}
	for k, v := range opts.SystemProperties {
		args = append(args, "-D"+k+"="+v)
	}
	sort.Strings(args)
	main := "org.apache.zookeeper.server.ZooKeeperServerMain"
	if opts.MyID != 0 {
		main = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
		if err := os.WriteFile(filepath.Join(dir, "data", "myid"), []byte(fmt.Sprintln(opts.MyID)), 0o644); err != nil {
			return nil, err
		}
	}
	jars := append([]string(nil), Jars...)
	if opts.Log {
		for i, j := range jars {
			if j == slf4jNop {
				jars[i] = "/usr/share/java/slf4j-simple.jar"
			}
		}
	}
	args = append(args, "-cp", strings.Join(append(jars, opts.ClassPath...), ":"), main, cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "zookeeper.out"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("java", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := (*exec.Cmd).Start
	if opts.StartProcess != nil {
		start = opts.StartProcess
	}
	if err := start(cmd); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort(cfg["clientPortAddress"], cfg["clientPort"]), Dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logFile.Close() }()
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ready := s.serving
	if opts.MyID != 0 {
		ready = s.listening
	}
	if err := s.waitFor(ready, timeout); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// WaitServing waits until the server takes requests: for an ensemble
// member, until it has a quorum and has synced.
func (s *Server) WaitServing(timeout time.Duration) error { return s.waitFor(s.serving, timeout) }

// Mode is what srvr says the server is (standalone, leader, follower,
// observer), or "" while it does not serve.
func (s *Server) Mode() string {
	out := s.srvr()
	_, rest, ok := bytes.Cut(out, []byte("Mode: "))
	if !ok {
		return ""
	}
	mode, _, _ := bytes.Cut(rest, []byte("\n"))
	return string(bytes.TrimSpace(mode))
}

func (s *Server) listening() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *Server) waitFor(ready func() bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if exited, err := s.Exited(); exited {
			return fmt.Errorf("zkref: server exited during start-up (%v); see %s", err, filepath.Join(s.Dir, "zookeeper.out"))
		}
		if ready() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("zkref: server on %s not ready within %v; see %s", s.Addr, timeout, filepath.Join(s.Dir, "zookeeper.out"))
}

// serving asks the four-letter word srvr (whitelisted by default): the port
// opens before the server takes requests, and until then srvr says it is not
// serving.
func (s *Server) serving() bool { return bytes.Contains(s.srvr(), []byte("Mode: ")) }

func (s *Server) srvr() []byte {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return nil
	}
	out, _ := io.ReadAll(c)
	return out
}

// Exited says whether the server's process has ended, and how (the
// error of its wait: an exit status or a signal).
func (s *Server) Exited() (bool, error) {
	select {
	case err := <-s.done:
		s.done <- err
		return true, err
	default:
		return false, nil
	}
}

// PID is the server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server (SIGKILL) and waits for it to exit. Calling it
// again returns at once.
func (s *Server) Stop() error {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	select {
	case err := <-s.done:
		s.done <- err // for the next Stop
	case <-time.After(30 * time.Second):
		return errors.New("zkref: server did not exit")
	}
	return nil
}

func renderConfig(cfg map[string]string) string {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, cfg[k])
	}
	return b.String()
}

// FreePort returns a loopback port nobody is using now, and that no
// other process asking here is given while this one runs (see
// ReservePorts).
func FreePort() (int, error) {
	base, err := ReservePorts(1, 1)
	return base, err
}

// RenderConfig renders zoo.cfg lines, keys sorted.
func RenderConfig(cfg map[string]string) string { return renderConfig(cfg) }

// freePort is FreePort.
func freePort() (int, error) { return FreePort() }
