package check

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// Options are a run's settings.
type Options struct {
	Impl      string // zkd, zookeeper, mixed, or one per member (see Impls)
	Binary    string // the zkd binary
	Dir       string // where the members' directories go (kept)
	Servers   int
	Observers int // the last Observers of the Servers members observe
	// ObserverMasters has the observers sync from the followers
	// (observerMasterPort, the port after the election port).
	ObserverMasters bool
	BasePort        int // client port; the quorum and election ports follow
	Duration        time.Duration
	Clients         int // per workload
	Keys            int // registers
	Workloads       []string
	// BulkSize is the bulk workload's bytes per write (256 KB when 0).
	BulkSize int
	// SyncLimit is the members' syncLimit in ticks of 500 ms (5 when 0).
	SyncLimit int
	// Groups, when set, make the members count hierarchical quorums:
	// group i+1 holds the members Groups[i] lists ("1:2:3"). Weights
	// are the members' weights where not 1.
	Groups  []string
	Weights map[int]int
	Faults  []string
	Hold    time.Duration // how long a fault lasts
	Rest    time.Duration // the quiet time between faults
	Seed    int64
	// Pause is each client's wait between two operations: 0 for as fast
	// as the ensemble answers, more to spare the machine's CPU.
	Pause time.Duration
	// Hop, when set, is each client's mean time between two hops: its
	// connection dropped with requests in flight and its session carried
	// to the next member, as a client whose network failed. 0: each
	// client stays on its own member, and moves only when it fails.
	Hop time.Duration
	Env []string // for each zkd process (ZKD_FAULTS)
	// Connect, when set, are the client addresses of a running ensemble
	// to check instead of starting one: no faults (zkbench does not own
	// its processes), and its znodes must not hold an earlier run's.
	Connect []string
	Log     io.Writer
	// Stop, closed, ends the run early: the servers are stopped and the
	// rules removed, and Run returns an error.
	Stop <-chan struct{}
}

// Workloads are the workloads a run has unless told otherwise.
var Workloads = []string{"register", "set", "counter", "ids", "sessions", "queue", "fifo", "watch", "cwatch", "pwatch"}

const defaultBulkSize = 256 << 10

// ExtraWorkloads are the workloads there are besides: bulk writes a
// member's disk as fast as it takes them, tens of MB/s.
var ExtraWorkloads = []string{"bulk"}

// Verdict is one workload's result.
type Verdict struct {
	Workload string
	Valid    bool
	Summary  string
	// Visualization is the HTML file porcupine drew of a history that is
	// not linearizable; History the text of the registers' histories that
	// are not.
	Visualization string
	History       string
}

// Report is a run's results.
type Report struct {
	Verdicts []Verdict
	Faults   []FaultEvent
	Ops      []Op
	Start    time.Time
	Hops     int64 // the clients' moves to another member (Options.Hop)
}

// Valid reports whether every workload passed.
func (r *Report) Valid() bool {
	for _, v := range r.Verdicts {
		if !v.Valid {
			return false
		}
	}
	return len(r.Verdicts) > 0
}

// Run starts the ensemble, runs the workloads under the faults for the
// duration, heals everything, waits for the ensemble to be whole again,
// and checks the history.
func Run(o Options) (*Report, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		}
	}
	all := append(slices.Clone(Workloads), ExtraWorkloads...)
	for _, w := range o.Workloads {
		if !slices.Contains(all, w) {
			return nil, fmt.Errorf("check: no workload %q (%s)", w, strings.Join(all, ", "))
		}
	}
	if o.Observers < 0 || o.Observers >= o.Servers && len(o.Connect) == 0 {
		return nil, fmt.Errorf("check: %d observers of %d members: at least one member must vote", o.Observers, o.Servers)
	}
	c := &Cluster{Impl: o.Impl, Binary: o.Binary, Dir: o.Dir, N: o.Servers, Observers: o.Observers, ClientPort: o.BasePort,
		QuorumPort: o.BasePort + 1, ElectionPort: o.BasePort + 2, TickMs: 500, SyncLimit: o.SyncLimit, Groups: o.Groups, Weights: o.Weights, Env: o.Env, external: o.Connect}
	if o.ObserverMasters {
		c.ObserverMasterPort = o.BasePort + 3
	}
	if len(o.Connect) > 0 {
		if len(o.Faults) > 0 {
			return nil, fmt.Errorf("check: faults need servers zkbench starts; with --connect, --nemesis none")
		}
		c.N, c.Observers = len(o.Connect), 0
		if err := freshRoots(o.Connect, 30*time.Second); err != nil {
			return nil, err
		}
	}
	var net *network
	needNet := false
	for _, f := range o.Faults {
		needNet = needNet || isNetworkFault(f)
		c.diskFaults = c.diskFaults || isDiskFault(f)
	}
	if len(o.Connect) == 0 {
		impls, err := Impls(o.Impl, o.Servers)
		if err != nil {
			return nil, err
		}
		switch {
		case c.diskFaults && !slices.Contains(impls, "zkd"):
			return nil, fmt.Errorf("check: the disk faults need zkd's fault hook, and Apache ZooKeeper has none: they need zkd members")
		case slices.Contains(o.Faults, FaultPowerCutAll) && slices.Contains(impls, "zookeeper"):
			return nil, fmt.Errorf("check: %s needs zkd's disk fault hook on every member, and Apache ZooKeeper has none", FaultPowerCutAll)
		}
	}
	if needNet {
		if err := CanPartition(); err != nil {
			return nil, err
		}
		removeStaleRules()
		var err error
		if net, err = newNetwork(c); err != nil {
			return nil, err
		}
		defer net.teardown()
		c.gids = true
	}
	if c.Observers > 0 {
		logf("starting %d %s servers, the last %d of them observers, in %s", c.N, o.Impl, c.Observers, o.Dir)
	} else {
		logf("starting %d %s servers in %s", c.N, o.Impl, o.Dir)
	}
	if err := c.Start(90 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	defer c.Stop()
	timeout := 4 * time.Second
	if err := setup(c.Addrs(), 30*time.Second); err != nil {
		return nil, fmt.Errorf("check: creating the workloads' znodes: %w", err)
	}
	rep := &Report{Start: time.Now()}
	h := &history{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var clients []*client
	id := 0
	for _, w := range o.Workloads {
		for i := 0; i < o.Clients; i++ {
			cl := &client{id: id, addrs: []string{c.Addr(1 + id%c.N)}, timeout: timeout, pause: o.Pause}
			if o.Hop > 0 {
				// Every member, its own first.
				for i := 1; i < c.N; i++ {
					cl.addrs = append(cl.addrs, c.Addr(1+(id+i)%c.N))
				}
			}
			clients = append(clients, cl)
			rng := rand.New(rand.NewSource(o.Seed + int64(id)))
			wg.Add(1)
			switch w {
			case "register":
				go func() { defer wg.Done(); registerClient(cl, o.Keys, rep.Start, rng, h, stop) }()
			case "set":
				go func() { defer wg.Done(); setClient(cl, h, stop) }()
			case "ids":
				go func() { defer wg.Done(); idsClient(cl, h, stop) }()
			case "counter":
				go func() { defer wg.Done(); counterClient(cl, h, stop) }()
			case "sessions":
				go func() { defer wg.Done(); sessionsClient(cl, rng, h, stop) }()
			case "queue":
				go func() { defer wg.Done(); queueClient(cl, rng, h, stop) }()
			case "fifo":
				go func() { defer wg.Done(); fifoClient(cl, rng, h, stop) }()
			case "watch":
				go func() { defer wg.Done(); watchClient(cl, o.Keys, rng, h, stop) }()
			case "cwatch":
				go func() { defer wg.Done(); cwatchClient(cl, o.Keys, rng, h, stop) }()
			case "pwatch":
				go func() { defer wg.Done(); pwatchClient(cl, o.Keys, rng, h, stop) }()
			case "bulk":
				go func() { defer wg.Done(); bulkClient(cl, cmp.Or(o.BulkSize, defaultBulkSize), h, stop) }()
			default:
				wg.Done()
				return nil, fmt.Errorf("check: no workload %q (%s)", w, strings.Join(all, ", "))
			}
			id++
		}
	}
	var hops atomic.Int64
	if o.Hop > 0 {
		for _, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hops.Add(cl.hop(o.Hop, rand.New(rand.NewSource(o.Seed+1_000_000+int64(cl.id))), stop))
			}()
		}
	}
	faultsDone := make(chan []FaultEvent, 1)
	go func() {
		faultsDone <- nemesis(c, net, o.Faults, o.Hold, o.Rest, rand.New(rand.NewSource(o.Seed)), stop, logf)
	}()
	progress := time.NewTicker(5 * time.Second)
	end := time.After(o.Duration)
	interrupted := false
	for waiting := true; waiting; {
		select {
		case <-end:
			waiting = false
		case <-o.Stop:
			waiting, interrupted = false, true
		case <-progress.C:
			h.mu.Lock()
			n := len(h.ops)
			h.mu.Unlock()
			logf("%s of %s, %d operations", time.Since(rep.Start).Round(time.Second), o.Duration, n)
		}
	}
	progress.Stop()
	close(stop)
	rep.Faults = <-faultsDone
	wg.Wait()
	for _, cl := range clients {
		cl.close()
	}
	rep.Hops = hops.Load()
	if interrupted {
		return nil, fmt.Errorf("check: interrupted")
	}
	// Everything healed: every member up, none paused, no cut.
	for i := 1; i <= c.N; i++ {
		c.Resume(i)
		if err := c.Restart(i); err != nil {
			return nil, err
		}
	}
	if err := c.WaitHealthy(90 * time.Second); err != nil {
		return nil, err
	}
	rep.Ops = h.ops
	if err := writeHistory(filepath.Join(o.Dir, "history.jsonl"), h.ops, rep.Faults); err != nil {
		logf("writing the history: %v", err)
	}
	for _, w := range o.Workloads {
		switch w {
		case "register":
			rep.Verdicts = append(rep.Verdicts, checkRegister(h.ops, filepath.Join(o.Dir, "register.html")))
		case "fifo":
			rep.Verdicts = append(rep.Verdicts, checkFIFO(h.ops))
		case "watch":
			rep.Verdicts = append(rep.Verdicts, checkWatch(h.ops))
		case "cwatch":
			rep.Verdicts = append(rep.Verdicts, checkCWatch(h.ops))
		case "pwatch":
			rep.Verdicts = append(rep.Verdicts, checkPWatch(h.ops))
		case "set":
			final, err := finalChildren(c.Addrs(), setRoot, 30*time.Second)
			if err != nil {
				return nil, fmt.Errorf("check: the set's final read: %w", err)
			}
			var names []string
			for e := range final {
				names = append(names, e)
			}
			sort.Strings(names)
			os.WriteFile(filepath.Join(o.Dir, "set-final.txt"), []byte(strings.Join(names, "\n")+"\n"), 0o644)
			rep.Verdicts = append(rep.Verdicts, checkSet(h.ops, final))
		case "ids":
			final, err := finalChildren(c.Addrs(), idsRoot, 30*time.Second)
			if err != nil {
				return nil, fmt.Errorf("check: the ids' final read: %w", err)
			}
			rep.Verdicts = append(rep.Verdicts, checkIDs(h.ops, final))
		case "sessions":
			// The sessions whose close got no answer expire within
			// their timeout; then no ephemeral may be left.
			time.Sleep(timeout + 2*time.Second)
			final, err := finalChildren(c.Addrs(), ephRoot, 30*time.Second)
			if err != nil {
				return nil, fmt.Errorf("check: the ephemerals' final read: %w", err)
			}
			rep.Verdicts = append(rep.Verdicts, checkSessions(h.ops, final))
		case "queue":
			final, err := finalQueue(c.Addrs(), 30*time.Second)
			if err != nil {
				return nil, fmt.Errorf("check: the queue's final read: %w", err)
			}
			rep.Verdicts = append(rep.Verdicts, checkQueue(h.ops, final))
		case "counter":
			final, err := finalCounter(c.Addrs(), 30*time.Second)
			if err != nil {
				return nil, fmt.Errorf("check: the counter's final read: %w", err)
			}
			rep.Verdicts = append(rep.Verdicts, checkCounter(h.ops, final))
		case "bulk":
			final, err := finalBulk(c.Addrs(), 30*time.Second)
			if err != nil {
				return nil, fmt.Errorf("check: the bulk znodes' final read: %w", err)
			}
			rep.Verdicts = append(rep.Verdicts, checkBulk(h.ops, final, cmp.Or(o.BulkSize, defaultBulkSize)))
		}
	}
	return rep, nil
}

// writeHistory writes every operation and fault, one JSON object a line,
// in the order they began.
func writeHistory(path string, ops []Op, faults []FaultEvent) error {
	type line struct {
		At    time.Time   `json:"at"`
		Op    *Op         `json:"op,omitempty"`
		Fault *FaultEvent `json:"fault,omitempty"`
	}
	var lines []line
	for i := range ops {
		lines = append(lines, line{At: ops[i].Call, Op: &ops[i]})
	}
	for i := range faults {
		lines = append(lines, line{At: faults[i].Start, Fault: &faults[i]})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].At.Before(lines[j].At) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// The register's porcupine model. Inputs and outputs are regInput and
// regOutput; the state is the register's value.
type regInput struct {
	kind     string // read, write, cas
	from, to int
}

type regOutput struct {
	value   int // read: the value
	ok      bool
	unknown bool
}

func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[int][]porcupine.Operation{}
			var keys []int
			for _, op := range history {
				k := op.Metadata.(int)
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			sort.Ints(keys)
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() interface{} { return 0 },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			s, in, out := state.(int), input.(regInput), output.(regOutput)
			switch in.kind {
			case "read":
				return out.value == s, s
			case "write":
				return true, in.to
			default: // cas
				switch {
				case out.unknown:
					if s == in.from {
						return true, in.to
					}
					return true, s
				case out.ok:
					return s == in.from, in.to
				default: // refused at its version: no effect
					return true, s
				}
			}
		},
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(regInput), output.(regOutput)
			switch {
			case in.kind == "read":
				return fmt.Sprintf("read → %d", out.value)
			case in.kind == "write" && out.unknown:
				return fmt.Sprintf("write %d → ?", in.to)
			case in.kind == "write":
				return fmt.Sprintf("write %d", in.to)
			case out.unknown:
				return fmt.Sprintf("cas %d→%d → ?", in.from, in.to)
			}
			return fmt.Sprintf("cas %d→%d → %v", in.from, in.to, out.ok)
		},
		DescribeOperationMetadata: func(info interface{}) string { return fmt.Sprintf("register %d", info.(int)) },
		DescribeState:             func(state interface{}) string { return fmt.Sprint(state.(int)) },
	}
}

// checkRegister checks the register operations for linearizability. An
// operation without an answer may have happened at any time after its
// call, or never: it is given no return time.
func checkRegister(ops []Op, htmlPath string) Verdict {
	var hist []porcupine.Operation
	counts := map[string]int{}
	for _, op := range ops {
		var in regInput
		var out regOutput
		switch op.Kind {
		case "read":
			if op.Outcome != OK {
				continue // a read that failed tells nothing
			}
			in, out = regInput{kind: "read"}, regOutput{value: op.Value}
		case "write":
			if op.Outcome == Failed {
				continue
			}
			in, out = regInput{kind: "write", to: op.Value}, regOutput{ok: true, unknown: op.Outcome == Unknown}
		case "cas":
			in = regInput{kind: "cas", from: op.From, to: op.Value}
			out = regOutput{ok: op.Outcome == OK, unknown: op.Outcome == Unknown}
		default:
			continue
		}
		ret := op.Return.UnixNano()
		if out.unknown {
			ret = math.MaxInt64
		}
		counts[op.Kind+"/"+op.Outcome.String()]++
		hist = append(hist, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call.UnixNano(),
			Output: out, Return: ret, Metadata: op.Key})
	}
	model := registerModel()
	// Each register alone first, which needs little memory; the
	// visualization, which keeps every partial linearization, only of
	// the registers that fail.
	res := porcupine.Ok
	var failing []porcupine.Operation
	for _, part := range model.Partition(hist) {
		switch porcupine.CheckOperationsTimeout(model, part, time.Minute) {
		case porcupine.Illegal:
			res = porcupine.Illegal
			failing = append(failing, part...)
		case porcupine.Unknown:
			if res == porcupine.Ok {
				res = porcupine.Unknown
			}
		}
	}
	v := Verdict{Workload: "register", Valid: res == porcupine.Ok}
	v.Summary = fmt.Sprintf("%d operations checked (%s): %s", len(hist), countsString(counts), map[porcupine.CheckResult]string{
		porcupine.Ok: "linearizable", porcupine.Illegal: "NOT linearizable", porcupine.Unknown: "the check timed out"}[res])
	if res == porcupine.Illegal {
		_, info := porcupine.CheckOperationsVerbose(model, failing, time.Minute)
		if err := porcupine.VisualizePath(model, info, htmlPath); err == nil {
			v.Visualization = htmlPath
		}
		// The registers whose histories fail, as text, each op with its
		// times relative to the first op's call.
		var text strings.Builder
		for _, part := range model.Partition(failing) {
			start := part[0].Call
			for _, op := range part {
				if op.Call < start {
					start = op.Call
				}
			}
			sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
			fmt.Fprintf(&text, "register %d: not linearizable (%d operations; times in ms from the first call)\n", part[0].Metadata.(int), len(part))
			for _, op := range part {
				ret := "never"
				if op.Return != math.MaxInt64 {
					ret = fmt.Sprintf("%10.3f", float64(op.Return-start)/1e6)
				}
				fmt.Fprintf(&text, "  client %2d  %10.3f – %s  %s\n", op.ClientId, float64(op.Call-start)/1e6, ret,
					model.DescribeOperation(op.Input, op.Output))
			}
		}
		txt := strings.TrimSuffix(htmlPath, ".html") + ".txt"
		if os.WriteFile(txt, []byte(text.String()), 0o644) == nil {
			v.History = txt
		}
	}
	return v
}

// checkSet checks the set: every element whose add was acknowledged is in
// the final read, and every element there was added by someone.
func checkSet(ops []Op, final map[string]bool) Verdict {
	attempted := map[string]Outcome{}
	for _, op := range ops {
		if op.Kind == "add" {
			attempted[op.Elem] = op.Outcome
		}
	}
	var lost, phantom []string
	okCount, unknownPresent, unknown := 0, 0, 0
	for e, o := range attempted {
		switch o {
		case OK:
			okCount++
			if !final[e] {
				lost = append(lost, e)
			}
		case Unknown:
			unknown++
			if final[e] {
				unknownPresent++
			}
		case Failed:
			if final[e] {
				phantom = append(phantom, e+" (its add failed)")
			}
		}
	}
	for e := range final {
		if _, ok := attempted[e]; !ok {
			phantom = append(phantom, e+" (never added)")
		}
	}
	sort.Strings(lost)
	sort.Strings(phantom)
	v := Verdict{Workload: "set", Valid: len(lost) == 0 && len(phantom) == 0}
	v.Summary = fmt.Sprintf("%d adds acknowledged, %d present at the end; %d without an answer, %d of them present; %d lost, %d unexpected",
		okCount, len(final), unknown, unknownPresent, len(lost), len(phantom))
	v.Summary += listed("lost: ", lost, 10, ", ")
	v.Summary += listed("unexpected: ", phantom, 10, ", ")
	return v
}

// checkIDs checks the unique ids: no id given twice, every id whose
// create was acknowledged still there at the end, and nothing there that
// no create was given or may have made.
func checkIDs(ops []Op, final map[string]bool) Verdict {
	given := map[string]int{}
	var dup, lost []string
	okCount, unknown := 0, 0
	for _, op := range ops {
		if op.Kind != "id" {
			continue
		}
		switch op.Outcome {
		case OK:
			okCount++
			name := strings.TrimPrefix(op.Elem, idsRoot+"/")
			if given[name]++; given[name] == 2 {
				dup = append(dup, name)
			}
			if !final[name] {
				lost = append(lost, name)
			}
		case Unknown:
			unknown++
		}
	}
	// An unanswered create may have made one id each.
	extra := 0
	for name := range final {
		if given[name] == 0 {
			extra++
		}
	}
	sort.Strings(dup)
	sort.Strings(lost)
	v := Verdict{Workload: "ids", Valid: len(dup) == 0 && len(lost) == 0 && extra <= unknown}
	v.Summary = fmt.Sprintf("%d ids given, %d present at the end; %d creates without an answer, %d ids nobody was given; %d given twice, %d lost",
		okCount, len(final), unknown, extra, len(dup), len(lost))
	v.Summary += listed("twice: ", dup, 10, ", ")
	v.Summary += listed("lost: ", lost, 10, ", ")
	return v
}

// checkCounter checks the counter: its final value is the number of
// increments that happened, so at least those acknowledged and at most
// those plus the unanswered ones; and no two acknowledged increments
// wrote the same value.
func checkCounter(ops []Op, final int) Verdict {
	okCount, unknown := 0, 0
	wrote := map[int]int{}
	var dup []string
	for _, op := range ops {
		if op.Kind != "incr" {
			continue
		}
		switch op.Outcome {
		case OK:
			okCount++
			if wrote[op.Value]++; wrote[op.Value] == 2 {
				dup = append(dup, strconv.Itoa(op.Value))
			}
		case Unknown:
			unknown++
		}
	}
	v := Verdict{Workload: "counter", Valid: final >= okCount && final <= okCount+unknown && len(dup) == 0}
	v.Summary = fmt.Sprintf("%d increments acknowledged, %d without an answer; the counter ends at %d (must be %d to %d); %d values written twice",
		okCount, unknown, final, okCount, okCount+unknown, len(dup))
	if len(dup) > 0 {
		v.Summary += ": " + strings.Join(first(dup, 10), ", ")
	}
	if final < 0 {
		v.Valid = false
		v.Summary = fmt.Sprintf("%d increments acknowledged; the counter's znode, whose create was acknowledged, is gone", okCount)
	}
	return v
}

// checkBulk checks that each bulk znode ends holding its client's last
// acknowledged write or one it tried after (final: the write each znode
// ends with, by client; 0 for none). size is the bytes of each write.
func checkBulk(ops []Op, final map[int]int, size int) Verdict {
	type tries struct{ lastOK, lastTried int }
	by := map[int]*tries{}
	failed := map[[2]int]bool{}
	okCount, unknown := 0, 0
	for _, op := range ops {
		if op.Kind != "bulk" {
			continue
		}
		t := by[op.Client]
		if t == nil {
			t = &tries{}
			by[op.Client] = t
		}
		switch op.Outcome {
		case OK:
			okCount++
			t.lastOK = max(t.lastOK, op.Value)
			t.lastTried = max(t.lastTried, op.Value)
		case Unknown:
			unknown++
			t.lastTried = max(t.lastTried, op.Value)
		case Failed:
			failed[[2]int{op.Client, op.Value}] = true
		}
	}
	var wrong []string
	clients := slices.Sorted(maps.Keys(by))
	for _, id := range clients {
		t, f := by[id], final[id]
		switch {
		case f < t.lastOK:
			wrong = append(wrong, fmt.Sprintf("client %d's znode holds write %d, after write %d was acknowledged", id, f, t.lastOK))
		case f > t.lastTried || failed[[2]int{id, f}]:
			wrong = append(wrong, fmt.Sprintf("client %d's znode holds write %d, which failed or was never sent (last sent: %d)", id, f, t.lastTried))
		}
	}
	v := Verdict{Workload: "bulk", Valid: len(wrong) == 0}
	v.Summary = fmt.Sprintf("%d writes acknowledged (%d MB), %d without an answer, by %d clients; %d znodes end before their last acknowledged write or on one never made",
		okCount, okCount*size>>20, unknown, len(clients), len(wrong))
	v.Summary += listed(": ", wrong, 10, "; ")
	return v
}

// checkSessions checks that an ephemeral is there while its session
// lives and gone once its session's close is acknowledged, and that none
// is left when every session has closed or expired.
func checkSessions(ops []Op, final map[string]bool) Verdict {
	counts := map[string]int{}
	var bad []string
	for _, op := range ops {
		if !strings.HasPrefix(op.Kind, "eph-") {
			continue
		}
		counts[op.Kind+"/"+op.Outcome.String()]++
		if (op.Kind == "eph-alive" || op.Kind == "eph-closed") && op.Outcome == Failed {
			bad = append(bad, op.Elem+": "+op.Err)
		}
	}
	var left []string
	for e := range final {
		left = append(left, e)
	}
	sort.Strings(left)
	v := Verdict{Workload: "sessions", Valid: len(bad) == 0 && len(left) == 0}
	v.Summary = fmt.Sprintf("%s; %d wrong, %d ephemerals left at the end", countsString(counts), len(bad), len(left))
	v.Summary += listed("", bad, 5, "; ")
	v.Summary += listed("left: ", left, 10, ", ")
	return v
}

// checkQueue checks the queue: every element whose enqueue was
// acknowledged was dequeued once or is still there, none was dequeued
// twice or is still there after it was dequeued, and nothing came out or
// is there that no enqueue could have put in.
func checkQueue(ops []Op, final map[string]bool) Verdict {
	enq := map[string]Outcome{}
	taken := map[string]int{}
	maybeTaken := map[string]bool{}
	for _, op := range ops {
		switch {
		case op.Kind == "enqueue":
			enq[op.Elem] = op.Outcome
		case op.Kind == "dequeue" && op.Outcome == OK:
			taken[op.Elem]++
		case op.Kind == "dequeue" && op.Outcome == Unknown:
			maybeTaken[op.Elem] = true
		}
	}
	var lost, twice, back, phantom []string
	acked := 0
	for e, o := range enq {
		if o != OK {
			continue
		}
		acked++
		if taken[e] == 0 && !final[e] && !maybeTaken[e] {
			lost = append(lost, e)
		}
	}
	for e, n := range taken {
		if n > 1 {
			twice = append(twice, e)
		}
		if final[e] {
			back = append(back, e)
		}
		if o, ok := enq[e]; !ok || o == Failed {
			phantom = append(phantom, e)
		}
	}
	for e := range final {
		if o, ok := enq[e]; !ok || o == Failed {
			phantom = append(phantom, e)
		}
	}
	for _, l := range [][]string{lost, twice, back, phantom} {
		sort.Strings(l)
	}
	n := 0
	for _, c := range taken {
		n += c
	}
	v := Verdict{Workload: "queue", Valid: len(lost)+len(twice)+len(back)+len(phantom) == 0}
	v.Summary = fmt.Sprintf("%d enqueues acknowledged, %d dequeued, %d left; %d lost, %d dequeued twice, %d there after their dequeue, %d never enqueued",
		acked, n, len(final), len(lost), len(twice), len(back), len(phantom))
	v.Summary += listed("lost: ", lost, 10, ", ") + listed("twice: ", twice, 10, ", ") +
		listed("back: ", back, 10, ", ") + listed("never enqueued: ", phantom, 10, ", ")
	return v
}

// listed is "; " and label and up to n of items joined by sep, or
// nothing when there are none: a verdict's examples.
func listed(label string, items []string, n int, sep string) string {
	if len(items) == 0 {
		return ""
	}
	return "; " + label + strings.Join(first(items, n), sep)
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

func countsString(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// writeKinds are the operations that change the tree: an acknowledged
// one shows the ensemble taking writes.
var writeKinds = map[string]bool{"write": true, "cas": true, "add": true, "bulk": true, "id": true, "incr": true,
	"eph-create": true, "enqueue": true, "dequeue": true, "fifo-write": true, "watch-write": true,
	"cwatch-create": true, "cwatch-delete": true, "cwatch-ephemeral": true, "pwatch-write": true}

// StallSettle is how long after a fault's end its spells without an
// acknowledged write still count as its: the ensemble may need an
// election, or a sync, once the fault is undone.
const StallSettle = 3 * time.Second

// Stall is what the faults of one kind did to the writes: the longest
// spell without an acknowledged write (of any client) from each fault's
// start to StallSettle after its end, or to the next fault's start or the
// workloads' last write if sooner.
type Stall struct {
	Fault string
	Made  int
	// Longest is the longest spell of all, At when it began (from its
	// fault's start); Median is the median fault's longest spell.
	Longest, At, Median time.Duration
}

// Stalls is what each kind of fault made did to the writes, in the order
// the kinds were first made.
func Stalls(r *Report) []Stall {
	// The workloads' last write sent ends every spell: after it no
	// client tries to write.
	var acked []time.Time
	var last time.Time
	for _, op := range r.Ops {
		if !writeKinds[op.Kind] {
			continue
		}
		if op.Outcome == OK {
			acked = append(acked, op.Return)
		}
		if op.Call.After(last) {
			last = op.Call
		}
	}
	slices.SortFunc(acked, func(a, b time.Time) int { return a.Compare(b) })
	type spell struct{ d, at time.Duration }
	var kinds []string
	spells := map[string][]spell{}
	for i, f := range r.Faults {
		if f.Err != "" {
			continue
		}
		from, to := f.Start, f.End.Add(StallSettle)
		if i+1 < len(r.Faults) && r.Faults[i+1].Start.Before(to) {
			to = r.Faults[i+1].Start
		}
		if last.Before(to) {
			to = last
		}
		if !from.Before(to) {
			continue
		}
		// The longest spell within [from, to]: before the first write
		// acknowledged in it, between two, and after the last.
		var longest spell
		prev := from
		for j, _ := slices.BinarySearchFunc(acked, from, func(a, b time.Time) int { return a.Compare(b) }); ; j++ {
			next := to
			if j < len(acked) && acked[j].Before(to) {
				next = acked[j]
			}
			if d := next.Sub(prev); d > longest.d {
				longest = spell{d, prev.Sub(from)}
			}
			if next.Equal(to) {
				break
			}
			prev = next
		}
		if spells[f.Name] == nil {
			kinds = append(kinds, f.Name)
		}
		spells[f.Name] = append(spells[f.Name], longest)
	}
	out := make([]Stall, 0, len(kinds))
	for _, k := range kinds {
		ss := spells[k]
		slices.SortFunc(ss, func(a, b spell) int { return cmp.Compare(a.d, b.d) })
		top := ss[len(ss)-1]
		out = append(out, Stall{Fault: k, Made: len(ss), Longest: top.d, At: top.at, Median: ss[len(ss)/2].d})
	}
	return out
}

// WriteReport prints the verdicts, the faults and what happened to the
// operations, as a table.
func WriteReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "faults:\n")
	if len(r.Faults) > 20 {
		// A long run: how many of each, the list in history.jsonl.
		made, not := map[string]int{}, map[string]int{}
		var names []string
		for _, f := range r.Faults {
			if made[f.Name]+not[f.Name] == 0 {
				names = append(names, f.Name)
			}
			if f.Err != "" {
				not[f.Name]++
			} else {
				made[f.Name]++
			}
		}
		for _, n := range names {
			fmt.Fprintf(w, "  %-18s %4d made", n, made[n])
			if not[n] > 0 {
				fmt.Fprintf(w, ", %d could not be", not[n])
			}
			fmt.Fprintln(w)
		}
	}
	for _, f := range r.Faults {
		if len(r.Faults) > 20 {
			break
		}
		status := fmt.Sprintf("%6.1fs–%6.1fs", f.Start.Sub(r.Start).Seconds(), f.End.Sub(r.Start).Seconds())
		if f.Detail != "" {
			status += "  " + f.Detail
		}
		if f.Err != "" {
			status += "  not made: " + f.Err
		}
		// The width applies to the whole list only once it is a string
		// (%-9v pads each member).
		fmt.Fprintf(w, "  %-18s %-9s %s\n", f.Name, fmt.Sprint(f.Target), status)
	}
	if stalls := Stalls(r); len(stalls) > 0 {
		fmt.Fprintf(w, "longest spell without an acknowledged write, from a fault's start to %v after its end:\n", StallSettle)
		for _, st := range stalls {
			fmt.Fprintf(w, "  %-18s %6.2fs, %.2fs into its fault; the median fault's %.2fs\n", st.Fault,
				st.Longest.Seconds(), st.At.Seconds(), st.Median.Seconds())
		}
	}
	if r.Hops > 0 {
		fmt.Fprintf(w, "clients dropped their connection and moved to another member %d times\n", r.Hops)
	}
	fmt.Fprintf(w, "workloads:\n")
	for _, v := range r.Verdicts {
		verdict := "PASS"
		if !v.Valid {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %-9s %s  %s\n", v.Workload, verdict, v.Summary)
		if v.Visualization != "" {
			fmt.Fprintf(w, "            the history, drawn: %s\n", v.Visualization)
		}
		if v.History != "" {
			fmt.Fprintf(w, "            the registers that fail, as text: %s\n", v.History)
		}
	}
}
