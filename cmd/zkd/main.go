package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, `zkd: a ZooKeeper-compatible server (work in progress).
The wire protocol codec (package wire) is done; the namespace, log, engine and
replication are not, so there is no server to run yet. When there is, "zkd"
will listen on port 2181 with data in ./zkd-data, and "zkd zoo.cfg" will use
that file.`)
	os.Exit(2)
}
