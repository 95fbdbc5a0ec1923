// Package ztree is the ZooKeeper namespace: znodes and their Stat, sequential,
// ephemeral, container and TTL nodes, ACL checks, quotas, the /zookeeper
// system nodes, the watch registry and the data-tree digest.
//
// It does no I/O, reads no clock (time arrives in the txn) and starts no
// goroutines. Apache ZooKeeper 3.8 is the reference for every rule; where a
// rule is subtle the code says which ZooKeeper class it follows.
//
// # The write path
//
// One goroutine, the applier, owns the Tree and calls, per write request:
//
//	txn, err := t.Prep(&req)    // check against the tree and every prepped txn; build the txn
//	… log txn durably …
//	res := t.Apply(&txn.Header, txn.Record) // change the tree; res is the reply's content
//	events := t.Publish()       // once per batch: readers see the batch, watches fire
//
// Prep checks a request the way ZooKeeper's PrepRequestProcessor does, against
// the committed tree overlaid with the changes of txns prepped but not yet
// applied, so a pipeline of writes sees its own effects. A request that fails
// still becomes a txn (an ErrorTxn), as in ZooKeeper's log. Apply is
// deterministic: the same txns give the same tree and the same digest on every
// server, and it is also what replays the log at start-up.
//
// # Readers
//
// Publish freezes the applied state into an immutable View at the cost of a
// pointer swap per changed shard: the namespace is 64 copy-on-write B-trees
// (github.com/tidwall/btree), a znode's shard picked by the xxhash of its
// parent path and its key ordered by (parent hash, name prefix, parent,
// name), the first two kept in the B-tree slot so that a search rarely
// reads a znode's record; a znode's children are one range of one shard,
// sorted by name. Any number of goroutines read a View
// while the applier goes on; a View published after txn Z holds exactly the
// txns up to Z. Each znode is one immutable record (path, varint-encoded
// data length and metadata, data), so a View and the applier share every znode that did not
// change.
//
// With TrackReaders on, the record a setData replaces is written over by a
// later setData once no reader can hold a View that has it (reuse.go): a
// reader other than the applier reads records only between Enter and Leave
// on its ReadSlot, and is done with the strings a View hands it by Leave.
// From a znode's first change on, its B-tree slot points to a cell
// (cell.go) holding its versions, each stamped with the first View that
// shows it: later writes copy no B-tree node, and a reader takes the
// newest version its View may see. The
// cells are also found through a small hash cache, by the applier without
// a B-tree search, and by readers when the cached cell has a version their
// View may see; each slot mirrors its cell's newest version, so a reader
// of a current View gets the record without loading the cell.
//
// # Watches
//
// A read that sets a watch registers it with Watch, naming the View it read;
// if the znode changed between that View and the newest one, the event comes
// back at once instead. Apply records what each txn changed, and Publish
// matches those changes against the registered watches under the registry's
// lock, in zxid order, returning each event once per session. Because a View
// only becomes current under that same lock, no change can slip between a
// read and its watch.
package ztree
