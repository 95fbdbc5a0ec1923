package bench

import (
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
)

// The connection-count workloads against Apache ZooKeeper: every session
// is opened, holds its ephemeral and watch, pings, and is measured; the
// fairness run gets the busy client's replies and the others' pings.
func TestSessionsAgainstTheReference(t *testing.T) {
	zk := zkreftest.Start(t, zkref.Options{Config: map[string]string{"maxClientCnxns": "0"}})
	res, err := HoldSessions(SessionsConfig{Server: zk.Addr, PID: zk.PID(), Sessions: 200,
		Timeout: 6 * time.Second, Hold: 2500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions != 200 || res.Pings < 200 {
		t.Errorf("%d sessions pinged %d times in 2.5 s at a 2 s interval: want every session's first ping", res.Sessions, res.Pings)
	}
	if res.RSSBefore <= 0 || res.RSSHeld <= 0 {
		t.Errorf("the server's memory was not read: %d and %d bytes", res.RSSBefore, res.RSSHeld)
	}
	rootGone(t, Config{Servers: []string{zk.Addr}, Root: "/zkbench-sessions"})

	f, err := Fairness(FairnessConfig{Server: zk.Addr, Pipeline: 500, Others: 5, Duration: time.Second, DataSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if f.BusyOps <= 0 || f.Pings == 0 {
		t.Errorf("fairness: busy client %.0f ops/s, %d pings", f.BusyOps, f.Pings)
	}
	rootGone(t, Config{Servers: []string{zk.Addr}, Root: "/zkbench-fairness"})
}
