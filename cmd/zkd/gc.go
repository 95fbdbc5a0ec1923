package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// zkd.gc.roomMB is the least room zkd leaves the heap to grow between two
// collections. Go's default (GOGC=100) lets the heap grow by as much as is
// live; with a small tree that is a few megabytes, and a write load fills
// them many times a second (each publish copies the B-tree nodes it
// changed, each setData makes a new record): at 90 % reads on the
// development VM, about 230 MB/s over an 18 MB live heap, so ten
// collections a second, whose mark phases (write barriers, assists, the
// dedicated worker) held p99 at 3.6-3.8 ms; with this room, 3.2-3.3 ms
// (docs/benchmarks-history.md, seventh round). Once the live heap passes the room,
// GOGC=100 gives at least as much room and the policy changes nothing, so
// a large tree's memory is what it was. The default is 64 MB: a server
// holds that once and keeps most of it between bursts of writes (see
// releaseWhenQuiet for what it gives back).

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
	if room == 0 {
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

// Giving memory back. A burst of writes or of new sessions leaves its
// garbage in the heap, up to the room above; when nothing allocates
// afterwards, no collection runs and that memory stays the process's
// while it holds idle sessions. releaseWhenQuiet watches the allocation
// rate and, once a period passes with less than quietBytes allocated
// while more than quietFree bytes of the heap are garbage or free pages
// the process still holds, collects and hands the free pages back to the
// system, once per burst.
const (
	quietPeriod = 10 * time.Second
	quietBytes  = 4 << 20
	quietFree   = 16 << 20
)

// releaseWhenQuiet starts the watch and returns the function that stops it.
func releaseWhenQuiet(log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(quietPeriod)
		defer t.Stop()
		s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		last := s[0].Value.Uint64()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(s)
			allocs := s[0].Value.Uint64()
			// Free pages, and objects the last collection did not find
			// live: what a collection now would give back.
			free := s[1].Value.Uint64() + s[2].Value.Uint64() - min(s[3].Value.Uint64(), s[2].Value.Uint64())
			if quiet(allocs-last, free) {
				start := time.Now()
				debug.FreeOSMemory()
				log.Debug("gc: quiet; free heap memory given back", "free", fmt.Sprintf("%d MB", free>>20),
					"took", time.Since(start).Round(time.Millisecond))
				metrics.Read(s)
				allocs = s[0].Value.Uint64()
			}
			last = allocs
		}
	}()
	return func() { close(done) }
}

// quiet reports whether a period with allocated bytes allocated, and free
// bytes a collection would give back, calls for giving memory back.
func quiet(allocated, free uint64) bool { return allocated < quietBytes && free > quietFree }
