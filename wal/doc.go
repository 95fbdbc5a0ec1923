// Package wal is zkd's durability: the group-committed transaction log,
// fuzzy snapshots, segment rolling, purge and crash recovery, in Apache
// ZooKeeper 3.8's data-directory layout (version-2/log.<zxid>,
// version-2/snapshot.<zxid>). The file system sits behind an interface so
// tests can crash it.
//
// Status: not built yet; this package only reserves its place in the design.
package wal
