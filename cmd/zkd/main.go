package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"zkd/engine"
	"zkd/wal"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "purge":
			os.Exit(purge(os.Args[2:], os.Stdout, os.Stderr))
		case "status":
			os.Exit(status(os.Args[2:], os.Stdout, os.Stderr))
		case "snapshot":
			os.Exit(snapshotCmd(os.Args[2:], os.Stdout, os.Stderr))
		case "txnlog":
			os.Exit(txnlogCmd(os.Args[2:], os.Stdout, os.Stderr))
		case "cli":
			os.Exit(cliCmd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "help", "-h", "-help", "--help":
			fmt.Fprint(os.Stdout, usage)
			os.Exit(0)
		case "version", "-version", "--version":
			fmt.Fprintln(os.Stdout, versionLine())
			os.Exit(0)
		}
	}
	os.Exit(serve(os.Args[1:], os.Stderr))
}

const usage = `zkd: a ZooKeeper-compatible server.

  zkd                      run a standalone server on port 2181, data in ./zkd-data
  zkd path/to/zoo.cfg      run with that configuration (ZooKeeper's zoo.cfg keys)
  zkd version              print the version
  zkd status [zoo.cfg]     print the server's mode, as zkServer.sh status does
  zkd snapshot dump [-d] FILE
  zkd snapshot json FILE   print a snapshot as ZooKeeper's SnapshotFormatter does
  zkd txnlog dump FILE     print a txn log as ZooKeeper's TxnLogToolkit does, checking each
                           entry's checksum
  zkd cli [-server host:port] [cmd args]
                           a shell with zkCli.sh's commands and output
  zkd purge [-n count] dataDir [dataLogDir]
                           remove old snapshots and txn logs, keeping the newest
                           count (>= 3) snapshots and the logs they need

Logs go to stderr, as text or JSON (zoo.cfg's zkd.log.format), at zkd.log.level
(debug, info, warn, error; default info); ZKD_LOG_LEVEL in the environment wins.
ZKD_PPROF=host:port serves Go's profiles (/debug/pprof/) on that address.
GOMAXPROCS, GOGC and GOMEMLIMIT, when set, are used as given; otherwise
zoo.cfg's zkd.gomaxprocs, zkd.gc.roomMB and zkd.memoryLimitMB decide
(docs/configuration.md).
`

// versionLine is what zkd version prints: the version srvr reports, and
// the Go that built it.
func versionLine() string {
	return fmt.Sprintf("zkd %s (%s %s/%s)", engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// commands are the words zkd takes as its first argument.
const commands = "status, cli, snapshot, txnlog, purge, version, help"

// checkArgs says what is wrong with the arguments of a server run, naming
// it, or "" when they are a configuration file or nothing.
func checkArgs(args []string) string {
	switch {
	case len(args) == 0:
		return ""
	case strings.HasPrefix(args[0], "-"):
		return fmt.Sprintf("unknown flag %s; zkd takes a zoo.cfg path or one of the commands %s (zkd help)", args[0], commands)
	case len(args) > 1:
		return fmt.Sprintf("too many arguments (%s): a server run takes one zoo.cfg path (zkd help)", strings.Join(args, " "))
	}
	if _, err := os.Stat(args[0]); err != nil && !strings.ContainsAny(args[0], "/.") {
		return fmt.Sprintf("%q is neither a command (%s) nor a configuration file (%v)", args[0], commands, err)
	}
	return ""
}

// serve runs the server until SIGTERM or SIGINT, or until it fails.
func serve(args []string, stderr io.Writer) int {
	startup := newStartupHandler()
	log := slog.New(startup)
	if msg := checkArgs(args); msg != "" {
		fmt.Fprintf(stderr, "zkd: %s\n", msg)
		return 2
	}
	cfg, err := loadConfig(args, log)
	if err != nil {
		startup.set(logHandler(stderr, "text", slog.LevelInfo))
		fmt.Fprintf(stderr, "zkd: %v\n", err)
		return 2
	}
	startup.set(logHandler(stderr, cfg.LogFormat, cfg.LogLevel))
	if cfg.File != "" {
		log.Info("using configuration", "file", cfg.File)
	} else {
		log.Info("no configuration file given: running on the embedded default", "clientPort", cfg.ClientPort, "dataDir", cfg.DataDir)
	}
	if addr := os.Getenv("ZKD_PPROF"); addr != "" {
		startProfiling(addr, log)
	}
	if n, ok := processors(os.Getenv("GOMAXPROCS"), cfg.GoMaxProcs); ok {
		runtime.GOMAXPROCS(n)
	}
	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	log.Info("process", "GOMAXPROCS", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU(),
		"eventLoops", eventLoops(cfg.EventLoops), "memoryLimit", memoryLimit())
	// Recovery builds the whole tree at once, with garbage (decoded txns,
	// replaced records) all along: a tighter GC pace while it runs keeps
	// the peak near the live heap, at a few more short collections (25
	// made the start 40 % slower; 50 costs little).
	audit := slog.New(auditHandler(stderr, cfg.LogFormat))
	srv, err := engine.New(cfg, engine.Options{Logger: log, AuditLogger: audit, EventLoops: cfg.EventLoops, RecoveryGCPercent: 50})
	if err != nil {
		engine.AuditStartFailure(cfg, audit)
		fmt.Fprintf(stderr, "zkd: %v\n", err)
		return 1
	}
	// Recovery leaves its garbage (decoded txns, log buffers) in freed
	// pages; hand them back without delaying the start.
	go debug.FreeOSMemory()
	if err := srv.Start(); err != nil {
		engine.AuditStartFailure(cfg, audit)
		fmt.Fprintf(stderr, "zkd: %v\n", err)
		return 1
	}
	defer tuneGC(uint64(cfg.GCRoomMB)<<20, log)()
	defer releaseWhenQuiet(log)()
	if cfg.AdminEnable {
		defer startAdmin(cfg, srv, log)()
	}
	if cfg.MetricsProvider == engine.PrometheusProvider {
		stop, err := startMetrics(cfg, srv, log)
		if err != nil {
			// ZooKeeper does not start when its metrics provider cannot.
			fmt.Fprintf(stderr, "zkd: %v\n", err)
			srv.Close()
			return 1
		}
		defer stop()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
		if err := srv.Close(); err != nil {
			log.Error("shutdown failed", "err", err)
			return 1
		}
		return 0
	case <-srv.Done():
		if err := srv.Err(); err != nil {
			return 1
		}
		return 0
	}
}

// startAdmin serves the AdminServer's commands on admin.serverAddress and
// admin.serverPort, and returns what stops it. A port it cannot bind is
// logged and the server goes on without it, as ZooKeeper's does.
func startAdmin(cfg *engine.Config, srv *engine.Server, log *slog.Logger) func() {
	addr := net.JoinHostPort(cfg.AdminAddress, strconv.Itoa(cfg.AdminPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("the AdminServer cannot listen and is off; set admin.serverPort, or admin.enableServer=false",
			"addr", addr, "err", err)
		return func() {}
	}
	idle := time.Duration(cfg.AdminIdleTimeout) * time.Millisecond
	hs := &http.Server{Handler: srv.AdminHandler(cfg.AdminCommandURL), IdleTimeout: idle,
		ReadHeaderTimeout: 10 * time.Second}
	log.Info("AdminServer serving", "url", "http://"+ln.Addr().String()+path.Join("/", cfg.AdminCommandURL))
	go hs.Serve(ln)
	return func() { hs.Close() }
}

// startMetrics serves the server's figures for Prometheus at /metrics on
// metricsProvider.httpHost and httpPort, with the Go runtime's and the
// process's unless metricsProvider.exportJvmInfo=false.
func startMetrics(cfg *engine.Config, srv *engine.Server, log *slog.Logger) (func(), error) {
	addr := net.JoinHostPort(cfg.MetricsHost, strconv.Itoa(cfg.MetricsPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, cfg.ErrorAt("metricsProvider.httpPort", "the metrics endpoint cannot listen on %s: %v", addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.PrometheusCollector())
	if cfg.MetricsExportExtra {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics serving", "url", "http://"+ln.Addr().String()+"/metrics")
	go hs.Serve(ln)
	return func() { hs.Close() }, nil
}

// startProfiling serves net/http/pprof's handlers on addr, with the
// mutex and block profiles switched on, for measuring zkd under load.
func startProfiling(addr string, log *slog.Logger) {
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(100_000) // one sample per 100 µs blocked
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("ZKD_PPROF: cannot listen; profiling is off", "addr", addr, "err", err)
		return
	}
	log.Info("serving profiles", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	go http.Serve(ln, nil)
}

func loadConfig(args []string, log *slog.Logger) (*engine.Config, error) {
	cfg := engine.DefaultConfig()
	if len(args) > 0 {
		var err error
		if cfg, err = engine.LoadConfig(args[0], log); err != nil {
			return nil, err
		}
	}
	// ZooKeeper's start scripts hand SERVER_JVMFLAGS to the JVM; the
	// -D settings there that zkd reads (the JAAS file, most often) count
	// where zoo.cfg is silent.
	if err := engine.ApplyJVMFlags(cfg, "SERVER_JVMFLAGS", os.Getenv("SERVER_JVMFLAGS")); err != nil {
		return nil, err
	}
	return cfg, nil
}

// status asks the server named by the configuration for its mode with
// srvr, and prints it the way zkServer.sh status does.
func status(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(stdout, "usage: zkd status [zoo.cfg]   the server's mode, as zkServer.sh status prints it (exit 1: not running)")
		return 0
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := loadConfig(args, quiet)
	if err != nil {
		fmt.Fprintf(stderr, "zkd status: %v\n", err)
		return 2
	}
	if cfg.File != "" {
		fmt.Fprintf(stdout, "Using config: %s\n", cfg.File)
	}
	host := cfg.ClientPortAddress
	if host == "" || host == "0.0.0.0" {
		host = "localhost"
	}
	fmt.Fprintf(stdout, "Client port found: %d. Client address: %s. Client SSL: false.\n", cfg.ClientPort, host)
	out, err := engine.FourLetterWord(net.JoinHostPort(host, fmt.Sprint(cfg.ClientPort)), "srvr")
	mode := ""
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			mode = m
		}
	}
	if err != nil || mode == "" {
		fmt.Fprintln(stderr, "Error contacting service. It is probably not running.")
		return 1
	}
	fmt.Fprintf(stdout, "Mode: %s\n", mode)
	return 0
}

// purge is `zkd purge`: ZooKeeper's PurgeTxnLog for zkd and ZooKeeper data
// directories alike.
func purge(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("zkd purge", flag.ContinueOnError)
	fl.SetOutput(stderr)
	n := fl.Int("n", wal.MinRetain, "snapshots to keep (at least 3)")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: zkd purge [-n count] dataDir [dataLogDir]")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // asked for: to standard output
			fl.SetOutput(stdout)
			fmt.Fprintln(stdout, "usage: zkd purge [-n count] dataDir [dataLogDir]")
			fl.PrintDefaults()
			return 0
		}
		return 2
	}
	if fl.NArg() < 1 || fl.NArg() > 2 {
		fl.Usage()
		return 2
	}
	dataDir, logDir := fl.Arg(0), fl.Arg(1)
	for _, d := range []string{dataDir, logDir} {
		if d == "" {
			continue
		}
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "zkd purge: %s is not a directory\n", d)
			return 1
		}
	}
	removed, err := wal.Purge(nil, dataDir, logDir, *n)
	for _, r := range removed {
		fmt.Fprintf(stdout, "removed %s\n", r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkd purge: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "kept the newest %d snapshots and the logs they need; %d files removed\n", *n, len(removed))
	return 0
}

// processors is the GOMAXPROCS zkd runs with, given the GOMAXPROCS
// environment variable and zkd.gomaxprocs; ok is false when Go's own
// choice (the CPUs the process may use) or the operator's environment
// stands. A load generator on the same cores is the case for more
// processors than cores: with every processor busy, Go polls the network
// only when its run queues drain, so a connection whose request arrives
// then waits; with the loader on the same two cores, four processors
// instead of two cut zkd's p99 at 100 % reads from 2.7-4.0 ms to 1.3-2.1
// ms (docs/benchmarks-history.md, fourth round). A server with its cores to
// itself has no such neighbour.
func processors(env string, setting int) (n int, ok bool) {
	if env != "" || setting <= 0 {
		return 0, false
	}
	return setting, true
}

// eventLoops is how many event loops the engine runs for the setting.
func eventLoops(setting int) int {
	if setting > 0 {
		return setting
	}
	return runtime.NumCPU()
}

// memoryLimit describes the runtime's soft memory limit.
func memoryLimit() string {
	if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
		return fmt.Sprintf("%d MB", l>>20)
	}
	return "none"
}
