// Package zab is replication as a pure state machine: fast leader election,
// discovery and sync (DIFF, TRUNC, SNAP), pipelined broadcast, followers and
// observers. Messages and ticks go in; messages to send, entries to persist
// and commits come out. Standalone mode is a quorum of one through the same
// path. It owns no sockets, disks or timers.
//
// Status: zab/election (Fast Leader Election, ZooKeeper 3.8's rules) is
// built and tested on scripted scenarios and random runs; the engine does
// not drive it yet, and discovery, sync and broadcast are still to come.
package zab
