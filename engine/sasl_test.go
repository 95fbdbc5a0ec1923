package engine_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
func TestSASLDigestIsZooKeepers(t *testing.T) {
	zkreftest.Need(t)
	need(t, "zkCli.sh (Debian zookeeper)", zkCli)
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	need(t, "python3-pure-sasl, kazoo's SASL", "/usr/lib/python3/dist-packages/puresasl")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serverJAAS := write("server.jaas", `Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
`)
	client := func(user, pw string) string {
		return write(user+"-"+pw+".jaas", "Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    username=\""+
			user+"\"\n    password=\""+pw+"\";\n};\n")
	}
	bob, wrong, super := client("bob", "bobsecret"), client("bob", "nope"), client("super", "adminsecret")
	cfg := map[string]string{"authProvider.1": engine.SASLProvider, "superUser": "super"}

	zkd := zkdtest.StartWith(t, cfg, zkdtest.Options{Env: []string{"SERVER_JVMFLAGS=-Xmx64m -Djava.security.auth.login.config=" + serverJAAS}})
	ref, err := zkref.Start(t.TempDir(), zkref.Options{Config: map[string]string{"authProvider.1": engine.SASLProvider},
		SystemProperties: map[string]string{"java.security.auth.login.config": serverJAAS, "zookeeper.superUser": "super"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Stop()

	// zkCli.sh reading a script, the JAAS file of jaas (none: no SASL).
	cli := func(addr, jaas, script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, zkCli, "-server", addr)
		cmd.Stdin = strings.NewReader(script + "quit\n")
		cmd.Env = os.Environ()
		if jaas != "" {
			cmd.Env = append(cmd.Env, "CLIENT_JVMFLAGS=-Djava.security.auth.login.config="+jaas)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("zkCli.sh did not finish:\n%s", out.String())
		}
		// The session's events are kept; the banner, the logger's
		// lines and the connecting line are not.
		var keep []string
		for _, l := range strings.Split(out.String(), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l == "WATCHER::" || strings.HasPrefix(l, "SLF4J") || strings.HasPrefix(l, "Welcome") ||
				strings.HasPrefix(l, "JLine") || strings.HasPrefix(l, "Connecting to") || strings.Contains(l, "type:None path:null") && !strings.Contains(l, "Sasl") && !strings.Contains(l, "AuthFailed") {
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	kazoo := func(addr, user, pw string) string {
		t.Helper()
		out, _ := run(t, time.Minute, kazooPython, "-c", `
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], sasl_options={"mechanism": "DIGEST-MD5", "username": sys.argv[2], "password": sys.argv[3]},
                 connection_retry={"max_tries": 1}, timeout=10)
try:
    zk.start(timeout=20)
    print("connected; /s holds", zk.get("/s")[0])
    zk.stop()
except Exception as e:
    print("failed:", type(e).__name__)
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
