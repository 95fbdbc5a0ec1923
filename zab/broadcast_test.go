package zab

import (
	"errors"
	"fmt"
	"testing"
)

func commits(cs []Commit) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("%#x%v ", c.Zxid, c.Syncs)
	}
	return s
}

// Five voters (1 leads) and an observer (9): proposals commit at a quorum
// of three ACKs, in zxid order even when a later one reaches its quorum
// first; observers' ACKs, duplicates and ACKs of committed or unknown
// zxids change nothing.
func TestProposalsCommitInOrderAtAQuorum(t *testing.T) {
	p := NewProposals([]int64{1, 2, 3, 4, 5}, 3<<32|7)
	for z := int64(3<<32 | 8); z <= 3<<32|10; z++ {
		if err := p.Propose(z); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		sid, zxid int64
		want      string
	}{
		{1, 3<<32 | 9, ""}, // the leader's fsync of 9
		{2, 3<<32 | 9, ""}, // 9 has two
		{9, 3<<32 | 9, ""}, // an observer does not count
		{2, 3<<32 | 9, ""}, // nor does a duplicate
		{3, 3<<32 | 9, ""}, // 9 has a quorum, but 8 does not
		{1, 3<<32 | 8, ""}, // 8: one
		{4, 3<<32 | 8, ""}, // 8: two
		{5, 3<<32 | 8, "0x300000008[] 0x300000009[] "}, // 8 commits, and 9 behind it
		{5, 3<<32 | 8, ""},  // committed already
		{5, 3<<32 | 77, ""}, // never proposed
		{1, 3<<32 | 10, ""},
		{2, 3<<32 | 10, ""},
		{3, 3<<32 | 10, "0x30000000a[] "},
	}
	for i, s := range steps {
		if got := commits(p.Ack(s.sid, s.zxid)); got != s.want {
			t.Fatalf("step %d (ACK of %#x from %d): committed %q, want %q", i, s.zxid, s.sid, got, s.want)
		}
	}
	if p.Outstanding() != 0 || p.LastCommitted() != 3<<32|10 {
		t.Fatalf("outstanding %d, last committed %#x", p.Outstanding(), p.LastCommitted())
	}
}

// A SYNC waits for the newest proposal at its arrival, or is answered at
// once with none outstanding.
func TestSyncWaitsForTheNewestProposal(t *testing.T) {
	p := NewProposals([]int64{1, 2, 3}, 2<<32)
	if !p.Sync(2) {
		t.Fatal("a SYNC with nothing outstanding waits")
	}
	p.Propose(2<<32 | 1)
	p.Propose(2<<32 | 2)
	if p.Sync(3) {
		t.Fatal("a SYNC was answered before the proposals it follows")
	}
	p.Propose(2<<32 | 3) // after the SYNC: it does not wait for this
	p.Ack(1, 2<<32|1)
	p.Ack(1, 2<<32|2)
	if got := commits(p.Ack(2, 2<<32|1)); got != "0x200000001[] " {
		t.Fatalf("committed %q", got)
	}
	if got := commits(p.Ack(2, 2<<32|2)); got != "0x200000002[3] " {
		t.Fatalf("committed %q", got)
	}
}

func TestProposeRefusesGapsAndAnExhaustedCounter(t *testing.T) {
	p := NewProposals([]int64{1, 2, 3}, 2<<32|5)
	for _, z := range []int64{2<<32 | 5, 2<<32 | 7, 1<<32 | 9} {
		if err := p.Propose(z); err == nil {
			t.Errorf("proposal %#x after %#x taken", z, int64(2<<32|5))
		}
	}
	if err := p.Propose(3<<32 | 1); err != nil {
		t.Errorf("the first proposal of a later epoch: %v", err)
	}
	q := NewProposals([]int64{1}, 2<<32|0xfffffffe)
	if err := q.Propose(2<<32 | 0xffffffff); !errors.Is(err, ErrCounterExhausted) {
		t.Errorf("the last counter of an epoch: %v", err)
	}
}

// A learner that connects again loses the ACKs it gave on its old
// connection: its sync may cut them from its log. It counts again once it
// acknowledges them anew.
func TestProposalsForgetAReconnectedLearnersAcks(t *testing.T) {
	p := NewProposals([]int64{1, 2, 3}, 2<<32)
	for z := int64(2<<32 | 1); z <= 2<<32|2; z++ {
		if err := p.Propose(z); err != nil {
			t.Fatal(err)
		}
	}
	if got := commits(p.Ack(2, 2<<32|1)); got != "" {
		t.Fatalf("one ACK committed %q", got)
	}
	p.Forget(2)
	if got := commits(p.Ack(1, 2<<32|1)); got != "" {
		t.Fatalf("the leader's ACK and a forgotten one committed %q", got)
	}
	if got := commits(p.Ack(2, 2<<32|1)); got != "0x200000001[] " {
		t.Fatalf("ACKed anew: committed %q", got)
	}
}
