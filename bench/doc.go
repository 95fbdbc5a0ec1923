// Package bench generates load against any ZooKeeper-compatible server and
// measures it: the ZooKeeper paper's saturation sweep (throughput against read
// percentage), zk-smoketest-style latency phases and time-based runs, with
// reports, JSON and plots. It is a client and never imports engine.
//
// Status: not built yet; this package only reserves its place in the design.
package bench
