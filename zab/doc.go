// Package zab is replication as a pure state machine: fast leader election,
// discovery and sync (DIFF, TRUNC, SNAP), pipelined broadcast, followers and
// observers. Messages and ticks go in; messages to send, entries to persist
// and commits come out. Standalone mode is a quorum of one through the same
// path. It owns no sockets, disks or timers.
//
// Status: zab/election (Fast Leader Election, ZooKeeper 3.8's rules) is
// built, tested on scripted scenarios and random runs, and spoken on real
// sockets by engine/electionport against Apache ZooKeeper. Of the rest,
// the pure rules are here: LeaderDiscovery and LearnerLeaderInfo (the
// epoch), PlanSync (DIFF, TRUNC or SNAP, as ZooKeeper's leader decides),
// Proposals (commits in zxid order at a quorum, SYNC after the newest
// proposal) and Follower (a follower's sync and broadcast as ordered
// actions: durable before acknowledged). The quorum-port exchange that
// drives them, observers, request forwarding, sessions across servers and
// the engine's use of all of it are still to come: zkd refuses to run an
// ensemble until then.
package zab
