package engine

import (
	"strings"
	"time"
)

// faults are bugs a test may plant in a server through the ZKD_FAULTS
// environment variable (comma-separated names), to prove that a checker
// such as zkbench check finds them, or conditions a test cannot make
// otherwise, such as a slow disk. The server warns at start when any is
// set; nothing else sets them.
type faults struct {
	// ackBeforeQuorum: the leader commits, and so acknowledges, a write
	// once its own log holds it, without the followers' ACKs: a leader
	// cut off from them goes on acknowledging writes the next leader
	// never sees.
	ackBeforeQuorum bool
	// disk: the data directory is a faultFS, whose disk a test can break
	// (SIGUSR1) or cut the power of (SIGUSR2) under the running server.
	disk bool
	// fsyncLies (implies disk): an fsync of a txn log file does nothing,
	// so a power cut loses txns the server acknowledged.
	fsyncLies bool
	// slowFsync (implies disk): an fsync of a txn log file takes
	// slowFsyncDelay longer, as an overloaded disk's may, so that this
	// server logs, acknowledges and applies txns well after the others.
	slowFsync bool
	// smallLog: the txn log holds smallLogPending bytes waiting for the
	// disk, not 64 MB, so that a test fills it behind a stalled disk
	// with a few writes.
	smallLog bool
}

// smallLogPending is the txn log's room with ZKD_FAULTS=small-log.
const smallLogPending = 4 << 20

// slowFsyncDelay is what ZKD_FAULTS=slow-fsync adds to each fsync of a
// txn log file.
const slowFsyncDelay = 500 * time.Millisecond

// parseFaults reads ZKD_FAULTS; unknown are the names it does not know.
func parseFaults(s string) (f faults, unknown []string) {
	for _, name := range strings.Split(s, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case "ack-before-quorum":
			f.ackBeforeQuorum = true
		case "disk":
			f.disk = true
		case "fsync-lies":
			f.disk, f.fsyncLies = true, true
		case "slow-fsync":
			f.disk, f.slowFsync = true, true
		case "small-log":
			f.smallLog = true
		default:
			unknown = append(unknown, name)
		}
	}
	return f, unknown
}
