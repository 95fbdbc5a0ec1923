// Package ztree is the ZooKeeper namespace: znodes and their Stat, sequential,
// ephemeral, container and TTL nodes, ACL checks, quotas, the /zookeeper
// system nodes, the watch registry and the data-tree digest.
//
// A single applier changes it through a deterministic Apply(txn); readers run
// concurrently against published versions. It does no I/O, reads no clock
// (time arrives in the txn) and starts no goroutines.
//
// Status: not built yet; this package only reserves its place in the design.
package ztree
