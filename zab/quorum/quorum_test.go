package quorum

import (
	"strings"
	"testing"
)

func set(ids ...int64) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// A majority counts voters only; ZooKeeper's hierarchical quorums count
// groups, each by weight, and leave out groups that weigh nothing.
func TestQuorums(t *testing.T) {
	maj := Majority([]int64{1, 2, 3, 4, 5})
	for _, c := range []struct {
		ids  []int64
		want bool
	}{{[]int64{1, 2, 3}, true}, {[]int64{1, 2}, false}, {[]int64{1, 2, 6, 7}, false}, {[]int64{5, 4, 3, 9}, true}} {
		if got := maj.ContainsIDs(c.ids); got != c.want {
			t.Errorf("majority of 5: %v is a quorum: %v, want %v", c.ids, got, c.want)
		}
	}
	// Nine servers in three groups of three.
	nine := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	h, err := Hierarchical(nine, map[int64][]int64{1: {1, 2, 3}, 2: {4, 5, 6}, 3: {7, 8, 9}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ids  []int64
		want bool
	}{
		{[]int64{1, 2, 4, 5}, true},             // two of three in two groups: four of nine
		{[]int64{1, 2, 3, 4, 7}, false},         // one group's majority only
		{[]int64{3, 6, 7, 8, 9}, false},         // a majority of the servers, one group's
		{[]int64{1, 2, 3, 4, 5, 6}, true},       // two whole groups
		{[]int64{1, 4, 7, 2, 5, 8, 3, 6}, true}, // all but one
		{nil, false},
	} {
		if got := h.ContainsIDs(c.ids); got != c.want {
			t.Errorf("3×3 groups: %v is a quorum: %v, want %v", c.ids, got, c.want)
		}
		if maj9 := Majority(nine).ContainsIDs(c.ids); c.ids != nil && len(c.ids) == 5 && maj9 == h.ContainsIDs(c.ids) {
			t.Errorf("%v: a majority and the groups agree; the case shows nothing", c.ids)
		}
	}
	// Weights: server 1 weighs 3 of its group's 5; group 3 weighs nothing
	// and is not counted, so one group of two is not a quorum and two are.
	w, err := Hierarchical([]int64{1, 2, 3, 4, 5, 6}, map[int64][]int64{1: {1, 2, 3}, 2: {4, 5}, 3: {6}},
		map[int64]int64{1: 3, 6: 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ids  []int64
		want bool
	}{{[]int64{1}, false}, {[]int64{1, 4, 5}, true}, {[]int64{2, 3, 4, 5}, false}, {[]int64{1, 4, 6}, false}} {
		if got := w.ContainsIDs(c.ids); got != c.want {
			t.Errorf("weighted: %v is a quorum: %v, want %v", c.ids, got, c.want)
		}
	}
	if w.Weight(6) != 0 || w.Weight(1) != 3 || w.Weight(2) != 1 || w.Weight(7) != 0 || maj.Weight(3) != 1 {
		t.Errorf("weights %d %d %d %d %d", w.Weight(6), w.Weight(1), w.Weight(2), w.Weight(7), maj.Weight(3))
	}
	for _, c := range []struct {
		groups  map[int64][]int64
		weights map[int64]int64
		want    string
	}{
		{map[int64][]int64{1: {1, 2}, 2: {2, 3}}, nil, "server 2 is in group 1 and in group 2"},
		{map[int64][]int64{1: {1, 2}}, nil, "server 3 is a participant and in no group"},
		{map[int64][]int64{1: {1, 2, 3}}, map[int64]int64{1: 0, 2: 0, 3: 0}, "every group weighs nothing"},
		{map[int64][]int64{1: {1, 2, 3}}, map[int64]int64{2: -1}, "negative weight"},
	} {
		if _, err := Hierarchical([]int64{1, 2, 3}, c.groups, c.weights); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want %q", c.groups, c.weights, err, c.want)
		}
	}
}
