package engine

import "strings"

// faults are bugs a test may plant in a server through the ZKD_FAULTS
// environment variable (comma-separated names), to prove that a checker
// such as zkbench check finds them. The server warns at start when any is
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
}

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
		default:
			unknown = append(unknown, name)
		}
	}
	return f, unknown
}
