package zab

import (
	"testing"

	"zkd/zab/quorum"
)

// With hierarchical quorums a proposal commits once its ACKs make a
// quorum of groups, not a majority of servers: servers 1 (weight 2) and 2
// are group 1, server 3 group 2, so the ACKs of 2 and 3 do not commit and
// those of 1 and 3 do; and a leader's discovery waits for the same.
func TestHierarchicalProposalsAndDiscovery(t *testing.T) {
	q, err := quorum.Hierarchical([]int64{1, 2, 3}, map[int64][]int64{1: {1, 2}, 2: {3}}, map[int64]int64{1: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := NewProposalsQuorum(q, 1<<32)
	for z := int64(1<<32 + 1); z <= 1<<32+2; z++ {
		if err := p.Propose(z); err != nil {
			t.Fatal(err)
		}
	}
	if c := p.Ack(2, 1<<32+1); c != nil {
		t.Fatalf("server 2's ACK committed %v", c)
	}
	if c := p.Ack(3, 1<<32+1); c != nil {
		t.Fatalf("the ACKs of servers 2 and 3, a majority, committed %v", c)
	}
	if c := p.Ack(1, 1<<32+1); len(c) != 1 || c[0].Zxid != 1<<32+1 {
		t.Fatalf("the ACKs of servers 1 and 3 committed %v", c)
	}
	if c := p.Ack(1, 1<<32+2); c != nil {
		t.Fatalf("server 1's ACK alone committed %v", c)
	}
	if c := p.Ack(3, 1<<32+2); len(c) != 1 {
		t.Fatalf("the ACKs of servers 1 and 3 committed %v", c)
	}

	// Leader 2 with follower 3: a majority, not a quorum; then server 1.
	d := NewLeaderDiscoveryQuorum(2, q, 1, 1, 1<<32)
	if _, frozen, _ := d.FollowerInfo(3, 1); frozen {
		t.Fatal("the epoch was settled by servers 2 and 3")
	}
	if _, frozen, _ := d.FollowerInfo(1, 1); !frozen {
		t.Fatal("the epoch was not settled by servers 1, 2 and 3")
	}
}
