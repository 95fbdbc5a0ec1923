// Package bench generates load against any ZooKeeper-compatible server and
// measures it the way ZooKeeper's authors did. It is a client and never
// imports engine.
//
//   - RunSaturate is the ZooKeeper paper's load generator (Hunt et al.,
//     USENIX ATC 2010, §5): connections keeping a window of asynchronous
//     requests in flight, a read percentage of getData and the rest setData,
//     throughput sampled every interval; a sweep of read percentages draws
//     the paper's throughput curve.
//   - RunLatency is zk-smoketest's zk-latencies: create, set, get and delete
//     permanent znodes, then create, watch and delete ephemerals timing the
//     notifications, in sync (latency) or async (throughput) mode.
//   - RunTimed is the brownsys zookeeper-benchmark: each operation for a
//     fixed time.
//   - Compare starts zkd and Apache ZooKeeper on fresh directories and ports
//     and runs a workload on each in turn, several rounds, with peak memory
//     and restart time.
//
// Every phase reports ops/s, per-interval samples, latency percentiles per
// operation (Histogram: log-linear buckets, within 3%) and error replies by
// code; WriteTable, WriteJSON and Plot present them. The load comes from
// package client (pipelined, batched writes, no allocation per request);
// nullserver is the do-nothing server that shows the machine's ceiling.
package bench
