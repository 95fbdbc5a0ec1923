package main

import "testing"

// TestProcessors checks that an operator's GOMAXPROCS stands and that
// otherwise zkd runs extra processors, twice the CPUs on small machines.
func TestProcessors(t *testing.T) {
	if _, ok := processors("3", 2); ok {
		t.Error("GOMAXPROCS=3 in the environment was overridden")
	}
	for _, tc := range []struct{ cpus, want int }{{1, 2}, {2, 4}, {4, 8}, {16, 20}} {
		if n, ok := processors("", tc.cpus); !ok || n != tc.want {
			t.Errorf("processors with %d CPUs = %d, %v; want %d", tc.cpus, n, ok, tc.want)
		}
	}
}
