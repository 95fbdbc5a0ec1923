package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"zkd/bench"
	"zkd/bench/nullserver"
)

const usage = `zkbench measures ZooKeeper-compatible servers the way ZooKeeper's authors did.

usage: zkbench <workload> [flags]

workloads:
  saturate   the ZooKeeper paper's load: each connection keeps --outstanding
             requests in flight, a read percentage of them getData and the
             rest setData, on --znodes znodes of --data-size bytes; one run
             per read percentage (--reads), throughput sampled every second
  latency    zk-smoketest's phases: create, set, get and delete --znodes
             znodes, then create ephemerals, watch them and delete them,
             timing the notifications; sync (one request in flight per
             connection: latency) and async (--outstanding: throughput)
  timed      time-based runs per operation, as the brownsys benchmark:
             read one znode, set one znode, create, set many, delete
  compare    start zkd and Apache ZooKeeper 3.8 side by side on fresh
             directories and ports, run a workload on each in alternation
             (A B A B …, the page cache's dirty pages flushed before each
             turn) and print both figures and their ratio, with each
             server's peak memory and its restart time with the data loaded
  sessions   open --sessions sessions, each with one ephemeral and one
             exists watch, ping each at a third of its timeout, hold them,
             and measure the server's resident memory per session and the
             pings' round trips (servers it starts in turn, or --server
             and --pid)
  fairness   one client keeps --pipeline getData requests in flight while
             --others clients ping: their round trips show whether one
             busy connection slows everyone else
  check      start an ensemble (zkd or ZooKeeper), run a compare-and-set
             register and a set under faults (kills, pauses, partitions)
             and check the history: linearizable, nothing acknowledged
             lost (zkbench check -h)
  nullserver run a server that answers every request at once (getData with
             a canned reply): the machine's ceiling for a load generator
  help       this text, or "zkbench help <workload>" for its flags

sessions, fairness and check take their own flags (zkbench sessions -h). Every
other workload takes --servers, --clients, --outstanding, --data-size,
--znodes, --duration, --warmup (not counted), --root (created, then removed)
and --json; --plot FILE.png|svg draws the throughput-vs-read-% curve and
the latency CDFs.

On a small machine the server and zkbench take turns on the same cores,
and latency tails then show the kernel's scheduling as much as the
server: --server-cpus (compare, sessions, fairness) starts the servers on
the CPUs listed and --loader-cpus keeps zkbench on others, as in
"zkbench compare --server-cpus 0 --loader-cpus 1".
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		if len(args) == 1 {
			fs, _, _ := flags(args[0], stderr)
			if fs == nil {
				fmt.Fprintf(stderr, "zkbench: no workload %q\n", args[0])
				return 2
			}
			fmt.Fprintf(stdout, "zkbench %s [flags]\n", args[0])
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "nullserver":
		return nullServer(args, stdout, stderr)
	case "sessions":
		return sessionsCmd(args, stdout, stderr)
	case "fairness":
		return fairnessCmd(args, stdout, stderr)
	case "check":
		return checkCmd(args, stdout, stderr)
	}
	fs, opts, cfg := flags(cmd, stderr)
	if fs == nil {
		fmt.Fprintf(stderr, "zkbench: no workload %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "zkbench %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	if err := opts.finish(cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "zkbench %s: %v\n", cmd, err)
		return 2
	}
	if err := bench.PinSelf(opts.loaderCPUs); err != nil {
		fmt.Fprintf(stderr, "zkbench %s: %v\n", cmd, err)
		return 1
	}
	if opts.cpuProfile != "" {
		// The loader shares the machine with the server: its own CPU
		// profile shows what it costs.
		f, err := os.Create(opts.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "zkbench %s: --cpuprofile: %v\n", cmd, err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var results []*bench.Result
	var err error
	switch cmd {
	case "saturate":
		var r *bench.Result
		r, err = bench.RunSaturate(*cfg, opts.readList)
		results = append(results, r)
	case "latency":
		for _, async := range opts.modes() {
			var r *bench.Result
			r, err = bench.RunLatency(*cfg, async)
			results = append(results, r)
			if err != nil {
				break
			}
		}
	case "timed":
		for _, async := range opts.modes() {
			var r *bench.Result
			r, err = bench.RunTimed(*cfg, async)
			results = append(results, r)
			if err != nil {
				break
			}
		}
	case "compare":
		return compare(*cfg, opts, stdout, stderr)
	}
	return report(results, err, opts, stdout, stderr)
}

func report(results []*bench.Result, err error, opts *options, stdout, stderr io.Writer) int {
	var ok []*bench.Result
	for _, r := range results {
		if r != nil && len(r.Phases) > 0 {
			ok = append(ok, r)
		}
	}
	if opts.json {
		if e := bench.WriteJSON(stdout, ok); e != nil && err == nil {
			err = e
		}
	} else {
		for i, r := range ok {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			bench.WriteTable(stdout, r)
		}
	}
	if opts.plot != "" && len(ok) > 0 {
		if e := bench.Plot(opts.plot, ok); e != nil {
			fmt.Fprintf(stderr, "zkbench: plot: %v\n", e)
			if err == nil {
				return 1
			}
		} else if !opts.json {
			fmt.Fprintf(stdout, "\nplot written to %s\n", opts.plot)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkbench: %v\n", err)
		return 1
	}
	return 0
}

// options are the flags beyond bench.Config.
type options struct {
	servers    string
	reads      string
	readList   []int
	mode       string
	json       bool
	plot       string
	progress   bool
	cpuProfile string
	loaderCPUs []int
	// compare
	serverCPUs []int
	rounds     int
	workload   string
	zkdBin     string
	against    string
	cfgExtra   string
	memZnodes  int
}

func (o *options) modes() []bool {
	switch o.mode {
	case "sync":
		return []bool{false}
	case "async":
		return []bool{true}
	}
	return []bool{false, true}
}

func (o *options) finish(cfg *bench.Config, stderr io.Writer) error {
	for _, s := range strings.Split(o.servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	if len(cfg.Servers) == 0 {
		return errors.New("--servers names no server")
	}
	for _, s := range strings.Split(o.reads, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
		if err != nil || n < 0 || n > 100 {
			return fmt.Errorf("--reads: %q is not a percentage", s)
		}
		o.readList = append(o.readList, n)
	}
	switch o.mode {
	case "sync", "async", "both":
	default:
		return fmt.Errorf("--mode %q: use sync, async or both", o.mode)
	}
	if o.plot != "" && !strings.HasSuffix(o.plot, ".png") && !strings.HasSuffix(o.plot, ".svg") {
		return fmt.Errorf("--plot %s: use a .png or .svg file", o.plot)
	}
	if o.progress {
		cfg.Progress = stderr
	}
	return nil
}

// flags returns the flag set of a workload, nil for an unknown one.
func flags(cmd string, stderr io.Writer) (*flag.FlagSet, *options, *bench.Config) {
	switch cmd {
	case "saturate", "latency", "timed", "compare":
	default:
		return nil, nil, nil
	}
	fs := flag.NewFlagSet("zkbench "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	c := &bench.Config{}
	fs.StringVar(&o.servers, "servers", "127.0.0.1:2181", "servers to load, host:port,host:port (connections are spread over them)")
	fs.IntVar(&c.Clients, "clients", 32, "connections (sessions)")
	fs.IntVar(&c.Outstanding, "outstanding", 16, "requests each connection keeps in flight")
	fs.IntVar(&c.DataSize, "data-size", 1024, "bytes of data per znode")
	fs.IntVar(&c.Znodes, "znodes", 10000, "znodes in the working set")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time per phase (saturate, timed)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured time before each phase (saturate, timed)")
	fs.StringVar(&c.Root, "root", "/zkbench", "path to work under; must not exist, and is removed at the end")
	fs.DurationVar(&c.Interval, "interval", time.Second, "throughput sampling interval")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.BoolVar(&o.json, "json", false, "print results as JSON")
	fs.StringVar(&o.plot, "plot", "", "draw the throughput curve and latency CDFs into FILE.png or FILE.svg")
	fs.BoolVar(&o.progress, "progress", true, "show a live progress line on stderr")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write zkbench's own CPU profile (go tool pprof) to FILE")
	cpusFlag(fs, &o.loaderCPUs, "loader-cpus", "run the load generator on these CPUs only (a list like taskset's: 1 or 0,2-3)")
	switch cmd {
	case "saturate":
		fs.StringVar(&o.reads, "reads", "0,10,20,30,40,50,60,70,80,90,100", "read percentages to run, comma-separated")
	case "latency", "timed":
		fs.StringVar(&o.mode, "mode", "both", "sync, async or both")
	case "compare":
		fs.StringVar(&o.workload, "workload", "saturate", "workload to compare: saturate, latency or timed")
		fs.StringVar(&o.reads, "reads", "0,90,100", "read percentages for saturate")
		fs.StringVar(&o.mode, "mode", "async", "sync, async or both, for latency and timed")
		fs.IntVar(&o.rounds, "rounds", 3, "rounds of A B alternation")
		fs.StringVar(&o.zkdBin, "zkd", "", "zkd binary (default: go build ./cmd/zkd)")
		fs.StringVar(&o.against, "servers-to-compare", "zkd,zookeeper", "which servers to start: zkd, zkd=PATH (another zkd build), zookeeper, null")
		fs.StringVar(&o.cfgExtra, "config", "", "zoo.cfg settings for both servers, key=value,key=value")
		fs.IntVar(&o.memZnodes, "restart-znodes", 100000, "znodes (of --data-size) loaded before the restart-time measurement; 0 skips it")
		cpusFlag(fs, &o.serverCPUs, "server-cpus", "run the servers started on these CPUs only (a list like taskset's: 0 or 0-1)")
	}
	if o.mode == "" {
		o.mode = "both"
	}
	return fs, o, c
}

func nullServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zkbench nullserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:2181", "address to listen on")
	size := fs.Int("data-size", 1024, "bytes in each getData reply")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s, err := nullserver.Start(*addr, *size)
	if err != nil {
		fmt.Fprintf(stderr, "zkbench nullserver: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "null server on %s: every getData gets %d bytes, everything else an empty OK; ^C stops it\n", s.Addr(), *size)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	fmt.Fprintf(stdout, "%d requests answered\n", s.Served())
	s.Close()
	return 0
}

// compare is `zkbench compare`.
func compare(cfg bench.Config, o *options, stdout, stderr io.Writer) int {
	cc := bench.CompareConfig{Bench: cfg, Workload: o.workload, Reads: o.readList, Async: o.modes(),
		Rounds: o.rounds, ZkdBin: o.zkdBin, Settings: map[string]string{}, RestartZnodes: o.memZnodes, Log: stderr,
		ServerCPUs: o.serverCPUs}
	for _, k := range strings.Split(o.against, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cc.Kinds = append(cc.Kinds, k)
		}
	}
	for _, kv := range strings.Split(o.cfgExtra, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(stderr, "zkbench compare: --config %q: want key=value\n", kv)
			return 2
		}
		cc.Settings[k] = v
	}
	for _, k := range cc.Kinds {
		if k == bench.KindZkd && cc.ZkdBin == "" {
			bin, err := buildZkd()
			if err != nil {
				fmt.Fprintf(stderr, "zkbench compare: %v (pass --zkd PATH)\n", err)
				return 1
			}
			defer os.RemoveAll(filepath.Dir(bin))
			cc.ZkdBin = bin
		}
	}
	res, err := bench.Compare(cc)
	if res != nil && len(res.Rounds) > 0 {
		if o.json {
			bench.WriteJSON(stdout, res)
		} else {
			bench.WriteComparison(stdout, res)
		}
		if o.plot != "" {
			var last []*bench.Result
			last = append(last, res.Rounds[len(res.Rounds)-1]...)
			if e := bench.Plot(o.plot, last); e != nil {
				fmt.Fprintf(stderr, "zkbench: plot: %v\n", e)
			} else if !o.json {
				fmt.Fprintf(stdout, "\nplot (last round) written to %s\n", o.plot)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkbench compare: %v\n", err)
		return 1
	}
	return 0
}

// buildZkd builds ./cmd/zkd into a temporary directory.
func buildZkd() (string, error) {
	if p, err := exec.LookPath("zkd"); err == nil {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "zkbench-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "zkd")
	out, err := exec.Command("go", "build", "-o", bin, "zkd/cmd/zkd").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building zkd: %v\n%s", err, out)
	}
	return bin, nil
}

// cpusFlag defines a flag that takes a CPU list.
func cpusFlag(fs *flag.FlagSet, cpus *[]int, name, usage string) {
	fs.Func(name, usage, func(v string) error {
		c, err := bench.ParseCPUs(v)
		*cpus = c
		return err
	})
}
