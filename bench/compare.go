package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"zkd/bench/nullserver"
	"zkd/bench/zkref"
)

// Server kinds compare can start.
const (
	KindZkd       = "zkd"
	KindZooKeeper = "zookeeper"
	KindNull      = "null" // the do-nothing server, in this process
)

// Running is a server compare started.
type Running struct {
	Kind string
	Addr string
	PID  int // 0 when it runs inside this process
	Dir  string
	stop func() error
}

// Stop stops the server (SIGKILL for processes: everything acknowledged
// is on disk, which is what a restart must find).
func (r *Running) Stop() error { return r.stop() }

// PeakRSS is the server's peak resident memory in bytes (VmHWM), 0 when
// unknown.
func (r *Running) PeakRSS() int64 {
	if r.PID == 0 {
		return 0
	}
	return procMemory(r.PID, "VmHWM:")
}

// procMemory is a line of /proc/PID/status given in kB (VmRSS:, VmHWM:),
// in bytes; 0 when it cannot be read.
func procMemory(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// StartServer starts a server of kind on a free loopback port with its data
// in dir/data, with the zoo.cfg settings in cfg, on the CPUs listed (all,
// when none are).
func StartServer(kind, dir, zkdBin string, cfg map[string]string, cpus []int) (*Running, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	switch kind {
	case KindZooKeeper:
		if err := zkref.Available(); err != nil {
			return nil, fmt.Errorf("%v: install it with `apt-get install zookeeper default-jre-headless` (make test does)", err)
		}
		s, err := zkref.Start(dir, zkref.Options{Config: cfg, StartProcess: func(cmd *exec.Cmd) error {
			return withCPUs(cpus, cmd.Start)
		}})
		if err != nil {
			return nil, err
		}
		return &Running{Kind: kind, Addr: s.Addr, PID: s.PID(), Dir: dir, stop: s.Stop}, nil
	case KindNull:
		s, err := nullserver.Start("127.0.0.1:0", 1024)
		if err != nil {
			return nil, err
		}
		return &Running{Kind: kind, Addr: s.Addr(), Dir: dir, stop: func() error { s.Close(); return nil }}, nil
	case KindZkd:
		return startZkd(dir, zkdBin, cfg, cpus)
	}
	if bin, ok := strings.CutPrefix(kind, KindZkd+"="); ok {
		// Another zkd build, to compare two versions side by side.
		return startZkd(dir, bin, cfg, cpus)
	}
	return nil, fmt.Errorf("bench: no server kind %q (zkd, zkd=PATH, zookeeper, null)", kind)
}

func startZkd(dir, bin string, extra map[string]string, cpus []int) (*Running, error) {
	port, err := zkref.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := map[string]string{"tickTime": "2000", "dataDir": filepath.Join(dir, "data"),
		"clientPort": strconv.Itoa(port), "clientPortAddress": "127.0.0.1"}
	for k, v := range extra {
		cfg[k] = v
	}
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(zkref.RenderConfig(cfg)), 0o644); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := withCPUs(cpus, cmd.Start); err != nil {
		return nil, fmt.Errorf("bench: starting zkd (%s): %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	r := &Running{Kind: KindZkd, Addr: fmt.Sprintf("127.0.0.1:%d", port), PID: cmd.Process.Pid, Dir: dir}
	r.stop = func() error {
		cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			return errors.New("bench: zkd did not exit")
		}
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("bench: zkd exited during start-up (%v):\n%s", err, strings.TrimSpace(out.String()))
		default:
		}
		if serving(r.Addr) {
			return r, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.stop()
	return nil, fmt.Errorf("bench: zkd did not serve on %s within a minute", r.Addr)
}

// serving asks srvr whether the server serves.
func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte("srvr"))
	b, _ := io.ReadAll(c)
	return bytes.Contains(b, []byte("Mode: "))
}

// CompareConfig is a side-by-side run.
type CompareConfig struct {
	Bench    Config   // the workload's settings (Servers is filled in)
	Workload string   // saturate, latency or timed
	Reads    []int    // saturate's read percentages
	Async    []bool   // latency and timed modes
	Kinds    []string // the servers, the first compared with the second
	Rounds   int
	ZkdBin   string
	Settings map[string]string // zoo.cfg for every server
	// ServerCPUs are the CPUs the servers run on; none means all.
	ServerCPUs []int
	// RestartZnodes znodes of Bench.DataSize bytes are loaded before the
	// restart-time measurement; 0 skips it.
	RestartZnodes int
	Log           io.Writer // what compare is doing, line by line
}

// Comparison is the outcome: every round's results, and per server its
// peak memory and restart time.
type Comparison struct {
	Kinds   []string             `json:"servers"`
	Rounds  [][]*Result          `json:"rounds"` // [round][server]
	PeakRSS map[string]int64     `json:"peak_rss_bytes"`
	Restart map[string]Restarted `json:"restart,omitempty"`
}

// Restarted is a restart-time measurement.
type Restarted struct {
	Znodes  int     `json:"znodes"`
	Seconds float64 `json:"seconds_to_serving"`
	PeakRSS int64   `json:"peak_rss_bytes_after_restart"`
}

// Compare starts each server on a fresh directory, runs the workload on
// each in turn for several rounds, then measures restart time with data
// loaded.
func Compare(cc CompareConfig) (*Comparison, error) {
	if cc.Rounds <= 0 {
		cc.Rounds = 3
	}
	if cc.Log == nil {
		cc.Log = io.Discard
	}
	res := &Comparison{Kinds: cc.Kinds, PeakRSS: map[string]int64{}, Restart: map[string]Restarted{}}
	servers := map[string]*Running{}
	defer func() {
		for _, s := range servers {
			s.Stop()
			os.RemoveAll(s.Dir)
		}
	}()
	for _, k := range cc.Kinds {
		dir, err := os.MkdirTemp("", "zkbench-"+strings.NewReplacer("/", "_", "=", "_").Replace(k)+"-")
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cc.Log, "starting %s in %s\n", k, dir)
		s, err := StartServer(k, dir, cc.ZkdBin, cc.Settings, cc.ServerCPUs)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		servers[k] = s
	}
	for round := 0; round < cc.Rounds; round++ {
		var row []*Result
		for _, k := range cc.Kinds {
			// Each server starts its turn with no dirty pages left by
			// the other: ZooKeeper does not fsync its snapshots, and the
			// kernel writing them back during the next server's turn
			// slows that server's fsyncs.
			if before, after, err := flushDirtyPages(); err == nil {
				fmt.Fprintf(cc.Log, "flushed dirty pages: %.1f MB before, %.1f MB after\n", before, after)
			} else {
				fmt.Fprintf(cc.Log, "could not flush dirty pages: %v\n", err)
			}
			fmt.Fprintf(cc.Log, "round %d/%d: %s on %s\n", round+1, cc.Rounds, cc.Workload, k)
			cfg := cc.Bench
			cfg.Servers = []string{servers[k].Addr}
			rs, err := runWorkload(cfg, cc)
			if err != nil {
				return res, fmt.Errorf("%s, round %d: %w", k, round+1, err)
			}
			for _, r := range rs {
				r.Server = k
				row = append(row, r)
			}
			if rss := servers[k].PeakRSS(); rss > res.PeakRSS[k] {
				res.PeakRSS[k] = rss
			}
		}
		res.Rounds = append(res.Rounds, row)
	}
	if cc.RestartZnodes > 0 {
		for _, k := range cc.Kinds {
			r, err := restart(servers, k, cc)
			if err != nil {
				return res, fmt.Errorf("%s restart: %w", k, err)
			}
			res.Restart[k] = r
		}
	}
	return res, nil
}

func runWorkload(cfg Config, cc CompareConfig) ([]*Result, error) {
	switch cc.Workload {
	case "saturate":
		r, err := RunSaturate(cfg, cc.Reads)
		return []*Result{r}, err
	case "latency", "timed":
		var out []*Result
		for _, async := range cc.Async {
			run := RunLatency
			if cc.Workload == "timed" {
				run = RunTimed
			}
			r, err := run(cfg, async)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	return nil, fmt.Errorf("bench: no workload %q", cc.Workload)
}

// restart loads znodes into the server, kills it, starts it again on the
// same directory and times how long it takes to serve.
func restart(servers map[string]*Running, kind string, cc CompareConfig) (Restarted, error) {
	s := servers[kind]
	if kind == KindNull {
		return Restarted{}, nil
	}
	cfg := cc.Bench
	cfg.defaults()
	cfg.Servers = []string{s.Addr}
	cfg.Root = "/zkbench-restart"
	cfg.Progress = cc.Bench.Progress
	p, err := dial(cfg)
	if err != nil {
		return Restarted{}, err
	}
	if err := p.makeRoot(); err != nil {
		p.close()
		return Restarted{}, err
	}
	fmt.Fprintf(cc.Log, "%s: loading %d znodes for the restart\n", kind, cc.RestartZnodes)
	if _, err := p.createAll("load znodes", nodePaths(cfg.Root, "r-", cc.RestartZnodes), 0, 256); err != nil {
		p.close()
		return Restarted{}, err
	}
	p.close()
	s.Stop()
	delete(servers, kind)
	start := time.Now()
	fmt.Fprintf(cc.Log, "%s: restarting on the loaded data\n", kind)
	s2, err := StartServer(kind, s.Dir, cc.ZkdBin, cc.Settings, cc.ServerCPUs)
	if err != nil {
		return Restarted{}, err
	}
	took := time.Since(start)
	servers[kind] = s2
	return Restarted{Znodes: cc.RestartZnodes, Seconds: took.Seconds(), PeakRSS: s2.PeakRSS()}, nil
}

// WriteComparison prints, for every phase, each server's ops/s and p99
// (mean over the rounds ± standard deviation) and the ratio of the first
// server to the second with its spread; then memory and restart time.
func WriteComparison(out io.Writer, c *Comparison) {
	if len(c.Kinds) == 0 || len(c.Rounds) == 0 {
		return
	}
	a, b := c.Kinds[0], c.Kinds[len(c.Kinds)-1]
	type key struct{ result, phase string }
	ops := map[string]map[key][]float64{}
	p99 := map[string]map[key][]float64{}
	var order []key
	seen := map[key]bool{}
	for _, row := range c.Rounds {
		for _, r := range row {
			if ops[r.Server] == nil {
				ops[r.Server], p99[r.Server] = map[key][]float64{}, map[key][]float64{}
			}
			for _, ph := range r.Phases {
				k := key{r.Workload + " " + r.Config.Mode, ph.Name}
				if !seen[k] {
					seen[k] = true
					order = append(order, k)
				}
				ops[r.Server][k] = append(ops[r.Server][k], ph.OpsPerSec)
				p99[r.Server][k] = append(p99[r.Server][k], ph.Latency["all"].P99)
			}
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "figure\t"
	for _, k := range c.Kinds {
		head += k + "\t"
	}
	if a != b {
		head += a + "/" + b + "\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, vals map[string][]float64, format func(float64) string) {
		line := name + "\t"
		for _, k := range c.Kinds {
			m, sd := meanSD(vals[k])
			if len(vals[k]) == 0 || m == 0 {
				line += "-\t" // not measured (the null server has no memory of its own)
				continue
			}
			line += format(m)
			if len(vals[k]) > 1 {
				line += " ±" + pct(sd, m)
			}
			line += "\t"
		}
		if a != b {
			var ratios []float64
			for i := range vals[a] {
				if i < len(vals[b]) && vals[b][i] != 0 && vals[a][i] != 0 {
					ratios = append(ratios, vals[a][i]/vals[b][i])
				}
			}
			switch m, sd := meanSD(ratios); {
			case len(ratios) == 0:
				line += "-\t"
			case len(ratios) == 1:
				line += fmt.Sprintf("%.2fx\t", m)
			default:
				line += fmt.Sprintf("%.2fx ±%s\t", m, pct(sd, m))
			}
		}
		fmt.Fprintln(tw, line)
	}
	for _, k := range order {
		v := map[string][]float64{}
		l := map[string][]float64{}
		for _, kind := range c.Kinds {
			v[kind], l[kind] = ops[kind][k], p99[kind][k]
		}
		row(strings.TrimSpace(k.result)+" "+k.phase+" ops/s", v, func(f float64) string { return thousands(f) })
		row(strings.TrimSpace(k.result)+" "+k.phase+" p99 ms", l, func(f float64) string { return fmt.Sprintf("%.2f", f) })
	}
	mem := map[string][]float64{}
	for _, k := range c.Kinds {
		mem[k] = []float64{float64(c.PeakRSS[k]) / (1 << 20)}
	}
	row("peak RSS MB (whole run)", mem, func(f float64) string { return fmt.Sprintf("%.0f", f) })
	if len(c.Restart) > 0 {
		rt := map[string][]float64{}
		rss := map[string][]float64{}
		n := 0
		for _, k := range c.Kinds {
			rt[k] = []float64{c.Restart[k].Seconds}
			rss[k] = []float64{float64(c.Restart[k].PeakRSS) / (1 << 20)}
			n = max(n, c.Restart[k].Znodes)
		}
		row(fmt.Sprintf("restart to serving s (%d znodes)", n), rt, func(f float64) string { return fmt.Sprintf("%.2f", f) })
		row("peak RSS MB after restart", rss, func(f float64) string { return fmt.Sprintf("%.0f", f) })
	}
	tw.Flush()
}

func pct(sd, mean float64) string {
	if mean == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*sd/mean)
}

// flushDirtyPages writes the page cache's dirty pages back (sync(2)) and
// returns how many MB were dirty before and after, as /proc/meminfo
// counts them (other processes may dirty more meanwhile).
func flushDirtyPages() (before, after float64, err error) {
	if before, err = dirtyMB(); err != nil {
		return 0, 0, err
	}
	syscall.Sync()
	after, err = dirtyMB()
	return before, after, err
}

// dirtyMB is the page cache's dirty memory in MB.
func dirtyMB() (float64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Dirty:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no Dirty line in /proc/meminfo")
}
