package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"zkd/bench"
)

// The connection-count workloads: `zkbench sessions` and `zkbench
// fairness`, against a running server (--server, and --pid for its
// memory) or against servers zkbench starts itself, alternating
// (--servers-to-compare).

type connsOptions struct {
	server, against, zkdBin, cfgExtra string
	pid, rounds                       int
	json, progress                    bool
	serverCPUs, loaderCPUs            []int
}

func connsFlags(cmd string, stderr io.Writer) (*flag.FlagSet, *connsOptions) {
	fs := flag.NewFlagSet("zkbench "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &connsOptions{}
	fs.StringVar(&o.server, "server", "", "a running server, host:port (instead of starting servers)")
	fs.IntVar(&o.pid, "pid", 0, "that server's process id, for its resident memory")
	fs.StringVar(&o.against, "servers-to-compare", "zkd,zookeeper", "servers to start, in turn: zkd, zookeeper")
	fs.IntVar(&o.rounds, "rounds", 1, "rounds of alternation")
	fs.StringVar(&o.zkdBin, "zkd", "", "zkd binary (default: go build ./cmd/zkd)")
	fs.StringVar(&o.cfgExtra, "config", "", "zoo.cfg settings for the servers started, key=value,key=value")
	fs.BoolVar(&o.json, "json", false, "print results as JSON")
	fs.BoolVar(&o.progress, "progress", true, "show a live progress line on stderr")
	cpusFlag(fs, &o.serverCPUs, "server-cpus", "run the servers started on these CPUs only (a list like taskset's: 0 or 0-1)")
	cpusFlag(fs, &o.loaderCPUs, "loader-cpus", "run the load generator on these CPUs only (a list like taskset's: 1 or 0,2-3)")
	return fs, o
}

// connsRun runs the workload once against every server it is given or
// starts, and returns a row per run.
func connsRun(cmd string, o *connsOptions, stderr io.Writer, settings map[string]string,
	run func(addr string, pid int) (any, error)) ([]any, []string, error) {
	if o.server != "" {
		r, err := run(o.server, o.pid)
		if err != nil {
			return nil, nil, err
		}
		return []any{r}, []string{o.server}, nil
	}
	var kinds []string
	for _, k := range strings.Split(o.against, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kinds = append(kinds, k)
		}
	}
	cfg := map[string]string{"maxClientCnxns": "0"}
	for k, v := range settings {
		cfg[k] = v
	}
	bin := o.zkdBin
	var rows []any
	var names []string
	for round := 0; round < max(o.rounds, 1); round++ {
		for _, kind := range kinds {
			if kind == bench.KindZkd && bin == "" {
				b, err := buildZkd()
				if err != nil {
					return rows, names, fmt.Errorf("%v (pass --zkd PATH)", err)
				}
				defer os.RemoveAll(filepath.Dir(b))
				bin = b
			}
			dir, err := os.MkdirTemp("", "zkbench-"+cmd+"-")
			if err != nil {
				return rows, names, err
			}
			fmt.Fprintf(stderr, "round %d: starting %s\n", round+1, kind)
			srv, err := bench.StartServer(kind, dir, bin, cfg, o.serverCPUs)
			if err != nil {
				os.RemoveAll(dir)
				return rows, names, err
			}
			r, err := run(srv.Addr, srv.PID)
			srv.Stop()
			os.RemoveAll(dir)
			if err != nil {
				return rows, names, fmt.Errorf("%s: %w", kind, err)
			}
			rows = append(rows, r)
			names = append(names, kind)
		}
	}
	return rows, names, nil
}

func parseSettings(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--config %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// connsMain parses a connection-count workload's flags, runs it once
// per server and prints a row per run (header and row are tab-separated
// columns) or the results as JSON.
func connsMain(cmd string, fs *flag.FlagSet, o *connsOptions, args []string, stdout, stderr io.Writer,
	progress *io.Writer, run func(addr string, pid int) (any, error), header string, row func(r any) string) int {
	if err := fs.Parse(args); err != nil {
		return 2
	}
	settings, err := parseSettings(o.cfgExtra)
	if err != nil {
		fmt.Fprintf(stderr, "zkbench %s: %v\n", cmd, err)
		return 2
	}
	if o.progress {
		*progress = stderr
	}
	if err := bench.PinSelf(o.loaderCPUs); err != nil {
		fmt.Fprintf(stderr, "zkbench %s: %v\n", cmd, err)
		return 1
	}
	rows, names, err := connsRun(cmd, o, stderr, settings, run)
	if len(rows) > 0 {
		if o.json {
			json.NewEncoder(stdout).Encode(rows)
		} else {
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "server\t%s\t\n", header)
			for i, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t\n", names[i], row(r))
			}
			tw.Flush()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkbench %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// sessionsCmd is `zkbench sessions`.
func sessionsCmd(args []string, stdout, stderr io.Writer) int {
	fs, o := connsFlags("sessions", stderr)
	var sc bench.SessionsConfig
	fs.IntVar(&sc.Sessions, "sessions", 10000, "sessions to open and hold, each with one ephemeral and one exists watch")
	fs.DurationVar(&sc.Timeout, "timeout", 30*time.Second, "session timeout asked for; each session pings at a third of it")
	fs.DurationVar(&sc.Hold, "hold", 30*time.Second, "how long to hold every session before measuring memory")
	fs.IntVar(&sc.Sources, "sources", 1, "loopback source addresses to spread the connections over (127.0.0.1, .2, …)")
	return connsMain("sessions", fs, o, args, stdout, stderr, &sc.Progress, func(addr string, pid int) (any, error) {
		c := sc
		c.Server, c.PID = addr, pid
		return bench.HoldSessions(c)
	}, "sessions\tconnected in\tRSS before\tRSS held\tper session\tpings\tping p50\tping p99\tping max", func(row any) string {
		r := row.(*bench.SessionsResult)
		return fmt.Sprintf("%d\t%v\t%s\t%s\t%s\t%d\t%v\t%v\t%v", r.Sessions, r.ConnectFor.Round(time.Millisecond),
			mb(r.RSSBefore), mb(r.RSSHeld), kb(r.PerSession), r.Pings, r.PingP50, r.PingP99, r.PingMx)
	})
}

// fairnessCmd is `zkbench fairness`.
func fairnessCmd(args []string, stdout, stderr io.Writer) int {
	fs, o := connsFlags("fairness", stderr)
	var fc bench.FairnessConfig
	fs.IntVar(&fc.Pipeline, "pipeline", 10000, "getData requests the busy client keeps in flight")
	fs.IntVar(&fc.Others, "others", 100, "clients that only ping")
	fs.DurationVar(&fc.Every, "every", 10*time.Millisecond, "how often each of them pings")
	fs.DurationVar(&fc.Duration, "duration", 10*time.Second, "measured time")
	fs.IntVar(&fc.DataSize, "data-size", 1024, "bytes in the znode the busy client reads")
	return connsMain("fairness", fs, o, args, stdout, stderr, &fc.Progress, func(addr string, _ int) (any, error) {
		c := fc
		c.Server = addr
		return bench.Fairness(c)
	}, "busy client ops/s\tpings\tping p50\tping p99\tping max", func(row any) string {
		r := row.(*bench.FairnessResult)
		return fmt.Sprintf("%.0f\t%d\t%v\t%v\t%v", r.BusyOps, r.Pings, r.PingP50, r.PingP99, r.PingMx)
	})
}

func mb(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}

func kb(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KB", float64(b)/1024)
}
