package election

import (
	"cmp"
	"math/rand"
	"slices"
	"testing"
	"time"

	"zkd/wire"
	"zkd/zab/quorum"
)

// TestRandomElectionsAgree starts 3- and 5-server ensembles in random
// orders with random logs, delivers messages in random order between
// pairs (in order within a pair, as TCP does), and drops some servers
// partway: every run must end with every live server decided, all on one
// leader that is up and leads, and that leader must hold the best log
// (epoch, then zxid, then id) of the servers that took part.
func TestRandomElectionsAgree(t *testing.T) {
	seeds := 2000
	if testing.Short() {
		seeds = 200
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		rng := rand.New(rand.NewSource(seed))
		n := 3 + 2*rng.Intn(2)
		voters := make([]int64, n)
		for i := range voters {
			voters[i] = int64(i + 1)
		}
		nodes, logs := randomNodes(rng, quorum.Majority(voters))
		// A minority may never start.
		up := map[int64]bool{}
		order := rng.Perm(n)
		for _, i := range order[:n-rng.Intn(n/2+1)] {
			up[voters[i]] = true
		}
		leader := elect(t, seed, rng, nodes, voters, up, logs, order)
		for id := range up {
			l, o := logs[leader], logs[id]
			if o.PeerEpoch > l.PeerEpoch || (o.PeerEpoch == l.PeerEpoch && (o.Zxid > l.Zxid || (o.Zxid == l.Zxid && id > leader))) {
				t.Fatalf("seed %d: leader %d (%+v) elected over %d (%+v)", seed, leader, l, id, o)
			}
		}
	}
}

// elect starts the up servers of nodes in order (indexes into voters)
// with their logs, delivers their messages in random order between pairs
// (in order within a pair), ticking the clock, until every up server has
// decided; every one must follow one leader that is up and leads, which
// it returns.
func elect(t *testing.T, seed int64, rng *rand.Rand, nodes map[int64]*Election, voters []int64, up map[int64]bool,
	logs map[int64]Vote, order []int) int64 {
	t.Helper()
	pipes := map[[2]int64][]wire.Notification{}
	var now time.Duration
	collect := func(id int64) {
		for _, m := range nodes[id].Ready().Messages {
			k := [2]int64{id, m.To}
			pipes[k] = append(pipes[k], m.N)
		}
	}
	for _, i := range order {
		if id := voters[i]; up[id] {
			nodes[id].Start(now, logs[id].Zxid, logs[id].PeerEpoch)
			collect(id)
		}
	}
	decided := func() bool {
		for id := range up {
			if nodes[id].State() == wire.StateLooking {
				return false
			}
		}
		return true
	}
	for round := 0; !decided(); round++ {
		if round > 200 {
			t.Fatalf("seed %d: still LOOKING after 200 rounds", seed)
		}
		// Deliver everything in flight, a random pipe at a time.
		for steps := 0; len(pipes) > 0 && steps < 100_000; steps++ {
			keys := make([][2]int64, 0, len(pipes))
			for k := range pipes {
				keys = append(keys, k)
			}
			// Map order is random already; the rng makes it
			// reproducible from the seed.
			slices.SortFunc(keys, func(a, b [2]int64) int {
				if c := cmp.Compare(a[0], b[0]); c != 0 {
					return c
				}
				return cmp.Compare(a[1], b[1])
			})
			k := keys[rng.Intn(len(keys))]
			msg := pipes[k][0]
			if pipes[k] = pipes[k][1:]; len(pipes[k]) == 0 {
				delete(pipes, k)
			}
			if up[k[1]] {
				nodes[k[1]].Step(now, k[0], msg)
				collect(k[1])
			}
		}
		now += 100 * time.Millisecond
		for _, id := range voters {
			if up[id] {
				nodes[id].Tick(now)
				collect(id)
			}
		}
	}
	var leader int64
	for id := range up {
		v := nodes[id].Current()
		if leader == 0 {
			leader = v.Leader
		}
		if v.Leader != leader {
			t.Fatalf("seed %d: server %d follows %d, another follows %d", seed, id, v.Leader, leader)
		}
	}
	if !up[leader] || nodes[leader].State() != wire.StateLeading {
		t.Fatalf("seed %d: leader %d is not up and leading", seed, leader)
	}
	return leader
}

// With hierarchical quorums (six servers in three groups of two, server 6
// weighing nothing), random elections among servers that include a
// quorum of groups end on one leader of weight above zero holding the
// best log of those that may lead, never on server 6 whatever its log.
func TestRandomHierarchicalElectionsAgree(t *testing.T) {
	voters := []int64{1, 2, 3, 4, 5, 6}
	q, err := quorum.Hierarchical(voters, map[int64][]int64{1: {1, 2}, 2: {3, 4}, 3: {5, 6}}, map[int64]int64{6: 0})
	if err != nil {
		t.Fatal(err)
	}
	seeds := 1000
	if testing.Short() {
		seeds = 100
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		rng := rand.New(rand.NewSource(seed))
		nodes, logs := randomNodes(rng, q)
		// Server 6 often has the best log.
		if rng.Intn(2) == 0 {
			logs[6] = Vote{Leader: 6, Zxid: 9<<32 | 9, PeerEpoch: 9}
		}
		order := rng.Perm(len(voters))
		up := map[int64]bool{}
		for _, i := range order {
			if rng.Intn(4) != 0 {
				up[voters[i]] = true
			}
		}
		var ids []int64
		for id := range up {
			ids = append(ids, id)
		}
		if !q.ContainsIDs(ids) {
			continue
		}
		leader := elect(t, seed, rng, nodes, voters, up, logs, order)
		if q.Weight(leader) == 0 {
			t.Fatalf("seed %d: server %d, of weight 0, was elected", seed, leader)
		}
		for id := range up {
			l, o := logs[leader], logs[id]
			if q.Weight(id) > 0 && (o.PeerEpoch > l.PeerEpoch || (o.PeerEpoch == l.PeerEpoch && (o.Zxid > l.Zxid || (o.Zxid == l.Zxid && id > leader)))) {
				t.Fatalf("seed %d: leader %d (%+v) elected over %d (%+v)", seed, leader, l, id, o)
			}
		}
	}
}

// randomNodes makes an election for each voter of q, each with a random
// log: epoch 1 or 2, counter 0 to 2.
func randomNodes(rng *rand.Rand, q *quorum.Quorum) (map[int64]*Election, map[int64]Vote) {
	nodes, logs := map[int64]*Election{}, map[int64]Vote{}
	for _, id := range q.Voters() {
		nodes[id] = New(Config{ID: id, Quorum: q})
		epoch := int64(rng.Intn(2) + 1)
		logs[id] = Vote{Leader: id, Zxid: epoch<<32 | int64(rng.Intn(3)), PeerEpoch: epoch}
	}
	return nodes, logs
}
