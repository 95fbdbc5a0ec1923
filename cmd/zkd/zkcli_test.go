package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
)

const zkCliSh = "/usr/share/zookeeper/bin/zkCli.sh"

var (
	// zkCli.sh's own noise: its logger's complaints, and the connect
	// event its event thread prints, which may land inside a line.
	zkCliNoise = regexp.MustCompile(`(?m)^SLF4J:.*$|WATCHER::|WatchedEvent [^\n]*|^Connecting to .*$`)
	blankRuns  = regexp.MustCompile(`\n{2,}`)
	// What differs between two servers given the same commands: times
	// and session ids.
	perRun = regexp.MustCompile(`(?m)^(ctime|mtime|ephemeralOwner) = .*$`)
)

func normalized(s string) string {
	s = blankRuns.ReplaceAllString(zkCliNoise.ReplaceAllString(s, ""), "\n")
	return strings.TrimSpace(perRun.ReplaceAllString(s, "$1 = <varies>")) + "\n"
}

// zkd cli answers each command as zkCli.sh does: two zkd servers get the
// same commands, one through zkCli.sh and one through zkd cli, each
// command a batch run of its own; the outputs match (times and session
// ids aside) and so do the exit codes.
func TestCliIsZkCli(t *testing.T) {
	zkreftest.Need(t)
	if _, err := os.Stat(zkCliSh); err != nil {
		t.Fatalf("zkCli.sh: %v (make test installs the zookeeper package)", err)
	}
	// Each batch run leaves its session open, as zkCli.sh does; the
	// sessions must outlive the test, or an expiry would take a zxid on
	// one server and not the other: a long tick allows long sessions.
	long := map[string]string{"tickTime": "30000"}
	viaZkCli := zkdtest.Start(t, long)
	viaCli := zkdtest.Start(t, long)
	const timeout = "600000"
	for _, c := range []string{
		"create /cli hello",
		"create -s /cli/seq- s",
		"create -e /cli/eph e",
		"create -c /cli/box",
		"create /cli/box/in x",
		"create /cli/acl a world:anyone:cdr,ip:127.0.0.1:cdrwa",
		"create /cli x",
		"get /cli",
		"get -s /cli",
		"get /cli/missing",
		"stat /cli",
		"stat /nope",
		"ls /",
		"ls /cli",
		"ls -s /cli",
		"ls -R /cli",
		"set /cli world",
		"set -v 99 /cli stale",
		"set -s -v 1 /cli again",
		"getAcl /cli",
		"getAcl /cli/acl",
		"setAcl /cli world:anyone:cdrwa",
		"delete /cli",
		"delete /cli/nonexist",
		"delete -v 7 /cli/seq-0000000000",
		"delete /cli/seq-0000000000",
		"sync /cli",
		"getAllChildrenNumber /cli",
		"deleteall /cli",
		"ls /",
		"deleteall /nope",
		"bogus",
	} {
		args := strings.Fields(c)
		cmd := exec.Command(zkCliSh, append([]string{"-server", viaZkCli.Addr, "-timeout", timeout}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("zkCli.sh %s: %v", c, err)
			}
			code = ee.ExitCode()
		}
		// zkd cli as a process of its own, as scripts run it: a
		// single command leaves its session open, as zkCli.sh does.
		zc := exec.Command(zkdtest.Binary(t), append([]string{"cli", "-server", viaCli.Addr, "-timeout", timeout}, args...)...)
		var got, errb bytes.Buffer
		zc.Stdout, zc.Stderr = &got, &errb
		gotCode := 0
		if err := zc.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("zkd cli %s: %v", c, err)
			}
			gotCode = ee.ExitCode()
		}
		want, have := normalized(out.String()), normalized(got.String())
		if args[0] == "bogus" {
			// Both list the commands they have, then say so; zkd cli
			// has fewer (the note in cliUsage's place in the docs).
			want, have = lastLine(want), lastLine(have)
		}
		if have != want || gotCode != code {
			t.Errorf("%s: zkd cli exits %d and prints\n%s\nzkCli.sh exits %d and prints\n%s%s", c, gotCode, have, code, want, errb.String())
		}
	}
}

// Without a command, zkd cli reads commands from its input, one a line,
// as a script would give them.
func TestCliReadsCommandsFromItsInput(t *testing.T) {
	z := zkdtest.Start(t, nil)
	var out, errb bytes.Buffer
	script := "create /s one\nset /s two\nget /s\n\nhistory\nquit\nget /s\n"
	if code := cliCmd([]string{"-server", z.Addr}, strings.NewReader(script), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	want := "Created /s\ntwo\n0 - create /s one\n1 - set /s two\n2 - get /s\n3 - history\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q (nothing after quit)", out.String(), want)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
