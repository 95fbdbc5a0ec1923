// Command zkbench measures any ZooKeeper-compatible server the way
// ZooKeeper's authors did (saturate, latency, timed) and compares zkd with
// Apache ZooKeeper side by side (compare). `zkbench help` explains each
// workload; the work is done by package bench.
package main
