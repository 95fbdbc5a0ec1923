package bench

import (
	"strings"
	"testing"
	"time"

	"zkd/bench/client"
	"zkd/bench/nullserver"
	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
)

func refConfig(t *testing.T) Config {
	zk := zkreftest.Start(t, zkref.Options{})
	return Config{Servers: []string{zk.Addr}, Clients: 3, Outstanding: 8, DataSize: 100, Znodes: 40,
		Duration: 700 * time.Millisecond, Warmup: 200 * time.Millisecond, Root: "/zkbench-test", Seed: 1}
}

// rootGone checks the workload cleaned up after itself.
func rootGone(t *testing.T, cfg Config) {
	t.Helper()
	c, err := client.Dial(cfg.Servers[0], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan wire.ErrCode, 1)
	c2, err := client.Dial(cfg.Servers[0], client.Options{OnReply: func(_ *client.Conn, r *client.Reply) { got <- r.Err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Send(wire.OpExists, &wire.ExistsRequest{Path: cfg.Root}, 0)
	if code := <-got; code != wire.ErrNoNode {
		t.Fatalf("after the run %s: exists says %v, want NONODE (not cleaned up)", cfg.Root, code)
	}
}

func TestSaturateAgainstTheReference(t *testing.T) {
	cfg := refConfig(t)
	res, err := RunSaturate(cfg, []int{0, 50, 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 3 {
		t.Fatalf("%d phases", len(res.Phases))
	}
	for i, ph := range res.Phases {
		reads, writes := ph.Latency["getData"].Count, ph.Latency["setData"].Count
		if ph.Ops == 0 || int64(reads+writes) != ph.Ops || ph.Errors != nil || ph.OpsPerSec <= 0 {
			t.Fatalf("%s: %d ops (%d reads, %d writes), errors %v", ph.Name, ph.Ops, reads, writes, ph.Errors)
		}
		switch i {
		case 0:
			if reads != 0 {
				t.Fatalf("0%% reads did %d reads", reads)
			}
		case 1:
			if f := float64(reads) / float64(ph.Ops); f < 0.4 || f > 0.6 {
				t.Fatalf("50%% reads did %.0f%% reads", 100*f)
			}
		case 2:
			if writes != 0 {
				t.Fatalf("100%% reads did %d writes", writes)
			}
		}
		if ph.Latency["all"].P99 < ph.Latency["all"].P50 || ph.Latency["all"].Max < ph.Latency["all"].P99 {
			t.Fatalf("%s: percentiles out of order: %+v", ph.Name, ph.Latency["all"])
		}
	}
	rootGone(t, cfg)
}

func TestLatencyPhasesAgainstTheReference(t *testing.T) {
	cfg := refConfig(t)
	for _, async := range []bool{false, true} {
		res, err := RunLatency(cfg, async)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ph := range res.Phases {
			names = append(names, ph.Name)
			if ph.Ops != int64(cfg.Znodes) || ph.Errors != nil {
				t.Fatalf("async=%v %s: %d ops, errors %v; want exactly %d, none failing", async, ph.Name, ph.Ops, ph.Errors, cfg.Znodes)
			}
		}
		want := "create permanent,set permanent,get permanent,delete permanent,create ephemeral,watch ephemeral,delete watched ephemeral,notification"
		if strings.Join(names, ",") != want {
			t.Fatalf("phases %v", names)
		}
		rootGone(t, cfg)
	}
}

func TestTimedAgainstTheReference(t *testing.T) {
	cfg := refConfig(t)
	res, err := RunTimed(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Phase{}
	for _, ph := range res.Phases {
		byName[ph.Name] = ph
		if ph.Ops == 0 || ph.Errors != nil {
			t.Fatalf("%s: %d ops, errors %v", ph.Name, ph.Ops, ph.Errors)
		}
	}
	if len(byName) != 5 || byName["read"].Latency["getData"].Count == 0 || byName["create"].Latency["create"].Count == 0 {
		t.Fatalf("phases %v", res.Phases)
	}
	rootGone(t, cfg)
}

// TestErrorsAreCountedNotHidden: failed requests show up by error code.
func TestErrorsAreCountedNotHidden(t *testing.T) {
	cfg := refConfig(t)
	cfg.defaults()
	p, err := dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var c counter
	ph, err := p.run(phaseSpec{name: "missing", window: 4, gen: func(w *worker) (wire.OpCode, wire.Record, bool) {
		if _, ok := c.next(100); !ok {
			return 0, nil, false
		}
		w.getData = wire.GetDataRequest{Path: "/does/not/exist"}
		return wire.OpGetData, &w.getData, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if ph.Ops != 100 || ph.Errors["NONODE"] != 100 {
		t.Fatalf("%d ops, errors %v; want 100 NONODE", ph.Ops, ph.Errors)
	}
}

func TestExistingRootIsRefused(t *testing.T) {
	cfg := refConfig(t)
	cfg.Root = "/zookeeper"
	_, err := RunSaturate(cfg, []int{100})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("got %v", err)
	}
}

// TestPhaseFiguresAreCompleteWhenItEnds: a timed phase's figures are read
// only after every reply's handler has recorded it. The client counts a
// reply as answered before its handler runs, so a phase that ended on
// that count read its figures while the last handlers were still writing
// them: a race, and replies left out. One request in flight per
// connection, and a hook that holds each reply in its handler for a
// moment before the handler records it, make that the common case.
func TestPhaseFiguresAreCompleteWhenItEnds(t *testing.T) {
	s, err := nullserver.Start("127.0.0.1:0", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := Config{Servers: []string{s.Addr()}, Clients: 4, Outstanding: 8, DataSize: 100, Znodes: 1, Root: "/x", Seed: 1}
	cfg.defaults()
	p, err := dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	gen := func(w *worker) (wire.OpCode, wire.Record, bool) {
		w.getData = wire.GetDataRequest{Path: "/x/n-0"}
		return wire.OpGetData, &w.getData, true
	}
	slow := func(*worker, *client.Reply) { time.Sleep(time.Millisecond) }
	for i := 0; i < 5; i++ {
		ph, err := p.run(phaseSpec{name: "reads", window: 1, duration: 30 * time.Millisecond, gen: gen, onReply: slow})
		if err != nil {
			t.Fatal(err)
		}
		if n := uint64(ph.Ops); n == 0 || ph.Latency["all"].Count != n || ph.Latency["getData"].Count != n {
			t.Fatalf("phase %d: %d ops measured, latencies of %d (getData %d)", i, ph.Ops,
				ph.Latency["all"].Count, ph.Latency["getData"].Count)
		}
		time.Sleep(20 * time.Millisecond) // a handler still running would finish now
		var measured int64
		for _, w := range p.workers {
			w.mu.Lock()
			measured += w.measured
			w.mu.Unlock()
		}
		if measured != ph.Ops {
			t.Fatalf("phase %d reported %d ops, but its handlers went on to measure %d", i, ph.Ops, measured)
		}
	}
}
