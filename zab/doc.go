// Package zab is replication as a pure state machine: fast leader election,
// discovery and sync (DIFF, TRUNC, SNAP), pipelined broadcast, followers and
// observers. Messages and ticks go in; messages to send, entries to persist
// and commits come out. Standalone mode is a quorum of one through the same
// path. It owns no sockets, disks or timers.
//
// Status: not built yet; this package only reserves its place in the design.
package zab
