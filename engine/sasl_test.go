package engine_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine"
	"zkd/engine/zkdtest"
)

// SASL with DIGEST-MD5 on the client port, its users in a JAAS file's
// Server section, as Kafka and HBase deployments set it up: zkd and Apache
// ZooKeeper 3.8 configured the same way answer zkCli.sh (the Java client)
// and kazoo alike. The JAAS file reaches zkd as ZooKeeper's start scripts
// pass it, -Djava.security.auth.login.config in SERVER_JVMFLAGS.
// saslFiles are the JAAS files of the SASL tests: the server's, with
// users super and bob, and clients' as bob, as bob with a wrong password,
// and as super.
type saslFiles struct{ server, bob, wrong, super string }

func writeSASLFiles(t *testing.T) saslFiles {
	t.Helper()
	zkreftest.Need(t)
	need(t, "zkCli.sh (Debian zookeeper)", zkCli)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	client := func(user, pw string) string {
		return write(user+"-"+pw+".jaas", "Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    username=\""+
			user+"\"\n    password=\""+pw+"\";\n};\n")
	}
	return saslFiles{
		server: write("server.jaas", `Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
`),
		bob: client("bob", "bobsecret"), wrong: client("bob", "nope"), super: client("super", "adminsecret"),
	}
}

// saslServers starts zkd and Apache ZooKeeper on the same settings, with
// f's JAAS file: zkd's through SERVER_JVMFLAGS, as ZooKeeper's start
// scripts pass it.
func saslServers(t *testing.T, f saslFiles, cfg map[string]string) (zkd *zkdtest.Server, ref *zkref.Server) {
	t.Helper()
	zkd = zkdtest.StartWith(t, cfg, zkdtest.Options{Env: []string{"SERVER_JVMFLAGS=-Xmx64m -Djava.security.auth.login.config=" + f.server}})
	ref, err := zkref.Start(t.TempDir(), zkref.Options{Config: cfg,
		SystemProperties: map[string]string{"java.security.auth.login.config": f.server}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Stop() })
	return zkd, ref
}

// saslCli runs zkCli.sh on a script with the JAAS file jaas (none: no
// SASL) and returns what it printed, the session's events kept and the
// banner, the logger's lines and the connecting line left out.
func saslCli(t *testing.T, addr, jaas, script string) string {
	t.Helper()
	if jaas == "" {
		return cliWithFlags(t, addr, "", script)
	}
	return cliWithFlags(t, addr, "-Djava.security.auth.login.config="+jaas, script)
}

// cliWithFlags is zkCli.sh on a script with CLIENT_JVMFLAGS flags.
func cliWithFlags(t *testing.T, addr, flags, script string) string {
	t.Helper()
	return cliCommand(t, zkCli, []string{"-server", addr}, []string{"CLIENT_JVMFLAGS=" + flags}, script)
}

// cliCommand runs a zkCli command line on a script, env added to its
// environment, and returns what it printed (see saslCli).
func cliCommand(t *testing.T, name string, args, env []string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(script + "quit\n")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("zkCli.sh did not finish:\n%s", out.String())
	}
	// zkCli's event thread prints beside the main thread, even inside a
	// line: the events are taken out, and the authentication ones listed
	// after the output, sorted.
	var events []string
	for _, ev := range zkCliEvent.FindAllString(out.String(), -1) {
		if strings.Contains(ev, "Sasl") || strings.Contains(ev, "AuthFailed") {
			events = append(events, ev)
		}
	}
	sort.Strings(events)
	var keep []string
	for _, l := range strings.Split(zkCliEvent.ReplaceAllString(out.String(), ""), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "SLF4J") || strings.HasPrefix(l, "Welcome") ||
			strings.HasPrefix(l, "JLine") || strings.HasPrefix(l, "Connecting to") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(append(keep, events...), "\n")
}

func TestSASLDigestIsZooKeepers(t *testing.T) {
	f := writeSASLFiles(t)
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	need(t, "python3-pure-sasl, kazoo's SASL", "/usr/lib/python3/dist-packages/puresasl")
	zkd, ref := saslServers(t, f, map[string]string{"authProvider.1": engine.SASLProvider, "superUser": "super"})
	bob, wrong, super := f.bob, f.wrong, f.super
	cli := func(addr, jaas, script string) string { t.Helper(); return saslCli(t, addr, jaas, script) }
	kazoo := func(addr, user, pw string) string {
		t.Helper()
		out, _ := run(t, time.Minute, kazooPython, "-c", `
import sys
from kazoo.client import KazooClient
from kazoo.protocol.states import KeeperState
zk = KazooClient(hosts=sys.argv[1], sasl_options={"mechanism": "DIGEST-MD5", "username": sys.argv[2], "password": sys.argv[3]},
                 connection_retry={"max_tries": 1}, timeout=10)
# kazoo authenticates once the session is up, while start() returns: a
# failure that comes before start() looks is raised as a time-out, one
# after as AuthFailedError by the first request. The states the session
# went through say which happened, whichever thread won.
states = []
callback = zk._session_callback
zk._session_callback = lambda state: (states.append(state), callback(state))[1]
try:
    zk.start(timeout=20)
    print("connected; /s holds", zk.get("/s")[0])
    zk.stop()
except Exception as e:
    print("failed:", "AuthFailedError" if KeeperState.AUTH_FAILED in states else type(e).__name__)
`, addr, user, pw)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1] // kazoo's own log lines go before
	}

	for _, step := range []struct {
		name, jaas, script, want string
	}{
		{"bob creates a znode only bob may use", bob, "create /s data sasl:bob:cdrwa\ngetAcl /s\nget /s\nwhoami\n", "Created /s"},
		{"a client without SASL may not read it", "", "get /s\nwhoami\n", "Insufficient permission : /s"},
		{"a wrong password fails the session", wrong, "get /s\n", "state:AuthFailed"},
		{"the super user reads everything", super, "get /s\nwhoami\n", "super"},
	} {
		got, want := cli(zkd.Addr, step.jaas, step.script), cli(ref.Addr, step.jaas, step.script)
		if got != want {
			t.Errorf("%s: zkCli.sh on zkd:\n%s\n\non ZooKeeper:\n%s", step.name, got, want)
		}
		if !strings.Contains(got, step.want) {
			t.Errorf("%s: zkCli.sh's output lacks %q:\n%s", step.name, step.want, got)
		}
	}
	for _, c := range []struct{ user, pw, want string }{
		{"bob", "bobsecret", "connected; /s holds b'data'"},
		{"bob", "nope", "failed: AuthFailedError"},
	} {
		got, want := kazoo(zkd.Addr, c.user, c.pw), kazoo(ref.Addr, c.user, c.pw)
		if got != want || got != c.want {
			t.Errorf("kazoo as %s/%s: zkd %q, ZooKeeper %q; want %q", c.user, c.pw, got, want, c.want)
		}
	}
	// A user the Server section does not name is refused whatever the
	// password. (ZooKeeper 3.8.0 lets one in with the password of the
	// user who authenticated last: its callback handler, shared by all
	// connections, keeps that user's name when it does not know the new
	// one. docs/security.md lists the difference.)
	if got := kazoo(zkd.Addr, "eve", "bobsecret"); got != "failed: AuthFailedError" {
		t.Errorf("kazoo as eve, a user zkd does not have, with bob's password: %q", got)
	}
	log := zkd.Log()
	if strings.Contains(log, "bobsecret") || strings.Contains(log, "adminsecret") {
		t.Error("a password is in zkd's log")
	}
	if !strings.Contains(log, `SASL authentication failed; closing the connection`) || !strings.Contains(log, `wrong password for user \"bob\"`) {
		t.Errorf("no log line says why bob's session failed:\n%s", log)
	}
}

// sessionRequireClientSASLAuth: a session that has not authenticated with
// SASL has its first other request refused (SESSIONCLOSEDREQUIRESASLAUTH)
// and its connection closed, on zkd as on ZooKeeper; with SASL, it works.
func TestSASLRequiredIsZooKeepers(t *testing.T) {
	f := writeSASLFiles(t)
	zkd, ref := saslServers(t, f, map[string]string{"authProvider.1": engine.SASLProvider, "sessionRequireClientSASLAuth": "true"})
	for _, step := range []struct{ name, jaas, want string }{
		{"without SASL", "", "Session closed because client failed to authenticate"},
		{"with SASL", f.bob, "Created /open"},
	} {
		script := "create /open x\nls /\n"
		got, want := saslCli(t, zkd.Addr, step.jaas, script), saslCli(t, ref.Addr, step.jaas, script)
		if got != want {
			t.Errorf("%s: zkCli.sh on zkd:\n%s\n\non ZooKeeper:\n%s", step.name, got, want)
		}
		if !strings.Contains(got, step.want) {
			t.Errorf("%s: zkCli.sh's output lacks %q:\n%s", step.name, step.want, got)
		}
	}
	if !strings.Contains(zkd.Log(), "has not authenticated with a scheme the server requires") {
		t.Error("no log line says why the session without SASL was closed")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
