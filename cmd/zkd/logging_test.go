package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/engine/zkdtest"
)

// zkd.log.format=json makes every line of the log a JSON object, the
// configuration's own warnings (written before the format was known)
// included; each session's opening and closing is one line, and no
// request is logged.
func TestLogFormatAndSessionLines(t *testing.T) {
	z := zkdtest.Start(t, map[string]string{"zkd.log.format": "json", "someUnknownKey": "x"})
	c, _, err := zk.Connect([]string{z.Addr}, 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, _, err := c.Exists("/"); err != nil {
			t.Fatal(err)
		}
	}
	id := c.SessionID()
	c.Close()
	if err := z.Stop(); err != nil {
		t.Fatal(err)
	}
	msgs := map[string]int{}
	sessions := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(z.Log()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg]++
		if strings.HasPrefix(msg, "session ") {
			sessions[rec["session"].(string)] = true
		}
	}
	want := fmt.Sprintf("0x%x", id)
	if msgs["session established"] != 1 || msgs["session closed"] != 1 || len(sessions) != 1 || !sessions[want] {
		t.Fatalf("session lines for %v, want one opening and one closing of %s: %v", sessions, want, msgs)
	}
	found := false
	for m := range msgs {
		if strings.HasPrefix(m, "unknown key in the configuration file") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no warning about the unknown key among %v", msgs)
	}
}

// With audit.enable, a server that cannot start says so in its audit
// events (serverStart, failure, at ERROR), as ZooKeeper's does, and one
// that starts and stops logs both, in JSON when the log is, and at INFO
// when the rest of the log is set to warnings only.
func TestAuditLogsStartAndStop(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zoo.cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPortAddress=127.0.0.1\nclientPort=%d\n"+
		"admin.enableServer=false\naudit.enable=true\n", filepath.Join(dir, "data"), busy.Addr().(*net.TCPAddr).Port)), 0o644)
	out, err := exec.Command(zkdtest.Binary(t), cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("zkd started on a port in use:\n%s", out)
	}
	if !strings.Contains(string(out), "level=ERROR msg=audit user=") ||
		!strings.Contains(string(out), " operation=serverStart result=failure\n") {
		t.Fatalf("no serverStart failure among the audit events:\n%s", out)
	}

	// A quiet log (warnings and errors only) keeps the audit events.
	z := zkdtest.StartWith(t, map[string]string{"zkd.log.format": "json", "audit.enable": "true", "zkd.log.level": "warn"},
		zkdtest.Options{Env: []string{"ZKD_LOG_LEVEL=warn"}})
	if err := z.Stop(); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, line := range strings.Split(z.Log(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["msg"] == "audit" {
			ops = append(ops, fmt.Sprintf("%v %v %v", rec["level"], rec["operation"], rec["result"]))
		}
	}
	if want := []string{"INFO serverStart success", "INFO serverStop invoked"}; !slices.Equal(ops, want) {
		t.Fatalf("audit events %q, want %q", ops, want)
	}
}

// zookeeper.datadir.autocreate=false: a data directory without its
// version-2 (a disk that is not mounted) stops zkd with the directory and
// the key named, where it would have started on an empty tree; once the
// directory is there, zkd starts.
func TestDataDirAutocreateOff(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zoo.cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPortAddress=127.0.0.1\nclientPort=0\n"+
		"admin.enableServer=false\ndatadir.autocreate=false\n", filepath.Join(dir, "data"))), 0o644)
	out, err := exec.Command(zkdtest.Binary(t), cfg).CombinedOutput()
	want := filepath.Join(dir, "data", "version-2") + " is missing, and zookeeper.datadir.autocreate=false forbids creating it"
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("zkd on a missing version-2: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "version-2")); !os.IsNotExist(err) {
		t.Fatalf("zkd made the directory anyway: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data", "version-2"), 0o755); err != nil {
		t.Fatal(err)
	}
	z := zkdtest.StartWith(t, map[string]string{"dataDir": filepath.Join(dir, "data"), "datadir.autocreate": "false"}, zkdtest.Options{})
	if !z.Serving() {
		t.Fatalf("zkd does not serve with version-2 made:\n%s", z.Log())
	}
}
