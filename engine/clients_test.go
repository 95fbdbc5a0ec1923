package engine_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"zkd/engine/zkdtest"
)

// Real clients no one here wrote, run as their users run them, against a
// real zkd process. make test installs them (python3-kazoo,
// libcurator-*-java, zookeeper for zkCli.sh, zookeeper-bin for the C
// client); without ZKD_REQUIRE_REFERENCE a missing one skips loudly.

const (
	kazooPython = "/usr/bin/python3"
	zkCli       = "/usr/share/zookeeper/bin/zkCli.sh"
	cliMt       = "/usr/lib/zookeeper/bin/cli_mt"
	loadGen     = "/usr/lib/zookeeper/bin/load_gen"
)

var javaJars = []string{"curator-client", "curator-framework", "curator-recipes", "zookeeper",
	"zookeeper-jute", "guava", "slf4j-api", "slf4j-nop"}

// need skips (or, under make test, fails) when a client is not installed.
func need(t testing.TB, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			msg := "SKIPPED: " + what + " is not installed (" + p + "); `make test` installs it"
			if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// run runs a command with a deadline and returns its combined output.
func run(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v:\n%s", name, timeout, out.String())
	}
	return out.String(), err
}

func TestKazooRecipes(t *testing.T) {
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	srv := zkdtest.Start(t, nil)
	out, err := run(t, 3*time.Minute, kazooPython, "testdata/clients/kazoo_recipes.py", srv.Addr)
	if err != nil || !strings.Contains(out, "all kazoo checks passed") {
		t.Fatalf("kazoo: %v\n%s", err, out)
	}
	for _, r := range []string{"Lock", "Election", "Queue", "LockingQueue", "Counter", "Barrier", "DataWatch", "ChildrenWatch"} {
		if !strings.Contains(out, "ok "+r+"\n") {
			t.Errorf("kazoo recipe %s did not report ok:\n%s", r, out)
		}
	}
}

var (
	javaOnce  sync.Once
	javaClass string
	javaErr   error
)

// curatorProgram compiles testdata/clients/CuratorCheck.java and
// CuratorCacheStress.java once, or uses the classes make compiled
// (ZKD_JAVA_CLIENTS).
func curatorProgram(t testing.TB) (classpath string) {
	t.Helper()
	var jars []string
	for _, j := range javaJars {
		p := "/usr/share/java/" + j + ".jar"
		need(t, "the Java client and Curator (libzookeeper-java, libcurator-framework-java, libcurator-recipes-java)", p)
		jars = append(jars, p)
	}
	javaOnce.Do(func() {
		if dir := os.Getenv("ZKD_JAVA_CLIENTS"); dir != "" {
			if _, err := os.Stat(filepath.Join(dir, "CuratorRolling.class")); err == nil {
				javaClass = dir
				return
			}
		}
		dir, err := os.MkdirTemp("", "zkd-java-clients-")
		if err != nil {
			javaErr = err
			return
		}
		out, err := exec.Command("javac", "-implicit:none", "-d", dir, "-cp", strings.Join(jars, ":"),
			"testdata/clients/CuratorCheck.java", "testdata/clients/CuratorCacheStress.java",
			"testdata/clients/CuratorRolling.java").CombinedOutput()
		if err != nil {
			javaErr = &exec.Error{Name: "javac: " + string(out), Err: err}
			return
		}
		javaClass = dir
	})
	if javaErr != nil {
		t.Fatal(javaErr)
	}
	return javaClass + ":" + strings.Join(jars, ":")
}

func TestJavaClientAndCurator(t *testing.T) {
	cp := curatorProgram(t)
	// Containers are reaped on the container check interval.
	srv := zkdtest.Start(t, map[string]string{"znode.container.checkIntervalMs": "300"})
	out, err := run(t, 3*time.Minute, "java", "-cp", cp, "CuratorCheck", srv.Addr)
	if err != nil || !strings.Contains(out, "all curator checks passed") {
		t.Fatalf("curator: %v\n%s", err, out)
	}
	for _, r := range []string{"java client", "InterProcessMutex", "LeaderLatch", "CuratorCache", "containers"} {
		if !strings.Contains(out, "ok "+r+"\n") {
			t.Errorf("%s did not report ok:\n%s", r, out)
		}
	}
}

var (
	zkCliEvent = regexp.MustCompile(`WATCHER::|WatchedEvent [^\n]*`)
	blankLines = regexp.MustCompile(`\n{2,}`)
)

// zkCli.sh in batch mode: one JVM per command, as operators script it.
func TestZkCliBatchMode(t *testing.T) {
	need(t, "zkCli.sh (Debian zookeeper)", zkCli)
	srv := zkdtest.Start(t, nil)
	cli := func(args ...string) string {
		t.Helper()
		out, err := run(t, time.Minute, zkCli, append([]string{"-server", srv.Addr}, args...)...)
		if err != nil {
			t.Fatalf("zkCli.sh %v: %v\n%s", args, err, out)
		}
		// zkCli's event thread prints the connect event while the main
		// thread prints the result, and the two interleave, even inside a
		// line: drop the event's text and the blank lines it leaves.
		return blankLines.ReplaceAllString(zkCliEvent.ReplaceAllString(out, ""), "\n")
	}
	// ls's list may still be split by the event's line break.
	oneLine := func(s string) string { return strings.ReplaceAll(s, "\n", "") }
	if out := cli("create", "/cli", "hello"); !strings.Contains(out, "Created /cli") {
		t.Fatalf("create:\n%s", out)
	}
	if out := cli("get", "/cli"); !strings.Contains(out, "\nhello\n") {
		t.Fatalf("get:\n%s", out)
	}
	cli("set", "/cli", "world")
	if out := cli("stat", "/cli"); !strings.Contains(out, "dataVersion = 1\n") || !strings.Contains(out, "dataLength = 5\n") {
		t.Fatalf("stat:\n%s", out)
	}
	if out := cli("ls", "/"); !strings.Contains(oneLine(out), "[cli, zookeeper]") {
		t.Fatalf("ls:\n%s", out)
	}
	cli("delete", "/cli")
	if out := cli("ls", "/"); !strings.Contains(oneLine(out), "[zookeeper]") {
		t.Fatalf("ls after delete:\n%s", out)
	}
}

// The C client: cli_mt commands and load_gen.
func TestCClient(t *testing.T) {
	need(t, "the C client (Debian zookeeper-bin)", cliMt, loadGen)
	srv := zkdtest.Start(t, nil)
	cli := func(cmd string) string {
		t.Helper()
		out, _ := run(t, time.Minute, cliMt, "-h", srv.Addr, "-c", cmd)
		return out
	}
	if out := cli("create /cclient"); !strings.Contains(out, "[/cclient]: rc = 0") {
		t.Fatalf("create:\n%s", out)
	}
	if out := cli("create /cclient"); !strings.Contains(out, "rc = -110") {
		t.Fatalf("second create:\n%s", out)
	}
	if out := cli("set /cclient data"); !strings.Contains(out, "rc = 0") {
		t.Fatalf("set:\n%s", out)
	}
	if out := cli("get /cclient"); !strings.Contains(out, "/cclient: rc = 0") || !strings.Contains(out, "value_len = 4") {
		t.Fatalf("get:\n%s", out)
	}
	if out := cli("ls /"); !strings.Contains(out, "cclient") {
		t.Fatalf("ls:\n%s", out)
	}
	if out := cli("delete /cclient"); !strings.Contains(out, "rc = 0") {
		t.Fatalf("delete:\n%s", out)
	}
	if out := cli("get /cclient"); !strings.Contains(out, "rc = -101") {
		t.Fatalf("get after delete:\n%s", out)
	}
	// load_gen runs create/write/read/delete cycles until it is stopped:
	// give it three seconds, then check it completed cycles without error.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, loadGen, srv.Addr, "/loadgen", "50").CombinedOutput()
	if n := strings.Count(string(out), "Starting the delete cycle"); n < 3 || strings.Contains(string(out), "ZOO_ERROR") {
		t.Fatalf("load_gen completed %d cycles in 3 s:\n%s", n, lastLines(string(out), 20))
	}
	if out, err := run(t, time.Minute, loadGen, srv.Addr, "/loadgen", "clean"); err != nil {
		t.Fatalf("load_gen clean: %v\n%s", err, lastLines(out, 20))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Null data stays null, and empty stays empty, through the log and a
// snapshot: kazoo reads None for what was written as None (kazoo's own
// test_create_null_data and test_set_null_data, each handler installed).
func TestKazooNullData(t *testing.T) {
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	need(t, "kazoo's gevent and eventlet handlers", "/usr/lib/python3/dist-packages/gevent",
		"/usr/lib/python3/dist-packages/eventlet")
	srv := zkdtest.Start(t, map[string]string{"snapCount": "10"})
	script := "testdata/clients/kazoo_null_data.py"
	out, err := run(t, time.Minute, kazooPython, script, srv.Addr, "write")
	if err != nil {
		t.Fatalf("kazoo: %v\n%s", err, out)
	}
	for _, h := range []string{"threading", "gevent", "eventlet"} {
		for _, want := range []string{"-null None length 0", "-set-null None length 0",
			"-empty b'' length 0", "-set-empty b'' length 0", "-made b'' length 0"} {
			if !strings.Contains(out, h+want+"\n") {
				t.Fatalf("kazoo read back\n%s\nwant a line %q", out, h+want)
			}
		}
	}
	written := out[strings.LastIndex(out, "wrote"):]
	written = written[strings.Index(written, "\n")+1:]
	srv.Stop()
	srv.Restart()
	after, err := run(t, time.Minute, kazooPython, script, srv.Addr, "read")
	if err != nil || after != written {
		t.Fatalf("after a restart kazoo read (%v)\n%s\nbefore it\n%s", err, after, written)
	}
}

// CuratorCache must never miss an event: hundreds of rounds of a cache
// starting while another client changes the tree under it, with both
// cores kept busy. Once in nine runs on a loaded machine, a watch
// registered just as a change was published missed it, and the cache
// stayed short of the tree.
func TestCuratorCacheUnderRaces(t *testing.T) {
	cp := curatorProgram(t)
	srv := zkdtest.Start(t, nil)
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for i := 0; i < 2; i++ {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for j := 0; j < 1e5; j++ {
				}
			}
		}()
	}
	out, err := run(t, 4*time.Minute, "java", "-cp", cp, "CuratorCacheStress", srv.Addr, "600")
	close(stop)
	busy.Wait()
	if err != nil || !strings.Contains(out, "ok 600 rounds") {
		t.Fatalf("CuratorCache: %v\n%s", err, out)
	}
}
