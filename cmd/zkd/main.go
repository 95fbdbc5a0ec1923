package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"zkd/wal"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "purge" {
		os.Exit(purge(os.Args[2:], os.Stdout, os.Stderr))
	}
	fmt.Fprintln(os.Stderr, `zkd: a ZooKeeper-compatible server (work in progress).
The wire codec, the namespace and the durable log are done; the server that
ties them together is not, so there is no server to run yet. When there is,
"zkd" will listen on port 2181 with data in ./zkd-data, and "zkd zoo.cfg" will
use that file.

Available now:
  zkd purge [-n count] dataDir [dataLogDir]
      remove old snapshots and txn logs, keeping the newest count (>= 3)
      snapshots and the logs they need, like ZooKeeper's zkCleanup.sh`)
	os.Exit(2)
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
