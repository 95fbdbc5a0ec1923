// Package wal is zkd's durability: the group-committed transaction log,
// snapshots, log rolling, purge and crash recovery, in Apache ZooKeeper
// 3.8's data-directory format, so a ZooKeeper data directory starts zkd and
// a zkd data directory starts ZooKeeper.
//
// # Layout
//
//	<dataLogDir>/version-2/log.<hex zxid of its first txn>
//	<dataDir>/version-2/snapshot.<hex zxid>[.gz|.snappy|.zst]
//
// A log file is a 16-byte header (magic "ZKLG", version 2, dbid 0) and then,
// per txn, the Adler-32 checksum of the entry as an 8-byte long, the
// entry's length, the entry (TxnHeader, the txn record, and the TxnDigest
// where ZooKeeper writes one) and the end-of-record byte 'B'. Files are
// preallocated with zeros in PreAllocSize steps; a zero length marks the end.
// A snapshot is ZooKeeper's FileSnap stream: header ("ZKSN", 2, -1), the
// sessions, the ACL table, the znodes depth first, "/" to end them, an
// Adler-32 seal, the zxid digest and a second seal; optionally compressed
// as a whole (gz, snappy-java's framing, or zstd as zkd's own extension).
//
// # The commit rules
//
// One goroutine owns the log. Append encodes a txn into the queue and
// returns; the writer takes everything queued as one batch, writes it with
// one call, fdatasyncs once, and then — only then — calls the batch's done
// callbacks in zxid order and OnSync with its last zxid. While it writes,
// the next batch queues up, so batches grow with the load and a lone txn
// goes out at once: no timer ever delays a write.
//
//   - A txn is acknowledged (its done callback runs with nil) only after the
//     fsync covering it returned, and only after every earlier txn was.
//   - A new log file's header and directory entry are made durable before
//     any txn in it is acknowledged.
//   - A write or fsync error stops the log for good: the batch in hand and
//     everything queued fail, OnFatal is called, later Appends fail. It is
//     never retried (after a failed fsync the page cache may already have
//     dropped the data; retrying would report success for lost data).
//   - Callers apply a txn to the tree only after it is durable, so a
//     snapshot, which is written from a published version of their tree,
//     never holds a txn the log could lose (Snapshot refuses a version past
//     the durable log).
//
// # The tree
//
// The package reads and writes txns and snapshots; it does not own the
// tree. Open rebuilds the tree from the data directory and hands it to the
// caller, who applies txns to it from then on. At each snapshot point
// (about SnapCount txns or SnapSizeLimit bytes, at a random place in the
// second half, as ZooKeeper picks it) the log rolls to a new file and calls
// OnSnapshotDue; the caller then writes a snapshot of its tree with
// Snapshot, on a goroutine of its own, while Appends go on.
//
// # Recovery
//
// Open loads the newest snapshot that reads back intact, replays every
// logged txn after it, and checks the tree's digest against the digests
// logged with the txns and the snapshot's own. Two kinds of failure are
// kept apart all the way:
//
//   - An I/O error (a file that cannot be opened, a read the OS fails) says
//     nothing about the data, so it stops Open with an error naming the
//     file, the operation and the OS error (*SnapshotIOError for a
//     snapshot). Files are only ever opened read-only to be read.
//   - Damage (a snapshot cut short, a checksum or the format wrong) lets a
//     snapshot be passed over for the one before it, but only when the
//     logs carry the tree past the damaged one's zxid; otherwise Open
//     stops, naming it.
//
// The newest log file may end in a torn write — the part of the last batch
// the crash let through — and only that is cut off: the damaged entry must
// be followed by nothing but zeros past the length it gives, and by no
// intact txn anywhere. Before the cut, the non-zero bytes cut are kept in
// torn.log.<zxid>.at-<offset> beside the log. Damage anywhere else stops
// Open with a *CorruptError naming the file and offset, because the txns
// after it would otherwise be lost without a word. When the disk is too
// full to keep the torn bytes, nothing is cut and the store opens stopped
// (Stopped says why): the tree is there to read, no txn can be appended.
//
// # Replication
//
// For an ensemble the package also keeps the acceptedEpoch and
// currentEpoch files (LoadEpochs, WriteEpoch), reads the txns after a
// zxid for a follower that lacks them (ReadTxns), and cuts the history
// back to a zxid for a follower whose log runs past the leader's
// (TruncateLog). A cut sets aside what it removes — later log files and
// snapshots renamed truncated.<name>, the bytes cut off a log in
// truncated.<name>.at-<offset> — where neither zkd nor ZooKeeper loads
// or purges them.
//
// The file system sits behind package vfs; vfs.Mem models what a power
// cut keeps, which is how the crash tests work.
//
//	s, tree, err := wal.Open(wal.Options{Dir: "zkd-data", OnSnapshotDue: due})
//	txn, _ := tree.Prep(&req) // on the applier goroutine
//	s.Append(&wal.Txn{Header: txn.Header, Record: txn.Record, Digest: &txn.Digest},
//		func(err error) { /* durable: apply, publish, reply */ })
//	// due, at a snapshot point: go s.Snapshot(tree.Published())
package wal
