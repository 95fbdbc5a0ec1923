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
}

// parseFaults reads ZKD_FAULTS; unknown are the names it does not know.
func parseFaults(s string) (f faults, unknown []string) {
	for _, name := range strings.Split(s, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case "ack-before-quorum":
			f.ackBeforeQuorum = true
		default:
			unknown = append(unknown, name)
		}
	}
	return f, unknown
}
