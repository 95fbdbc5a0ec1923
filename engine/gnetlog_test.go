package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// gnet's warning of an event for a connection already closed is debug in
// zkd's log, where an operator reading warnings does not see it; gnet's
// other warnings and errors stay what they are.
func TestGnetStaleConnectionEventIsNotAWarning(t *testing.T) {
	var out bytes.Buffer
	g := gnetLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	// gnet's own format and arguments (reactor_default.go, v2.9.7).
	g.Warnf("received event[fd=%d|ev=%d|flags=%d] of a stale connection from event-loop(%d)", 31, 25, 0, 1)
	if out.Len() != 0 {
		t.Fatalf("the stale connection event was logged at info or above: %s", out.String())
	}
	g.Warnf("failed to close connection(fd=%d) with error: %v", 12, "bad file descriptor")
	g.Errorf("event-loop(%d) is exiting due to error: %v", 0, "boom")
	got := out.String()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "failed to close connection(fd=12)") {
		t.Errorf("another gnet warning was not logged as one:\n%s", got)
	}
	if !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "exiting due to error: boom") {
		t.Errorf("a gnet error was not logged as one:\n%s", got)
	}

	out.Reset()
	g = gnetLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	g.Warnf("received event[fd=%d|ev=%d|flags=%d] of a stale connection from event-loop(%d)", 31, 25, 0, 1)
	if got := out.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "stale connection") {
		t.Errorf("with debug logging on, the stale connection event was not logged at debug:\n%s", got)
	}
}
