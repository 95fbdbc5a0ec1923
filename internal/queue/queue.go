// Package queue is a first-in first-out queue over one array that it
// reuses: what is taken from the front leaves room that the array gets
// back once most of it is taken, so a queue that is filled and drained
// for ever, as a leader's outstanding proposals are, stops allocating.
package queue

// Queue holds items in the order they were pushed. The zero value is an
// empty queue.
type Queue[T any] struct {
	items []T // items[head:] are queued
	head  int
}

// Push adds v at the back.
func (q *Queue[T]) Push(v T) {
	if q.head > 64 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
}

// Items returns the queued items, front first. The slice is the queue's
// own: it stays valid until the next Push or Pop.
func (q *Queue[T]) Items() []T { return q.items[q.head:] }

// Len is the number of items queued.
func (q *Queue[T]) Len() int { return len(q.items) - q.head }

// Pop drops the front item; the queue must not be empty.
func (q *Queue[T]) Pop() {
	var zero T
	q.items[q.head] = zero
	if q.head++; q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}
