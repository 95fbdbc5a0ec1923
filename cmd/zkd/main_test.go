package main

import "testing"

// TestProcessors checks that an operator's GOMAXPROCS stands, that
// zkd.gomaxprocs sets it otherwise, and that without either Go's own
// choice (the CPUs the process may use) stands.
func TestProcessors(t *testing.T) {
	if _, ok := processors("3", 8); ok {
		t.Error("GOMAXPROCS=3 in the environment was overridden by zkd.gomaxprocs")
	}
	if _, ok := processors("", 0); ok {
		t.Error("without zkd.gomaxprocs, Go's own choice was overridden")
	}
	if n, ok := processors("", 4); !ok || n != 4 {
		t.Errorf("zkd.gomaxprocs=4 gives %d, %v", n, ok)
	}
}
