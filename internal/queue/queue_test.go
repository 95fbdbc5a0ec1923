package queue

import (
	"slices"
	"testing"
)

// TestQueueKeepsOrderAndReusesItsArray pushes and pops in a pattern that
// keeps a few hundred items queued for a long while, as proposals in
// flight are: the items come out in the order they went in, and once
// the queue has grown to its size it allocates no more.
func TestQueueKeepsOrderAndReusesItsArray(t *testing.T) {
	var q Queue[*int]
	var want []int
	next, popped := 0, 0
	step := func(i int) {
		for range 3 + i%5 {
			v := next
			next++
			q.Push(&v)
			want = append(want, v)
		}
		for range 3 + (i+2)%5 {
			if q.Len() == 0 {
				return
			}
			if got := *q.Items()[0]; got != want[popped] {
				t.Fatalf("popped %d, want %d", got, want[popped])
			}
			q.Pop()
			popped++
		}
	}
	for range 300 {
		v := next
		next++
		q.Push(&v)
		want = append(want, v)
	}
	for i := range 2000 {
		step(i)
	}
	var got []int
	for _, p := range q.Items() {
		got = append(got, *p)
	}
	if !slices.Equal(got, want[popped:]) {
		t.Fatalf("queued %v, want %v", got, want[popped:])
	}
	if allocs := testing.AllocsPerRun(100, func() {
		for i := range 5 {
			step(i)
		}
	}); allocs > 5*7 { // the pushed ints themselves
		t.Fatalf("%.0f allocations for 5 steps; the queue's array should be reused", allocs)
	}
}

// TestQueuePopToEmptyStartsAgainAtTheFront drains the queue completely
// between pushes: each Pop that empties it lets the next Push reuse the
// array from its start.
func TestQueuePopToEmptyStartsAgainAtTheFront(t *testing.T) {
	var q Queue[int]
	for i := range 100 {
		q.Push(i)
		q.Push(i + 1)
		if q.Len() != 2 || q.Items()[0] != i || q.Items()[1] != i+1 {
			t.Fatalf("round %d: queued %v", i, q.Items())
		}
		q.Pop()
		q.Pop()
		if q.Len() != 0 {
			t.Fatalf("round %d: %d left after popping both", i, q.Len())
		}
	}
	if cap(q.items) > 4 {
		t.Fatalf("the array grew to %d for two items at a time", cap(q.items))
	}
}
