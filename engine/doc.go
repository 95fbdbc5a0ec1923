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
// Each connection has a reader goroutine and a writer goroutine (conn.go).
// The reader splits frames (jute.maxbuffer enforced on the length prefix),
// answers the handshake, and answers every read on the spot from the
// published tree version into the connection's output buffer, inside its
// read slot (entered once per batch of frames), so that the tree does not
// reuse a record the read may still be copying. Writes go to
// the applier (applier.go), the one goroutine that owns the tree: it preps
// each against the newest state and assigns its zxid, hands the txn to the
// group-committed log, and when the log says a run of txns is fsynced,
// applies them, publishes one new version, and queues each txn's watch
// events and then its reply on the connections concerned. The writer sends
// everything queued since its last write in one system call.
//
// # What always holds
//
//   - Per-session FIFO: a read that arrives while a write of its session is
//     in flight, or before the read view shows the session's last write,
//     goes to the applier behind that write and is answered from the
//     version after the writes before it and before the ones after it; the
//     writes behind it are logged meanwhile. An addauth waits in the
//     connection (with everything behind it) until nothing of its session
//     is in the applier.
//   - Durable before acknowledged: a write's reply is queued only after its
//     txn is fsynced (forceSync=yes).
//   - Watch before data: the view that readers use moves forward only after
//     the watch events of its txns are queued on their connections.
//   - Bad input closes only the offending connection; an unknown opcode gets
//     UNIMPLEMENTED and the connection stays. A frame too short for a
//     request header closes it too, as ZooKeeper does.
//   - One client cannot take the server: a connection's unsent output is
//     capped (Config.OutputLimit; past it the reader stops reading its
//     requests), a write the client does not read for a session timeout
//     closes it, a connection without a handshake is closed after
//     nio.sessionlessCnxnTimeout, and accept backs off when out of
//     descriptors.
//   - A full disk stops the log but not the server (Server.readOnly):
//     reads go on, writes get NOTREADONLY, nothing unlogged is
//     acknowledged.
//
// The design names gnet for the event loops; the module proxy this project
// builds from refuses it, so connections run on Go's netpoller instead.
package engine
