package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"zkd/bench/check"
)

// checkCmd is zkbench check: workloads under faults against an ensemble
// it starts, and a verdict on the history. Exit codes: 0 every workload
// passed, 1 one failed (or the run could not be made), 2 wrong flags.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zkbench check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	impl := fs.String("impl", "zkd", "the servers: zkd or zookeeper (Apache ZooKeeper 3.8 from Debian) for every member; mixed, zkd on the odd members and ZooKeeper on the even; or one per member, comma-separated (zookeeper,zkd,zkd)")
	zkd := fs.String("zkd", "", "the zkd binary (default: zkd on the PATH, or built from this checkout)")
	servers := fs.Int("servers", 3, "ensemble members, member i on 127.0.0.i")
	observers := fs.Int("observers", 0, "how many of the members are observers: the last ones (--servers 5 --observers 2: members 4 and 5)")
	port := fs.Int("port", 31181, "client port of every member; the quorum and election ports are the next two")
	observerMasters := fs.Bool("observer-masters", false, "observers sync from the followers (observerMasterPort, the port after the election port), not the leader")
	duration := fs.Duration("duration", 60*time.Second, "how long the workloads run")
	clients := fs.Int("clients", 5, "clients per workload, spread over the members")
	keys := fs.Int("keys", 4, "registers of the register workload")
	workloads := fs.String("workload", strings.Join(check.Workloads, ","), "workloads: register (a compare-and-set register, checked for linearizability), set (unique adds, none lost), counter (compare-and-set increments, none lost or doubled), ids (sequential znodes: none given twice or lost), sessions (an ephemeral lives exactly as long as its session), queue (sequential items, each dequeued at most once, none lost), fifo (pipelined requests of a session answered and applied in order, reads seeing the session's writes), watch (each data event once, for a watch set, before any reply showing the change), cwatch (the same for children: each children event once, for a child watch set, before any reply showing the change), pwatch (a persistent recursive watch: every change of the znodes below it an event, once, before any reply showing it, while a connection lasts); not run unless named: bulk (each client overwrites its znode with --bulk-size bytes as fast as the ensemble takes them, tens of MB/s to every member's disk; each znode ends at or after its last acknowledged write)")
	groups := fs.String("groups", "", "hierarchical quorums: the members of each group, groups separated by '/' (1:2/3:4/5 is group.1=1:2, group.2=3:4, group.3=5); none: a majority")
	weights := fs.String("weights", "", "with --groups, members' weights where not 1: member=weight,… (1=2,5=0)")
	syncLimit := fs.Int("sync-limit", 5, "the members' syncLimit, in ticks of 500 ms: how long a leader waits for a follower it does not hear from, and its own stalled disk")
	bulkSize := fs.Int("bulk-size", 256<<10, "bytes per write of the bulk workload (at most jute.maxbuffer, 1 MB by default)")
	nemesis := fs.String("nemesis", "kill,kill-leader,pause-leader", "faults, one at a time: "+strings.Join(check.Faults, ", ")+"; all; none. With both servers in the ensemble, kills and disk faults hit only zkd members")
	hold := fs.Duration("fault-for", 4*time.Second, "how long each fault lasts")
	rest := fs.Duration("fault-every", 3*time.Second, "the quiet time between faults")
	pause := fs.Duration("pause", 0, "each client's wait between two operations (0: as fast as the ensemble answers)")
	hop := fs.Duration("hop", 0, "each client's mean time between two hops: its connection dropped with requests in flight and its session moved to the next member (0: clients stay on their member)")
	seed := fs.Int64("seed", time.Now().UnixNano(), "random seed (the run prints it)")
	dir := fs.String("dir", "", "where the members' directories, logs and the drawn history go (default: a new temporary directory)")
	plotFile := fs.String("plot", "", "draw the run's timeline (operations per second, latency, the faults) into FILE.png or .svg (default: timeline.png in --dir)")
	faultEnv := fs.String("zkd-faults", "", "ZKD_FAULTS for every zkd: a planted bug, to see the checker find it")
	connect := fs.String("connect", "", "check a running ensemble instead, its members' client addresses host:port,…; with --nemesis none")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *bulkSize < 16 || *bulkSize > 1<<20 {
		fmt.Fprintf(stderr, "zkbench check: --bulk-size %d: give 16 bytes to 1 MB\n", *bulkSize)
		return 2
	}
	if *syncLimit < 1 {
		fmt.Fprintf(stderr, "zkbench check: --sync-limit %d: give 1 tick or more\n", *syncLimit)
		return 2
	}
	o := check.Options{Impl: *impl, Servers: *servers, Observers: *observers, ObserverMasters: *observerMasters, BasePort: *port, Duration: *duration, Clients: *clients,
		Keys: *keys, Hold: *hold, Rest: *rest, Seed: *seed, Pause: *pause, Hop: *hop, Log: stderr, BulkSize: *bulkSize, SyncLimit: *syncLimit}
	if *groups != "" {
		o.Groups = strings.Split(*groups, "/")
	}
	if *weights != "" {
		o.Weights = map[int]int{}
		for _, kv := range strings.Split(*weights, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m, err1 := strconv.Atoi(k)
			w, err2 := strconv.Atoi(v)
			if err1 != nil || err2 != nil || m < 1 || w < 0 {
				fmt.Fprintf(stderr, "zkbench check: --weights %q: give member=weight,… (1=2,5=0)\n", *weights)
				return 2
			}
			o.Weights[m] = w
		}
	}
	o.Workloads = strings.Split(*workloads, ",")
	switch *nemesis {
	case "all":
		o.Faults = check.Faults
	case "none", "":
	default:
		o.Faults = strings.Split(*nemesis, ",")
	}
	if *faultEnv != "" {
		o.Env = []string{"ZKD_FAULTS=" + *faultEnv}
	}
	if *connect != "" {
		o.Connect = strings.Split(*connect, ",")
		o.Impl, o.Servers = "running", len(o.Connect)
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "nemesis" })
		if explicit && o.Faults != nil {
			fmt.Fprintln(stderr, "zkbench check: --connect checks an ensemble zkbench does not run: --nemesis none")
			return 2
		}
		o.Faults = nil
	}
	if o.Connect == nil && (*servers < 1 || *servers > 9) {
		fmt.Fprintln(stderr, "zkbench check: --servers from 1 to 9")
		return 2
	}
	var impls []string
	if o.Connect == nil {
		var err error
		if impls, err = check.Impls(o.Impl, o.Servers); err != nil {
			fmt.Fprintf(stderr, "zkbench %v\n", err)
			return 2
		}
	}
	if slices.Contains(impls, "zkd") {
		bin, err := zkdBinary(*zkd)
		if err != nil {
			fmt.Fprintf(stderr, "zkbench check: %v\n", err)
			return 1
		}
		o.Binary = bin
	}
	o.Dir = *dir
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "zkbench-check-")
		if err != nil {
			fmt.Fprintf(stderr, "zkbench check: %v\n", err)
			return 1
		}
		o.Dir = d
	}
	o.Dir, _ = filepath.Abs(o.Dir)
	if entries, err := os.ReadDir(o.Dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(stderr, "zkbench check: %s is not empty: a run starts its servers on fresh directories\n", o.Dir)
		return 2
	}
	fmt.Fprintf(stderr, "zkbench check: %s × %d, %v, workloads %s, faults %v, seed %d, in %s\n",
		o.Impl, o.Servers, o.Duration, *workloads, o.Faults, o.Seed, o.Dir)
	// Interrupted, the run still stops the servers and removes its
	// rules: Run's deferred cleanups run when its context ends.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	type result struct {
		r   *check.Report
		err error
	}
	done := make(chan result, 1)
	stop := make(chan struct{})
	o.Stop = stop
	go func() { r, err := check.Run(o); done <- result{r, err} }()
	var res result
	select {
	case res = <-done:
	case <-sig:
		fmt.Fprintln(stderr, "zkbench check: interrupted; stopping the servers and removing the rules")
		close(stop)
		res = <-done
		if res.err == nil {
			res.err = fmt.Errorf("interrupted")
		}
	}
	if res.err != nil {
		// The package's errors say "check: " already.
		fmt.Fprintf(stderr, "zkbench check: %s\n", strings.TrimPrefix(res.err.Error(), "check: "))
		return 1
	}
	check.WriteReport(stdout, res.r)
	plot := *plotFile
	if plot == "" {
		plot = filepath.Join(o.Dir, "timeline.png")
	}
	if err := check.Timeline(plot, res.r); err != nil {
		fmt.Fprintf(stderr, "zkbench check: the timeline: %v\n", err)
	} else {
		fmt.Fprintf(stdout, "timeline: %s\n", plot)
	}
	if !res.r.Valid() {
		return 1
	}
	return 0
}

// zkdBinary finds the zkd to run: the one named, zkd on the PATH, or one
// built from this checkout into a temporary directory.
func zkdBinary(named string) (string, error) {
	if named != "" {
		return filepath.Abs(named)
	}
	if p, err := exec.LookPath("zkd"); err == nil {
		return p, nil
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("zkbench-zkd-%d", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", out, "zkd/cmd/zkd")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("no zkd on the PATH, and building one failed (give --zkd): %v\n%s", err, b)
	}
	return out, nil
}
