// Package quorum says which sets of an ensemble's servers are quorums.
package quorum

import (
	"fmt"
	"slices"
)

// Quorum says which sets of servers are quorums. By default a quorum is
// more than half of the voters (the participants). With groups, it is
// ZooKeeper's hierarchical quorum (QuorumHierarchical): each voter is in
// one group and has a weight (1 unless given); a set is a quorum when,
// in more than half of the groups whose weight is not zero, its members
// weigh more than half of the group. Any two quorums of one kind
// overlap; a majority and a hierarchical quorum need not.
//
// A Quorum is read-only once made; one may be shared.
type Quorum struct {
	voters  []int64 // sorted
	isVoter map[int64]bool
	// With groups: each voter's group and weight, each group's weight,
	// and how many groups weigh more than zero.
	group       map[int64]int64
	weight      map[int64]int64
	groupWeight map[int64]int64
	groups      int
}

// Majority is the quorum of more than half of voters.
func Majority(voters []int64) *Quorum {
	q := &Quorum{voters: slices.Clone(voters), isVoter: map[int64]bool{}}
	slices.Sort(q.voters)
	for _, v := range voters {
		q.isVoter[v] = true
	}
	return q
}

// Hierarchical is the quorum of groups (group id → its servers) and
// weights (server → weight; 1 where not given) over voters, as ZooKeeper
// reads group.N and weight.N lines. Every voter must be in exactly one
// group; a group may not name a server twice, nor a server two groups.
func Hierarchical(voters []int64, groups map[int64][]int64, weights map[int64]int64) (*Quorum, error) {
	q := Majority(voters)
	q.group, q.weight, q.groupWeight = map[int64]int64{}, map[int64]int64{}, map[int64]int64{}
	for gid, members := range groups {
		for _, sid := range members {
			if g, ok := q.group[sid]; ok {
				return nil, fmt.Errorf("server %d is in group %d and in group %d", sid, min(g, gid), max(g, gid))
			}
			q.group[sid] = gid
		}
	}
	for sid, w := range weights {
		if w < 0 {
			return nil, fmt.Errorf("server %d has a negative weight (%d)", sid, w)
		}
		q.weight[sid] = w
	}
	for _, v := range q.voters {
		if _, ok := q.group[v]; !ok {
			return nil, fmt.Errorf("server %d is a participant and in no group", v)
		}
		if _, ok := q.weight[v]; !ok {
			q.weight[v] = 1
		}
	}
	for sid, gid := range q.group {
		q.groupWeight[gid] += q.weight[sid]
	}
	for _, w := range q.groupWeight {
		if w > 0 {
			q.groups++
		}
	}
	if q.groups == 0 {
		return nil, fmt.Errorf("every group weighs nothing, so no set of servers is a quorum")
	}
	return q, nil
}

// Voters are the participants, sorted.
func (q *Quorum) Voters() []int64 { return q.voters }

// IsVoter reports whether sid is a participant.
func (q *Quorum) IsVoter(sid int64) bool { return q.isVoter[sid] }

// Hierarchical reports whether the quorum counts groups.
func (q *Quorum) Hierarchical() bool { return q.group != nil }

// Weight is sid's weight: 1 for a voter of a majority quorum, its own
// weight (possibly 0) with groups, 0 for a server that is not a voter.
// ZooKeeper's election never picks a server of weight 0 to lead.
func (q *Quorum) Weight(sid int64) int64 {
	if !q.isVoter[sid] {
		return 0
	}
	if q.group == nil {
		return 1
	}
	return q.weight[sid]
}

// Contains reports whether the servers in set (the keys whose value is
// true) include a quorum. Servers that are not voters count for nothing.
func (q *Quorum) Contains(set map[int64]bool) bool {
	if q.group == nil {
		n := 0
		for sid, in := range set {
			if in && q.isVoter[sid] {
				n++
			}
		}
		return n > len(q.voters)/2
	}
	var sum map[int64]int64
	for sid, in := range set {
		if !in || !q.isVoter[sid] {
			continue
		}
		if gid, ok := q.group[sid]; ok {
			if sum == nil {
				sum = map[int64]int64{}
			}
			sum[gid] += q.weight[sid]
		}
	}
	n := 0
	for gid, w := range sum {
		if w > q.groupWeight[gid]/2 {
			n++
		}
	}
	return n > q.groups/2
}

// ContainsIDs is Contains for a list of servers.
func (q *Quorum) ContainsIDs(ids []int64) bool {
	set := make(map[int64]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return q.Contains(set)
}

// Groups are the groups, by id, each with its servers in ascending order;
// nil for a majority quorum.
func (q *Quorum) Groups() map[int64][]int64 {
	if q.group == nil {
		return nil
	}
	out := map[int64][]int64{}
	for sid, gid := range q.group {
		out[gid] = append(out[gid], sid)
	}
	for _, m := range out {
		slices.Sort(m)
	}
	return out
}

// Weights are the weights of the servers in groups; nil for a majority
// quorum.
func (q *Quorum) Weights() map[int64]int64 {
	if q.group == nil {
		return nil
	}
	return q.weight
}
