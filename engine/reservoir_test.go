package engine

import (
	"math"
	"testing"
)

// The percentiles mntr reports are the ones ZooKeeper's metrics library
// (Dropwizard metrics 3.2.6, the jar Debian's ZooKeeper runs with) gives
// for the same values: UniformSnapshot's median, 95th, 99th and 99.9th
// percentiles, printed by a Java program over that jar.
func TestQuantilesAreZooKeepers(t *testing.T) {
	upTo100 := make([]int64, 100)
	for i := range upTo100 {
		upTo100[i] = int64(i + 1)
	}
	squares := make([]int64, 4096)
	for i := range squares {
		squares[i] = int64(i) * int64(i) % 1000
	}
	for _, c := range []struct {
		vals []int64
		want [4]float64 // 0.5, 0.95, 0.99, 0.999
	}{
		{nil, [4]float64{0, 0, 0, 0}},
		{[]int64{7}, [4]float64{7, 7, 7, 7}},
		{[]int64{1, 2}, [4]float64{1.5, 2, 2, 2}},
		{[]int64{5, 1, 4, 2, 3}, [4]float64{3, 5, 5, 5}},
		{[]int64{0, 0, 0, 10}, [4]float64{0, 10, 10, 10}},
		{upTo100, [4]float64{50.5, 95.94999999999999, 99.99, 100}},
		{squares, [4]float64{449, 929, 976, 996}},
	} {
		var r reservoir
		for _, v := range c.vals {
			r.add(v, 1)
		}
		sorted := r.sample()
		for i, q := range []float64{0.5, 0.95, 0.99, 0.999} {
			if got := quantile(sorted, q); got != c.want[i] {
				t.Errorf("%d values %v…: quantile %v is %v, ZooKeeper's %v", len(c.vals), c.vals[:min(len(c.vals), 5)], q, got, c.want[i])
			}
		}
	}
	// mntr rounds them as Java's Math.round: halves up.
	var r reservoir
	r.add(1, 1)
	r.add(2, 1)
	if got := r.percentileFigures("x"); got[0] != (monitorValue{"zk_p50_x", "2"}) || got[3] != (monitorValue{"zk_p999_x", "2"}) {
		t.Errorf("figures of {1, 2}: %v, want p50 2 (1.5 rounded up) and p999 2", got)
	}
}

// Past its size the reservoir keeps a uniform sample of everything added:
// of 0…199,999 added one by one, in runs and in groups, the sample's percentiles
// are near the whole's (the bounds are about ten standard deviations of
// a 4,096-value sample), and a reset forgets them all.
func TestReservoirKeepsAUniformSample(t *testing.T) {
	var r reservoir
	const n = 200_000
	for v := int64(0); v < n/4; v++ {
		r.add(v, 1)
	}
	for v := int64(n / 4); v < n/2; v += 4 {
		r.add(v, 4) // a loop's pass counts its reads at once
	}
	for v := int64(n / 2); v < n; v += 8 {
		r.addEach([]int64{v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7}) // and those that waited
	}
	if got := r.count.Load(); got != n {
		t.Fatalf("count %d after %d values", got, n)
	}
	sorted := r.sample()
	if len(sorted) != reservoirSize {
		t.Fatalf("a sample of %d values, want %d", len(sorted), reservoirSize)
	}
	for _, q := range []float64{0.05, 0.25, 0.5, 0.75, 0.95} {
		got, want := quantile(sorted, q), q*n
		// The sample quantile's deviation is n·√(q(1−q)/4096).
		if bound := 10 * n * math.Sqrt(q*(1-q)/reservoirSize); math.Abs(got-want) > bound {
			t.Errorf("quantile %v of the sample is %.0f, of the values %.0f (bound %.0f)", q, got, want, bound)
		}
	}
	r.reset()
	if r.count.Load() != 0 || len(r.sample()) != 0 || quantile(r.sample(), 0.99) != 0 {
		t.Errorf("after a reset: count %d, sample %v", r.count.Load(), r.sample())
	}
	r.add(3, 2)
	if s := r.sample(); len(s) != 2 || s[0] != 3 || s[1] != 3 {
		t.Errorf("after a reset and adding 3 twice: sample %v", s)
	}
}
