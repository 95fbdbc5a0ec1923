package main

import (
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},             // not measured yet: the default
		{16 * mb, 800},       // a small tree: 128 MB of room
		{64 * mb, 200},       //
		{128 * mb, 100},      // from here GOGC=100 gives the room itself
		{1024 * mb, 100},     // a large tree keeps the default
		{1000, maxGCPercent}, // nearly nothing live: bounded
	} {
		if got := gcPercent(tc.live, 128*mb, 100); got != tc.want {
			t.Errorf("gcPercent(%d MB live) = %d, want %d", tc.live/mb, got, tc.want)
		}
	}
}

// gogc is the GOGC the runtime runs with now.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// TestTuneGCGivesASmallHeapItsRoom runs the tuner in this process: after a
// collection it must have raised GOGC so that the heap, a few megabytes
// live, may grow by the room before the next one; stopping it restores
// the default.
func TestTuneGCGivesASmallHeapItsRoom(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const room = 256 << 20
	stop := tuneGC(room, log)
	deadline := time.Now().Add(10 * time.Second)
	for gogc() <= 100 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("GOGC is still %d after collections with a small heap", gogc())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := s[0].Value.Uint64()
	if want := gcPercent(live, room, 100); gogc() < want/2 || gogc() > want*2 {
		t.Errorf("GOGC is %d with %d bytes live; want about %d", gogc(), live, want)
	}
	stop()
	if gogc() != 100 {
		t.Errorf("GOGC is %d after the tuner stopped, want 100", gogc())
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if gogc() != 100 {
		t.Errorf("GOGC is %d after a collection with the tuner stopped, want 100", gogc())
	}
}

// TestTuneGCLeavesTheOperatorsGOGC checks that GOGC in the environment
// stands.
func TestTuneGCLeavesTheOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	stop := tuneGC(256<<20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer stop()
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	time.Sleep(50 * time.Millisecond)
	if gogc() != 150 {
		t.Errorf("GOGC is %d, want the environment's 150", gogc())
	}
}

// TestQuiet: memory goes back only when the heap has stopped growing and
// there is enough of it to give.
func TestQuiet(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		allocated, free uint64
		want            bool
	}{
		{0, 100 * mb, true},          // idle after a burst
		{1 * mb, 17 * mb, true},      // idle pings allocate next to nothing
		{64 * mb, 100 * mb, false},   // still writing: the room is in use
		{0, 8 * mb, false},           // nothing worth a collection
		{quietBytes, 64 * mb, false}, // at the threshold: not quiet
	} {
		if got := quiet(tc.allocated, tc.free); got != tc.want {
			t.Errorf("quiet(%d MB allocated, %d MB free) = %v, want %v", tc.allocated/mb, tc.free/mb, got, tc.want)
		}
	}
}
