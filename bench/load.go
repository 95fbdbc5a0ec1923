package bench

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zkd/bench/client"
	"zkd/wire"
)

// Config is what every workload takes.
type Config struct {
	Servers     []string      // host:port of each server; connections are spread over them
	Clients     int           // connections (sessions)
	Outstanding int           // requests each connection keeps in flight
	DataSize    int           // bytes of data per znode
	Znodes      int           // znodes in the working set
	Duration    time.Duration // measured time per timed phase
	Warmup      time.Duration // time before measuring starts, per timed phase
	Root        string        // the path the workload works under; created and removed
	Interval    time.Duration // throughput sample interval
	// Progress gets a live line (phase, elapsed/total, ops/s), rewritten
	// in place; nil for none.
	Progress io.Writer
	Seed     int64
}

func (c *Config) defaults() {
	if len(c.Servers) == 0 {
		c.Servers = []string{"127.0.0.1:2181"}
	}
	if c.Clients <= 0 {
		c.Clients = 1
	}
	if c.Outstanding <= 0 {
		c.Outstanding = 1
	}
	if c.DataSize < 0 {
		c.DataSize = 0
	}
	if c.Znodes <= 0 {
		c.Znodes = 1000
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Root == "" {
		c.Root = "/zkbench"
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
}

// LatencyStats summarizes a histogram, in milliseconds.
type LatencyStats struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	hist  *Histogram
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func summarize(h *Histogram) LatencyStats {
	return LatencyStats{Count: h.Count(), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), hist: h}
}

// Hist is the histogram behind the summary, for plots.
func (l LatencyStats) Hist() *Histogram { return l.hist }

// Phase is the result of one phase of a workload.
type Phase struct {
	Name      string                  `json:"name"`
	Ops       int64                   `json:"ops"`     // replies counted (errors included)
	Seconds   float64                 `json:"seconds"` // measured time
	OpsPerSec float64                 `json:"ops_per_sec"`
	Samples   []float64               `json:"samples_ops_per_sec,omitempty"` // per Interval
	Latency   map[string]LatencyStats `json:"latency"`                       // by op name, and "all"
	Errors    map[string]int64        `json:"errors,omitempty"`              // error replies by code
}

// worker is one connection and what it is doing in the current phase.
type worker struct {
	id  int
	c   *client.Conn
	rng *rand.Rand
	// mu serializes sending: the phase fills the window while replies may
	// already be sending more from the reader goroutine.
	mu   sync.Mutex
	gen  func(w *worker) (wire.OpCode, wire.Record, bool)
	stop atomic.Bool
	// done counts the phase's replies once recorded (and the progress
	// line); sent counts its requests, under mu. The client counts a
	// request as answered before its handler runs, so only done == sent
	// says that the figures are complete and may be read.
	done atomic.Int64
	sent int64
	// Owned by the connection's reader goroutine during a phase.
	windowStart atomic.Int64 // unix ns: replies to requests sent before are not measured
	windowEnd   atomic.Int64 // unix ns: nor are those to requests sent at or after it (0: open)
	hists       map[wire.OpCode]*Histogram
	errs        map[wire.ErrCode]int64
	measured    int64
	exhausted   bool
	phase       atomic.Pointer[phaseDone]
	onReply     func(w *worker, r *client.Reply) // extra per-reply hook
	sync        chan syncReply
	failed      atomic.Pointer[error]
	// reusable request records for generators
	getData wire.GetDataRequest
	setData wire.SetDataRequest
	create  wire.CreateRequest
	del     wire.DeleteRequest
	exists  wire.ExistsRequest
}

// phaseDone is closed when a worker has finished a phase. Each phase gets
// a new one, so a late finish of the last phase cannot touch this one.
type phaseDone struct {
	ch   chan struct{}
	once sync.Once
}

type syncReply struct {
	err  wire.ErrCode
	body []byte
}

// pool is the connections of a run.
type pool struct {
	cfg     Config
	workers []*worker
	data    []byte
}

func dial(cfg Config) (*pool, error) {
	p := &pool{cfg: cfg, data: make([]byte, cfg.DataSize)}
	for i := range p.data {
		p.data[i] = byte('a' + i%26)
	}
	for i := 0; i < cfg.Clients; i++ {
		w := &worker{id: i, rng: rand.New(rand.NewSource(cfg.Seed + int64(i))), hists: map[wire.OpCode]*Histogram{},
			errs: map[wire.ErrCode]int64{}, sync: make(chan syncReply, 1)}
		addr := cfg.Servers[i%len(cfg.Servers)]
		c, err := client.Dial(addr, client.Options{OnReply: w.reply, OnClose: w.closed})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("bench: connecting to %s: %w", addr, err)
		}
		w.c = c
		p.workers = append(p.workers, w)
	}
	return p, nil
}

func (p *pool) close() {
	var wg sync.WaitGroup
	for _, w := range p.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.c.Close() }()
	}
	wg.Wait()
}

func (w *worker) closed(_ *client.Conn, err error) {
	if err != nil {
		w.failed.Store(&err)
	}
	w.finish()
	select { // a synchronous call waiting for a reply gets none
	case w.sync <- syncReply{err: wire.ErrConnectionLoss}:
	default:
	}
}

func (w *worker) finish() {
	if d := w.phase.Load(); d != nil {
		d.once.Do(func() { close(d.ch) })
	}
}

// call does one request synchronously (outside phases).
func (w *worker) call(op wire.OpCode, body wire.Record) (wire.ErrCode, []byte, error) {
	if err := w.c.Send(op, body, 0); err != nil {
		return 0, nil, err
	}
	r := <-w.sync
	if e := w.failed.Load(); e != nil {
		return 0, nil, *e
	}
	return r.err, r.body, nil
}

func (w *worker) reply(_ *client.Conn, r *client.Reply) {
	w.mu.Lock()
	gen := w.gen
	w.mu.Unlock()
	if gen == nil {
		w.sync <- syncReply{err: r.Err, body: append([]byte(nil), r.Body...)}
		return
	}
	if w.onReply != nil {
		w.onReply(w, r)
	}
	sentAt := r.Sent.UnixNano()
	if ws, we := w.windowStart.Load(), w.windowEnd.Load(); ws != 0 && sentAt >= ws && (we == 0 || sentAt < we) {
		h := w.hists[r.Op]
		if h == nil {
			h = new(Histogram)
			w.hists[r.Op] = h
		}
		h.Record(r.Latency)
		w.measured++
		if r.Err != wire.ErrOK {
			w.errs[r.Err]++
		}
	}
	w.done.Add(1)
	w.mu.Lock()
	if !w.stop.Load() && !w.exhausted {
		w.send(r.At)
	}
	over := (w.stop.Load() || w.exhausted) && w.done.Load() == w.sent
	w.mu.Unlock()
	if over {
		w.finish()
	}
}

// send sends the generator's next request, timing it from now; w.mu is
// held.
func (w *worker) send(now time.Time) bool {
	op, body, ok := w.gen(w)
	if !ok {
		w.exhausted = true
		return false
	}
	if err := w.c.SendAt(op, body, 0, now); err != nil {
		w.exhausted = true
		return false
	}
	w.sent++
	return true
}

// phaseSpec describes one phase: what to send, and for how long — a
// duration after a warmup, or until gen runs out (count phases).
type phaseSpec struct {
	name     string
	gen      func(w *worker) (wire.OpCode, wire.Record, bool)
	warmup   time.Duration
	duration time.Duration // 0: until gen is exhausted
	window   int           // requests in flight per connection
	onReply  func(w *worker, r *client.Reply)
	// expect is the total count of a count phase, for the progress line.
	expect int
}

// run runs one phase on every connection and gathers its figures.
func (p *pool) run(ps phaseSpec) (Phase, error) {
	for _, w := range p.workers {
		w.mu.Lock()
		w.gen, w.exhausted, w.measured = ps.gen, false, 0
		w.stop.Store(false)
		w.done.Store(0)
		w.sent = 0
		w.windowStart.Store(0)
		w.windowEnd.Store(0)
		w.hists = map[wire.OpCode]*Histogram{}
		w.errs = map[wire.ErrCode]int64{}
		w.phase.Store(&phaseDone{ch: make(chan struct{})})
		w.onReply = ps.onReply
		w.mu.Unlock()
	}
	defer func() {
		for _, w := range p.workers {
			w.mu.Lock()
			w.gen = nil // back to synchronous calls
			w.mu.Unlock()
		}
	}()
	start := time.Now()
	measureFrom := start
	if ps.duration > 0 {
		measureFrom = start.Add(ps.warmup)
	} else {
		for _, w := range p.workers {
			w.windowStart.Store(start.UnixNano())
		}
	}
	// Fill each connection's window. The handler may run meanwhile, so
	// the first sends happen under the same rule as later ones: stop when
	// the generator runs out.
	for _, w := range p.workers {
		w.mu.Lock()
		n := 0
		for n < ps.window && w.send(time.Now()) {
			n++
		}
		w.mu.Unlock()
		if n == 0 {
			w.finish()
		}
	}
	stopSampling := p.sample(ps, start, measureFrom)
	var measuredFor time.Duration
	if ps.duration > 0 {
		time.Sleep(time.Until(measureFrom))
		ms := time.Now()
		for _, w := range p.workers {
			w.windowStart.Store(ms.UnixNano())
		}
		time.Sleep(ps.duration)
		end := time.Now()
		for _, w := range p.workers {
			w.windowEnd.Store(end.UnixNano())
		}
		for _, w := range p.workers {
			w.mu.Lock()
			w.stop.Store(true)
			idle := w.done.Load() == w.sent
			w.mu.Unlock()
			if idle {
				w.finish()
			}
		}
		measuredFor = end.Sub(ms)
		if err := p.wait(time.Minute); err != nil {
			stopSampling()
			return Phase{}, fmt.Errorf("bench: %s: %w", ps.name, err)
		}
	} else {
		if err := p.wait(24 * time.Hour); err != nil {
			stopSampling()
			return Phase{}, fmt.Errorf("bench: %s: %w", ps.name, err)
		}
		measuredFor = time.Since(start)
	}
	res := Phase{Name: ps.name, Samples: stopSampling(), Latency: map[string]LatencyStats{}, Errors: map[string]int64{}}
	all := new(Histogram)
	byOp := map[wire.OpCode]*Histogram{}
	for _, w := range p.workers {
		if e := w.failed.Load(); e != nil {
			return res, fmt.Errorf("bench: %s: connection %d to %s failed: %w", ps.name, w.id, w.c.Addr, *e)
		}
		res.Ops += w.measured
		for op, h := range w.hists {
			if byOp[op] == nil {
				byOp[op] = new(Histogram)
			}
			byOp[op].Merge(h)
			all.Merge(h)
		}
		for code, n := range w.errs {
			res.Errors[code.String()] += n
		}
	}
	for op, h := range byOp {
		res.Latency[op.String()] = summarize(h)
	}
	res.Latency["all"] = summarize(all)
	res.Seconds = measuredFor.Seconds()
	if res.Seconds > 0 {
		res.OpsPerSec = float64(res.Ops) / res.Seconds
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return res, nil
}

// wait waits for every worker to finish its phase.
func (p *pool) wait(limit time.Duration) error {
	deadline := time.After(limit)
	for _, w := range p.workers {
		select {
		case <-w.phase.Load().ch:
		case <-deadline:
			return errors.New("requests still unanswered after the phase ended")
		}
	}
	for _, w := range p.workers {
		if e := w.failed.Load(); e != nil {
			return fmt.Errorf("connection %d to %s failed: %w", w.id, w.c.Addr, *e)
		}
	}
	return nil
}

// sample records throughput every Interval inside the measured window and
// keeps the progress line current. The returned function stops it and
// returns the samples.
func (p *pool) sample(ps phaseSpec, start, measureFrom time.Time) func() []float64 {
	var samples []float64
	stop := make(chan struct{})
	done := make(chan struct{})
	total := func() int64 {
		var n int64
		for _, w := range p.workers {
			n += w.done.Load()
		}
		return n
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		lastN, lastT := total(), time.Now()
		sampleN, sampleT := lastN, lastT
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				n := total()
				rate := float64(n-lastN) / now.Sub(lastT).Seconds()
				lastN, lastT = n, now
				if now.After(measureFrom) && now.Sub(sampleT) >= p.cfg.Interval {
					if sampleT.Before(measureFrom) {
						sampleN, sampleT = n, now // the first sample starts here
					} else {
						samples = append(samples, float64(n-sampleN)/now.Sub(sampleT).Seconds())
						sampleN, sampleT = n, now
					}
				}
				p.progress(ps, now.Sub(start), n, rate)
			}
		}
	}()
	return func() []float64 {
		close(stop)
		<-done
		if p.cfg.Progress != nil {
			fmt.Fprint(p.cfg.Progress, "\r\033[K")
		}
		return samples
	}
}

func (p *pool) progress(ps phaseSpec, elapsed time.Duration, n int64, rate float64) {
	if p.cfg.Progress == nil {
		return
	}
	var of string
	if ps.duration > 0 {
		of = fmt.Sprintf("%5.1fs/%.0fs", elapsed.Seconds(), (ps.warmup + ps.duration).Seconds())
		if elapsed < ps.warmup {
			of += " (warmup)"
		}
	} else {
		of = fmt.Sprintf("%d/%d ops %5.1fs", n, ps.expect, elapsed.Seconds())
	}
	fmt.Fprintf(p.cfg.Progress, "\r\033[K%-24s %s  %10.0f ops/s", ps.name, of, rate)
}

// Setup and cleanup, done with synchronous calls on the first connection.

// makeRoot creates the root path, refusing one that exists: the workload
// deletes its root at the end and must not take a user's data with it.
func (p *pool) makeRoot() error {
	w := p.workers[0]
	parts := strings.Split(strings.Trim(p.cfg.Root, "/"), "/")
	path := ""
	for i, part := range parts {
		path += "/" + part
		code, _, err := w.call(wire.OpCreate, &wire.CreateRequest{Path: path, ACL: openACL})
		if err != nil {
			return err
		}
		if code == wire.ErrNodeExists && i == len(parts)-1 {
			return fmt.Errorf("bench: %s already exists; pick another --root, or delete it (zkbench removes its root when done)", path)
		}
		if code != wire.ErrOK && code != wire.ErrNodeExists {
			return fmt.Errorf("bench: creating %s: %v", path, code)
		}
	}
	return nil
}

// deleteAll deletes paths, pipelined over every connection; paths already
// gone are fine.
func (p *pool) deleteAll(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	var next atomic.Int64
	_, err := p.run(phaseSpec{name: "cleanup", window: 64, expect: len(paths),
		gen: func(w *worker) (wire.OpCode, wire.Record, bool) {
			i := int(next.Add(1) - 1)
			if i >= len(paths) {
				return 0, nil, false
			}
			w.del = wire.DeleteRequest{Path: paths[i], Version: -1}
			return wire.OpDelete, &w.del, true
		}})
	return err
}

// removeRoot deletes the workload's znodes and then the root itself.
func (p *pool) removeRoot(paths []string) error {
	if err := p.deleteAll(paths); err != nil {
		return err
	}
	code, _, err := p.workers[0].call(wire.OpDelete, &wire.DeleteRequest{Path: p.cfg.Root, Version: -1})
	if err != nil {
		return err
	}
	if code != wire.ErrOK && code != wire.ErrNoNode {
		return fmt.Errorf("bench: deleting %s: %v (something else wrote under it)", p.cfg.Root, code)
	}
	return nil
}

var openACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}
