package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcRoom is the least room zkd leaves the heap to grow between two
// collections. Go's default (GOGC=100) lets the heap grow by as much as is
// live; with a small tree that is a few megabytes, and a write load fills
// them many times a second (each publish copies the B-tree nodes it
// changed, each setData makes a new record): at 90 % reads on the
// development VM, about 230 MB/s over an 18 MB live heap, so ten
// collections a second, whose mark phases (write barriers, assists, the
// dedicated worker) held p99 at 3.6-3.8 ms; with this room, 3.2-3.3 ms
// (docs/benchmarks.md, seventh round). Once the live heap passes gcRoom,
// GOGC=100 gives at least as much room and the policy changes nothing, so
// a large tree's memory is what it was.
const gcRoom = 128 << 20

// maxGCPercent bounds the percentage for a nearly empty heap.
const maxGCPercent = 10_000

// gcPercent is the GOGC that gives a live heap of live bytes at least room
// bytes to grow, and never less than base. live is 0 until the first
// collection has measured it; then it is base, not the most room there
// is: a heap let grow to hundreds of megabytes before its first
// collection stays spread over them, and reads slow down by the cache
// and TLB misses.
func gcPercent(live, room uint64, base int) int {
	if live == 0 {
		return base
	}
	p := room * 100 / live
	if p > maxGCPercent {
		p = maxGCPercent
	}
	return max(base, int(p))
}

// gcTuner sets GOGC after every collection from the live heap it left.
type gcTuner struct {
	room uint64
	base int

	mu      sync.Mutex // one adjust at a time, none after stop
	stopped bool
	sample  []metrics.Sample
	last    int
}

// tuneGC starts keeping at least room bytes of headroom in the heap, as
// gcPercent says, and returns the function that stops it. An operator's
// GOGC in the environment stands: then nothing is tuned.
func tuneGC(room uint64, log *slog.Logger) (stop func()) {
	if os.Getenv("GOGC") != "" {
		log.Info("gc: GOGC is set in the environment; using it as given")
		return func() {}
	}
	t := &gcTuner{room: room, base: 100, last: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	log.Info("gc: between collections the heap may grow by its live size or by room, whichever is more",
		"room", fmt.Sprintf("%d MB", room>>20))
	return func() {
		t.mu.Lock()
		t.stopped = true
		debug.SetGCPercent(t.base)
		t.mu.Unlock()
	}
}

// arm has adjust run after the next collection: the cleanup of an object
// nothing refers to runs once a collection has found it unreachable. Each
// run arms the next.
func (t *gcTuner) arm() {
	sentinel := &struct{ _ *int }{}
	runtime.AddCleanup(sentinel, func(t *gcTuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets GOGC from the live heap the last collection measured, and
// reports false once the tuner has stopped.
func (t *gcTuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return true
	}
	p := gcPercent(t.sample[0].Value.Uint64(), t.room, t.base)
	// A few percent either way changes nothing that matters; leave the
	// pacer alone then.
	if d := p - t.last; d > t.last/20 || -d > t.last/20 {
		debug.SetGCPercent(p)
		t.last = p
	}
	return true
}
