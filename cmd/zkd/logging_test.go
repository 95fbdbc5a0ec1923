package main

import (
	"encoding/json"
	"fmt"
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
