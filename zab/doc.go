// Package zab is replication as a pure state machine: fast leader election,
// discovery and sync (DIFF, TRUNC, SNAP), pipelined broadcast, followers and
// observers. Messages and ticks go in; messages to send, entries to persist
// and commits come out. Standalone mode is a quorum of one through the same
// path. It owns no sockets, disks or timers.
//
// Status: zab/election (Fast Leader Election, ZooKeeper 3.8's rules) is
// built, tested on scripted scenarios and random runs, and spoken on real
// sockets by engine/electionport against Apache ZooKeeper; PlanSync
// decides a learner's sync (DIFF, TRUNC, SNAP) as ZooKeeper's leader does.
// Discovery, the sync exchange itself, broadcast and the engine's use of
// all of it are still to come: zkd refuses to run an ensemble until then.
package zab
