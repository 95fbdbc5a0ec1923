package check

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A partition cuts the quorum and election traffic between groups of
// members; client traffic is never cut. Every member's connections to the
// others come from 127.0.0.1 whatever its own address, so a connection is
// told by who opened it: each member runs with a group id of its own
// (gidBase+i), the first packet of a connection marks it with its
// opener's number (CONNMARK in the mangle table), and a cut drops the
// packets, either way, of the connections one side opened to the other's
// quorum or election port (a one-way cut: those one side sends). The rules
// live in chains of this run's own, removed by Teardown whatever happened.
type network struct {
	chain  string // filter table: the cuts
	mark   string // mangle table: the connection marks
	c      *Cluster
	cut    bool
	active bool
}

// gidBase+i is member i's group id.
const gidBase = 47000

func iptables(args ...string) error {
	out, err := exec.Command("iptables", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CanPartition says why partitions cannot be made here, or nil.
func CanPartition() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("partitions need root (iptables rules and a group id per member)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("partitions need iptables: %v", err)
	}
	return nil
}

func newNetwork(c *Cluster) (*network, error) {
	n := &network{chain: fmt.Sprintf("ZKCHECK-%d", os.Getpid()), mark: fmt.Sprintf("ZKCHECKM-%d", os.Getpid()), c: c}
	steps := [][]string{
		{"-t", "filter", "-N", n.chain},
		{"-t", "filter", "-I", "OUTPUT", "-j", n.chain},
		{"-t", "mangle", "-N", n.mark},
		{"-t", "mangle", "-I", "OUTPUT", "-j", n.mark},
	}
	for i := 1; i <= c.N; i++ {
		steps = append(steps, []string{"-t", "mangle", "-A", n.mark, "-p", "tcp", "-m", "owner", "--gid-owner", fmt.Sprint(gidBase + i),
			"-m", "conntrack", "--ctstate", "NEW", "-j", "CONNMARK", "--set-mark", fmt.Sprint(gidBase + i)})
	}
	n.active = true
	for _, s := range steps {
		if err := iptables(s...); err != nil {
			n.teardown()
			return nil, err
		}
	}
	return n, nil
}

// removeStaleRules removes the chains of earlier runs whose process is
// gone (killed before it could remove them).
func removeStaleRules() {
	for _, table := range []string{"filter", "mangle"} {
		out, err := exec.Command("iptables", "-t", table, "-S").Output()
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(out), "\n") {
			name, ok := strings.CutPrefix(line, "-N ")
			if !ok || !strings.HasPrefix(name, "ZKCHECK") {
				continue
			}
			_, pid, _ := strings.Cut(name, "-")
			n, err := strconv.Atoi(pid)
			if err != nil || n == os.Getpid() || syscall.Kill(n, 0) == nil {
				continue
			}
			iptables("-t", table, "-D", "OUTPUT", "-j", name)
			iptables("-t", table, "-F", name)
			iptables("-t", table, "-X", name)
		}
	}
}

// partition cuts every link between members in different groups.
func (n *network) partition(groups [][]int) error {
	group := map[int]int{}
	for g, members := range groups {
		for _, m := range members {
			group[m] = g
		}
	}
	return n.cutLinks(func(i, j int) bool { return group[i] != group[j] })
}

// cutLinks cuts the link between members i and j wherever cut(i, j).
func (n *network) cutLinks(cut func(i, j int) bool) error {
	for i := 1; i <= n.c.N; i++ {
		for j := i + 1; j <= n.c.N; j++ {
			if !cut(i, j) && !cut(j, i) {
				continue
			}
			if err := n.lose(i, j, 1); err != nil {
				return err
			}
			if err := n.lose(j, i, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// lose drops the given share (0 to 1) of the packets member from sends to
// member to over the quorum and election ports, each packet by chance: those
// on the connections from opened to to, and its answers on the connections
// to opened to it. With a share of 1 nothing gets through; what to sends
// still arrives, though TCP retransmits it for want of from's
// acknowledgements. With less, TCP retransmits what is lost after a
// timeout of at least 200 ms, doubled each time the same packet is lost.
func (n *network) lose(from, to int, share float64) error {
	ports := fmt.Sprintf("%d,%d", n.c.QuorumPort, n.c.ElectionPort)
	if n.c.ObserverMasterPort > 0 {
		ports += fmt.Sprintf(",%d", n.c.ObserverMasterPort)
	}
	return n.dropShare(share,
		[]string{"-m", "connmark", "--mark", fmt.Sprint(gidBase + from), "-d", n.c.Host(to), "-p", "tcp", "-m", "multiport", "--dports", ports},
		[]string{"-m", "connmark", "--mark", fmt.Sprint(gidBase + to), "-s", n.c.Host(from), "-p", "tcp", "-m", "multiport", "--sports", ports})
}

// loseClients drops the given share of the packets between the clients
// and member i's client port, both ways, each packet by chance.
func (n *network) loseClients(i int, share float64) error {
	port := fmt.Sprint(n.c.ClientPort)
	return n.dropShare(share,
		[]string{"-d", n.c.Host(i), "-p", "tcp", "--dport", port},
		[]string{"-s", n.c.Host(i), "-p", "tcp", "--sport", port})
}

// dropShare adds a rule for each of matches dropping the given share of
// the packets it matches, each by chance (all of them at 1).
func (n *network) dropShare(share float64, matches ...[]string) error {
	var chance []string
	if share < 1 {
		chance = []string{"-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(share, 'f', 3, 64)}
	}
	for _, m := range matches {
		n.cut = true
		args := append(append(append([]string{"-t", "filter", "-A", n.chain}, m...), chance...), "-j", "DROP")
		if err := iptables(args...); err != nil {
			return err
		}
	}
	return nil
}

// makeCut makes a partition with apply and returns what heals it; nil, with
// the fault's error set, when it could not be made.
func (n *network) makeCut(ev *FaultEvent, logf func(string, ...any), apply func() error) func() {
	if err := apply(); err != nil {
		ev.Err = err.Error()
		n.heal()
		return nil
	}
	return func() {
		if err := n.heal(); err != nil {
			logf("healing the partition: %v", err)
		}
	}
}

// heal removes every cut.
func (n *network) heal() error {
	if !n.cut {
		return nil
	}
	n.cut = false
	return iptables("-t", "filter", "-F", n.chain)
}

// teardown removes the chains and the jumps to them.
func (n *network) teardown() {
	if !n.active {
		return
	}
	n.active = false
	iptables("-t", "filter", "-D", "OUTPUT", "-j", n.chain)
	iptables("-t", "filter", "-F", n.chain)
	iptables("-t", "filter", "-X", n.chain)
	iptables("-t", "mangle", "-D", "OUTPUT", "-j", n.mark)
	iptables("-t", "mangle", "-F", n.mark)
	iptables("-t", "mangle", "-X", n.mark)
}

// Fault names, as -nemesis takes them.
const (
	// The kills and the disk faults hit only zkd members in an ensemble
	// with both servers (Cluster.crashable).
	FaultKill        = "kill"         // kill -9 a random member, restart it
	FaultKillLeader  = "kill-leader"  // kill -9 the leader, restart it
	FaultPauseLeader = "pause-leader" // SIGSTOP the leader, SIGCONT it
	// A paused follower: its clients move on, the leader drops it, and
	// when it wakes it finds their old requests still in its sockets.
	FaultPauseFollower   = "pause-follower"
	FaultPartitionLeader = "partition-leader"   // cut the leader from the others
	FaultPartitionHalves = "partition-halves"   // cut a random minority from the majority
	FaultPartitionOne    = "partition-follower" // cut a follower from the others
	// A bridge: the others in two halves cut from each other, one member
	// linked to both, so that the network is not transitive.
	FaultPartitionBridge = "partition-bridge"
	// One way: what the leader sends to one other member is lost, or
	// what that member sends to the leader, while the other way works.
	FaultPartitionOneWay = "partition-oneway"
	// Lossy links: every link between members loses a share of its
	// packets, each by chance, both ways; TCP's retransmissions turn the
	// losses into delays of 200 ms and more.
	FaultLossyLinks = "lossy-links"
	// Lossy client links: the clients' links to every member lose a share
	// of their packets, both ways; pings come late, sessions move.
	FaultLossyClients = "lossy-clients"
	// The disk faults need zkd's fault hook (ZKD_FAULTS=disk), which Run
	// turns on for them.
	FaultDiskError   = "disk-error"    // a random member's disk fails: every write and fsync
	FaultPowerCut    = "power-cut"     // a random member loses its unsynced writes and dies
	FaultPowerCutAll = "power-cut-all" // every member at once, as a whole rack's power
	FaultDiskStall   = "disk-stall"    // the leader's or a random member's fsyncs hang, then go on
)

// Faults are the faults there are, in the order -nemesis all runs them.
var Faults = []string{FaultKill, FaultKillLeader, FaultPauseLeader, FaultPauseFollower, FaultPartitionLeader, FaultPartitionOne, FaultPartitionHalves,
	FaultPartitionBridge, FaultPartitionOneWay, FaultLossyLinks, FaultLossyClients,
	FaultDiskError, FaultDiskStall, FaultPowerCut, FaultPowerCutAll}

// lossShares are the shares of packets the lossy faults lose, one chosen
// by chance each time one is made.
var lossShares = []float64{0.1, 0.25, 0.4, 0.6}

// isNetworkFault reports whether a fault needs iptables rules.
func isNetworkFault(name string) bool {
	return strings.HasPrefix(name, "partition") || name == FaultLossyLinks || name == FaultLossyClients
}

// isDiskFault reports whether a fault needs zkd's disk fault hook.
func isDiskFault(name string) bool {
	return name == FaultDiskError || name == FaultDiskStall || name == FaultPowerCut || name == FaultPowerCutAll
}

// FaultEvent is a fault as it happened, for the report and the timeline.
type FaultEvent struct {
	Name   string
	Target []int // the members hit
	Start  time.Time
	End    time.Time
	Err    string // why it could not be made
	Detail string // how it was made, when the name does not say all: "40% lost"
}

// nemesis injects faults one at a time: each for hold, then a pause of
// rest with none, until stop is closed. Every fault is undone before the
// next, and before nemesis returns.
func nemesis(c *Cluster, net *network, faults []string, hold, rest time.Duration, rng *rand.Rand, stop <-chan struct{}, logf func(string, ...any)) []FaultEvent {
	var events []FaultEvent
	wait := func(d time.Duration) bool {
		select {
		case <-stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	for k := 0; len(faults) > 0; k++ {
		if !wait(rest) {
			return events
		}
		name := faults[k%len(faults)]
		leader := c.Leader()
		ev := FaultEvent{Name: name, Start: time.Now()}
		var undo func()
		switch name {
		case FaultKill, FaultKillLeader:
			pool := c.crashable()
			m := pool[rng.Intn(len(pool))]
			if name == FaultKillLeader && leader != 0 {
				if !contains(pool, leader) {
					ev.Err = "the leader is Apache ZooKeeper, which kills spare in an ensemble with zkd"
					break
				}
				m = leader
			}
			ev.Target = []int{m}
			c.Kill(m)
			undo = func() {
				if err := c.Restart(m); err != nil {
					logf("restarting member %d: %v", m, err)
				}
			}
		case FaultPauseLeader:
			if leader == 0 {
				ev.Err = "no leader to pause"
				break
			}
			ev.Target = []int{leader}
			c.Pause(leader)
			undo = func() { c.Resume(leader) }
		case FaultPauseFollower:
			m := c.notLeader(leader, rng)
			ev.Target = []int{m}
			c.Pause(m)
			undo = func() { c.Resume(m) }
		case FaultPartitionBridge:
			if net == nil {
				ev.Err = "no partitions here"
				break
			}
			perm := rng.Perm(c.N)
			bridge, rest := perm[0]+1, perm[1:]
			side := map[int]int{}
			for k, p := range rest {
				side[p+1] = 1 + k%2
			}
			ev.Target = []int{bridge}
			undo = net.makeCut(&ev, logf, func() error {
				return net.cutLinks(func(i, j int) bool { return side[i] != 0 && side[j] != 0 && side[i] != side[j] })
			})
		case FaultPartitionOneWay:
			if net == nil {
				ev.Err = "no partitions here"
				break
			}
			if leader == 0 {
				ev.Err = "no leader"
				break
			}
			other := 1 + rng.Intn(c.N-1)
			if other >= leader {
				other++
			}
			from, to := leader, other
			if rng.Intn(2) == 0 {
				from, to = other, leader
			}
			ev.Target = []int{from, to} // from's packets to to are lost
			undo = net.makeCut(&ev, logf, func() error { return net.lose(from, to, 1) })
		case FaultLossyLinks, FaultLossyClients:
			if net == nil {
				ev.Err = "no partitions here"
				break
			}
			share := lossShares[rng.Intn(len(lossShares))]
			for i := 1; i <= c.N; i++ {
				ev.Target = append(ev.Target, i)
			}
			// Every link between members, both ways; or every member's
			// client port.
			lose := func(i int) error {
				for j := 1; j <= c.N; j++ {
					if j == i {
						continue
					}
					if err := net.lose(i, j, share); err != nil {
						return err
					}
				}
				return nil
			}
			between := "members"
			if name == FaultLossyClients {
				lose = func(i int) error { return net.loseClients(i, share) }
				between = "the clients and the members"
			}
			ev.Detail = fmt.Sprintf("%.0f%% lost", share*100)
			logf("losing %.0f%% of the packets between %s", share*100, between)
			undo = net.makeCut(&ev, logf, func() error {
				for i := 1; i <= c.N; i++ {
					if err := lose(i); err != nil {
						return err
					}
				}
				return nil
			})
		case FaultDiskStall:
			if !c.diskFaults {
				ev.Err = "no disk faults here (zkd's fault hook is off)"
				break
			}
			pool := c.crashable()
			m := pool[rng.Intn(len(pool))]
			if leader != 0 && contains(pool, leader) && rng.Intn(2) == 0 {
				m = leader
			}
			ev.Target = []int{m}
			c.Signal(m, syscall.SIGTTIN)
			undo = func() { c.Signal(m, syscall.SIGTTOU) }
		case FaultPartitionLeader, FaultPartitionHalves, FaultPartitionOne:
			if net == nil {
				ev.Err = "no partitions here"
				break
			}
			var alone []int
			switch name {
			case FaultPartitionLeader:
				if leader == 0 {
					ev.Err = "no leader to cut off"
					break
				}
				alone = []int{leader}
			case FaultPartitionOne:
				alone = []int{c.notLeader(leader, rng)}
			default:
				alone = c.minority(rng)
			}
			var others []int
			for i := 1; i <= c.N; i++ {
				if !contains(alone, i) {
					others = append(others, i)
				}
			}
			ev.Target = sortedInts(alone)
			undo = net.makeCut(&ev, logf, func() error { return net.partition([][]int{alone, others}) })
		case FaultDiskError, FaultPowerCut, FaultPowerCutAll:
			if !c.diskFaults {
				ev.Err = "no disk faults here (zkd's fault hook is off)"
				break
			}
			pool := c.crashable()
			hit := []int{pool[rng.Intn(len(pool))]}
			if name == FaultPowerCutAll {
				hit = nil
				for i := 1; i <= c.N; i++ {
					hit = append(hit, i)
				}
			}
			ev.Target = hit
			sig := syscall.SIGUSR2
			if name == FaultDiskError {
				sig = syscall.SIGUSR1
			}
			for _, m := range hit {
				c.Signal(m, sig)
			}
			undo = func() {
				for _, m := range hit {
					// A member with a failed disk stops by itself;
					// one that has not by now is killed.
					if c.Running(m) {
						logf("member %d still runs after %s; killing it", m, name)
						c.Kill(m)
					}
					if err := c.Restart(m); err != nil {
						logf("restarting member %d: %v", m, err)
					}
				}
			}
		default:
			ev.Err = "no such fault"
		}
		if undo != nil {
			logf("fault: %s on %v", name, ev.Target)
			wait(hold)
			undo()
			logf("fault over: %s", name)
		}
		ev.End = time.Now()
		events = append(events, ev)
		select {
		case <-stop:
			return events
		default:
		}
	}
	<-stop
	return events
}

// notLeader is a random member other than the leader (any member when
// there is none).
func (c *Cluster) notLeader(leader int, rng *rand.Rand) int {
	var others []int
	for i := 1; i <= c.N; i++ {
		if i != leader {
			others = append(others, i)
		}
	}
	return others[rng.Intn(len(others))]
}

// minority is a random minority of the members, for partition-halves:
// the others keep a quorum of the voters. With observers, it is a
// minority of the voters and about half the observers, never nobody.
func (c *Cluster) minority(rng *rand.Rand) []int {
	var alone []int
	if c.Observers == 0 {
		for _, p := range rng.Perm(c.N)[:(c.N-1)/2] {
			alone = append(alone, p+1)
		}
		return alone
	}
	voters := c.N - c.Observers
	for _, p := range rng.Perm(voters)[:(voters-1)/2] {
		alone = append(alone, p+1)
	}
	for i := voters + 1; i <= c.N; i++ {
		if rng.Intn(2) == 0 {
			alone = append(alone, i)
		}
	}
	if len(alone) == 0 {
		alone = []int{voters + 1 + rng.Intn(c.Observers)}
	}
	return alone
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
