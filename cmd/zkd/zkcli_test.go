package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
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
		// The rest of zkCli.sh's commands are compared through a script
		// (TestCliScriptIsZkCli): a JVM for each here would take the CPU
		// from the other packages' tests.
		"get -w /cli/box/in",
		"setquota -N 2 /cli/box",
		"listquota /cli/box",
		"setAcl -R /cli/box world:anyone:cdrwa",
		"getEphemerals /cli",
		"removewatches /cli",
		"reconfig -remove 3",
		"deleteall /cli -b 10",
		"ls /",
		"deleteall /nope",
		// zxids are not compared from here on: a client that refuses a
		// path may exit before its session is created, or after.
		"get cli",
		"stat /cli//x",
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
		var got bytes.Buffer
		zc.Stdout, zc.Stderr = &got, &got
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
			t.Errorf("%s: zkd cli exits %d and prints\n%s\nzkCli.sh exits %d and prints\n%s", c, gotCode, have, code, want)
		}
	}
}

// Without a command, zkd cli reads commands from its input, one a line,
// as zkCli.sh does when a script is piped to it: the same script, with
// watches that fire or are silenced, history and redo, quoted data,
// quotas, closing and reconnecting, prints the same on both (times aside;
// the watch events, which both print as they come, compared as a set)
// and ends with the same exit code.
func TestCliScriptIsZkCli(t *testing.T) {
	zkreftest.Need(t)
	script := func(addr string) string {
		return strings.Join([]string{
			"create /w one", "get -w /w", "set /w two", "ls -w /", "create /w2 x", "stat -w /w",
			"printwatches", "printwatches off", "set /w three", "sync /", "get /w", "printwatches on",
			"get -w /w", "set /w four",
			`create /q "a b"`, "get /q", "", "redo 15", "history", "redo 99", "redo 16",
			"config", "setquota /w", "setquota -n 0 /w", "setquota -n 3 /nope", "setquota -n 2 -b 5 /w",
			"setquota -b 1 /w", "listquota /w", "create /w/c x", "setquota -n 1 /w/c", "setquota -n 1 /",
			"delquota -b /w", "listquota /w", "delquota /w", "listquota /w", "delquota /w", "ls /zookeeper/quota",
			"close", "ls /", "connect " + addr, "ls /", "stat -w /nope", "create /nope", "delete /nope",
			"getAllChildrenNumber /", "deleteall /w", "ls -R /", "get /w",
			"create -e /e1 x", "create -e /e2 y", "create /p z", "getEphemerals", "getEphemerals /e1",
			"whoami", "addauth digest u:p", "whoami", "addWatch /p", "create /p/c 1", "set /p/c 2",
			"addWatch -m persistent /e1", "set /e1 q", "addWatch -m bogus /p", "removewatches /p",
			"removewatches /p", "get -w /e2", "ls -w /p", "removewatches /p -c", "removewatches /e2 -d",
			"stat -w /gone", "removewatches /gone -l", "reconfig -add 4=127.0.0.1:1:2;3", "reconfig",
			"getAllChildrenNumber /nope", "create -s /p/ x", "ls /p", "ls -w /p", "config -c",
			"setAcl -R /p world:anyone:cdrwa", "create /p/", "ls /p/../x", "deleteall /p -b 10",
			"quit", "ls /",
		}, "\n") + "\n"
	}
	run := func(z *zkdtest.Server, cmd *exec.Cmd) (string, []string, int) {
		cmd.Stdin = strings.NewReader(script(z.Addr))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("%s: %v", cmd.Path, err)
			}
			code = ee.ExitCode()
		}
		s := strings.ReplaceAll(out.String(), z.Addr, "<server>")
		events := watchEvent.FindAllString(s, -1)
		sort.Strings(events)
		s = watchEvent.ReplaceAllString(watcherLine.ReplaceAllString(s, ""), "")
		s = javaOnly.ReplaceAllString(s, "")
		return strings.TrimSpace(perRun.ReplaceAllString(s, "$1 = <varies>")), events, code
	}
	a, b := zkdtest.Start(t, nil), zkdtest.Start(t, nil)
	want, wantEvents, wantCode := run(a, exec.Command(zkCliSh, "-server", a.Addr))
	have, haveEvents, haveCode := run(b, exec.Command(zkdtest.Binary(t), "cli", "-server", b.Addr))
	if n, la, lb, differ := zkreftest.DifferingLine(have, want); differ {
		t.Errorf("zkd cli prints\n%s\n\nzkCli.sh prints\n%s\n\nfirst difference, line %d: %q, zkCli.sh %q", have, want, n, la, lb)
	}
	if !slices.Equal(haveEvents, wantEvents) {
		t.Errorf("zkd cli prints the watch events\n%q\nzkCli.sh prints\n%q", haveEvents, wantEvents)
	}
	if haveCode != wantCode {
		t.Errorf("zkd cli exits %d, zkCli.sh %d", haveCode, wantCode)
	}
}

var (
	// An event is printed as two lines, each after a blank one; zkCli.sh
	// prints them one at a time, and a command's output can come between.
	watcherLine = regexp.MustCompile(`\nWATCHER::\n`)
	watchEvent  = regexp.MustCompile(`\nWatchedEvent [^\n]*\n`)
	// What only a JVM prints: its logger, and whether JLine is there.
	javaOnly = regexp.MustCompile(`(?m)^(SLF4J:.*|JLine support is .*)\n`)
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
