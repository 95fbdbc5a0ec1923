package zab

import (
	"fmt"
	"slices"
	"testing"
)

// span is the zxids from..to of one epoch.
func span(epoch, from, to int64) []int64 {
	var out []int64
	for c := from; c <= to; c++ {
		out = append(out, epoch<<32|c)
	}
	return out
}

func join(parts ...[]int64) []int64 { return slices.Concat(parts...) }

// disk is a txn log holding zxids, each txn of size bytes.
func disk(zxids []int64, size int64) func(from, limit int64) []int64 {
	return func(from, limit int64) []int64 {
		i, _ := slices.BinarySearch(zxids, from)
		if i == len(zxids) || (zxids[i] != from && i == 0) {
			return nil // the log does not reach back to from
		}
		if zxids[i] != from {
			i--
		}
		rest := zxids[i:]
		if limit >= 0 && int64(len(rest))*size > limit {
			return nil
		}
		return rest
	}
}

func TestPlanSync(t *testing.T) {
	committed := span(2, 1, 500) // the last 500 txns, all of epoch 2
	lastC := committed[len(committed)-1]
	onDisk := join(span(1, 1, 900), span(2, 1, 500))
	for _, c := range []struct {
		name string
		peer int64
		h    History
		want string
	}{
		{"in step: an empty DIFF", lastC, History{LastProcessed: lastC, Committed: committed},
			"DIFF 0x2000001f4 send 0"},
		{"behind, within the committed log: DIFF and the txns after", 2<<32 | 400, History{LastProcessed: lastC, Committed: committed},
			"DIFF 0x2000001f4 send 100 0x200000191..0x2000001f4"},
		{"ahead of everything committed (an old leader's proposals): TRUNC", 2<<32 | 503, History{LastProcessed: lastC, Committed: committed},
			"TRUNC 0x2000001f4 send 0"},
		{"a new epoch's start: DIFF with the epoch's txns", 2 << 32, History{LastProcessed: lastC, Committed: join(span(1, 800, 900), committed)},
			"DIFF 0x2000001f4 send 500 0x200000001..0x2000001f4"},
		{"a txn the leader skipped in the learner's epoch: TRUNC to the one before, then the rest", 2<<32 | 3,
			History{LastProcessed: lastC, Committed: join(span(2, 1, 2), span(2, 4, 500))},
			"TRUNC 0x200000002 send 497 0x200000004..0x2000001f4"},
		{"diverged in an older epoch: no TRUNC across epochs, SNAP", 1<<32 | 905,
			History{LastProcessed: lastC, Committed: join(span(1, 880, 900), committed)},
			"SNAP 0x2000001f4 send 0"},
		{"behind the committed log, a small txn log: DIFF from disk", 1<<32 | 700,
			History{LastProcessed: lastC, Committed: committed, TxnLog: disk(onDisk, 100), SnapshotBytes: 1 << 20, SnapshotSizeFactor: 0.33},
			"DIFF 0x2000001f4 send 700 0x1000002bd..0x2000001f4"},
		{"behind the committed log, a txn log bigger than a third of the snapshot: SNAP", 1<<32 | 700,
			History{LastProcessed: lastC, Committed: committed, TxnLog: disk(onDisk, 1000), SnapshotBytes: 1 << 20, SnapshotSizeFactor: 0.33},
			"SNAP 0x2000001f4 send 0"},
		{"behind a txn log that ends before the committed log starts: SNAP", 1<<32 | 700,
			History{LastProcessed: lastC, Committed: committed, TxnLog: disk(span(1, 1, 900), 100), SnapshotBytes: 1 << 20, SnapshotSizeFactor: 0.33},
			"SNAP 0x2000001f4 send 0"},
		{"behind the oldest txn on disk: SNAP", 1<<32 | 5,
			History{LastProcessed: lastC, Committed: committed, TxnLog: disk(onDisk[100:], 1), SnapshotBytes: 1 << 20, SnapshotSizeFactor: 0.33},
			"SNAP 0x2000001f4 send 0"},
		{"snapshotSizeFactor below zero: never the txn log", 1<<32 | 700,
			History{LastProcessed: lastC, Committed: committed, TxnLog: disk(onDisk, 1), SnapshotBytes: 1 << 20, SnapshotSizeFactor: -1},
			"SNAP 0x2000001f4 send 0"},
		{"forceSnapshotSync", 2<<32 | 400, History{LastProcessed: lastC, Committed: committed, ForceSnap: true},
			"SNAP 0x2000001f4 send 0"},
		{"an empty committed log: DIFF only when in step", 2<<32 | 5, History{LastProcessed: 2<<32 | 5},
			"DIFF 0x200000005 send 0"},
		{"an empty committed log and a learner behind: SNAP", 2<<32 | 4, History{LastProcessed: 2<<32 | 5},
			"SNAP 0x200000005 send 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := PlanSync(c.peer, c.h)
			got := fmt.Sprintf("%s %#x send %d", p.Mode, p.Zxid, len(p.Send))
			if len(p.Send) > 0 {
				got += fmt.Sprintf(" %#x..%#x", p.Send[0], p.Send[len(p.Send)-1])
				for i := 1; i < len(p.Send); i++ {
					if p.Send[i] <= p.Send[i-1] {
						t.Fatalf("txns out of order: %#x after %#x", p.Send[i], p.Send[i-1])
					}
				}
			}
			if got != c.want {
				t.Fatalf("peer %#x: got %s, want %s", c.peer, got, c.want)
			}
		})
	}
}
