// Package zab is replication as a pure state machine: fast leader election,
// discovery and sync (DIFF, TRUNC, SNAP), pipelined broadcast, followers and
// observers. Messages and ticks go in; messages to send, entries to persist
// and commits come out. It owns no sockets, disks or timers. A standalone
// server does not use it.
//
// engine drives these rules: engine/electionport speaks the election, and
// engine's peer, leader and follower carry out the rest over the quorum
// port, the log and the tree. Built: election, discovery, sync (DIFF,
// TRUNC, SNAP, as ZooKeeper decides), pipelined broadcast, observers
// (INFORM). sim_test.go drives these rules as engine does, for whole
// ensembles in one process under random faults (docs/ensembles.md).
package zab
