package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "zkbench: load generator for ZooKeeper-compatible servers (not built yet).")
	os.Exit(2)
}
