// Package engine is the zkd server: connections and sessions, the request
// pipeline, watch delivery, limits, four-letter words and zoo.cfg. It wires
// wire, ztree and wal together and drives their I/O; protocol encoding lives
// in wire and tree semantics in ztree.
//
//	cfg, err := engine.LoadConfig("zoo.cfg", logger) // or engine.DefaultConfig()
//	srv, err := engine.New(cfg, engine.Options{Logger: logger}) // recovers the data directory
//	err = srv.Start()                                           // listens on clientPort
//	…
//	err = srv.Close()
//
// # How a request travels
//
// The client port runs on gnet event loops (loop.go), as many as the CPUs
// the process may use unless Options.EventLoops says otherwise. An accept
// goroutine takes each connection (backing off when out of descriptors),
// counts it against maxClientCnxns, and enrolls it with the loop that has
// the fewest; from then on that loop owns it, and nothing of a connection
// (conn.go) is touched anywhere else, so it has no lock and no goroutine.
//
// A loop works in passes. A pass enters the loop's read slot, loads the
// published view, and drains the loop's mailbox (below). Then, on traffic,
// it splits the connection's frames (jute.maxbuffer enforced on the
// length prefix), answers the handshake, and answers every read on the
// spot from the view into the connection's output; the writes it decodes
// go to the applier (applier.go) as one batch for the whole pass. The
// pass ends by writing each connection's output in one system call.
//
// The applier is the one goroutine that owns the tree: it preps each write
// against the newest state and assigns its zxid, hands the txn to the
// group-committed log, and when the log says a run of txns is fsynced,
// applies them and publishes one new version. It never touches a
// connection: it posts each txn's watch events and then its reply to the
// mailbox of the loop that owns the connection concerned, stores the new
// view, and wakes each loop it posted to. A loop carries out its mailbox
// in the order posted, but only up to the first item of a txn its pass's
// view does not hold; the rest waits for the wake that follows the view.
//
//	loop:    frames → reads answered from the view; writes → one batch
//	applier: prep → log → fsync → apply, publish → post events, replies
//	         → store the view → wake the loops → post the waiting reads
//	loop:    view, then mailbox (events, replies, waited reads) → one
//	         write per connection
//
// The tree comes from wal.Open, which recovers it and hands it over; the
// log only reads and writes files. When the log reaches a snapshot point
// (snapCount) it calls back, and the server writes a snapshot of the
// published version on a goroutine of its own, with a reader slot entered
// so the applier reuses none of the records the walk reads.
//
// Four-letter words are answered off the loop (dirs reads the disk, dump
// walks every session), their answer posted back like a reply. A
// housekeeping pass every 50 ms closes connections past their handshake
// or write deadline and resumes the input it held back.
//
// # What always holds
//
//   - Per-session FIFO: a read that arrives while a write of its session is
//     in flight, or before the pass's view shows the session's last write
//     or a watch event it was sent, goes to the applier behind that write;
//     the applier posts it back with the version after the writes before
//     it and before the ones after it, pinned so its records stay, and the
//     loop answers it from that version. The writes behind it are logged
//     meanwhile. An addauth, and a request that sets, removes or looks
//     up a watch (addWatch, removeWatches, checkWatches, setWatches, a
//     read with its watch flag), waits in the connection (with everything
//     behind it) until nothing of its session is in the applier: its
//     watch then takes effect where it stands among the session's
//     writes, as in ZooKeeper, and not after the writes behind it.
//   - Durable before acknowledged: a write's reply is posted only after its
//     txn is fsynced (forceSync=yes): alone, on this server's disk; in an
//     ensemble, on a quorum's disks (the leader, and a follower, answer
//     once the leader commits, whatever their own disk), and sent only
//     once the view that every reader loads holds it.
//   - Watch before data: the view moves forward only after the watch events
//     of its txns are in their loops' mailboxes, and a pass loads the view
//     before it drains the mailbox, so whatever it answers from the view
//     goes out after those events.
//   - Bad input closes only the offending connection; an unknown opcode gets
//     UNIMPLEMENTED and the connection stays. A frame too short for a
//     request header closes it too, as ZooKeeper does.
//   - One client cannot take the server: a connection's unsent output is
//     capped (Config.OutputLimit; past it its loop leaves its requests
//     unread, in gnet's buffer, until the output drains, and closes it if
//     it keeps sending), output the client does not read for a session
//     timeout closes it, a connection without a handshake is closed after
//     nio.sessionlessCnxnTimeout, globalOutstandingLimit holds every
//     connection's input the same way, and accept backs off when out of
//     descriptors. No loop ever blocks: nothing on a loop waits for the
//     disk, the applier or a client.
//   - A full disk stops the log but not the server (Server.readOnly):
//     reads go on, writes get NOTREADONLY, nothing unlogged is
//     acknowledged.
package engine
