// Package engine is the zkd server: gnet event loops, connections and
// sessions, the request pipeline (reads served on the loop from the published
// tree, writes through prep, zab, the group-committed log and apply), watch
// delivery, limits, four-letter words, metrics and zoo.cfg.
//
// It wires wire, ztree, wal and zab together and drives their I/O; it holds no
// protocol encoding and no tree semantics of its own.
//
// Status: not built yet; this package only reserves its place in the design.
package engine
