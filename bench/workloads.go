package bench

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"zkd/bench/client"
	"zkd/wire"
)

// Result is what a workload reports.
type Result struct {
	Workload string    `json:"workload"`
	Server   string    `json:"server,omitempty"` // a label, for compare
	Config   ConfigOut `json:"config"`
	Phases   []Phase   `json:"phases"`
}

// ConfigOut is the configuration as reported.
type ConfigOut struct {
	Servers     []string `json:"servers"`
	Clients     int      `json:"clients"`
	Outstanding int      `json:"outstanding"`
	DataSize    int      `json:"data_size"`
	Znodes      int      `json:"znodes"`
	Duration    float64  `json:"duration_s"`
	Warmup      float64  `json:"warmup_s"`
	Mode        string   `json:"mode,omitempty"`
}

func configOut(c Config, mode string) ConfigOut {
	return ConfigOut{Servers: c.Servers, Clients: c.Clients, Outstanding: c.Outstanding, DataSize: c.DataSize,
		Znodes: c.Znodes, Duration: c.Duration.Seconds(), Warmup: c.Warmup.Seconds(), Mode: mode}
}

func nodePaths(root, prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = root + "/" + prefix + strconv.Itoa(i)
	}
	return out
}

// counter hands out 0, 1, 2, … to the generators of every connection.
type counter struct{ n atomic.Int64 }

func (c *counter) next(limit int) (int, bool) {
	i := int(c.n.Add(1) - 1)
	return i, i < limit
}

// start connects and creates the workload's root.
func start(cfg Config) (*pool, error) {
	p, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.makeRoot(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// modeWindow is the requests in flight per connection: one in sync mode
// (latency), Outstanding in async mode (throughput).
func modeWindow(cfg Config, async bool) (int, string) {
	if async {
		return cfg.Outstanding, "async"
	}
	return 1, "sync"
}

// createAll creates paths with the configured data, pipelined.
func (p *pool) createAll(name string, paths []string, mode wire.CreateMode, window int) (Phase, error) {
	var c counter
	return p.run(phaseSpec{name: name, window: window, expect: len(paths),
		gen: func(w *worker) (wire.OpCode, wire.Record, bool) {
			i, ok := c.next(len(paths))
			if !ok {
				return 0, nil, false
			}
			w.create = wire.CreateRequest{Path: paths[i], Data: p.data, ACL: openACL, Flags: mode}
			return wire.OpCreate, &w.create, true
		}})
}

// RunSaturate is the ZooKeeper paper's load: every connection keeps
// Outstanding requests in flight, reads% of them getData and the rest
// setData, on Znodes znodes of DataSize bytes, for Duration after Warmup;
// one phase per read percentage.
func RunSaturate(cfg Config, reads []int) (*Result, error) {
	cfg.defaults()
	if len(reads) == 0 {
		reads = []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	}
	for _, r := range reads {
		if r < 0 || r > 100 {
			return nil, fmt.Errorf("bench: read percentage %d is not in 0..100", r)
		}
	}
	p, err := start(cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	paths := nodePaths(cfg.Root, "n-", cfg.Znodes)
	res := &Result{Workload: "saturate", Config: configOut(cfg, "")}
	runErr := func() error {
		if _, err := p.createAll("setup: create znodes", paths, wire.ModePersistent, 64); err != nil {
			return err
		}
		for _, pct := range reads {
			ph, err := p.run(phaseSpec{name: fmt.Sprintf("reads=%d%%", pct), warmup: cfg.Warmup, duration: cfg.Duration,
				window: cfg.Outstanding,
				gen: func(w *worker) (wire.OpCode, wire.Record, bool) {
					path := paths[w.rng.Intn(len(paths))]
					if w.rng.Intn(100) < pct {
						w.getData = wire.GetDataRequest{Path: path}
						return wire.OpGetData, &w.getData, true
					}
					w.setData = wire.SetDataRequest{Path: path, Data: p.data, Version: -1}
					return wire.OpSetData, &w.setData, true
				}})
			if err != nil {
				return err
			}
			res.Phases = append(res.Phases, ph)
		}
		return nil
	}()
	if err := p.removeRoot(paths); err != nil && runErr == nil {
		runErr = err
	}
	return res, runErr
}

// RunLatency is zk-smoketest's zk-latencies: Znodes permanent znodes created,
// set, read and deleted, then as many ephemerals created, watched (exists
// with a watch) and deleted, timing how long each deletion's notification
// takes to arrive. Sync mode has one request in flight per connection,
// measuring latency; async has Outstanding, measuring throughput.
func RunLatency(cfg Config, async bool) (*Result, error) {
	cfg.defaults()
	window, mode := modeWindow(cfg, async)
	p, err := start(cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	res := &Result{Workload: "latency", Config: configOut(cfg, mode)}
	perm := nodePaths(cfg.Root, "p-", cfg.Znodes)
	eph := nodePaths(cfg.Root, "e-", cfg.Znodes)
	each := func(name string, paths []string, make func(w *worker, path string) (wire.OpCode, wire.Record)) error {
		var c counter
		ph, err := p.run(phaseSpec{name: name, window: window, expect: len(paths),
			gen: func(w *worker) (wire.OpCode, wire.Record, bool) {
				i, ok := c.next(len(paths))
				if !ok {
					return 0, nil, false
				}
				op, body := make(w, paths[i])
				return op, body, true
			}})
		if err != nil {
			return err
		}
		res.Phases = append(res.Phases, ph)
		return nil
	}
	runErr := func() error {
		create := func(flags wire.CreateMode) func(w *worker, path string) (wire.OpCode, wire.Record) {
			return func(w *worker, path string) (wire.OpCode, wire.Record) {
				w.create = wire.CreateRequest{Path: path, Data: p.data, ACL: openACL, Flags: flags}
				return wire.OpCreate, &w.create
			}
		}
		del := func(w *worker, path string) (wire.OpCode, wire.Record) {
			w.del = wire.DeleteRequest{Path: path, Version: -1}
			return wire.OpDelete, &w.del
		}
		steps := []struct {
			name  string
			paths []string
			make  func(w *worker, path string) (wire.OpCode, wire.Record)
		}{
			{"create permanent", perm, create(wire.ModePersistent)},
			{"set permanent", perm, func(w *worker, path string) (wire.OpCode, wire.Record) {
				w.setData = wire.SetDataRequest{Path: path, Data: p.data, Version: -1}
				return wire.OpSetData, &w.setData
			}},
			{"get permanent", perm, func(w *worker, path string) (wire.OpCode, wire.Record) {
				w.getData = wire.GetDataRequest{Path: path}
				return wire.OpGetData, &w.getData
			}},
			{"delete permanent", perm, del},
			{"create ephemeral", eph, create(wire.ModeEphemeral)},
			{"watch ephemeral", eph, func(w *worker, path string) (wire.OpCode, wire.Record) {
				w.exists = wire.ExistsRequest{Path: path, Watch: true}
				return wire.OpExists, &w.exists
			}},
		}
		for _, s := range steps {
			if err := each(s.name, s.paths, s.make); err != nil {
				return err
			}
		}
		// Deleting the watched ephemerals: the notification latency is
		// from sending the delete to the event's arrival.
		return p.notifications(res, eph, window)
	}()
	if err := p.removeRoot(append(perm, eph...)); err != nil && runErr == nil {
		runErr = err
	}
	return res, runErr
}

// notifications deletes the watched paths and times their events.
func (p *pool) notifications(res *Result, paths []string, window int) error {
	index := make(map[string]int, len(paths))
	for i, path := range paths {
		index[path] = i
	}
	sent := make([]atomic.Int64, len(paths))
	var mu sync.Mutex
	hist := new(Histogram)
	got := 0
	all := make(chan struct{})
	for _, w := range p.workers {
		w.c.SetEventHandler(func(_ *client.Conn, ev *wire.WatcherEvent, at time.Time) {
			i, ok := index[ev.Path]
			if !ok || ev.Type != wire.EventNodeDeleted {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			hist.Record(at.Sub(time.Unix(0, sent[i].Load())))
			got++
			if got == len(paths) {
				close(all)
			}
		})
	}
	defer func() {
		for _, w := range p.workers {
			w.c.SetEventHandler(nil)
		}
	}()
	var c counter
	ph, err := p.run(phaseSpec{name: "delete watched ephemeral", window: window, expect: len(paths),
		gen: func(w *worker) (wire.OpCode, wire.Record, bool) {
			i, ok := c.next(len(paths))
			if !ok {
				return 0, nil, false
			}
			sent[i].Store(time.Now().UnixNano())
			w.del = wire.DeleteRequest{Path: paths[i], Version: -1}
			return wire.OpDelete, &w.del, true
		}})
	if err != nil {
		return err
	}
	res.Phases = append(res.Phases, ph)
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		n := got
		mu.Unlock()
		return fmt.Errorf("bench: %d of %d watch notifications arrived", n, len(paths))
	}
	mu.Lock()
	defer mu.Unlock()
	res.Phases = append(res.Phases, Phase{Name: "notification", Ops: int64(hist.Count()), Seconds: ph.Seconds,
		OpsPerSec: float64(hist.Count()) / ph.Seconds, Latency: map[string]LatencyStats{"notification": summarize(hist), "all": summarize(hist)}})
	return nil
}

// RunTimed runs each operation for Duration after Warmup, as the brownsys
// zookeeper-benchmark does: getData of one znode, setData of one znode
// over and over, creates, setData spread over the created znodes, and
// deletes of them. Sync mode keeps one request in flight per connection,
// async Outstanding.
func RunTimed(cfg Config, async bool) (*Result, error) {
	cfg.defaults()
	window, mode := modeWindow(cfg, async)
	p, err := start(cfg)
	if err != nil {
		return nil, err
	}
	defer p.close()
	res := &Result{Workload: "timed", Config: configOut(cfg, mode)}
	single := cfg.Root + "/single"
	var created atomic.Int64 // t-0 … t-(created-1) were sent for creation
	var deleted atomic.Int64
	name := func(i int64) string { return cfg.Root + "/t-" + strconv.FormatInt(i, 10) }
	runErr := func() error {
		if _, err := p.createAll("setup: create /single", []string{single}, wire.ModePersistent, 1); err != nil {
			return err
		}
		phases := []struct {
			name string
			gen  func(w *worker) (wire.OpCode, wire.Record, bool)
		}{
			{"read", func(w *worker) (wire.OpCode, wire.Record, bool) {
				w.getData = wire.GetDataRequest{Path: single}
				return wire.OpGetData, &w.getData, true
			}},
			{"set single", func(w *worker) (wire.OpCode, wire.Record, bool) {
				w.setData = wire.SetDataRequest{Path: single, Data: p.data, Version: -1}
				return wire.OpSetData, &w.setData, true
			}},
			{"create", func(w *worker) (wire.OpCode, wire.Record, bool) {
				w.create = wire.CreateRequest{Path: name(created.Add(1) - 1), Data: p.data, ACL: openACL}
				return wire.OpCreate, &w.create, true
			}},
			{"set many", func(w *worker) (wire.OpCode, wire.Record, bool) {
				n := created.Load()
				if n == 0 {
					return 0, nil, false
				}
				w.setData = wire.SetDataRequest{Path: name(w.rng.Int63n(n)), Data: p.data, Version: -1}
				return wire.OpSetData, &w.setData, true
			}},
			{"delete", func(w *worker) (wire.OpCode, wire.Record, bool) {
				i := deleted.Add(1) - 1
				if i >= created.Load() {
					return 0, nil, false
				}
				w.del = wire.DeleteRequest{Path: name(i), Version: -1}
				return wire.OpDelete, &w.del, true
			}},
		}
		for _, ph := range phases {
			r, err := p.run(phaseSpec{name: ph.name, warmup: cfg.Warmup, duration: cfg.Duration, window: window, gen: ph.gen})
			if err != nil {
				return err
			}
			res.Phases = append(res.Phases, r)
		}
		return nil
	}()
	// What the delete phase left, and /single.
	var rest []string
	for i := min(deleted.Load(), created.Load()); i < created.Load(); i++ {
		rest = append(rest, name(i))
	}
	if err := p.removeRoot(append(rest, single)); err != nil && runErr == nil {
		runErr = err
	}
	return res, runErr
}
