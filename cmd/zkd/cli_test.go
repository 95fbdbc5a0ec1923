package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/go-zookeeper/zk"

	"zkd/engine"
	"zkd/engine/zkdtest"
)

// zkd version prints the version srvr reports; a mistyped command or flag
// says what was wrong instead of printing the usage text or trying to read
// a configuration file of that name.
func TestVersionAndBadArguments(t *testing.T) {
	bin := zkdtest.Binary(t)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "zkd "+engine.Version) {
			t.Fatalf("zkd %s: %v\n%s", arg, err, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, "unknown flag -x"},
		{[]string{"stauts"}, `"stauts" is neither a command (status, cli, snapshot, txnlog, purge, version, help) nor a configuration file`},
		{[]string{"a.cfg", "b.cfg"}, "too many arguments (a.cfg b.cfg)"},
		{[]string{"missing/zoo.cfg"}, "open missing/zoo.cfg: no such file or directory"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("zkd %v: exit %v, want 2", c.args, err)
		}
		if !strings.Contains(string(out), c.want) || strings.Contains(string(out), "usage") {
			t.Errorf("zkd %v said %q, want it to say %q", c.args, out, c.want)
		}
	}
}

// On a terminal zkd cli edits lines: tab completes a command and a znode
// path (filling in a single match, listing several), the up arrow brings
// back the last line, and a watch that fires while the prompt waits is
// printed above it. Driven through a pseudo-terminal, as a person would.
func TestCliOnATerminal(t *testing.T) {
	z := zkdtest.Start(t, nil)
	cmd := exec.Command(zkdtest.Binary(t), "cli", "-server", z.Addr)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// waitFor waits for the n-th time s is on the screen.
	waitFor := func(s string, n int) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			got := strings.Count(screen.String(), s)
			all := screen.String()
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q is on the screen %d times, want %d; the screen:\n%q", s, got, n, all)
			}
		}
	}
	typeIn := func(s string) {
		t.Helper()
		if _, err := tty.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	prompt := func(n int) string { return fmt.Sprintf("[zk: %s(CONNECTED) %d] ", z.Addr, n) }

	waitFor(prompt(0), 1)
	typeIn("create /tty hello\r")
	waitFor("Created /tty", 1)
	waitFor(prompt(1), 1)
	typeIn("get /tt\t") // completes to "get /tty "
	waitFor("get /tty ", 1)
	typeIn("\r")
	waitFor("hello\r\n", 1)
	waitFor(prompt(2), 1)
	typeIn("\x1b[A\r") // the last line again
	waitFor("hello\r\n", 2)
	waitFor(prompt(3), 1)
	typeIn("create /tty/a1 x\r")
	waitFor(prompt(4), 1)
	typeIn("create /tty/a2 x\r")
	waitFor(prompt(5), 1)
	typeIn("ls /tty/a\t") // two matches that agree no further: listed
	waitFor("/tty/a1  /tty/a2", 1)
	typeIn("\x15") // ^U: the line erased
	typeIn("hist\t\r")
	waitFor("2 - get /tty ", 1)
	waitFor(prompt(6), 1)

	// A watch fired by another client while the prompt waits.
	typeIn("get -w /tty\r")
	waitFor("hello\r\n", 3)
	waitFor(prompt(7), 1)
	other, _, err := zk.Connect([]string{z.Addr}, 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Set("/tty", []byte("changed"), -1); err != nil {
		t.Fatal(err)
	}
	waitFor("WatchedEvent state:SyncConnected type:NodeDataChanged path:/tty", 1)
	waitFor(prompt(7), 2) // drawn again below the event

	typeIn("quit\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("zkd cli after quit: %v", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("zkd cli did not exit after quit")
	}
}

// Every subcommand answers --help with its usage and exit 0, at either
// level (zkd snapshot --help, zkd snapshot dump --help); a dump of a file
// that is not there says so and nothing else; dump --json is json.
func TestSubcommandsHelpAndErrors(t *testing.T) {
	bin := zkdtest.Binary(t)
	for _, args := range [][]string{
		{"status", "--help"}, {"snapshot", "--help"}, {"snapshot", "dump", "--help"}, {"snapshot", "json", "-h"},
		{"txnlog", "--help"}, {"txnlog", "dump", "--help"}, {"purge", "--help"}, {"cli", "--help"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !(strings.HasPrefix(string(out), "usage: zkd "+args[0]) || strings.HasPrefix(string(out), "ZooKeeper -server")) {
			t.Errorf("zkd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(bin, "snapshot", "dump", "/nonexistent/snapshot.0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != "zkd snapshot: open /nonexistent/snapshot.0: no such file or directory\n" {
		t.Errorf("a dump of a missing file: %v\n%s", err, out)
	}
	z := zkdtest.Start(t, nil)
	snap := z.Dir + "/data/version-2/snapshot.0"
	asJSON, err := exec.Command(bin, "snapshot", "json", snap).Output()
	if err != nil {
		t.Fatal(err)
	}
	flagged, err := exec.Command(bin, "snapshot", "dump", "--json", snap).Output()
	if err != nil || !strings.HasPrefix(string(flagged), "[1,0,") {
		t.Fatalf("dump --json: %v\n%s", err, flagged)
	}
	// The header holds the time of the dump; the rest must match.
	_, a, _ := strings.Cut(string(asJSON), "}")
	_, b, _ := strings.Cut(string(flagged), "}")
	if a != b {
		t.Errorf("dump --json prints\n%s\njson prints\n%s", flagged, asJSON)
	}
}
